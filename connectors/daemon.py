"""The Kafka daemon: consume, predict, learn, publish; exactly once, crashes included.

One loop, composed of small parts::

    source (KafkaSource) -> Prequential step -> publisher (predictions, dead letters)
                          \\-> PendingLabels (unlabelled events wait for a delayed label)
    every kafka.commit_interval_ms:  CommitCoordinator -> one Kafka transaction:
        the interval's predictions and dead letters + the offsets that produced them
    after a commit, when due:        CheckpointState -> the learner and the label store

The transaction is the exactly-once argument: a ``read_committed`` reader sees an
interval's predictions exactly when the offsets that produced them are committed, so a
crash (the open transaction is aborted) or a fenced member (its transaction is refused)
publishes nothing twice. The learned state is checkpointed after commits: a restart
restores it and re-learns, silently, the records between its offsets and the committed
ones (:mod:`connectors.state`), so nothing is learned twice or lost either.

SIGTERM / SIGINT (or ``stop_event``) stop the loop after the batch in flight; a final
commit and checkpoint run and :func:`run_daemon` returns 0. A second signal, or a
shutdown longer than ``kafka.shutdown_timeout_s``, ends the process at once (exit 1);
nothing uncommitted is ever visible. A member that is fenced (another producer took its
transactional id, or the group moved on while it was frozen) or loses its partitions
drops everything since its last commit and starts over in the same process: restore,
rejoin, re-learn.

Observability (docs/observability.md): ``[metrics]`` serves ``/metrics``, ``/healthz``,
``/readyz`` and ``/model`` (:mod:`connectors.http`, :mod:`connectors.prometheus`); the loop
only updates plain counters and per-batch histograms on :class:`DaemonMetrics`, read at
scrape time. Lifecycle events (start, restore, assignment, revocation, commit,
checkpoint, drift_alarm, fenced, stop_requested, shutdown) are logged one line each
with :func:`connectors.logs.log_event`; nothing is logged per event.

Run it as ``python -m connectors.daemon --config daemon.toml`` (see docs/daemon.md).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial

from .early_signals import EarlySignals, exit_settled

# `python -m connectors.daemon` spends a second or more in the imports below (numpy, pandas, kafka-python):
# a SIGTERM or Ctrl-C meanwhile is kept here, and run_daemon's handlers take it over (a clean stop, exit 0,
# as docs/daemon.md says), instead of SIGTERM's default death by signal or a KeyboardInterrupt traceback
_EARLY = EarlySignals()


def keep_early_signals(kept: list[int] | tuple[int, ...] = ()) -> None:
    """Keep SIGTERM and SIGINT from now until :func:`run_daemon` installs its handlers, which take them
    over: a stop asked for during the start is a clean one (exit 0), not a death by signal or, as a
    container's PID 1, a signal dropped. ``kept``: the signals an entry point kept itself before it
    imported this module (``stream-cl run``: :func:`connectors.cli.main`); read after this module's
    handlers are in, so one that comes meanwhile is kept by one or the other, never lost."""
    _EARLY.install()
    for signum in kept:
        _EARLY.keep(signum)


if __name__ == "__main__":
    keep_early_signals()

from stream_cl.checkpoint import CheckpointError  # noqa: E402
from stream_cl.config import Config, ConfigError, RunConfig, load_config_dict, read_toml, unread_keys  # noqa: E402
from stream_cl.events import PartitionedSource, TransactionalPublisher  # noqa: E402
from stream_cl.mapping_check import MappingChecks  # noqa: E402
from stream_cl.pending_stores import PendingStores  # noqa: E402
from stream_cl.prequential import DAEMON_MAX_POINTS, Prequential  # noqa: E402

from . import check_environment  # noqa: E402
from .authorisation import not_authorised  # noqa: E402
from .commit import CommitCoordinator, CommitPolicy  # noqa: E402
from .daemon_build import BrokerContact, RunChangelog, build_daemon  # noqa: E402
from .logs import log_event, named, setup_logging, startup_done  # noqa: E402
from .prometheus import TaskAccuracy  # noqa: E402
from .router import Router  # noqa: E402
from .state import CheckpointPolicy, CheckpointState  # noqa: E402
from .status import DaemonMetrics, StatusReporter  # noqa: E402
from .transaction import Fenced, TransactionAborted, dead_letter_refused  # noqa: E402

__all__ = ["Daemon", "DaemonMetrics", "CheckpointPolicy", "check_file_outputs", "file_output_error", "kafka_source",
           "keep_early_signals", "log_config_warnings", "main", "run_daemon"]

log = logging.getLogger("stream_cl.daemon")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
EXIT_RESET = -1  # internal: fenced or partitions lost; run_daemon builds the daemon again
EXIT_BROKER_AWAY = -2  # internal: a rebuild found no broker (_broker_away); run_daemon builds it again
STARTUP_HOLD_S = 60.0  # kafka-python's start-up lines are held back until partitions come, at most this long
# a daemon rebuilt after a start over that must start over again without having committed anything (the
# same failure again, likely) is rebuilt after a wait: 1 s, doubling up to 60 s, so a member that cannot
# commit does not hammer the broker with a new producer, a rejoin and a re-learn every second or two
RESET_DELAY_S = (1.0, 60.0)
# rebuilds that find no broker wait less (from 1 s, doubling up to this): each waits up to
# kafka.bootstrap_timeout_ms for one anyway, and a member back up to 60 s after its broker came back
# lengthened every outage (review r118 F7)
BROKER_AWAY_DELAY_S = 5.0
# a daemon rebuilt in the same process (a start over) restores its checkpoint and catches up with the
# changelog as a first start does; its heartbeat goes on meanwhile for up to this long, the start-up
# budget that deploy/k8s gives the first start (its startupProbe: 30 x 10 s), then /healthz says stalled
REBUILD_ALIVE_S = 300.0
REBUILD_BEAT_S = 1.0
DAEMON_WINDOW = 1000  # labelled events per windowed-accuracy point when run.window is not set


class Daemon:
    """The run loop (see the module docstring); build it with :meth:`from_config`."""

    def __init__(self, config: Config, learner, source_factory, publisher: TransactionalPublisher, pending: PendingStores,
                 stop_event: threading.Event, state_factory=CheckpointState, metrics: DaemonMetrics | None = None,
                 dead_letter_topic_bytes: int | None = None, own_changelog: RunChangelog | None = None):
        """``dead_letter_topic_bytes``: the dead-letter topic's own max.message.bytes, if known (:class:`Router`);
        ``own_changelog``: a changelog made for this daemon alone, closed when it ends (a run's outlives it)."""
        self.config = config
        self.learner = learner
        # a never-ending stream: a fixed window keeps "recent accuracy" recent (the file runner's default grows)
        window = config.run.window or DAEMON_WINDOW
        self.step = Prequential(learner, window=window, max_points=DAEMON_MAX_POINTS,
                                max_classes=config.model.max_classes or None)
        self.publisher = publisher
        self.pending = pending
        self.stop = stop_event
        if metrics is None:  # a daemon started over after a reset keeps counting where it was
            metrics = DaemonMetrics()
            metrics.tasks = TaskAccuracy(window)
        self.metrics = metrics
        self.status = StatusReporter(self.metrics, config.kafka.status_file)
        self.state = state_factory(config, learner, pending, self.metrics, self.step.stats)
        self.reset_reason = ""  # set when this member must drop its state and start over
        self._failed = False
        # a setting the data outgrew, met in a rebalance callback (a changelog record over its limit at a
        # revocation): the loop raises it, so the member stops (exit 2) instead of starting over
        self._fatal: ConfigError | CheckpointError | None = None  # met in a callback; the loop raises it
        self._started: float | None = None  # while start-up lasts: when the loop began
        self._assigned_seen: frozenset = frozenset()
        self._seq_seen = self.metrics.checkpoint_seq  # the checkpoint the status file last showed
        # no fold before the first assignment: the changelog, read before the join, holds the parts of the
        # partitions this member is about to take, and folded first they would replace the newer ones its
        # checkpoint restored (re-learning the difference, and losing what retention deleted of it)
        self._joined = False
        # the changelog this daemon made for itself (from_config without a run's): closed when it ends
        self._own_changelog = own_changelog
        self.state.restore()
        # a learner with a part per source partition (contribution/merge) gets each partition's events apart
        self.router = Router(config, self.step, learner, pending, publisher, self.metrics, self.state,
                             partitioned=hasattr(learner, "contribution") and hasattr(self.state, "fold"),
                             dead_letter_topic_bytes=dead_letter_topic_bytes)
        catch_up = getattr(self.state, "catch_up", None)
        if catch_up is not None:
            # the changelog read here, before the group join: the assignment callback, which the whole group
            # waits for (within the rebalance timeout), then reads only what came since
            catch_up()
        self.source: PartitionedSource = source_factory(self)  # subscribes; partitions come with the first poll
        self.commits = CommitCoordinator(self.source, publisher, self.state, self.metrics,
                                         CommitPolicy(config.kafka.commit_interval_ms))
        self.status.refresh(None, pending, self.state)  # the restored label counts, before the first poll
        self.status.keep_report(self.step.stats.report())  # and the run's report, for a first-poll revocation

    @classmethod
    def from_config(cls, config: Config, stop_event: threading.Event | None = None,
                    metrics: DaemonMetrics | None = None, changelog: RunChangelog | None = None,
                    checks: MappingChecks | None = None, contact: BrokerContact | None = None) -> "Daemon":
        """The daemon ``config`` describes, its parts made in the order a refused start needs
        (:func:`connectors.daemon_build.build_daemon`). ``changelog``, ``checks`` (the mapping checks) and
        ``contact`` (the first contact with a broker): the run's (:func:`run_daemon` hands the same ones to
        every daemon it builds); without them the daemon makes its own."""
        return build_daemon(cls, config, stop_event, metrics, changelog, checks, contact)

    # -- rebalance hooks (a worker thread; the loop is blocked in poll) ---------------------
    def on_revoke(self, partitions, lost: bool) -> None:
        """:class:`RebalanceHooks`: commit what was processed (``revoking`` meanwhile), or drop it when ``lost``."""
        if self._failed or self.reset_reason:  # state past the last commit: never commit it
            return
        log_event(log, "revocation", partitions=_tp_keys(partitions), lost=lost)
        if lost:  # the group moved on: what this member did since its last commit must not count
            self.reset_reason = "partitions lost"
            return
        try:
            with _revoking(self):  # the positions the loop holds (no lookups: the loop's consumer is inside poll)
                self.commits.commit("revoke", partitions=set(self.source.assigned))
        except (ConfigError, CheckpointError) as e:  # starting over would meet it again: stop
            self._fatal = e
            return
        except Exception as e:  # noqa: BLE001 -- not committed: the state is ahead of the group's offsets
            self.reset_reason = f"commit at revocation failed: {type(e).__name__}: {e}"
            return
        drop = getattr(self.state, "drop", None)
        if drop is not None and self.metrics.state != "stopping":  # (a stopping member's last status shows what it held)
            drop(partitions)  # their state went into the changelog with that commit

    def on_wait(self) -> None:
        """:class:`RebalanceHooks`: a rebalance waits on the broker; beat /healthz."""
        self.metrics.beat()  # the loop is blocked in a rebalance that waits for the broker, not stalled

    def on_assign(self, partitions) -> Mapping | None:
        """:class:`RebalanceHooks`: where the state of each given partition ends; None if it cannot be taken."""
        self._joined = True  # (every member gets the callback, with no partitions too: eager assignment)
        try:
            saved = self.state.resume_at(partitions)
        except ConfigError as e:  # (a changelog another group wrote, or deleted) starting over meets it again
            self._fatal = e  # the loop raises it before it processes anything: exit 2
            return None  # the source takes nothing up (no seeks, no log-start warnings)
        log_event(log, "assignment", partitions=_tp_keys(partitions),
                  from_checkpoint={f"{tp.topic}/{tp.partition}": o for tp, o in sorted(saved.items())})
        return saved

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> int:
        """The loop: poll, learn, publish and commit until asked to stop or failed; the exit code."""
        m, kcfg = self.metrics, self.config.kafka
        m.beat()
        m.state = "running"
        self._started = time.monotonic()
        log_event(log, "start", group=kcfg.group_id, topics=kcfg.topics or kcfg.topic_pattern,
                  labels_topic=kcfg.labels_topic or None, model=type(self.learner).__name__,
                  device=getattr(self.learner, "device_", getattr(self.learner, "device", None)),  # "auto" resolved
                  checkpoint_seq=m.checkpoint_seq, metrics_port=m.http_port or None, pid=os.getpid())
        try:
            while not self.stop.is_set() and not self.reset_reason:
                self.run_once()
                if self._fatal is not None:
                    raise self._fatal
            if self.reset_reason:
                return self._reset()
            self._say_mapping_warnings(final=True)  # a topic shorter than the checks' sample: judged now
            m.state = "stopping"
            self.commits.commit("shutdown")  # and a checkpoint of the state it covers
            self.source.close()  # its revoke callback finds nothing new to commit
            self.publisher.close()
            self._close_changelog()
            m.state = "stopped"
            self._write_status(force=True)
            log_event(log, "shutdown", records=m.records, events={k: v for k, v in m.events.items() if v},
                      checkpoint_seq=m.checkpoint_seq, exit_code=EXIT_OK)
            return EXIT_OK
        except TransactionAborted as e:  # fenced, or a commit that failed: nothing since the last commit counts
            if dead_letter_refused(e):  # the record is re-read at every start over: a setting to change (exit 2)
                return self._stop_failed(partial(_config_failed, ConfigError(str(e))))
            if (detail := not_authorised(e, self.config)) is not None:  # until an ACL changes, every start over fails
                return self._stop_failed(partial(_not_authorised_failed, detail))
            kind = "fenced" if isinstance(e, Fenced) else "transaction aborted"
            self.reset_reason = str(e) if str(e).startswith(kind) else f"{kind}: {e}"  # (once: "fenced: fenced: ..." was said)
            return self._reset()
        except ConfigError as e:  # a setting the data outgrew (changelog.max_message_bytes): starting over meets it again
            return self._stop_failed(partial(_config_failed, e))
        except CheckpointError as e:  # written after its commit, which went through: a full disk, say
            return self._stop_failed(partial(_checkpoint_failed, e))
        except Exception as e:
            if (detail := not_authorised(e, self.config)) is not None:  # a topic or group an ACL denies: no traceback
                return self._stop_failed(partial(_not_authorised_failed, detail))
            from .kafka_assignment import CommittedOffsetsUnreadable

            if isinstance(e, CommittedOffsetsUnreadable):  # its text names the remedy: no traceback (review r118 F9)
                return self._stop_failed(partial(_offsets_unreadable_failed, e))
            return self._stop_failed(_crashed)  # (called in this except clause: the traceback is logged)

    def _say_mapping_warnings(self, final: bool = False) -> None:
        """The source's mapping checks (:meth:`KafkaSource.take_warnings`), each a ``mapping_warning`` line;
        ``final``: the daemon stops (cleanly or failed), so a topic shorter than their sample is judged now.
        The checks only advise: one that fails is logged, and the daemon, or its stop, goes on."""
        try:
            _log_mapping_warnings(self.source.take_warnings(final=final))
        except Exception:  # noqa: BLE001 -- a fault of ours in the checks must not stop the loop or fail a clean stop
            log.warning("mapping checks failed; the daemon goes on", exc_info=True)

    def _stop_failed(self, failed: Callable[[], int]) -> int:
        """End a run that failed: nothing past the last commit is committed or published. ``failed`` logs
        the run's ``failed`` line and returns the exit code; a short topic's mapping warnings come before
        it (the data may be why it failed), not after the line that closes the run."""
        self._say_mapping_warnings(final=True)
        code = failed()
        self._failed = True
        self.metrics.state = "failed"
        self._write_status(force=True)
        self._abort()
        return code

    def run_once(self) -> None:
        """Poll once, process what came, commit when due."""
        max_records = self.config.kafka.max_poll_records
        limit = self.config.run.max_events
        if limit is not None:
            max_records = max(1, min(max_records, limit - self.metrics.records))
        self.publisher.check()  # a dead publisher stops the daemon now, not at the next commit (a quiet topic)
        self.commits.settle(wait=False)  # the interval's transaction, if the publisher has committed it
        batch = self.source.poll(max_records)
        if self._fatal is not None:  # met in this poll's rebalance callbacks: nothing of it is processed
            return
        if self.source.assigned:  # consuming: restored label stores age from now on, not while the group was joined
            self.pending.thaw()
        if self._started is not None and (self.source.assigned or time.monotonic() - self._started > STARTUP_HOLD_S):
            self._started = None
            startup_done()  # from now on kafka-python's warnings (a lost broker) are shown
        self._say_mapping_warnings()
        if self.reset_reason:
            return
        if batch.items:
            self.process(batch, polled_at=time.perf_counter())
        else:
            self.router.expire()  # ages move on while the topics are quiet
        if not batch.items and self.config.kafka.stop_at_end and self.source.at_end():
            log_event(log, "stop_requested", reason="stop_at_end", detail="every assigned partition is consumed to its end")
            self.stop.set()
        if limit is not None and self.metrics.records >= limit:
            log_event(log, "stop_requested", reason="max_events", max_events=limit)
            self.stop.set()
        if self.commits.policy.due() or self.state.records_due():
            self.commits.commit_when_free()  # or at a later turn, once the one under way is committed
        fold = getattr(self.state, "fold", None)
        if fold is not None and self._joined:
            fold()  # the other members' latest partitions into the model this member serves
        assigned, seq = frozenset(self.source.assigned), self.metrics.checkpoint_seq
        # at once after an assignment or a checkpoint (docs/daemon.md), else about once a second
        self._write_status(force=assigned != self._assigned_seen or seq != self._seq_seen)
        self._assigned_seen, self._seq_seen = assigned, seq
        self.metrics.beat()

    def process(self, batch, polled_at: float | None = None) -> None:
        """Predict and learn the events of one poll, join its labels, route its outputs (:class:`Router`)."""
        self.commits.policy.touch()
        self.router.process(batch, polled_at)

    # -- status and shutdown ---------------------------------------------------------------
    def _write_status(self, force: bool = False) -> None:
        self.status.write(getattr(self, "source", None), self.pending, self.step.stats.report(), force, self.state)

    def _reset(self) -> int:
        """Fenced, or partitions lost: drop everything since the last commit; run_daemon starts over."""
        log_event(log, "fenced", level=logging.WARNING, reason=self.reset_reason,
                  detail="nothing since the last commit counts: dropping the state, restoring it and rejoining")
        self.metrics.state = "rejoining"
        self._write_status(force=True)
        self._abort()
        return EXIT_RESET

    def _abort(self) -> None:
        """After a failure: release clients without committing anything."""
        try:
            self.source.abort()
        except Exception:  # noqa: BLE001 -- best effort: the process may be going away
            pass
        self.publisher.abort()  # the publisher ends; its open transaction is aborted
        self._close_changelog()

    def _close_changelog(self) -> None:
        """Close the changelog this daemon made for itself; a run's (:func:`run_daemon`) outlives its daemons."""
        own, self._own_changelog = self._own_changelog, None
        if own is not None:
            own.close()



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


def _config_failed(error: ConfigError | CheckpointError) -> int:
    """Log a configuration error as the one ``failed`` line (docs/observability.md); returns exit code 2.

    Restarting will not fix it (a supervisor should not: systemd's RestartPreventExitStatus=2).
    """
    kind = "checkpoint" if isinstance(error, CheckpointError) else "config"
    log_event(log, "failed", level=logging.ERROR, detail=f"{kind} error: {error}", exit_code=EXIT_CONFIG)
    return EXIT_CONFIG


def _not_authorised_failed(detail: str) -> int:
    """Log an authorisation error (:func:`not_authorised`) as the one ``failed`` line; returns exit code 1:
    the broker's ACLs may change, and a restart then goes on (no traceback: nothing here is a bug)."""
    log_event(log, "failed", level=logging.ERROR, detail=detail, exit_code=EXIT_FAILED)
    return EXIT_FAILED


def _checkpoint_failed(error: CheckpointError) -> int:
    """Log a checkpoint not written after its commit went through (a full disk, say) as the ``failed`` line;
    returns exit code 1, not 2 (a configuration error): the disk may have room again, so a supervisor
    restarts it."""
    log_event(log, "failed", level=logging.ERROR, exit_code=EXIT_FAILED,
              detail=f"checkpoint not written: {error}; the commit before it went through, and a restart "
                     "resumes from the last checkpoint written (re-learning, silently, up to that commit)")
    return EXIT_FAILED


@contextlib.contextmanager
def _revoking(daemon):
    """A running ``daemon`` is ``revoking`` while its revocation commits: /readyz says 503 and the status file
    says so while the whole group waits on that commit (review r118 F8, r120 F8-1); then ``running`` again. A
    commit that fails leaves it ``revoking`` until the loop starts over (``rejoining``): the member is about to
    drop its state, and was ready again meanwhile (review r122). A daemon in another state (stopping) keeps it."""
    m = daemon.metrics
    if m.state != "running":
        yield
        return
    m.state = "revoking"
    _say_state(daemon)
    yield
    if m.state == "revoking":
        m.state = "running"
        _say_state(daemon)


def _say_state(daemon) -> None:
    """Rewrite ``daemon``'s status file with the state a rebalance callback set: on another thread than the
    loop's, so without a refresh (:meth:`~connectors.status.StatusReporter.write_state`); best effort."""
    status = getattr(daemon, "status", None)
    if status is None:
        return
    try:
        status.write_state()
    except Exception:  # noqa: BLE001 -- the file only reports: the commit goes on
        log.debug("status file not rewritten", exc_info=True)


def _offsets_unreadable_failed(error: Exception) -> int:
    """Log committed offsets the group coordinator never gave (:class:`~connectors.kafka_assignment.
    CommittedOffsetsUnreadable`, whose text names the remedy) as the ``failed`` line; returns exit code 1:
    once the transaction holding them ends, a restart resumes from the last commit."""
    log_event(log, "failed", level=logging.ERROR, exit_code=EXIT_FAILED,
              detail=f"committed offsets not readable: {error}; nothing after the last commit is visible, and a "
                     "restart resumes from it")
    return EXIT_FAILED


def _crashed() -> int:
    """Log an unexpected error, called in the ``except`` clause that caught it: its traceback is for us;
    returns exit code 1."""
    log.exception("daemon failed; nothing after the last commit is visible, a restart resumes from it")
    return EXIT_FAILED


def _tp_keys(partitions) -> list[str]:
    return sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)


