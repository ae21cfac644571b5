"""How a Kafka daemon's run ends: its exit codes, and the ``failed`` lines that close a run that failed.

Each ``*_failed`` function (and :func:`crashed`) logs the run's closing ``failed`` line
(docs/observability.md) and returns the exit code: 2 for a setting to change (a restart meets it
again), 1 for what a restart may get past. :class:`connectors.daemon.Daemon` ends a loop that failed
with them, :func:`connectors.daemon_run.run_daemon` a start that built no daemon, and
``python -m connectors.daemon`` (:mod:`connectors.daemon_cli`) a config it cannot load.
"""

from __future__ import annotations

import logging

from stream_cl.checkpoint_format import CheckpointError
from stream_cl.config import ConfigError

from .logs import log_event

log = logging.getLogger("stream_cl.daemon")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
EXIT_RESET = -1  # internal: fenced or partitions lost; run_daemon builds the daemon again
EXIT_BROKER_AWAY = -2  # internal: a rebuild found no broker (connectors.daemon_run); run_daemon builds it again


def config_failed(error: ConfigError | CheckpointError) -> int:
    """Log a configuration error as the one ``failed`` line (docs/observability.md); returns exit code 2.

    Restarting will not fix it (a supervisor should not: systemd's RestartPreventExitStatus=2).
    """
    kind = "checkpoint" if isinstance(error, CheckpointError) else "config"
    log_event(log, "failed", level=logging.ERROR, detail=f"{kind} error: {error}", exit_code=EXIT_CONFIG)
    return EXIT_CONFIG


def not_authorised_failed(detail: str) -> int:
    """Log an authorisation error (:func:`~connectors.authorisation.not_authorised`) as the one ``failed`` line;
    returns exit code 1: the broker's ACLs may change, and a restart then goes on (no traceback: nothing here
    is a bug)."""
    log_event(log, "failed", level=logging.ERROR, detail=detail, exit_code=EXIT_FAILED)
    return EXIT_FAILED


def checkpoint_failed(error: CheckpointError) -> int:
    """Log a checkpoint not written after its commit went through (a full disk, say) as the ``failed`` line;
    returns exit code 1, not 2 (a configuration error): the disk may have room again, so a supervisor
    restarts it."""
    log_event(log, "failed", level=logging.ERROR, exit_code=EXIT_FAILED,
              detail=f"checkpoint not written: {error}; the commit before it went through, and a restart "
                     "resumes from the last checkpoint written (re-learning, silently, up to that commit)")
    return EXIT_FAILED


def offsets_unreadable_failed(error: Exception) -> int:
    """Log committed offsets the group coordinator never gave (:class:`~connectors.kafka_assignment.
    CommittedOffsetsUnreadable`, whose text names the remedy) as the ``failed`` line; returns exit code 1:
    once the transaction holding them ends, a restart resumes from the last commit."""
    log_event(log, "failed", level=logging.ERROR, exit_code=EXIT_FAILED,
              detail=f"committed offsets not readable: {error}; nothing after the last commit is visible, and a "
                     "restart resumes from it")
    return EXIT_FAILED


def crashed() -> int:
    """Log an unexpected error, called in the ``except`` clause that caught it: its traceback is for us;
    returns exit code 1."""
    log.exception("daemon failed; nothing after the last commit is visible, a restart resumes from it")
    return EXIT_FAILED
