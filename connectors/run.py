"""The file (and demo) run loop: read, predict-then-learn, write, report.

Small and composed: a :class:`~connectors.files.FileSource`, the engine's
:class:`~stream_cl.prequential.Prequential` step, JSONL sinks, a progress line. A signal
only sets the stop flag; the loop finishes its batch and writes the report.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from importlib import resources

from stream_cl.config import Config, ConfigError, RunConfig, check_path, unread_keys
from stream_cl.events import DeadLetter, DeadLetterSink, Event, PredictionSink, Source
from stream_cl.factory import build_learner
from stream_cl.mapping_check import TimeCensus
from stream_cl.prequential import DAEMON_MAX_POINTS, Prequential
from stream_cl.runtime import set_threads, warm_up

from .files import JsonlDeadLetterSink, JsonlPredictionSink, open_source
from .progress import Progress
from .report_file import clear_report, write_report
from .writable import cannot_write, unwritable

DEMO_EVENTS = 12_003  # lines in the bundled demo stream (12,000 events, 3 bad lines)
_EXAMPLE_CHARS = 300  # of a dead letter's detail kept in the report's dead_letter_examples
FOLLOW_FLUSH_S = 1.0  # following a file: output reaches its files at least this often
_OUTPUTS = ("predictions", "dead_letters", "report")


def demo_path() -> str:
    return str(resources.files("stream_cl") / "data" / "demo.jsonl.gz")


# Sections a file run does not read, each with what it would have done: set in a file run's config,
# they are a mistake the user should hear of (the run itself goes on: its output is still right)
_DAEMON_ONLY = {
    "checkpoint": ("a file run keeps no state between runs (it starts with a new model and reads its source from "
                   "the start); [checkpoint] applies to the Kafka daemon"),
    "kafka": ("a file run reads no topic: its events are learned only when they carry their own label (delayed "
              "labels come from [kafka] labels_topic, to the Kafka daemon); [kafka] applies to the Kafka daemon"),
    "labels": ("a file run waits for no delayed label: an event without a label is predicted, never learned; "
               "[labels] applies to the Kafka daemon"),
    "metrics": "a file run serves no /metrics (its report file holds the counts); [metrics] applies to the Kafka daemon",
    "changelog": "a file run writes no model changelog; [changelog] applies to the Kafka daemon's consumer group",
}


def _daemon_only_notes(config: Config, written=None) -> list[str]:
    """A warning for each section only the Kafka daemon reads that this file run's config sets: one
    present in ``written`` (the tables as given), even at its default values, since the user wrote it
    meaning the run to use it (docs/daemon.md's own [checkpoint] example is all defaults); without
    ``written`` (a Config made in code), a section that differs from its defaults."""
    if written is not None:
        return [f"{name}: {what}" for name, what in _DAEMON_ONLY.items() if name in written]
    return [f"{name}: {what}" for name, what in _DAEMON_ONLY.items()
            if getattr(config, name) != type(getattr(config, name))()]


MAX_REPORT_WARNINGS = 100  # warnings a run report lists (the first ones); the rest are counted


def _left_out(n: int) -> list[str]:
    """The report's line counting the warnings past :data:`MAX_REPORT_WARNINGS` (none: no line)."""
    return [f"{n:,} more warnings were said, left out here (the first {MAX_REPORT_WARNINGS} are kept)"] if n else []


def run_file(config: Config, stop: threading.Event | None = None, warn=None, written=None,
             config_path: str | None = None) -> dict:
    """Run a file or demo source to its end (or ``run.max_events``); return the report.

    ``warn(text)`` is called once per mistake found on the way (a section only the daemon
    reads, a key the model kind does not read, a label column the CSV lacks, a named field
    no event has, time features without a time; the report's ``warnings`` lists them too);
    by default they go to stderr. ``written``: the config's tables as given
    (:func:`~stream_cl.config.read_toml`), which tell the keys set from the defaults. A named
    feature, id, task or time column the CSV header lacks raises
    :class:`~stream_cl.config.ConfigError` before any row is learned. ``config_path``: the file the
    config was read from (the command line's ``--config``), which no output may be.
    """
    set_threads(config.run.threads)
    warm_up()  # numba's compiled loops, as the daemon loads them: not in the first batch's latency
    warn = warn or _to_stderr
    warnings: list[str] = []
    left_out = [0]  # warnings said past MAX_REPORT_WARNINGS: a followed file may never end (review r107)

    def say(note: str) -> None:  # a mistake found on the way: said now, and listed in the report (the first ones)
        if len(warnings) < MAX_REPORT_WARNINGS:
            warnings.append(note)
        else:
            left_out[0] += 1
        warn(note)

    for note in _daemon_only_notes(config, written) + unread_keys(config, written or {}):
        say(note)
    stop = stop or threading.Event()
    src_cfg = config.source
    if src_cfg.kind == "demo":
        src_cfg = replace(src_cfg, kind="file", path=demo_path(), format="jsonl", follow=False)
    check_outputs(config.run, src_cfg.path, config_path)  # before anything is opened: nor the input, nor the config
    source: Source = open_source(src_cfg, config.mapping)
    learner = build_learner(config)  # [model] and the continual-learning sections
    # a followed file may never end: a fixed window keeps its latest points, as the daemon does (a finite
    # file's report keeps them all: as many as the file has windows)
    max_points = DAEMON_MAX_POINTS if src_cfg.follow else None
    step = Prequential(learner, window=config.run.window, max_points=max_points,
                       max_classes=config.model.max_classes or None)
    total = config.run.max_events or (DEMO_EVENTS if config.source.kind == "demo" else None)
    progress = Progress(total=total, enabled=config.run.progress)
    times = TimeCensus(config.mapping, config.model.time_features)  # time features, and no event with a time
    seen, unflushed, flushed_at = 0, False, time.monotonic()
    examples: dict[str, str] = {}  # reason -> the first dead letter's detail (failure() quotes it)
    # an earlier run's report, beside the outputs this run starts anew, must not be read as this run's (report_file)
    report_mode = clear_report(config.run.report)
    # the sinks closed on the way out too: a source that fails (an unusable CSV header) leaves no file open
    with _stop_on_signals(stop) as signals, source, _Outputs(config.run, say) as outputs:
        while not stop.is_set() and not source.exhausted and not outputs.errors:
            want = config.run.batch_size
            if config.run.max_events is not None:
                want = min(want, config.run.max_events - seen)
                if want <= 0:
                    break
            records = source.poll(want)
            if config.run.max_events is not None:  # a poll may hand out a held record or two past want (r133)
                records = records[: config.run.max_events - seen]
            seen += len(records)
            events = [r for r in records if isinstance(r, Event)]
            times.observe(events)
            for w in source.take_warnings() + times.take():
                say(w)
            dead = [r for r in records if isinstance(r, DeadLetter)]
            predictions, refused = step.process(events)  # counts the refused itself
            step.stats.add_dead_letters(dead)
            # the record as read, not the event re-serialised (the Kafka router does the same)
            dead += [replace(d, raw=source.raw.get(d.origin, d.raw)) for d in refused]
            for d in dead:
                examples.setdefault(d.reason, d.detail[:_EXAMPLE_CHARS])
            outputs.write("dead_letters", dead)
            outputs.write("predictions", predictions)
            if src_cfg.follow:  # a followed file may never end: its output must not wait for the close
                unflushed = unflushed or bool(dead or predictions)
                if unflushed and (not records or time.monotonic() - flushed_at >= FOLLOW_FLUSH_S):
                    outputs.flush()
                    unflushed, flushed_at = False, time.monotonic()
            progress.update(seen, step.stats.recent_accuracy, sum(step.stats.dead_letters.values()))
        progress.update(seen, step.stats.recent_accuracy, sum(step.stats.dead_letters.values()), force=True)
        progress.close()
        for w in source.take_warnings() + times.take(final=True):  # checks that wait for the end of a short file
            say(w)
        ended = source.exhausted or (config.run.max_events is not None and seen >= config.run.max_events)
        stopped_by = None if ended else "output_error" if outputs.errors else signals.received or "stop"
        if source.error:  # exhausted, yet not read to its end (a gzip stream cut short): failure() makes it exit 1
            stopped_by = "source_error"
    names = step.stats.class_names()  # as the report's counts name them: 1 and "1" stay two classes
    report = {"source": config.source.kind, "path": src_cfg.path, "model": type(learner).__name__,
              "classes": [names[c] for c in learner.classes_], "complete": stopped_by is None,
              **step.stats.report(), "warnings": warnings + _left_out(left_out[0]), "dead_letter_examples": examples}
    if stopped_by:  # a partial run must not read as a whole run of a shorter stream
        report.update(stopped_by=stopped_by, records_read=seen)
    if outputs.errors:
        report["output_errors"] = dict(outputs.errors)
    if source.error:
        report["source_error"] = source.error
    write_report(config.run.report, report, report_mode)
    return report


class _Outputs:
    """The run's JSONL outputs (``run.predictions``, ``run.dead_letters``), each known by its key.

    A write that fails (a full disk, which :func:`unwritable` cannot see up front) is kept in
    :attr:`errors` (key -> message naming the file), not raised: the run stops there, its output
    being cut short, and still writes its report and prints its summary; the CLI then exits 1. A pipe
    whose reader left (``--predictions /dev/stdout | head``) is not the disk's error: its BrokenPipeError
    goes on, and the CLI ends there with exit 141, as without ``--quiet``.
    """

    def __init__(self, run: RunConfig, warn):
        self.errors: dict[str, str] = {}
        self._warn = warn  # what a sink mends or cannot do (an unfinished last line cut before appending)
        self.sinks: dict[str, PredictionSink | DeadLetterSink] = {}
        self.paths = {"run.dead_letters": run.dead_letters, "run.predictions": run.predictions}
        for key, kind in (("run.dead_letters", JsonlDeadLetterSink), ("run.predictions", JsonlPredictionSink)):
            if self.paths[key]:  # a new run starts its output files anew unless told to append
                self._do(key, lambda: self._open(key, kind, run.append))

    def _open(self, key: str, kind, append: bool) -> None:
        self.sinks[key] = kind(self.paths[key], append, warn=self._warn)

    def write(self, name: str, items) -> None:
        sink = self.sinks.get(f"run.{name}")
        if sink is not None and items:
            self._do(f"run.{name}", lambda: sink.write(items))

    def flush(self) -> None:
        for key, sink in self.sinks.items():
            self._do(key, sink.flush)

    def _do(self, key: str, action) -> None:
        if key in self.errors:  # one error a file: its later writes would fail the same way
            return
        try:
            action()
        except BrokenPipeError:
            raise
        except OSError as e:
            self.errors[key] = cannot_write(key, self.paths[key], e)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        broken = None
        for key, sink in self.sinks.items():  # each one closed, whatever the others do
            try:
                sink.close()
            except BrokenPipeError as e:
                broken = e
            except OSError as e:
                self.errors.setdefault(key, cannot_write(key, self.paths[key], e))
        if broken is not None and exc[0] is None:
            raise broken


def check_outputs(run: RunConfig, source_path: str = "", config_path: str | None = None) -> None:
    """Raise :class:`ConfigError`, naming the key, for an output file (``run.predictions``,
    ``run.dead_letters``, ``run.report``) that is the source file (a sink opened for writing
    would empty it), the config file ``config_path`` (the command line's ``--config``), the same
    file as another output, a directory, not writable, or ``-`` (a file of that name, not standard
    output: ``/dev/stdout`` is); and for a path (the source's too) with a NUL character, which no
    file name holds (``os.stat`` raises ValueError for it, not OSError: it was a traceback).

    >>> check_outputs(RunConfig(predictions="runs/p.jsonl", dead_letters="runs/p.jsonl"))
    Traceback (most recent call last):
    ...
    stream_cl.config.ConfigError: run.dead_letters: 'runs/p.jsonl' is also run.predictions; give each output its own file
    """
    check_path("source.path", source_path)
    source = _file_identity(source_path) if source_path else None
    config_file = _file_identity(config_path) if config_path else None
    seen: dict = {}
    for name in _OUTPUTS:
        path, key = getattr(run, name), f"run.{name}"
        if not path:
            continue
        check_path(key, path)
        if path == "-":  # (review r142: a file named "-" appeared in the working directory)
            raise ConfigError(f"{key}: '-' would be a file of that name, not standard output; write /dev/stdout "
                              "for standard output, or a file path")
        ident = _file_identity(path)
        if ident == source:
            raise ConfigError(f"{key}: {path!r} is the source file (source.path); writing it would destroy the input: "
                              "choose another path")
        if ident == config_file:  # (review r142: --report cfg.toml replaced the config with the report)
            raise ConfigError(f"{key}: {path!r} is the config file (--config); writing it would destroy the config: "
                              "choose another path")
        if ident in seen:
            raise ConfigError(f"{key}: {path!r} is also {seen[ident]}; give each output its own file")
        seen[ident] = key
        problem = unwritable(path)
        if problem:
            raise ConfigError(f"{key}: cannot write {path!r} ({problem}); choose a writable file path")


def _file_identity(path: str) -> tuple:
    """What names one file: its device and inode when it exists (links included), else its resolved path."""
    try:
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.realpath(path))


