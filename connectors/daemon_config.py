"""A config checked for the Kafka daemon by its two entry points (``stream-cl run`` with a Kafka
source, ``python -m connectors.daemon``) before the run starts: a file run's output files refused
(:func:`check_file_outputs`), and the keys its model kind does not read logged
(:func:`log_config_warnings`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from stream_cl.config import Config, ConfigError, RunConfig, unread_keys

from .logs import log_event

__all__ = ["FILE_RUN_OUTPUTS", "check_file_outputs", "file_output_error", "log_config_warnings"]

log = logging.getLogger("stream_cl.daemon")


# a file run's output files ([run] keys): the daemon writes none of them; what it has instead
FILE_RUN_OUTPUTS = {
    "predictions": ("predictions file", "set kafka.predictions_topic to publish them to a topic"),
    "report": ("run report", "set kafka.status_file for a JSON snapshot of its counters (and scrape /metrics)"),
    "dead_letters": ("dead-letter file", "set kafka.dead_letter_topic to send them to a topic (without one they are "
                                         "counted and logged)"),
}


def file_output_error(name: str, key: str) -> ConfigError:
    """The error for a file run's output ``run.<key>`` given to the daemon as ``name`` (a key or a CLI flag)."""
    what, instead = FILE_RUN_OUTPUTS[key]
    return ConfigError(f"{name}: the Kafka daemon writes no {what}; {instead}, and remove {name}")


def check_file_outputs(config: Config) -> None:
    """Refuse a file run's output files in a daemon's config: accepted, they would silently write nothing.

    A key counts when it differs from its default: ``run.dead_letters``' default is the
    file run's path, so setting that very path explicitly cannot be told apart (and passes).
    """
    default = RunConfig()
    for key in FILE_RUN_OUTPUTS:
        value = getattr(config.run, key)
        if value and value != getattr(default, key):
            raise file_output_error(f"run.{key}", key)


def log_config_warnings(config: Config, written: Mapping) -> None:
    """Log, once at start, each key that the config's tables as given (``written``,
    :func:`~stream_cl.config.read_toml`) set and ``model.kind`` does not read: one
    ``config_warning`` line each, the file run's warning (:func:`~stream_cl.config.unread_keys`).
    The entry points call it (``stream-cl run``, :func:`connectors.daemon_cli.main`): a :class:`Config` alone cannot
    tell a key written at its default from one left out."""
    for note in unread_keys(config, written):
        log_event(log, "config_warning", level=logging.WARNING, detail=note)
