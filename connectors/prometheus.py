"""Prometheus metrics of the daemon: exactly :data:`connectors.metric_names.EXPORTED_METRICS`.

Nothing here is global: :func:`register_metrics` adds one custom collector to a
registry the caller owns. The collector reads the daemon's state *at scrape time*,
on the HTTP thread, off the hot path:

* counters are the daemon's own counts (``Daemon.metrics``: events by outcome, dead
  letters by reason, checkpoints; delayed-label outcomes, category overflow and the drift
  alarms of this process's new work, over all its partitions), which the loop updates once
  per batch -- so a scraped counter equals the daemon's count exactly, with no second
  bookkeeping. Every counter counts from 0 in each process, and never from a state the
  process restored: the label store's and the learner's lifetime counts (in the checkpoint,
  and raised again by the silent re-learning after a restore or a takeover) are not
  exported; the rise of new work is counted (:mod:`connectors.new_work`). A daemon
  that starts over in the same process (fenced, an aborted transaction) keeps the process's
  ``DaemonMetrics``, so its counters go on from where they were;
* histograms are :class:`BatchHistogram` objects the loop observes once per micro-batch
  (an observation may stand for many events: ``observe(seconds, count=n)``);
* gauges read the learner (classes, features, forgetting factors, learning rates,
  need, replay buffer), the prequential statistics and the snapshots the loop refreshes
  about once a second (lag and committed offsets: the Kafka consumer is not
  thread-safe, so the HTTP thread never calls it).

The learner is read through one :meth:`status` snapshot per scrape
(:class:`stream_cl.status.LearnerStatus`): a learner without drift detection,
homeostasis or replay simply has no such series, and a failing read skips the learner's
series instead of failing the scrape. Every family is always described
(``# HELP`` / ``# TYPE``), with or without samples. No ``*_created`` series exist
(metric families are built by hand, never ``prometheus_client.Counter`` objects).

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> registry = CollectorRegistry()
>>> _ = register_metrics(registry, lambda: None)  # no daemon yet: families without samples
>>> text = generate_latest(registry).decode()
>>> "# TYPE stream_cl_events_total counter" in text, "_created" in text
(True, False)
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

from stream_cl.events import REASONS
from stream_cl.metrics import report_names

from .metric_names import EVENT_OUTCOMES, EXPORTED_METRICS, LABEL_OUTCOMES, METRIC_HELP, METRIC_LABELS, TRANSACTION_OUTCOMES

__all__ = ["BatchHistogram", "CHECKPOINT_BUCKETS", "DaemonCollector", "LATENCY_BUCKETS", "STEP_BUCKETS", "TaskAccuracy",
           "register_metrics"]

# Bucket upper bounds in seconds (+Inf is implicit).
# A micro-batch step takes ~1 ms (a few events, analytic heads) to ~2 s (thousands, wide backbone).
STEP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
# Poll -> prediction: one step at best (~1 ms), a few steps behind a large poll at worst (~10 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A checkpoint: tens of ms (a small model) to tens of seconds (a large one on a slow disk).
CHECKPOINT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# A transaction commit: a few broker round trips (add offsets, commit offsets, end the transaction) plus the
# flush of the interval's records; milliseconds on a local broker, seconds when a broker struggles, up to
# kafka.commit_timeout_ms / transaction_timeout_ms (60 s by default): past the last bound, histogram_quantile
# would report the last bound itself, hiding exactly the slow commits this histogram is for.
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# Event outcomes (metric_names.EVENT_OUTCOMES) -> keys of DaemonMetrics.events.
_OUTCOME_KEYS = {"learned": "learned", "predicted_only": "predicted", "dead_lettered": "dead_letter"}
assert tuple(_OUTCOME_KEYS) == EVENT_OUTCOMES


# -- trackers the loop updates (plain Python, thread-safe) ------------------------------------
class BatchHistogram:
    """A fixed-bucket histogram observed once per batch: ``observe(value, count)``.

    ``count`` events share ``value`` (e.g. every event of a micro-batch has the same
    poll-to-prediction latency), so a batch costs one bisect, never a loop over events.

    >>> h = BatchHistogram((0.01, 0.1))
    >>> h.observe(0.005, count=3); h.observe(0.05); h.observe(7.0)
    >>> h.snapshot()
    ([3, 4, 5], 7.065, 5)
    """

    def __init__(self, buckets: Sequence[float]):
        bounds = tuple(float(b) for b in buckets)
        if not bounds or list(bounds) != sorted(set(bounds)) or not all(math.isfinite(b) for b in bounds):
            raise ValueError(f"buckets must be finite, increasing and unique, got {buckets!r}")
        self.buckets = bounds
        self._counts = [0] * (len(bounds) + 1)  # per bucket (not cumulative); the last is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float, count: int = 1) -> None:
        """Count ``value`` ``count`` times (nothing for a count of 0 or less)."""
        if count <= 0:
            return
        i = bisect_left(self.buckets, value)  # first bound >= value: Prometheus' "le"
        with self._lock:
            self._counts[i] += count
            self._sum += value * count

    def snapshot(self) -> tuple[list[int], float, int]:
        """(cumulative counts per bucket including +Inf, sum, count)."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for c in counts:
            running += c
            cumulative.append(running)
        return cumulative, round(total, 12), running