# -- entry points -----------------------------------------------------------------------------
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


def log_config_warnings(config: Config, written: Mapping) -> None:
    """Log, once at start, each key that the config's tables as given (``written``,
    :func:`~stream_cl.config.read_toml`) set and ``model.kind`` does not read: one
    ``config_warning`` line each, the file run's warning (:func:`~stream_cl.config.unread_keys`).
    The entry points call it (``stream-cl run``, :func:`main`): a :class:`Config` alone cannot
    tell a key written at its default from one left out."""
    for note in unread_keys(config, written):
        log_event(log, "config_warning", level=logging.WARNING, detail=note)


def run_daemon(config: Config, stop_event: threading.Event | None = None,
               on_ready: Callable[[Daemon], None] | None = None) -> int:
    """Run the Kafka daemon until stopped; returns the exit code (0 = clean stop).

    In the main thread, SIGTERM and SIGINT request a clean stop (a second one, or a
    stop slower than ``kafka.shutdown_timeout_s``, exits the process at once with 1).
    ``stop_event`` stops it from another thread. ``on_ready(daemon)`` is called once the
    daemon is built (checkpoint restored, consumer subscribed), before its loop starts:
    e.g. to serve ``daemon.metrics``.

    With ``[metrics] enabled`` (the default) the HTTP endpoints start first, so the probes
    answer (503) while the checkpoint is restored, and stop when this returns.
    """
    stop = stop_event or threading.Event()
    # before the warm-up (seconds): a signal during it, or while a daemon is built or rebuilt, is a clean
    # stop, never left to the default handlers (death by SIGTERM, a KeyboardInterrupt traceback)
    restore = _install_signal_handlers(stop, config.kafka.shutdown_timeout_s)
    try:
        return _serve_and_run(config, stop, on_ready)
    finally:
        restore()


