"""The Kafka daemon: consume, predict, learn, publish, checkpoint, commit; survive crashes.

One loop, composed of small parts::

    source (KafkaSource) -> Prequential step -> sinks (predictions, dead letters)
                          \\-> PendingLabels (unlabelled events wait for a delayed label)
    every checkpoint.every_events records or checkpoint.every_seconds:
        flush the sinks -> write the checkpoint (model, labels store, offsets) -> commit offsets

The order in that last line is the whole crash-safety argument. Predictions of every
event a checkpoint covers are delivered before the checkpoint exists; offsets are
committed only once the checkpoint is durable; on start the daemon restores the newest
checkpoint and seeks each partition to the offset stored in it. A crash therefore
replays exactly the events after the last checkpoint: each is learned once by the
restored model, and its prediction may be published a second time (counted by the
consumer of the predictions, bounded by one checkpoint interval).

SIGTERM / SIGINT (or ``stop_event``) stop the loop after the batch in flight; a final
checkpoint and commit run and :func:`run_daemon` returns 0. A second signal, or a
shutdown longer than ``kafka.shutdown_timeout_s``, ends the process at once (exit 1);
the last checkpoint stays valid.

Observability (docs/observability.md): ``[metrics]`` serves ``/metrics``, ``/healthz``,
``/readyz`` and ``/model`` (:mod:`connectors.http`, :mod:`connectors.prometheus`); the loop
only updates plain counters and per-batch histograms on :class:`DaemonMetrics`, read at
scrape time. Lifecycle events (start, restore, assignment, revocation, checkpoint,
drift_alarm, stop_requested, shutdown) are logged one line each with
:func:`connectors.logs.log_event`; nothing is logged per event.

Run it as ``python -m connectors.daemon --config daemon.toml`` (see docs/daemon.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stream_cl.checkpoint import CheckpointError, CheckpointStore
from stream_cl.config import Config, ConfigError, load_config
from stream_cl.events import DeadLetter, Event
from stream_cl.pending import LabelUpdate, PendingLabels
from stream_cl.prequential import Prequential

from .logs import log_event, setup_logging, startup_done
from .prometheus import CHECKPOINT_BUCKETS, LATENCY_BUCKETS, STEP_BUCKETS, BatchHistogram, TaskAccuracy

__all__ = ["Daemon", "DaemonMetrics", "CheckpointPolicy", "main", "run_daemon"]

log = logging.getLogger("stream_cl.daemon")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
STATUS_EVERY_S = 1.0
STARTUP_HOLD_S = 60.0  # kafka-python's start-up lines are held back until partitions come, at most this long
DAEMON_WINDOW = 1000  # labelled events per windowed-accuracy point when run.window is not set
# Model settings that may change between runs sharing a checkpoint (placement only).
_MODEL_KEYS_FREE = {"device"}
ALARM_LINES_PER_BATCH = 10  # drift_alarm log lines per batch at most (the metric counts them all)


# -- metrics ----------------------------------------------------------------------------------
@dataclass
class DaemonMetrics:
    """Counters and gauges of a running daemon; plain values, ready for any exporter.

    ``events`` counts records by outcome: ``predicted`` (no label: predicted, maybe
    waiting for one), ``learned`` (labelled: predicted then learned), ``dead_letter``,
    ``label_joined`` (a delayed label learned with its event, whichever came first).
    ``labels`` holds the label store's counters (:meth:`PendingLabels.counters`: a label
    is ``unknown`` once its event has not come within ``labels.max_early`` /
    ``labels.max_age_s``). Offsets and lag are keyed ``"topic/partition"``.

    Liveness: ``heartbeat`` (``time.monotonic()``) and ``last_progress`` (epoch seconds)
    of the loop's last turn -- idle polls included. Besides the fields, three
    :class:`~connectors.prometheus.BatchHistogram` (``step_seconds`` per micro-batch,
    ``event_latency`` poll-to-prediction per event, ``checkpoint_duration``) and a
    :class:`~connectors.prometheus.TaskAccuracy` (``tasks``) are observed per batch.
    """

    started_at: float = field(default_factory=time.time)
    state: str = "starting"  # starting, running, stopping, stopped, failed
    records: int = 0
    events: Counter = field(default_factory=Counter)
    dead_letters: Counter = field(default_factory=Counter)  # by reason
    labels: dict = field(default_factory=dict)  # counters of the pending-label store
    pending_labels: int = 0
    waiting_labels: int = 0  # labels that came before their event
    checkpoints: int = 0
    checkpoint_seq: int = 0
    checkpoint_at: float | None = None  # epoch seconds of the last checkpoint written or restored
    checkpoint_duration_s: float = 0.0
    checkpoint_bytes: int = 0
    commits: int = 0
    commit_failures: int = 0
    rebalances: int = 0
    assigned: list = field(default_factory=list)
    positions: dict = field(default_factory=dict)
    committed: dict = field(default_factory=dict)
    lag: dict = field(default_factory=dict)
    restored_from: str = ""
    checkpoint_path: str = ""  # the last checkpoint written or restored
    heartbeat: float | None = None  # time.monotonic() of the loop's last turn
    last_progress: float | None = None  # epoch seconds of the loop's last turn
    http_port: int = 0  # where /metrics, /healthz, /readyz and /model answer (0 = not served)

    def __post_init__(self):  # not fields: never in to_dict()'s deep copy
        self.step_seconds = BatchHistogram(STEP_BUCKETS)
        self.event_latency = BatchHistogram(LATENCY_BUCKETS)
        self.checkpoint_duration = BatchHistogram(CHECKPOINT_BUCKETS)
        self.tasks = TaskAccuracy()

    def beat(self) -> None:
        """The loop turned."""
        self.heartbeat, self.last_progress = time.monotonic(), time.time()

    def checkpoint_age_s(self, now: float | None = None) -> float | None:
        if self.checkpoint_at is None:
            return None
        return (time.time() if now is None else now) - self.checkpoint_at

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["events"] = {k: v for k, v in self.events.items() if v}
        d["dead_letters"] = dict(self.dead_letters)
        d["checkpoint_age_s"] = self.checkpoint_age_s()
        d["task_accuracy"] = self.tasks.snapshot()
        d["pid"] = os.getpid()
        return d


class CheckpointPolicy:
    """Due every ``every_events`` records or ``every_seconds`` seconds, whichever comes first."""

    def __init__(self, every_events: int, every_seconds: float, clock=time.monotonic):
        self.every_events, self.every_seconds, self.clock = every_events, every_seconds, clock
        self.records = 0
        self.last = clock()

    def add(self, n: int) -> None:
        self.records += n

    def due(self) -> bool:
        return self.records >= self.every_events or (self.clock() - self.last >= self.every_seconds)

    def reset(self) -> None:
        self.records = 0
        self.last = self.clock()


# -- the daemon -------------------------------------------------------------------------------
class Daemon:
    """The run loop (see the module docstring); build it with :meth:`from_config`."""

    def __init__(self, config: Config, learner, source_factory, predictions, dead_letters, store: CheckpointStore,
                 pending: PendingLabels, stop_event: threading.Event, producer=None):
        self.config = config
        self.learner = learner
        # a never-ending stream: a fixed window keeps "recent accuracy" recent (the file runner's default grows)
        window = config.run.window or DAEMON_WINDOW
        self.step = Prequential(learner, window=window)
        self.predictions = predictions  # a sink, or None
        self.dead_letters = dead_letters  # a sink, or None
        self.producer = producer
        self.store = store
        self.pending = pending
        self.stop = stop_event
        self.metrics = DaemonMetrics()
        self.metrics.tasks = TaskAccuracy(window)
        self.policy = CheckpointPolicy(config.checkpoint.every_events, config.checkpoint.every_seconds)
        self.offsets: dict = {}  # TopicPartition -> next offset, as of the last checkpoint (all partitions ever held)
        self._saved_offsets: dict = {}
        self._dirty = False
        self._failed = False
        self._status_at = 0.0
        self._assigned_seen: frozenset = frozenset()
        self._started: float | None = None  # while start-up lasts: when the loop began
        self._restore()
        self.source = source_factory(self)  # subscribes; partitions come with the first poll

    @classmethod
    def from_config(cls, config: Config, stop_event: threading.Event | None = None) -> "Daemon":
        from stream_cl.factory import build_learner

        from .kafka import (BackgroundWriter, KafkaDeadLetterSink, KafkaPredictionSink, KafkaSource, make_producer,
                            install_warnings, producer_options)
        from .publisher import ProcessPublisher

        for warning in install_warnings():
            log.warning("%s", warning)
        kcfg = config.kafka
        learner = build_learner(config)  # [model] and the continual-learning sections
        store = CheckpointStore(config.checkpoint.dir, config.checkpoint.keep)
        pending = PendingLabels(config.labels.max_pending, config.labels.max_age_s, max_early=config.labels.max_early)
        in_process = kcfg.predictions_topic and kcfg.publisher == "thread"
        producer = make_producer(kcfg) if (in_process or kcfg.dead_letter_topic) else None
        predictions = None
        try:  # nothing is left running if a part cannot be made
            if in_process:
                predictions = BackgroundWriter(KafkaPredictionSink(producer, kcfg.predictions_topic))
            elif kcfg.predictions_topic:
                predictions = ProcessPublisher(producer_options(kcfg), kcfg.predictions_topic)
            dead = (KafkaDeadLetterSink(producer, kcfg.dead_letter_topic, kcfg.max_message_bytes)
                    if kcfg.dead_letter_topic else None)
            label_policy = getattr(config.source, "label_policy", "optional")

            def source_factory(daemon: "Daemon"):
                return KafkaSource(kcfg, config.mapping, label_policy, hooks=daemon)

            return cls(config, learner, source_factory, predictions, dead, store, pending,
                       stop_event or threading.Event(), producer)
        except BaseException:
            if isinstance(predictions, ProcessPublisher):
                predictions.abort()
            if producer is not None:
                producer.close()
            raise

    # -- restore ---------------------------------------------------------------------------
    def _restore(self) -> None:
        from kafka import TopicPartition

        loaded = self.store.load_latest()
        if loaded is None:
            log_event(log, "restore", checkpoint=None, dir=str(self.store.dir), detail="no checkpoint: a new model")
            return
        state, info = loaded
        saved_model = state.get("model_config", {})
        current = dataclasses.asdict(self.config.model)
        for key in sorted(set(saved_model) | set(current)):
            if key in _MODEL_KEYS_FREE or saved_model.get(key) == current.get(key):
                continue
            raise ConfigError(
                f"model.{key}: the checkpoint {info.path} was written with {key} = {saved_model.get(key)!r}, "
                f"the config says {current.get(key)!r}; restore the setting, or point checkpoint.dir at an empty directory"
            )
        self.learner.load_state_dict(state["model"])
        self.pending.load_state_dict(state["pending"])
        self.offsets = {TopicPartition(t, int(p)): int(o) for t, p, o in state["offsets"]}
        self._saved_offsets = dict(self.offsets)
        m = self.metrics
        m.checkpoint_seq, m.checkpoint_at, m.checkpoint_bytes = info.seq, info.created, info.size_bytes
        m.restored_from = m.checkpoint_path = str(info.path)
        log_event(log, "restore", checkpoint=str(info.path), seq=info.seq, partitions=len(self.offsets),
                  pending_labels=len(self.pending))

    # -- rebalance hooks (IO thread; the loop is blocked in poll) --------------------------
    def on_revoke(self, partitions, lost: bool) -> dict:
        if self._failed:  # mid-batch state after an error: never checkpoint or commit it
            return {}
        log_event(log, "revocation", partitions=_tp_keys(partitions), lost=lost)
        offsets = self.checkpoint(reason="lost" if lost else "revoke", fill=False)
        mine = {tp: offsets[tp] for tp in partitions if tp in offsets}
        # nothing new since the last commit: skip the round trip
        if all(self.source.committed.get(tp) == o for tp, o in mine.items()):
            return {}
        if not lost:
            self.metrics.commits += 1
        return mine

    def on_assign(self, partitions) -> dict:
        saved = {tp: self.offsets[tp] for tp in partitions if tp in self.offsets}
        log_event(log, "assignment", partitions=_tp_keys(partitions),
                  from_checkpoint={f"{tp.topic}/{tp.partition}": o for tp, o in sorted(saved.items())})
        return saved

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> int:
        m, kcfg = self.metrics, self.config.kafka
        m.beat()
        m.state = "running"
        self._started = time.monotonic()
        log_event(log, "start", group=kcfg.group_id, topics=kcfg.topics or kcfg.topic_pattern,
                  labels_topic=kcfg.labels_topic or None, model=type(self.learner).__name__,
                  checkpoint_seq=m.checkpoint_seq, metrics_port=m.http_port or None, pid=os.getpid())
        try:
            while not self.stop.is_set():
                self.run_once()
            m.state = "stopping"
            self.checkpoint_and_commit("shutdown")
            self.source.close()  # its revoke callback finds nothing new to save
            self._close_sinks()
            m.state = "stopped"
            self._write_status(force=True)
            log_event(log, "shutdown", records=m.records, events={k: v for k, v in m.events.items() if v},
                      checkpoint_seq=m.checkpoint_seq, exit_code=EXIT_OK)
            return EXIT_OK
        except Exception:
            self._failed = True
            self.metrics.state = "failed"
            log.exception("daemon failed; the last checkpoint stays valid, a restart resumes from it")
            self._write_status(force=True)
            self._abort()
            return EXIT_FAILED

    def run_once(self) -> None:
        """Poll once, process what came, checkpoint when due."""
        max_records = self.config.kafka.max_poll_records
        limit = self.config.run.max_events
        if limit is not None:
            max_records = max(1, min(max_records, limit - self.metrics.records))
        check = getattr(self.predictions, "check", None)
        if check is not None:
            check()  # a dead publisher stops the daemon now, not at the next event (a quiet topic)
        batch = self.source.poll(max_records)
        if self._started is not None and (self.source.assigned or time.monotonic() - self._started > STARTUP_HOLD_S):
            self._started = None
            startup_done()  # from now on kafka-python's warnings (a lost broker) are shown
        for warning in self.source.take_warnings():
            log_event(log, "mapping_warning", level=logging.WARNING, detail=warning)
        if batch.items:
            self.process(batch, polled_at=time.perf_counter())
        else:
            self.pending.expire()  # ages move on while the topics are quiet
        if not batch.items and self.config.kafka.stop_at_end and self.source.at_end():
            log_event(log, "stop_requested", reason="stop_at_end", detail="every assigned partition is consumed to its end")
            self.stop.set()
        if limit is not None and self.metrics.records >= limit:
            log_event(log, "stop_requested", reason="max_events", max_events=limit)
            self.stop.set()
        if self.policy.due():
            self.checkpoint_and_commit("interval")
        assigned = frozenset(self.source.assigned)
        self._write_status(force=assigned != self._assigned_seen)
        self._assigned_seen = assigned
        self.metrics.beat()

    def process(self, batch, polled_at: float | None = None) -> None:
        """Predict and learn the events of one poll, join its labels, route its dead letters.

        ``polled_at`` (``time.perf_counter()`` when the poll returned) starts each event's
        latency; the histograms and per-task accuracy are updated once per micro-batch.
        """
        m, pending = self.metrics, self.pending
        polled_at = time.perf_counter() if polled_at is None else polled_at
        alarms_before = getattr(self.learner, "n_alarms_", 0)
        events: list[Event] = []
        letters: list[DeadLetter] = []
        labels: list[LabelUpdate] = []
        for item in batch.items:
            cls = item.__class__
            if cls is Event:
                events.append(item)
            elif cls is DeadLetter:
                letters.append(item)
            else:
                labels.append(item)
        m.records += len(batch.items)
        self.policy.add(len(batch.items))
        self._dirty = True

        size = self.config.run.batch_size
        remember = bool(self.config.kafka.labels_topic)  # without a labels topic no label can come later
        early: list[Event] = []  # events of this poll whose label came before them
        for i in range(0, len(events), size):
            chunk = events[i : i + size]
            t0 = time.perf_counter()
            predictions, rejected = self.step.process(chunk)
            t1 = time.perf_counter()
            m.step_seconds.observe(t1 - t0)
            m.event_latency.observe(t1 - polled_at, len(predictions))
            m.tasks.update(predictions)
            if self.predictions is not None:
                self.predictions.write(predictions)
            refused = {d.origin for d in rejected}
            for e in chunk:
                if e.y is not None:
                    continue
                if remember and e.id is not None and e.origin not in refused:
                    labelled = pending.add(e)  # its label may have come first: then it is learned below
                    if labelled is not None:
                        early.append(labelled)
            if rejected:
                letters.extend(self._original(rejected, batch.raw))
            n_labelled = sum(p.y_true is not None for p in predictions)
            m.events.update(learned=n_labelled, predicted=len(predictions) - n_labelled)

        if labels or early:
            joined = early + [e for e in (pending.join(lab) for lab in labels) if e is not None]
            m.events.update(label_joined=len(joined))
            for i in range(0, len(joined), size):
                t0 = time.perf_counter()
                learned, rejected = self.step.process(joined[i : i + size])  # learned; already predicted
                m.step_seconds.observe(time.perf_counter() - t0)
                m.tasks.update(learned)
                if rejected:
                    letters.extend(self._original(rejected, batch.raw))
        else:
            pending.expire()

        if letters:
            m.events["dead_letter"] += len(letters)
            m.dead_letters.update(d.reason for d in letters)
            if self.dead_letters is not None:
                raw = batch.raw
                self.dead_letters.write(letters, {d.origin: raw[d.origin][0] for d in letters if d.origin in raw})
            else:
                log.warning("%d dead letters (no kafka.dead_letter_topic): first %s at %s: %s", len(letters),
                            letters[0].reason, letters[0].origin, letters[0].detail)
        if getattr(self.learner, "n_alarms_", 0) != alarms_before:
            self._log_alarms(alarms_before)

    def _log_alarms(self, before: int) -> None:
        """One ``drift_alarm`` line per new alarm (at most ALARM_LINES_PER_BATCH per batch)."""
        total = int(getattr(self.learner, "n_alarms_", 0))
        new = total - before
        alarms = list(getattr(self.learner, "alarms_", []))[-min(new, ALARM_LINES_PER_BATCH):] if new > 0 else []
        for a in alarms:
            log_event(log, "drift_alarm", detector=a.get("detector"), response=a.get("response"),
                      signal=a.get("signal"), t=a.get("t"), recent=a.get("recent"), baseline=a.get("baseline"),
                      alarms_total=total)
        if new > len(alarms):
            log_event(log, "drift_alarm", detail=f"{new - len(alarms)} more alarms in this batch", alarms_total=total)

    @staticmethod
    def _original(rejected: list[DeadLetter], raw: Mapping) -> list[DeadLetter]:
        """Dead letters from the model carry the record's original bytes."""
        out = []
        for d in rejected:
            kv = raw.get(d.origin)
            out.append(DeadLetter(kv[1], d.reason, d.detail, d.origin) if kv is not None else d)
        return out

    # -- checkpoint and commit ---------------------------------------------------------------
    def checkpoint(self, reason: str, fill: bool = True) -> dict:
        """Make everything processed so far durable; returns the offsets the checkpoint holds.

        Sinks are flushed first (a checkpoint never covers an undelivered prediction).
        Nothing is written when nothing changed since the last checkpoint.
        """
        if fill:
            self.source.fill_positions()
        offsets = {**self.offsets, **self.source.positions}
        if not self._dirty and offsets == self._saved_offsets:
            self.policy.reset()
            return offsets
        for sink in (self.predictions, self.dead_letters):
            if sink is not None:
                sink.flush()
        state = {
            "model": self.learner.state_dict(),
            "pending": self.pending.state_dict(),
            "offsets": [[tp.topic, tp.partition, o] for tp, o in sorted(offsets.items())],
            "model_config": dataclasses.asdict(self.config.model),
            "group_id": self.config.kafka.group_id,
            "stats": _jsonable_report(self.step.stats.report()),
        }
        meta = {"reason": reason, "records": self.metrics.records,
                "offsets": {f"{tp.topic}/{tp.partition}": o for tp, o in offsets.items()}}
        info = self.store.save(state, meta)
        self.offsets, self._saved_offsets, self._dirty = offsets, dict(offsets), False
        self.policy.reset()
        m = self.metrics
        m.checkpoints += 1
        m.checkpoint_seq, m.checkpoint_at = info.seq, info.created
        m.checkpoint_duration_s, m.checkpoint_bytes = info.duration_s, info.size_bytes
        m.checkpoint_path = str(info.path)
        m.checkpoint_duration.observe(info.duration_s)
        log_event(log, "checkpoint", seq=info.seq, reason=reason, records=m.records, bytes=info.size_bytes,
                  seconds=round(info.duration_s, 4), path=str(info.path))
        return offsets

    def checkpoint_and_commit(self, reason: str) -> None:
        offsets = self.checkpoint(reason)
        todo = {tp: o for tp, o in offsets.items() if tp in self.source.assigned and self.source.committed.get(tp) != o}
        if todo:
            self.source.commit(todo)
            self.metrics.commits += 1
        self._write_status(force=True)

    # -- status and shutdown ---------------------------------------------------------------
    def refresh_metrics(self) -> DaemonMetrics:
        """Update the gauges of :attr:`metrics` from the source and the label store.

        The loop calls it about once a second; each field is replaced whole, so another
        thread (a metrics exporter) may read :attr:`metrics` at any time.
        """
        from .kafka import tp_key

        m, src = self.metrics, self.source
        assigned = set(src.assigned)  # snapshots: the IO thread changes these on rebalances
        m.pending_labels = len(self.pending)
        m.waiting_labels = self.pending.waiting_labels
        m.labels = self.pending.counters()
        m.assigned = sorted(tp_key(tp) for tp in assigned)
        m.positions = {tp_key(tp): o for tp, o in dict(src.positions).items()}
        m.committed = {tp_key(tp): o for tp, o in dict(src.committed).items() if tp in assigned}
        m.lag = {tp_key(tp): lag for tp, lag in src.lag().items()}
        m.commit_failures = src.commit_failures
        m.rebalances = src.rebalances
        return m

    def _write_status(self, force: bool = False) -> None:
        """Refresh the metrics about once a second (or now), and write the status file if configured."""
        now = time.monotonic()
        if not force and now - self._status_at < STATUS_EVERY_S:
            return
        self._status_at = now
        if getattr(self, "source", None) is not None:
            self.refresh_metrics()
        path = self.config.kafka.status_file
        if not path:
            return
        data = self.metrics.to_dict()
        data["report"] = _jsonable_report(self.step.stats.report())
        tmp = f"{path}.tmp"
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w") as f:
                json.dump(data, f, default=str)
            os.replace(tmp, path)
        except OSError as e:
            log.warning("cannot write status file %s: %s", path, e)

    def _close_sinks(self) -> None:
        for sink in (self.predictions, self.dead_letters):
            if sink is not None:
                sink.close()  # flushes; the shared producer is closed below
        if self.producer is not None:
            self.producer.close()

    def _abort(self) -> None:
        """After a failure: release clients without committing anything."""
        try:
            self.source.consumer.close(autocommit=False)
        except Exception:
            pass
        abort = getattr(self.predictions, "abort", None)
        if abort is not None:
            abort()  # the publisher (thread or process) ends; what it still holds is dropped
        if self.producer is not None:
            try:
                self.producer.close(timeout=5)
            except Exception:
                pass