class TaskAccuracy:
    """Prequential accuracy per task, over tumbling windows of ``window`` labelled events.

    The accuracy of a task is that of its last complete window (of the running window
    until the first one is complete), like the overall windowed accuracy of
    :class:`stream_cl.prequential.PrequentialStats`. The ``max_tasks`` most recently labelled
    tasks are tracked (label cardinality): a new task takes the place of the one labelled
    longest ago, whose series goes, so a daemon whose tasks roll over (a day, a campaign) shows
    its current ones rather than its first ones; :attr:`dropped` counts the tasks dropped.

    >>> from stream_cl.events import Prediction
    >>> acc = TaskAccuracy(window=2)
    >>> acc.update([Prediction("1", "a", 1.0, "a", "t1"), Prediction("2", "a", 1.0, "b", "t1"),
    ...             Prediction("3", "b", 1.0, "b", "t2"), Prediction("4", "b", 1.0, None, "t2")])
    >>> acc.snapshot()
    {'t1': 0.5, 't2': 1.0}
    """

    def __init__(self, window: int = 1000, max_tasks: int = 100):
        self.window = int(window)
        self.max_tasks = int(max_tasks)
        self._tasks: OrderedDict = OrderedDict()  # task -> [n, hits, last window's accuracy or None], least recent first
        self.dropped = 0  # tasks dropped for a more recent one

    def update(self, predictions: Iterable) -> None:
        """Count the labelled predictions that carry a task (one pass, no per-event allocation)."""
        window = self.window
        batch: dict = {}  # the tasks of this batch, each moved to the recent end once (not once per event)
        for p in predictions:
            task, y = p.task, p.y_true
            if task is None or y is None:
                continue
            s = batch.get(task)
            if s is None:
                s = batch[task] = self._touch(task, batch)
            n = s[0] + 1
            hits = s[1] + (p.y_pred == y)
            if n == window:
                s[0], s[1], s[2] = 0, 0, hits / window
            else:
                s[0], s[1] = n, hits

    def _touch(self, task, batch: dict) -> list:
        """The task's counts, moved to the most recent end; a new task drops the least recent one
        when ``max_tasks`` are tracked."""
        tasks = self._tasks
        s = tasks.get(task)
        if s is not None:
            tasks.move_to_end(task)  # one C call: a scrape on the HTTP thread never misses the series
            return s
        if len(tasks) >= self.max_tasks:
            stalest, _ = tasks.popitem(last=False)
            batch.pop(stalest, None)  # over max_tasks tasks in one batch: its later events start it anew
            self.dropped += 1
        s = tasks[task] = [0, 0, None]
        return s

    def snapshot(self, complete: bool = False) -> dict[str, float]:
        """Each task's accuracy (``complete``: only tasks with a complete window, as the exporter's series are:
        a task per event, a session or request id given as ``mapping.task``, would make a new series with every
        scrape, each of one event's 0 or 1; review r69 F1), keyed by the task's name in the run report
        (:func:`~stream_cl.metrics.report_names`):
        ``str(task)``, or ``repr(task)`` for tasks whose text another tracked task shares. The decoder keeps the
        task ``1`` (a JSON number) and the task ``"1"`` (a string) apart: by ``str()`` alone their series would merge,
        the one written last hiding the other.

        >>> from stream_cl.events import Prediction
        >>> acc = TaskAccuracy(window=2)
        >>> acc.update([Prediction("1", "a", 1.0, "a", 1), Prediction("2", "a", 1.0, "b", "1")])
        >>> acc.snapshot()
        {'1': 1.0, "'1'": 0.0}
        >>> acc.snapshot(complete=True)
        {}
        """
        items = list(self._tasks.items())  # one C-level copy: the loop may add a task meanwhile
        values = {}
        for task, (n, hits, last) in items:
            if last is not None:
                values[task] = last
            elif n and not complete:
                values[task] = hits / n
        # named among the tasks given only: a task with no series must not rename another's (review r70 L1)
        names = report_names(values)
        return {names[task]: value for task, value in values.items()}