def _serve_and_run(config: Config, stop: threading.Event, on_ready) -> int:
    """:func:`run_daemon`'s work, its signal handlers installed: warm up, serve ``[metrics]``, build and run."""
    from stream_cl.runtime import set_threads, warm_up

    if not stop.is_set():  # (seconds: torch, numba)
        set_threads(getattr(config.run, "threads", 1))
        warm_up()  # before the probes answer ready: not in the first batch's latency
    if stop.is_set():  # asked for during the imports or the warm-up: nothing is built, nothing to commit
        return _stopped_before_built(None)
    server = None
    metrics_cfg = getattr(config, "metrics", None)
    if metrics_cfg is not None and metrics_cfg.enabled:
        from .http import serve

        try:
            server = serve(metrics_cfg)
        except OSError as e:
            fix = {errno.EADDRINUSE: "free the port or change metrics.port (0 = any free port)",
                   errno.EACCES: "use a metrics.port of 1024 or more (a lower one needs privileges)"}.get(
                e.errno, "set metrics.host to an address of this machine (\"127.0.0.1\", \"0.0.0.0\" or \"::\" for all)")
            log_event(log, "failed", level=logging.ERROR,
                      detail=f"cannot serve [metrics] on {metrics_cfg.host}:{metrics_cfg.port}: {e}; {fix}")
            return EXIT_FAILED
    try:
        return _build_and_run(config, stop, on_ready, server)
    finally:
        if server is not None:
            server.close()