class _stop_on_signals:
    """SIGINT/SIGTERM set the stop flag (main thread only); the loop ends cleanly."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.saved = {}
        self.received = ""  # the first signal's name ("SIGINT"), for the report's stopped_by

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame=None) -> None:
        self.received = self.received or signal.Signals(signum).name
        self.stop.set()

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def _to_stderr(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


def failure(report: dict, dead_letters: bool = True) -> str | None:
    """Why a finished run is a failure (the CLI then exits 1), or None: its source could not be
    read to its end (a gzip stream cut short: the rest of the data is lost to the run, whatever it
    learned), no event could be used, or none had a label (nothing was learned). ``dead_letters``:
    whether the run wrote its dead letters to a file (``run.dead_letters``), which the message
    then points to.

    >>> print(failure({"path": "e.jsonl.gz", "source_error": "...", "dead_letters_total": 1, "events": 9,
    ...                "labelled": 9}))  # doctest: +ELLIPSIS
    the source e.jsonl.gz was not read to its end (the warning above and the report's source_error say where ...
    """
    if report.get("source_error"):
        return (f"the source {report.get('path', '')} was not read to its end (the warning above and the report's "
                "source_error say where and why): the run covers only the records before that point; mend the file as "
                "the warning says and run it again")
    dead, events = report["dead_letters_total"], report["events"]
    if events == 0 and not dead:
        return "the source held no events"
    if events and report["labelled"]:
        return None
    reason, n = max(report["dead_letters"].items(), key=lambda kv: kv[1]) if dead else (None, 0)
    detail = report.get("dead_letter_examples", {}).get(reason)  # the first one's (older reports have none)
    if reason == "rejected_by_model":  # decoded fine, refused by the learner: a [model] setting, not the mapping
        first = f" (the first: {detail})" if detail else ""
        head = (f"no event could be used: all {dead:,} records were dead letters" if events == 0 else
                f"nothing was learned: {events:,} events predicted only, {dead:,} dead letters")
        return (head + f" (most: {reason}, {n:,}); the model refused them{first}; check [model] (e.g. gamma, "
                "max_columns, seed)" + (" and the dead-letter file" if dead_letters else ""))
    if events == 0:
        where = ("see the dead-letter file for each one's reason" if dead_letters else
                 f"the first: {detail}" if detail else "write them to a file with --dead-letters to see each one's reason")
        return (f"no event could be used: all {dead:,} records were dead letters (most: {reason}, {n:,}); "
                f"{where}, and check [mapping]")
    return (f"no event had a label, so nothing was learned ({events:,} events predicted only); "
            "check mapping.label (--label)")


def summary(report: dict) -> str:
    """A few human lines for the end of a run."""
    acc = report["accuracy"]
    stop = stopped_line(report)
    lines = ([stop] if stop else []) + [
        f"events: {report['events']:,} ({report['labelled']:,} labelled, {report['predict_only']:,} predict-only)",
        f"prequential accuracy: {acc:.4f}" if acc is not None else "prequential accuracy: - (no labels)",
        f"throughput: {report['events_per_s']:,.0f} events/s end to end, {report['model_events_per_s'] or 0:,.0f} in the model",
        f"classes: {', '.join(report['classes'])}",
    ]
    if report["dead_letters_total"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(report["dead_letters"].items()))
        lines.append(f"dead letters: {report['dead_letters_total']} ({reasons})")
    windows = report["windowed_accuracy"]
    if windows:
        step = max(1, math.ceil(len(windows) / 12))
        trail = " ".join(f"{w['accuracy']:.2f}" for w in windows[::step])
        every = f" (every {_ordinal(step)} of {len(windows)} windows)" if step > 1 else ""
        lines.append(f"accuracy per {report['window']:,} labelled events{every}: {trail}")
    return "\n".join(lines)


def stopped_line(report: dict, summary: bool = True) -> str | None:
    """What ended a run before the end of its source (report ``complete`` false), or None: a run stopped
    part-way must not read as a whole run of a shorter stream. ``summary`` false: the line stands alone
    (``--quiet`` prints no summary), so it names the report only.

    >>> stopped_line({"complete": False, "stopped_by": "SIGINT", "records_read": 2048})
    'stopped by SIGINT before the end of the source: the report and this summary cover the 2,048 records read'
    >>> stopped_line({"complete": False, "stopped_by": "SIGTERM", "records_read": 10}, summary=False)
    'stopped by SIGTERM before the end of the source: the report covers the 10 records read'
    """
    if report.get("complete", True):  # (a report of older code has no such key: it ran to its end)
        return None
    by = report.get("stopped_by")
    what = ("stopped by a failed output write (the error follows)" if by == "output_error" else
            "stopped by a source file that could not be read to its end (the error follows)" if by == "source_error" else
            f"stopped by {by}" if by and by != "stop" else "stopped (a signal while the run started, or a stop request)")
    covers = "the report and this summary cover" if summary else "the report covers"
    return f"{what} before the end of the source: {covers} the {report.get('records_read', 0):,} records read"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