# -- the collector --------------------------------------------------------------------------
def _families() -> dict[str, Metric]:
    """One empty family per exported metric, keyed by its PromQL name."""
    out: dict[str, Metric] = {}
    for name, kind in EXPORTED_METRICS.items():
        labels = list(METRIC_LABELS[name])
        if kind == "counter":
            out[name] = CounterMetricFamily(name.removesuffix("_total"), METRIC_HELP[name], labels=labels)
        elif kind == "gauge":
            out[name] = GaugeMetricFamily(name, METRIC_HELP[name], labels=labels)
        elif kind == "histogram":
            out[name] = HistogramMetricFamily(name, METRIC_HELP[name], labels=labels)
        else:  # pragma: no cover - metric_names only uses these three
            raise ValueError(f"{name}: unsupported metric type {kind!r}")
    return out


def _read(fn: Callable[[], object], default=None):
    """A learner attribute read from another thread: any failure is a missing value."""
    try:
        return fn()
    except Exception:
        return default


def _number(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def window_accuracy(stats) -> float | None:
    """Accuracy of the last complete window of labelled events (the running one before the first:
    ``PrequentialStats.recent_accuracy``, the rule)."""
    if stats is None:
        return None
    return _number(getattr(stats, "recent_accuracy", None))


class DaemonCollector:
    """Builds every family of :data:`EXPORTED_METRICS` from the daemon ``get_daemon()`` returns.

    The daemon (or a test double) provides ``metrics`` (a :class:`connectors.daemon.DaemonMetrics`),
    and optionally ``learner``, ``step.stats`` (prequential statistics) and ``pending``
    (the label store); ``get_daemon()`` returns ``None`` while the daemon is being built.
    """

    def __init__(self, get_daemon: Callable[[], object], clock: Callable[[], float] = time.time):
        self.get_daemon = get_daemon
        self.clock = clock

    def describe(self) -> list[Metric]:
        """The metric families, without samples (prometheus_client's check at registration)."""
        return list(_families().values())

    def collect(self) -> list[Metric]:
        """The metrics, read from the daemon attached at scrape time (the families without samples before one is)."""
        fams = _families()
        daemon = self.get_daemon()
        m = getattr(daemon, "metrics", None)
        if m is not None:
            self._daemon(fams, daemon, m)
            self._learner(fams, getattr(daemon, "learner", None), m)
        return list(fams.values())

    # -- the daemon's own counts and snapshots ---------------------------------------------
    def _daemon(self, fams: dict, daemon, m) -> None:
        now = self.clock()
        events = m.events
        for outcome, key in _OUTCOME_KEYS.items():
            fams["stream_cl_events_total"].add_metric([outcome], events.get(key, 0))
        fams["stream_cl_replayed_events_total"].add_metric([], events.get("replayed", 0))
        fams["stream_cl_commit_deferrals_total"].add_metric([], getattr(m, "commit_deferrals", 0))
        transactions = dict(getattr(m, "transactions", {}))
        for outcome in TRANSACTION_OUTCOMES:
            fams["stream_cl_transactions_total"].add_metric([outcome], transactions.get(outcome, 0))
        letters = dict(m.dead_letters)  # one C-level copy: the loop may add a reason meanwhile
        for reason in dict.fromkeys([*REASONS, *sorted(letters)]):
            fams["stream_cl_dead_letters_total"].add_metric([reason], letters.get(reason, 0))
        for name, attr in (("stream_cl_model_step_seconds", "step_seconds"),
                           ("stream_cl_event_latency_seconds", "event_latency"),
                           ("stream_cl_checkpoint_duration_seconds", "checkpoint_duration"),
                           ("stream_cl_commit_duration_seconds", "commit_duration")):
            hist = getattr(m, attr, None)
            if hist is not None:
                cumulative, total, _ = hist.snapshot()
                bounds = [floatToGoString(b) for b in hist.buckets] + ["+Inf"]
                fams[name].add_metric([], list(zip(bounds, cumulative)), total)
        stats = getattr(getattr(daemon, "step", None), "stats", None)
        acc = window_accuracy(stats)
        if acc is not None:
            fams["stream_cl_prequential_accuracy_ratio"].add_metric([], acc)
        tasks = getattr(m, "tasks", None)
        if tasks is not None:
            for task, value in sorted(tasks.snapshot(complete=True).items()):
                fams["stream_cl_task_accuracy_ratio"].add_metric([task], value)
        fams["stream_cl_model_version"].add_metric([], m.checkpoint_seq)
        for key, lag in sorted(dict(m.lag).items()):
            if lag is not None:
                topic, partition = _split_tp(key)
                fams["stream_cl_consumer_lag_messages"].add_metric([topic, partition], lag)
        for key, offset in sorted(dict(m.committed).items()):
            topic, partition = _split_tp(key)
            fams["stream_cl_committed_offset"].add_metric([topic, partition], offset)
        since = m.checkpoint_at if m.checkpoint_at is not None else m.started_at
        fams["stream_cl_checkpoint_age_seconds"].add_metric([], max(now - since, 0.0))
        fams["stream_cl_checkpoint_size_bytes"].add_metric([], m.checkpoint_bytes)
        fams["stream_cl_checkpoints_total"].add_metric([], m.checkpoints)
        pending = getattr(daemon, "pending", None)
        fams["stream_cl_pending_labels"].add_metric([], len(pending) if pending is not None else m.pending_labels)
        fams["stream_cl_waiting_labels"].add_metric([], m.waiting_labels)  # refreshed by the loop about once a second
        labels = dict(m.label_outcomes)  # new work alone (connectors/new_work.py)
        for outcome in LABEL_OUTCOMES:
            fams["stream_cl_labels_total"].add_metric([outcome], labels.get(outcome, 0))
        if getattr(m, "last_progress", None):
            fams["stream_cl_last_progress_timestamp_seconds"].add_metric([], m.last_progress)

    # -- the learner (one status() snapshot at scrape time) ----------------------------------
    def _learner(self, fams: dict, learner, m) -> None:
        status = _read(lambda: learner.status())  # every learner of stream_cl has one (stream_cl.status)
        if status is None:  # no learner yet, or the read failed mid-update: no learner series this scrape
            return
        fams["stream_cl_classes"].add_metric([], len(status.classes))
        fams["stream_cl_features"].add_metric([], len(status.features))
        # new work alone (connectors/new_work.py), not status.category_overflow (the model's lifetime count)
        fams["stream_cl_category_overflow_total"].add_metric([], m.category_overflow)
        drift = status.drift
        if drift is not None:
            # the alarms this process raised (connectors/new_work.py), not the model's lifetime totals over its
            # partitions, which a part taken over or dropped would move (those are /model's)
            seen = set()
            for detector, by_response in sorted(dict(getattr(m, "drift_alarms", {})).items()):
                for response, n in sorted(by_response.items()):
                    fams["stream_cl_drift_alarms_total"].add_metric([str(detector), str(response)], n)
                    seen.add((detector, response))
            if (drift.detector, drift.response) not in seen:  # 0 from the start: rate() works at once
                fams["stream_cl_drift_alarms_total"].add_metric([drift.detector, drift.response], 0)
        for name, value in (("stream_cl_replay_buffer_samples", status.replay_samples),
                            ("stream_cl_replay_buffer_bytes", status.replay_bytes),
                            ("stream_cl_homeostatic_need", status.need)):
            value = _number(value)
            if value is not None:
                fams[name].add_metric([], value)
        for i, head in enumerate(status.heads):
            fams["stream_cl_forgetting_factor"].add_metric([str(i)], head.forgetting)
        for i, lr in enumerate(status.learning_rates or []):
            value = _number(lr)
            if value is not None:
                fams["stream_cl_learning_rate"].add_metric([str(i)], value)


def _split_tp(key: str) -> tuple[str, str]:
    """``"topic/partition"`` -> ``(topic, partition)`` (topic names cannot hold a slash)."""
    topic, _, partition = key.rpartition("/")
    return topic, partition


def register_metrics(registry: CollectorRegistry, get_daemon: Callable[[], object],
                     clock: Callable[[], float] = time.time) -> DaemonCollector:
    """Register the daemon's collector on ``registry``; ``get_daemon()`` may return ``None`` (starting)."""
    collector = DaemonCollector(get_daemon, clock)
    registry.register(collector)
    return collector