def _tp_keys(partitions) -> list[str]:
    return sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)


def _jsonable_report(report: dict) -> dict:
    out = dict(report)
    out.pop("windowed_accuracy", None)  # grows with the stream; kept in memory, not in every file
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in out.items()}


# -- entry points -----------------------------------------------------------------------------
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
    from stream_cl.runtime import set_threads

    set_threads(getattr(config.run, "threads", 1))
    stop = stop_event or threading.Event()
    server = None
    metrics_cfg = getattr(config, "metrics", None)
    if metrics_cfg is not None and metrics_cfg.enabled:
        from .http import serve

        try:
            server = serve(metrics_cfg)
        except OSError as e:
            log_event(log, "failed", level=logging.ERROR,
                      detail=f"cannot serve [metrics] on {metrics_cfg.host}:{metrics_cfg.port}: {e}; "
                             "free the port or change metrics.port (0 = any free port)")
            return EXIT_FAILED
    try:
        return _build_and_run(config, stop, on_ready, server)
    finally:
        if server is not None:
            server.close()


def _build_and_run(config: Config, stop: threading.Event, on_ready, server) -> int:
    try:
        daemon = Daemon.from_config(config, stop)
    except (ConfigError, CheckpointError) as e:
        log.error("%s", e)
        return EXIT_CONFIG
    except Exception as e:
        from .kafka import bootstrap_hint

        hint = bootstrap_hint(e, config.kafka)
        held = startup_done()
        if hint is None:  # not a configuration problem: the traceback is for us
            log.exception("daemon could not start")
            return EXIT_FAILED
        cause = held.last_error if held is not None and held.last_error else ""
        if not cause and "last error:" in str(e):
            cause = str(e).rsplit("last error:", 1)[1].strip()
        log_event(log, "failed", level=logging.ERROR, detail=f"daemon could not start: {hint}",
                  **({"client_error": cause} if cause else {}))
        return EXIT_FAILED
    restore = _install_signal_handlers(stop, config.kafka.shutdown_timeout_s)
    try:
        if server is not None:
            server.attach(daemon)
        if on_ready is not None:
            try:
                on_ready(daemon)
            except Exception:
                log.exception("on_ready failed; stopping before the first poll")
                daemon._failed = True
                daemon._abort()
                return EXIT_FAILED
        return daemon.run()
    finally:
        restore()


def _install_signal_handlers(stop: threading.Event, timeout_s: float):
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if stop.is_set():
            log.error("second %s: exiting now; the last checkpoint stays valid", name)
            os._exit(EXIT_FAILED)
        log_event(log, "stop_requested", reason=name, detail="finishing the batch in flight, then a final checkpoint and commit")
        stop.set()

        def overdue():
            log_event(log, "shutdown_timeout", level=logging.ERROR, timeout_s=timeout_s, detail="exiting now")
            os._exit(EXIT_FAILED)

        watchdog = threading.Timer(timeout_s, overdue)
        watchdog.daemon = True
        watchdog.start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)

    def restore():
        for sig, h in previous.items():
            signal.signal(sig, h)

    return restore


def main(argv: list[str] | None = None) -> int:
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
        config = load_config(args.config)
    except ConfigError as e:
        log.error("%s", e)
        return EXIT_CONFIG
    return run_daemon(config)


if __name__ == "__main__":
    sys.exit(main())
