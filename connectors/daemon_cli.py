"""``python -m connectors.daemon``: the Kafka daemon's own command line (docs/daemon.md).

It reads the config file (a Kafka source only: :func:`kafka_source`), checks it
(:mod:`connectors.daemon_config`), sets up logging and runs the daemon
(:func:`connectors.daemon_run.run_daemon`); :func:`main` returns the exit code. ``connectors/daemon.py``
runs it as ``__main__``, once it keeps the signals that come during the imports.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping

from stream_cl.config import ConfigError, load_config_dict, read_toml

from . import check_environment
from .daemon_config import check_file_outputs, log_config_warnings
from .daemon_exits import EXIT_OK, config_failed
from .daemon_run import run_daemon
from .logs import log_event, setup_logging

__all__ = ["kafka_source", "main"]

log = logging.getLogger("stream_cl.daemon")


def kafka_source(written: Mapping) -> Mapping:
    """The config's tables as given, read by the daemon's own entry point (:func:`main`), which runs only
    the Kafka daemon: ``[source] kind`` is ``"kafka"`` where the file sets none, and another kind is
    refused (a ConfigError, exit 2), as a file that ``stream-cl run`` would read as another source must not
    silently start a daemon."""
    source = written.get("source", {})
    if not isinstance(source, Mapping):
        return written  # (the config's own error names it)
    kind = source.get("kind", "kafka")
    if kind != "kafka":
        raise ConfigError(f'source.kind: python -m connectors.daemon runs the Kafka daemon, and the file sets kind = '
                          f'{kind!r}; run that source with stream-cl run --config <file>, or set kind = "kafka" for '
                          "the daemon")
    return {**written, "source": {**source, "kind": "kafka"}}


def main(argv: list[str] | None = None) -> int:
    """``python -m connectors.daemon``: the exit code (docs/daemon.md)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before run_daemon's handlers took over: nothing is built, nothing lost
        log_event(log, "stop_requested", reason="SIGINT", detail="before the daemon started: nothing to commit")
        return EXIT_OK


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.daemon", description="Run the stream-cl Kafka daemon.")
    parser.add_argument("--config", required=True, help="TOML config with [kafka], [checkpoint], [labels], [model]...")
    levels = ["DEBUG", "INFO", "WARNING", "ERROR"]
    parser.add_argument("--log-level", default="INFO", choices=levels)
    parser.add_argument("--kafka-log-level", default="WARNING", choices=levels, help="of the kafka-python client")
    parser.add_argument("--log-format", default="auto", choices=["auto", "json", "text"],
                        help="JSON lines, plain text, or auto: text on a terminal, JSON otherwise")
    args = parser.parse_args(argv)
    setup_logging(args.log_level, fmt=args.log_format, hold_until_started=True)
    logging.getLogger("kafka").setLevel(args.kafka_log_level)
    try:
        check_environment()
        written = kafka_source(read_toml(args.config))  # as given: the keys set, not defaults (unread_keys)
        config = load_config_dict(written)
        check_file_outputs(config)
    except ConfigError as e:
        return config_failed(e)
    log_config_warnings(config, written)
    return run_daemon(config)