def _build_and_run(config: Config, stop: threading.Event, on_ready, server) -> int:
    """Build the daemon and run it; again, in this process, each time it must start over (fenced): at once,
    unless the daemon rebuilt last time had to start over too without committing anything (the same failure
    again, likely): then after a delay (:data:`RESET_DELAY_S`). A daemon that ran longer than the longest
    delay before it started over counts as healthy, committed or not: on a quiet topic nothing is
    committed, and routine start overs hours apart (a rebalance) must not each wait longer."""
    metrics = None
    # one changelog for every build: a reset keeps what it read (RunChangelog); closed however the run ends
    changelog = RunChangelog()
    from .kafka import mapping_checks

    # one set of mapping checks too: a warning is said once per run, and a short topic judged by all it read
    checks = mapping_checks(config.kafka, config.mapping, config.model.time_features)
    contact = BrokerContact(config.kafka, stop)  # and one first contact: whether a build reached a broker
    rebuilt, delay = False, 0.0
    try:
        while True:
            committed, began = _committed(metrics), time.monotonic()
            code, metrics = _build_and_run_once(config, stop, on_ready, server, metrics, changelog, checks, contact)
            if code not in (EXIT_RESET, EXIT_BROKER_AWAY):
                return code
            away = code == EXIT_BROKER_AWAY
            if stop.is_set():  # asked for before the daemon had to start over: its final commit was refused
                _say_final_mapping_warnings(checks)
                return _stopped_before_built(metrics) if away else _stopped_in_start_over(metrics)
            brief = time.monotonic() - began < RESET_DELAY_S[1]
            again = rebuilt and brief and _committed(metrics) == committed
            most = BROKER_AWAY_DELAY_S if away else RESET_DELAY_S[1]
            delay = min(max(2 * delay, RESET_DELAY_S[0]), most) if again else 0.0
            # a stop asked for during the wait ends the next build before it starts: the clean stop (exit 0)
            _wait_before_rebuild(stop, metrics, delay)
            if metrics is not None:  # once: the caller already holds the first daemon
                on_ready = None
            rebuilt = True
    finally:
        changelog.close()
        # the run's end, however it came (each warning is said once: here, only what no closing line said before)
        _say_final_mapping_warnings(checks)


