"""``stream-cl``: the command line.

    stream-cl run                      # the bundled drifting demo stream
    stream-cl run --config cfg.toml    # a file or Kafka source, as configured
    stream-cl run --source events.jsonl.gz --report run.json
    stream-cl report run.json --out plots/   # PNG plots of a report
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .early_signals import EarlySignals, exit_settled, keep_early_signals

if TYPE_CHECKING:
    from stream_cl.config import Config

# stream_cl.config (tens of ms) is imported inside the functions: before main() has kept the signals
# (EarlySignals), a SIGTERM has its default action; the less that runs before it, the better


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stream-cl", description="Streaming online continual learning.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="learn from a stream (default: the bundled drifting demo)")
    run.add_argument("--config", help="TOML config file (see README: configuration reference)")
    run.add_argument("--source", metavar="PATH", help="a .jsonl or .csv file (optionally .gz); sets source.kind = file")
    run.add_argument("--format", choices=["auto", "jsonl", "csv"], help="source.format")
    run.add_argument("--follow", action="store_true", help="keep reading a growing file (source.follow)")
    run.add_argument("--features", metavar="FIELD|A,B,...",
                     help="mapping.features: the JSON field holding the features as an object or a list (default x), "
                          "or several top-level fields / CSV columns separated by commas: --features a,b,c; one top-level "
                          "JSON field learned itself takes a trailing comma: --features amount, (in a CSV one name is "
                          "that column, but x, the default, reads every column: column x alone is --features x,)")
    run.add_argument("--label", help="mapping.label: the label field")
    run.add_argument("--model", choices=["online", "analytic"], help="model.kind")
    run.add_argument("--device", help="model.device: auto, cpu, cuda or cuda:N")
    run.add_argument("--batch-size", type=int, help="run.batch_size")
    run.add_argument("--max-events", type=int, help="run.max_events")
    # file and demo runs only: the Kafka daemon refuses them (it has kafka.predictions_topic and the like)
    run.add_argument("--report", metavar="PATH", help="write the JSON report here (run.report; not with a Kafka source)")
    run.add_argument("--predictions", metavar="PATH",
                     help="write predictions as JSONL (run.predictions; not with a Kafka source)")
    run.add_argument("--dead-letters", metavar="PATH",
                     help="dead-letter JSONL file (run.dead_letters; not with a Kafka source)")
    run.add_argument("--quiet", action="store_true", help="no progress line, no summary")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                     help="Kafka daemon logs (source.kind = kafka)")
    run.add_argument("--log-format", default="auto", choices=["auto", "json", "text"],
                     help="Kafka daemon logs: JSON lines, text, or auto (text on a terminal)")
    run.add_argument("--kafka-log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                     help="Kafka daemon: of the kafka-python client (its start-up lines are shown only at DEBUG)")
    rep = sub.add_parser("report", help="PNG plots of a run's JSON report (accuracy, drift alarms, task matrix, throughput)")
    rep.add_argument("path", metavar="RUN.json", help="a report written by `stream-cl run --report`")
    rep.add_argument("--out", metavar="DIR", help="where to write the PNGs (default: RUN-plots/ next to the report)")
    return p


def _config_from_args(args) -> Config:
    from stream_cl.config import load_config_dict

    return _quieted(load_config_dict(_tables_from_args(args)), args)


def _quieted(config: Config, args) -> Config:
    """``config`` with ``--quiet`` applied (no progress line): a file run's flag, not a key of the file, so it
    is not in :func:`_tables_from_args`' tables. There it read as ``run.progress`` written by the user, and the
    Kafka daemon, which has no progress line, warned to remove a key the file does not hold."""
    return config.replace("run", progress=False) if args.quiet else config


def _tables_from_args(args) -> dict:
    """The config's tables as the run will use them: the file's (if any) with the flags' keys over them,
    not yet validated (which keys are set, not defaults: :func:`stream_cl.config.unread_keys`). ``--quiet``
    is not among them (:func:`_quieted`)."""
    from stream_cl.config import read_toml

    # `is not None`: an empty value (an unset variable in `--config "$CFG"`) is refused by name, not taken as unset
    data = read_toml(args.config) if args.config is not None else {}
    source = {k: v for k, v in {"format": args.format}.items() if v is not None}
    if args.source is not None:
        source.update(kind="file", path=args.source)
    if args.follow:
        source["follow"] = True
    features = args.features
    if features is not None and "," in features:  # several fields or columns
        features = [name.strip() for name in features.split(",") if name.strip()]
    mapping = {k: v for k, v in {"features": features, "label": args.label}.items() if v is not None}
    model = {k: v for k, v in {"kind": args.model, "device": args.device}.items() if v is not None}
    run = {k: v for k, v in {"batch_size": args.batch_size, "max_events": args.max_events, "report": args.report,
                             "predictions": args.predictions, "dead_letters": args.dead_letters}.items() if v is not None}
    # a flag replaces the file's key before validation: a default that depends on another key (model.forgetting
    # on model.kind) is resolved once, by the config, from the keys as the run will use them
    for section, changes in (("source", source), ("mapping", mapping), ("model", model), ("run", run)):
        table = data.get(section, {})
        if changes and isinstance(table, Mapping):  # not a table: load_config_dict names the section
            data[section] = {**table, **changes}
    return data


def main(argv: list[str] | None = None) -> int:
    early = EarlySignals().install()  # first: before the slow imports (see connectors.early_signals)
    try:
        code = _main(argv, early)
        sys.stdout.flush()  # here, not at exit (exit 120 and a line on stderr): a reader that left is ours to answer
        return code
    except BrokenPipeError:  # `stream-cl ... | head`: the reader left; what it wanted was written
        _quiet_stdout()
        return 141  # (128 + SIGPIPE, as a shell reports a command its pipe's reader left)
    finally:
        early.restore()


def _summary_stream(run):
    """Where the run's summary goes: stdout, or stderr where stdout is one of the run's outputs
    (``--predictions /dev/stdout | jq``): its lines after the JSON lines were a line no JSON reader parses."""
    try:
        out = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # (a stdout with no descriptor: a test's capture, say)
        return sys.stdout
    if stat.S_ISCHR(out.st_mode) and not sys.stdout.isatty():  # /dev/null: outputs and summary thrown away alike
        return sys.stdout
    for path in (run.predictions, run.dead_letters, run.report):
        try:
            st = os.stat(path) if path else None
        except (OSError, ValueError):
            continue
        if st is not None and (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino):
            return sys.stderr
    return sys.stdout


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: Python flushes it at exit, and the closed pipe would raise again there
    (the recipe of Python's signal module documentation, "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _main(argv: list[str] | None, early: EarlySignals) -> int:
    args = _parser().parse_args(argv)
    if args.command != "run":
        early.release()
    from stream_cl.config import ConfigError, load_config_dict

    try:
        if args.command == "run":
            from . import check_environment

            check_environment()
            tables = _tables_from_args(args)
            config = load_config_dict(tables)
            if config.source.kind == "kafka":
                from .daemon_config import FILE_RUN_OUTPUTS, check_file_outputs, file_output_error, log_config_warnings
                from .daemon_run import run_daemon
                from .logs import setup_logging

                keep_early_signals(early.kept)  # the daemon's keeper from here on; run_daemon takes them over
                for key in FILE_RUN_OUTPUTS:  # a file run's outputs (--report...): the daemon has topics instead
                    if getattr(args, key):  # "" turns a file off: nothing the daemon would have to write
                        raise file_output_error(f"--{key.replace('_', '-')}", key)
                check_file_outputs(config)  # the same, set in the config's [run]
                setup_logging(args.log_level, fmt=args.log_format, hold_until_started=True)  # lifecycle events, one line each
                logging.getLogger("kafka").setLevel(args.kafka_log_level)
                log_config_warnings(config, tables)  # keys the model kind does not read, as a file run warns
                return run_daemon(config)
            from .run import failure, run_file, stopped_line, summary

            config = _quieted(config, args)
            # a signal kept so far, or during run_file's warm-up, stops the run as one during its loop does
            report = run_file(config, stop=early.stop, written=tables, config_path=args.config)
            errors = report.get("output_errors", {})  # a write that failed (a full disk), by key
            if not args.quiet:
                print(summary(report), file=_summary_stream(config.run))
            elif "run.report" in errors:  # the report is lost: the summary is all that is left of the run's result
                print(summary(report), file=sys.stderr)  # (stderr: stdout may be --predictions /dev/stdout)
            for why in errors.values():
                print(f"error: {why}", file=sys.stderr)
            if errors:
                return 1  # an output is missing or cut short: not a success, whatever the counts
            if early.stop.is_set() and not report["events"] and not report["dead_letters_total"]:
                print("stopped by a signal before any record was read", file=sys.stderr)
                return 0  # a clean stop: not "the source held no events"
            stopped = stopped_line(report, summary=False)
            if args.quiet and stopped:  # (the summary's first line otherwise)
                print(stopped, file=sys.stderr)  # a clean stop, exit 0 unless failure() below
            problem = failure(report, dead_letters=bool(config.run.dead_letters))
            if problem:
                print(f"error: {problem}", file=sys.stderr)
                return 1
            return 0
        if args.command == "report":
            from .report import ReportError, main as report_main

            try:
                return report_main(args.path, args.out)
            except ReportError as e:
                print(f"report error: {e}", file=sys.stderr)
                return 2
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    return 1


def entry() -> None:
    """The ``stream-cl`` command: :func:`main`, then an exit that a late signal cannot turn into a death
    by signal (:func:`~connectors.early_signals.exit_settled`)."""
    exit_settled(main())


if __name__ == "__main__":
    entry()
