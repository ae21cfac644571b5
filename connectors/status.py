"""What a running daemon reports: its counters and gauges, and the status file.

:class:`DaemonMetrics` holds plain values the loop updates (read by the Prometheus
collector at scrape time, and by ``/model`` and ``/healthz``); :class:`StatusReporter`
refreshes its gauges from the source and the label store about once a second and
rewrites the JSON status file (``kafka.status_file``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import stat
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .prometheus import CHECKPOINT_BUCKETS, COMMIT_BUCKETS, LATENCY_BUCKETS, STEP_BUCKETS, BatchHistogram, TaskAccuracy

__all__ = ["DaemonMetrics", "StatusReporter", "jsonable_report"]

log = logging.getLogger("stream_cl.daemon")

STATUS_EVERY_S = 1.0


@dataclass
class DaemonMetrics:
    """Counters and gauges of a running daemon; plain values, ready for any exporter.

    ``events`` counts records by outcome: ``predicted`` (no label: predicted, maybe
    waiting for one), ``learned`` (labelled: predicted then learned), ``dead_letter``,
    ``label_joined`` (a delayed label learned with its event, whichever came first),
    ``replayed`` (re-learned after a restore, silently: their outputs were committed
    before). ``labels`` holds the label store's lifetime counters (:meth:`PendingLabels.counters`:
    a label is ``unknown`` once its event has not come within ``labels.max_early`` /
    ``labels.max_age_s``; restored with the checkpoint). ``label_outcomes`` (``joined``,
    ``expired``, ``unknown``) and ``category_overflow`` count those outcomes of this process's
    new work alone (:mod:`connectors.new_work`): neither the restored
    counts nor those of replayed records. ``transactions`` counts commits by outcome (``committed``,
    ``aborted``, ``fenced``). Offsets and lag are keyed ``"topic/partition"``.

    Liveness: ``heartbeat`` (``time.monotonic()``) and ``last_progress`` (epoch seconds)
    of the loop's last turn -- idle polls included. Besides the fields, four
    :class:`~connectors.prometheus.BatchHistogram` (``step_seconds`` per micro-batch,
    ``event_latency`` poll-to-prediction per event, ``checkpoint_duration``,
    ``commit_duration``) and a :class:`~connectors.prometheus.TaskAccuracy` (``tasks``)
    are observed per batch.
    """

    started_at: float = field(default_factory=time.time)
    state: str = "starting"  # starting, running, revoking, rejoining, stopping, stopped, failed
    records: int = 0
    events: Counter = field(default_factory=Counter)
    dead_letters: Counter = field(default_factory=Counter)  # by reason
    labels: dict = field(default_factory=dict)  # counters of the pending-label store
    label_outcomes: Counter = field(default_factory=Counter)  # joined, expired, unknown: new work in this process
    category_overflow: int = 0  # category values read as k=<other> in this process's new steps
    # drift alarms this process raised, {detector: {response: n}}: not those of a part restored or taken
    # over, nor those raised again while re-learning a replay (replaced whole: the exporter reads it)
    drift_alarms: dict = field(default_factory=dict)
    pending_labels: int = 0
    waiting_labels: int = 0  # labels that came before their event
    checkpoints: int = 0
    checkpoint_seq: int = 0
    checkpoint_at: float | None = None  # epoch seconds when the last checkpoint (written, or restored) was written
    checkpoint_duration_s: float = 0.0
    checkpoint_bytes: int = 0
    commits: int = 0
    commit_failures: int = 0
    transactions: Counter = field(default_factory=Counter)  # committed, aborted, fenced
    commit_deferrals: int = 0  # loop turns that put off a due interval commit (the one before under way)
    rebalances: int = 0
    assigned: list = field(default_factory=list)
    positions: dict = field(default_factory=dict)
    committed: dict = field(default_factory=dict)
    lag: dict = field(default_factory=dict)
    model_parts: dict = field(default_factory=dict)  # "topic/partition" -> source offset of the part served (a group)
    changelog: dict = field(default_factory=dict)  # records and bytes written, folds and their time
    restored_from: str = ""
    checkpoint_path: str = ""  # the last checkpoint written or restored
    heartbeat: float | None = None  # time.monotonic() of the loop's last turn
    last_progress: float | None = None  # epoch seconds of the loop's last turn
    http_port: int = 0  # where /metrics, /healthz, /readyz and /model answer (0 = not served)

    def __post_init__(self):  # not fields: never in to_dict()'s deep copy
        self.step_seconds = BatchHistogram(STEP_BUCKETS)
        self.event_latency = BatchHistogram(LATENCY_BUCKETS)
        self.checkpoint_duration = BatchHistogram(CHECKPOINT_BUCKETS)
        self.commit_duration = BatchHistogram(COMMIT_BUCKETS)
        self.tasks = TaskAccuracy()

    def beat(self) -> None:
        """The loop turned."""
        self.heartbeat, self.last_progress = time.monotonic(), time.time()

    def checkpoint_age_s(self, now: float | None = None) -> float | None:
        """Seconds since the checkpoint last written, or the one restored, was made (None: none yet)."""
        if self.checkpoint_at is None:
            return None
        return (time.time() if now is None else now) - self.checkpoint_at

    def to_dict(self) -> dict:
        """The metrics as a JSON-ready dict (the status file's body; outcomes of no event left out)."""
        d = dataclasses.asdict(self)
        d["events"] = {k: v for k, v in self.events.items() if v}
        d["dead_letters"] = dict(self.dead_letters)
        d["transactions"] = dict(self.transactions)
        d["label_outcomes"] = dict(self.label_outcomes)
        d["checkpoint_age_s"] = self.checkpoint_age_s()
        d["task_accuracy"] = self.tasks.snapshot()
        d["pid"] = os.getpid()
        return d


class StatusReporter:
    """Refreshes :class:`DaemonMetrics`' gauges (about once a second, or when forced) and writes the status file."""

    def __init__(self, metrics: DaemonMetrics, status_file: str = "", every_s: float = STATUS_EVERY_S):
        self.metrics = metrics
        self.status_file = status_file
        self.every_s = every_s
        self._at = 0.0
        self._report: dict = {}  # the last write's (write_state rewrites it as it was)

    def refresh(self, source, pending, state=None) -> DaemonMetrics:
        """Gauges from the source (partitions, positions, lag) and the label store.

        Each field is replaced whole, so another thread (a metrics exporter) may read
        the metrics at any time.
        """
        from .kafka import tp_key

        m = self.metrics
        m.pending_labels = len(pending)
        m.waiting_labels = pending.waiting_labels
        m.labels = pending.counters()
        if hasattr(state, "parts"):  # a group member: which partitions' parts the model serves, as of which offsets
            m.model_parts = dict(state.parts)
            m.changelog = {"records": state.changelog_records, "bytes": state.changelog_bytes, "folds": state.folds,
                           "folded_records": state.fold_records, "fold_seconds": round(state.fold_seconds, 4)}
        if source is not None:
            assigned = set(source.assigned)  # snapshots: the IO thread changes these on rebalances
            m.assigned = sorted(tp_key(tp) for tp in assigned)
            m.positions = {tp_key(tp): o for tp, o in dict(source.positions).items()}
            m.committed = {tp_key(tp): o for tp, o in dict(source.committed).items() if tp in assigned}
            m.lag = {tp_key(tp): lag for tp, lag in source.lag().items()}
            m.rebalances = source.rebalances
        return m

    def write(self, source, pending, report: Callable[[], dict], force: bool = False, state=None) -> None:
        """Refresh (about once a second, or now) and rewrite the status file if one is configured.

        ``report``: what makes the run's report (the loop's ``stats.report``), called only for a file
        rewritten: the loop calls this every turn, and the report (per-task accuracy matrix, windows, the
        learner's state) took ~0.7 ms to build, on every turn of small polls, to be thrown away (review r139)."""
        now = time.monotonic()
        if not force and now - self._at < self.every_s:
            return
        self._at = now
        self.refresh(source, pending, state)
        if self.status_file:
            self._report = report()
            self._dump()

    def keep_report(self, report: dict) -> None:
        """The report the status file shows until the loop's first :meth:`write`: a built daemon's (a new
        run's counts: a restore does not read the report back), so that a revocation in its first poll
        (:meth:`write_state`) writes the report the loop's first write would, not ``{}`` (review r122 F5)."""
        self._report = report

    def write_state(self) -> None:
        """Rewrite the status file from the metrics as they are, without a refresh (which reads the source on
        the loop's thread only): for a state set on another thread, as a revocation's ``revoking`` while its
        commit is under way and the loop is blocked in poll (review r120 F8-1: the file said ``running``
        for the 12 s such a commit hung)."""
        self._dump()

    def release_partitions(self) -> None:
        """The member aborted to start over: it left its group and holds no partition until a
        new assignment, so none keeps its lag or committed offset here (the exporter's series), where a member
        built again for minutes had exported those of the partitions it held, frozen, beside those of the member
        that took them over (review r139 F2). The status file says so too."""
        m = self.metrics
        m.assigned, m.lag, m.committed = [], {}, {}
        self._dump()

    def _dump(self) -> None:
        if not self.status_file:
            return
        data = self.metrics.to_dict()
        data["report"] = jsonable_report(self._report)
        tmp = f"{self.status_file}.tmp"
        try:
            Path(self.status_file).parent.mkdir(parents=True, exist_ok=True)
            mode = _file_mode(self.status_file)
            with open(tmp, "w") as f:
                # the file put in its place by the rename keeps its bits: it took the umask's, and a status
                # file made 0600 was world-readable a second later (review r153; the run report's are kept too)
                if mode is not None:
                    os.fchmod(f.fileno(), mode)
                json.dump(data, f, default=str)
            os.replace(tmp, self.status_file)
        except OSError as e:
            log.warning("cannot write status file %s: %s", self.status_file, e)


def _file_mode(path: str) -> int | None:
    """The permission bits of the regular file at ``path``, or None (none there yet: the umask's)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


def jsonable_report(report: dict) -> dict:
    """A prequential report without its growing window list, NaN as null."""
    out = dict(report)
    out.pop("windowed_accuracy", None)  # grows with the stream; kept in memory, not in every file
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in out.items()}