def _log_mapping_warnings(warnings: list[str]) -> None:
    """Each warning of the mapping checks (:class:`~stream_cl.mapping_check.MappingChecks`) as a
    ``mapping_warning`` line."""
    for warning in warnings:
        log_event(log, "mapping_warning", level=logging.WARNING, detail=warning)


def _say_final_mapping_warnings(checks: MappingChecks | None) -> None:
    """The run ends: a short topic's mapping warnings (judged by all its daemons read), said before the run's
    closing ``shutdown`` or ``failed`` line where one follows. None: the daemon holds its own checks."""
    if checks is None:
        return
    try:
        _log_mapping_warnings(checks.take(final=True))
    except Exception:  # noqa: BLE001 -- the checks only advise: the run's exit code stands
        log.warning("mapping checks failed at the end of the run", exc_info=True)


def _stopped_in_start_over(metrics: DaemonMetrics | None) -> int:
    """Log a stop asked for while the daemon had to start over (fenced, or its partitions lost, in the same
    turn) as its ``failed`` line; returns exit code 1: its final commit could not be made, so what it did since
    its last commit does not count (a restart resumes from that commit, as after any failure)."""
    log_event(log, "failed", level=logging.ERROR, exit_code=EXIT_FAILED,
              records=metrics.records if metrics is not None else 0,
              detail="stopped while the daemon had to start over (fenced, or its partitions lost): its final commit "
                     "could not be made; nothing since its last commit counts, and a restart resumes from it")
    return EXIT_FAILED


