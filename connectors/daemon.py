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
commit and checkpoint run and :func:`~connectors.daemon_run.run_daemon` returns 0. A second signal, or a
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

This module is the loop, one member's: :class:`Daemon` (poll, process, commit, checkpoint, the rebalance
callbacks). Around it: :mod:`connectors.daemon_run` builds it and builds it again after a start over or a
broker outage (:func:`~connectors.daemon_run.run_daemon`), :mod:`connectors.daemon_signals` turns SIGTERM
and SIGINT into a stop, :mod:`connectors.daemon_exits` holds the exit codes and the ``failed`` lines, and
:mod:`connectors.daemon_cli` is the command line.

Run it as ``python -m connectors.daemon --config daemon.toml`` (see docs/daemon.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial

from .early_signals import exit_settled, keep_early_signals

if __name__ == "__main__":
    # `python -m connectors.daemon` spends a second or more in the imports (numpy, pandas, kafka-python): a SIGTERM
    # or Ctrl-C meanwhile is kept, and run_daemon's handlers take it over (a clean stop, exit 0, as docs/daemon.md
    # says), instead of SIGTERM's default death by signal or a KeyboardInterrupt traceback. The command is
    # connectors.daemon_cli's, run from here before this module's own imports: connectors.daemon_run imports this
    # module as connectors.daemon, and exit_settled ends the process before the rest of it runs as __main__ too
    keep_early_signals()
    from .daemon_cli import main

    exit_settled(main())  # (a signal during the teardown after a clean stop: still exit 0)

from stream_cl.checkpoint_format import CheckpointError  # noqa: E402
from stream_cl.config import Config, ConfigError  # noqa: E402
from stream_cl.events import PartitionedSource, TransactionalPublisher  # noqa: E402
from stream_cl.mapping_check import MappingChecks  # noqa: E402
from stream_cl.pending_stores import PendingStores  # noqa: E402
from stream_cl.prequential import DAEMON_MAX_POINTS, Prequential  # noqa: E402

from .authorisation import not_authorised  # noqa: E402
from .commit import CommitCoordinator, CommitPolicy  # noqa: E402
from .daemon_build import BrokerContact, RunChangelog, build_daemon  # noqa: E402
from .daemon_exits import (EXIT_OK, EXIT_RESET, checkpoint_failed, config_failed, crashed,  # noqa: E402
                           not_authorised_failed, offsets_unreadable_failed)
from .logs import log_event, startup_done  # noqa: E402
from .prometheus import TaskAccuracy  # noqa: E402
from .router import Router  # noqa: E402
from .state import CheckpointPolicy, CheckpointState  # noqa: E402
from .status import DaemonMetrics, StatusReporter  # noqa: E402
from .transaction import Fenced, TransactionAborted, dead_letter_refused  # noqa: E402

__all__ = ["Daemon", "DaemonMetrics", "CheckpointPolicy", "log_mapping_warnings"]

log = logging.getLogger("stream_cl.daemon")

STARTUP_HOLD_S = 60.0  # kafka-python's start-up lines are held back until partitions come, at most this long
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
        # a learner with a part per source partition (contribution/merge) gets each partition's events apart
        self.router = Router(config, self.step, learner, pending, publisher, self.metrics, self.state,
                             partitioned=hasattr(learner, "contribution") and hasattr(self.state, "fold"),
                             dead_letter_topic_bytes=dead_letter_topic_bytes)
        # after the router: its count of label outcomes starts below the restore, so that the entries the restore
        # drops under smaller labels.max_pending / max_early than the checkpoint's are exported (review r131)
        self.state.restore()
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
        ``contact`` (the first contact with a broker): the run's (:func:`~connectors.daemon_run.run_daemon` hands
        the same ones to every daemon it builds); without them the daemon makes its own."""
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
                return self._stop_failed(partial(config_failed, ConfigError(str(e))))
            if (detail := not_authorised(e, self.config)) is not None:  # until an ACL changes, every start over fails
                return self._stop_failed(partial(not_authorised_failed, detail))
            kind = "fenced" if isinstance(e, Fenced) else "transaction aborted"
            self.reset_reason = str(e) if str(e).startswith(kind) else f"{kind}: {e}"  # (once: "fenced: fenced: ..." was said)
            return self._reset()
        except ConfigError as e:  # a setting the data outgrew (changelog.max_message_bytes): starting over meets it again
            return self._stop_failed(partial(config_failed, e))
        except CheckpointError as e:  # written after its commit, which went through: a full disk, say
            return self._stop_failed(partial(checkpoint_failed, e))
        except Exception as e:
            if (detail := not_authorised(e, self.config)) is not None:  # a topic or group an ACL denies: no traceback
                return self._stop_failed(partial(not_authorised_failed, detail))
            from .kafka_assignment import CommittedOffsetsUnreadable

            if isinstance(e, CommittedOffsetsUnreadable):  # its text names the remedy: no traceback (review r118 F9)
                return self._stop_failed(partial(offsets_unreadable_failed, e))
            return self._stop_failed(crashed)  # (called in this except clause: the traceback is logged)

    def _say_mapping_warnings(self, final: bool = False) -> None:
        """The source's mapping checks (:meth:`KafkaSource.take_warnings`), each a ``mapping_warning`` line;
        ``final``: the daemon stops (cleanly or failed), so a topic shorter than their sample is judged now.
        The checks only advise: one that fails is logged, and the daemon, or its stop, goes on."""
        try:
            log_mapping_warnings(self.source.take_warnings(final=final))
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
        self.abort()
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
        self.status.write(getattr(self, "source", None), self.pending, self.step.stats.report, force, self.state)

    def _reset(self) -> int:
        """Fenced, or partitions lost: drop everything since the last commit; run_daemon starts over."""
        log_event(log, "fenced", level=logging.WARNING, reason=self.reset_reason,
                  detail="nothing since the last commit counts: dropping the state, restoring it and rejoining")
        self.metrics.state = "rejoining"
        self._write_status(force=True)
        self.abort()
        self.status.release_partitions()  # it left the group: no lag or offset of a partition it held (r139 F2)
        return EXIT_RESET

    def abort(self) -> None:
        """After a failure, a reset, or a start that stops before the first poll: release the clients
        without committing anything (a revocation during the close commits nothing either)."""
        self._failed = True
        try:
            self.source.abort()
        except Exception:  # noqa: BLE001 -- best effort: the process may be going away
            pass
        self.publisher.abort()  # the publisher ends; its open transaction is aborted
        self._close_changelog()

    def _close_changelog(self) -> None:
        """Close the changelog this daemon made for itself; a run's (:mod:`connectors.daemon_run`) outlives it."""
        own, self._own_changelog = self._own_changelog, None
        if own is not None:
            own.close()


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


def _tp_keys(partitions) -> list[str]:
    return sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)


def log_mapping_warnings(warnings: list[str]) -> None:
    """Each warning of the mapping checks (:class:`~stream_cl.mapping_check.MappingChecks`) as a
    ``mapping_warning`` line: a daemon's while it runs, a run's when it ends (:mod:`connectors.daemon_run`)."""
    for warning in warnings:
        log_event(log, "mapping_warning", level=logging.WARNING, detail=warning)