def _committed(metrics: DaemonMetrics | None) -> int:
    """The transactions committed so far by the run's daemons (their metrics carry over a reset)."""
    return metrics.transactions["committed"] if metrics is not None else 0


def _wait_before_rebuild(stop: threading.Event, metrics: DaemonMetrics | None, delay: float) -> None:
    """Wait ``delay`` seconds before a start over (none: at once), or until a stop is asked for. The loop's
    heartbeat goes on: the member waits on purpose, and /healthz must not have it restarted for that
    (``metrics`` None: no daemon was built yet, and /healthz says ``starting``)."""
    if delay <= 0:
        return
    log_event(log, "rejoin_delayed", level=logging.WARNING, delay_s=delay,
              detail=f"the daemon rebuilt last time had to start over too, having committed nothing, or found no "
                     f"broker: waiting {delay:g} s (doubling each time again, up to {RESET_DELAY_S[1]:g} s, or "
                     f"{BROKER_AWAY_DELAY_S:g} s while no broker answers; a commit ends it)")
    deadline = time.monotonic() + delay
    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
        if metrics is not None:
            metrics.beat()
        stop.wait(min(left, 1.0))


def _build_and_run_once(config: Config, stop: threading.Event, on_ready, server, metrics,
                        changelog: RunChangelog | None = None, checks: MappingChecks | None = None,
                        contact: BrokerContact | None = None) -> tuple[int, object]:
    """Build a daemon and run it; returns its exit code and its metrics (the next build keeps them; None
    while no daemon was built). ``changelog``: the run's (closed by the caller); ``checks``: the run's
    mapping checks; ``contact``: the run's first contact with a broker; None: the daemon makes its own."""
    of_run = {k: v for k, v in (("changelog", changelog), ("checks", checks), ("contact", contact)) if v is not None}
    daemon, failure = None, None
    if not stop.is_set():  # (else a stop asked for since the last look)
        try:
            with _alive_while_rebuilt(metrics):
                daemon = Daemon.from_config(config, stop, metrics, **of_run)
        except Exception as e:
            failure = e
    # a rebuild, or a first start once a build of this run reached a broker (review r118 F5)
    reached = metrics is not None or (contact is not None and contact.ever_reached)
    if daemon is None and reached and not stop.is_set() and _broker_away(failure, config, rebuild=metrics is not None):
        return EXIT_BROKER_AWAY, metrics  # built again after _build_and_run's (shorter) backoff
    if daemon is None:  # the run ends here: what an earlier build's daemon read is said before the closing line
        _say_final_mapping_warnings(checks)
        return _not_built(config, stop, metrics, failure), metrics
    if server is not None:
        server.attach(daemon)
    if on_ready is not None:
        try:
            on_ready(daemon)
        except Exception:
            log.exception("on_ready failed; stopping before the first poll")
            daemon._failed = True
            daemon._abort()
            return EXIT_FAILED, daemon.metrics
    return daemon.run(), daemon.metrics


def _broker_away(failure: Exception | None, config: Config, rebuild: bool = True) -> bool:
    """Whether a build that follows a broker reached with these settings failed for want of a broker
    (kafka-python's retriable errors, "Unable to bootstrap"): said as ``broker_unreachable``, and the daemon
    is built again after the start overs' backoff. ``rebuild``: after a start over (else: a first start
    whose broker went away during it). The outage is the likely cause: a group went down whole when an
    outage passed ~60 s (the transaction's request timeout, then the rebuild's bootstrap timeout: review
    r115 F1), and a member whose first start met a broker restart exited 1 with a traceback (r118 F5). A
    first start that reaches no broker still exits 1 with the settings to check (:func:`_not_built`)."""
    from kafka.errors import RetriableError

    from .kafka_bootstrap import bootstrap_hint
    from .publisher import BrokerUnreachable

    if failure is None:
        return False
    hint = bootstrap_hint(failure, config.kafka)
    # (a publisher process's start that found none says so: BrokerUnreachable, review r118 F6)
    if hint is None and not isinstance(failure, (RetriableError, BrokerUnreachable)):
        return False
    what = "could not be built again after a start over" if rebuild else "lost the broker its start had reached"
    log_event(log, "broker_unreachable", level=logging.WARNING, error=named(failure),
              detail=f"the daemon {what}: no broker answered; it is built again after a wait "
                     "(/readyz says not ready meanwhile)" + (f"; if this lasts: {hint}" if hint else ""))
    return True


@contextlib.contextmanager
def _alive_while_rebuilt(metrics: DaemonMetrics | None):
    """Beat the run's heartbeat while a daemon is rebuilt after a start over (``metrics``: the run's; None
    at the first build, which /healthz calls ``starting``), for up to :data:`REBUILD_ALIVE_S`. Nothing
    turned the loop during the rebuild's restore and changelog catch-up, so /healthz said ``stalled``
    after ``stall_timeout_s`` and a liveness probe killed a member in the middle of a routine start over
    (review r69 F2); a rebuild that hangs past the budget is still said to be stalled."""
    if metrics is None:
        yield
        return
    built = threading.Event()

    def beat():
        deadline = time.monotonic() + REBUILD_ALIVE_S
        while time.monotonic() < deadline:
            metrics.beat()
            if built.wait(REBUILD_BEAT_S):
                return

    beating = threading.Thread(target=beat, name="stream-cl-rebuild-beat", daemon=True)
    beating.start()
    try:
        yield
    finally:
        built.set()
        beating.join()


def _not_built(config: Config, stop: threading.Event, metrics, failure: Exception | None) -> int:
    """Log the closing line of a start that built no daemon, and return its exit code. ``failure``: the error
    the build ended in; None: a stop was asked for before it began."""
    if failure is None:
        return _stopped_before_built(metrics)
    if isinstance(failure, (ConfigError, CheckpointError)):  # a setting to fix, stopped or not: exit 2
        return _config_failed(failure)
    if stop.is_set():  # a stop asked for during the build ended it (BootstrapStopped), or it came first
        return _stopped_before_built(metrics, failure)
    if (detail := not_authorised(failure, config)) is not None:  # a publisher or changelog an ACL denies
        return _not_authorised_failed(detail)
    from .kafka_bootstrap import bootstrap_hint

    hint = bootstrap_hint(failure, config.kafka)
    held = startup_done()  # (ends the start-up hold of kafka-python's lines, hint or not)
    if hint is None:  # not a configuration problem: the traceback is for us
        log.error("daemon could not start", exc_info=failure)
        return EXIT_FAILED
    cause = held.last_error if held is not None and held.last_error else ""
    if not cause and "last error:" in str(failure):
        cause = str(failure).rsplit("last error:", 1)[1].strip()
    log_event(log, "failed", level=logging.ERROR, detail=f"daemon could not start: {hint}",
              **({"client_error": cause} if cause else {}))
    return EXIT_FAILED


def _stopped_before_built(metrics: DaemonMetrics | None, ended: Exception | None = None) -> int:
    """Log a start stopped before its daemon was built (nothing to commit) as its ``shutdown`` line;
    returns exit code 0, the documented clean stop. ``ended``: the error the build ended in after the
    stop was asked for, named in the line unless it is the stop's own (BootstrapStopped): a stop
    asked for must not turn into a failure, and the error is said all the same."""
    detail = "stopped before the daemon was built"
    if ended is not None:
        from .kafka_bootstrap import BootstrapStopped

        if not isinstance(ended, BootstrapStopped):
            detail += f" (the start it stopped ended in {type(ended).__name__}: {ended})"
    log_event(log, "shutdown", records=metrics.records if metrics is not None else 0,
              checkpoint_seq=metrics.checkpoint_seq if metrics is not None else None, exit_code=EXIT_OK, detail=detail)
    return EXIT_OK


def _install_signal_handlers(stop: threading.Event, timeout_s: float):
    """SIGTERM and SIGINT: the first asks for a clean stop (the batch in flight, then a final checkpoint
    and commit) and exits 1 if that takes over ``timeout_s``; a second exits 1 at once. Returns the
    function that puts the previous handlers back.

    The handler sets ``stop`` (before it returns: the start and the loop read it at once) and hands
    the rest to a thread (``stream-cl-signals``) that watches the time and has the lines written. A handler runs on
    the main thread wherever that thread is: a log line written there while the loop was writing one
    (stderr to a full pipe) raised "reentrant call" before the stop was set, and the signal was lost.
    The handler waits up to a second for the thread's line, so that it comes before what the main
    thread logs next (the shutdown), unless the main thread is itself inside a log write. The timeout
    runs from the signal: the lines are written on threads of their own (:func:`_aside`), so a log
    stream that blocks does not defer the exit."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    # counted here, not read off `stop`: the daemon sets `stop` itself (stop_at_end, max_events),
    # and a first signal during that final commit is no second one
    received: list[int] = []
    woken, said = threading.Lock(), threading.Lock()  # plain locks: safe to release and acquire in a handler
    woken.acquire()  # released by the handler (or by restore, with no signal): the thread's turn
    said.acquire()  # released by the thread once its line is written
    over = threading.Event()  # run_daemon returned: the watchdog stands down
    talking: list[threading.Thread] = []  # the log lines' threads (_aside), joined by restore

    def handler(signum, frame):
        received.append(signum)
        if len(received) > 1:
            os._exit(EXIT_FAILED)  # (the first signal's log line says so)
        stop.set()
        woken.release()
        said.acquire(timeout=1.0)

    def on_signal():
        woken.acquire()
        if over.is_set():  # restored with no signal
            return
        deadline = time.monotonic() + timeout_s  # from the signal: a log stream that blocks must not defer it

        def said_stop():
            log_event(log, "stop_requested", reason=signal.Signals(received[0]).name,
                      detail="a running daemon finishes the batch in flight, then makes a final checkpoint and "
                             "commit (a start not done yet stops as soon as it can, committing nothing); a second "
                             "signal exits at once, the last checkpoint staying valid")
            said.release()

        try:
            talking.append(_aside(said_stop))
        except RuntimeError:  # no thread to be had (a process limit): the line is lost, the watchdog is not
            pass
        if not over.wait(max(deadline - time.monotonic(), 0.0)):
            try:
                _aside(lambda: log_event(log, "shutdown_timeout", level=logging.ERROR, timeout_s=timeout_s,
                                         detail="exiting now")).join(1.0)  # said if the log takes it within a second
            except RuntimeError:  # (no thread to be had: exit unsaid)
                pass
            os._exit(EXIT_FAILED)

    watcher = threading.Thread(target=on_signal, name="stream-cl-signals", daemon=True)
    watcher.start()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    for signum in _EARLY.take():  # received during the imports (python -m connectors.daemon): taken over
        handler(signum, None)

    def restore():
        for sig, h in previous.items():
            signal.signal(sig, h)
        # after the handlers, so no signal wakes the thread again: the stop is over, and the watchdog
        # must not end the caller's process shutdown_timeout_s after run_daemon returned
        over.set()
        if not received:
            woken.release()  # the thread, still waiting for a signal, returns
        watcher.join(5.0)
        for thread in talking:  # the stop's line, written by now unless the log is blocked
            thread.join(1.0)

    return restore


def _aside(say: Callable[[], None]) -> threading.Thread:
    """Run ``say`` (a log line) on a thread of its own: a log stream that blocks (stderr to a full pipe)
    holds up that thread only, not the signal watcher's clock."""
    thread = threading.Thread(target=say, name="stream-cl-signals-log", daemon=True)
    thread.start()
    return thread


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
        return _config_failed(e)
    log_config_warnings(config, written)
    return run_daemon(config)


if __name__ == "__main__":
    exit_settled(main())  # (a signal during the teardown after a clean stop: still exit 0)
