"""Counters never decrease within one process, and never export a restored count (connectors/prometheus.py).

A daemon that is fenced, fails a commit or loses its partitions starts over in the same process
(connectors/daemon_run.py, ``_build_and_run``): the rebuilt daemon restores an older checkpoint, so the
label store's lifetime counters and the learner's category overflow fall back. One collector serves
every daemon the process builds; a decrease would read to Prometheus as a counter reset
(``rate()`` / ``increase()`` would count the whole value again). The exported counters are the
process's own counts of new work (``DaemonMetrics.label_outcomes``, ``category_overflow``, kept
by the rebuilt daemon), never those lifetime counts.
"""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.prometheus import register_metrics
from connectors.status import DaemonMetrics
from stream_cl.status import DriftStatus, LearnerStatus

COUNTERS = ("stream_cl_labels_total", "stream_cl_category_overflow_total")  # lifetime counts in the checkpoint


def _daemon(joined: int, unknown: int, alarms: int, overflow: int, readable: bool = True,
            metrics: DaemonMetrics | None = None) -> SimpleNamespace:
    """A daemon as the collector reads it: the label store's lifetime counters and the learner's status
    (``metrics``: the process's, which a daemon started over in it keeps)."""
    m = DaemonMetrics() if metrics is None else metrics
    m.labels = {"joined": joined, "unknown": unknown, "expired": 1, "evicted": 0}

    class Learner:
        def status(self):
            if not readable:
                raise RuntimeError("mid-update")
            return LearnerStatus(kind="Fake", classes=["a"], features=["f"], category_overflow=overflow, heads=[],
                                 drift=DriftStatus("ddm", "record", alarms, {"ddm": {"record": alarms}} if alarms else {}, []))

    return SimpleNamespace(metrics=m, learner=Learner())


class _Process:
    """One registry for the process, serving whichever daemon is current (as connectors.http.serve does)."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.registry = CollectorRegistry(auto_describe=True)
        register_metrics(self.registry, lambda: self.daemon)

    def scrape(self) -> dict:
        text = generate_latest(self.registry).decode()
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name in COUNTERS:
                    out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out


def test_restored_counters_do_not_decrease_when_the_daemon_starts_over_in_the_same_process():
    proc = _Process(_daemon(joined=7, unknown=2, alarms=3, overflow=69))
    m = proc.daemon.metrics
    m.label_outcomes.update(joined=5, unknown=2)  # the router's counts of this process's new work
    m.category_overflow = 9
    before = proc.scrape()
    assert before[("stream_cl_labels_total", (("outcome", "joined"),))] == 5
    assert before[("stream_cl_category_overflow_total", ())] == 9
    proc.daemon = _daemon(joined=3, unknown=2, alarms=0, overflow=50, metrics=m)  # rebuilt: an older checkpoint
    after = proc.scrape()
    assert after == before  # the process's counts, whatever the restored state holds


def test_a_counter_rises_with_the_new_work_right_after_the_daemon_starts_over():
    """A mark held at the old count (the exporter before) hid the new work of a daemon whose restored
    counts never came back to it (its partitions went to other members)."""
    proc = _Process(_daemon(joined=7, unknown=2, alarms=3, overflow=69))
    m = proc.daemon.metrics
    m.label_outcomes.update(joined=7)
    proc.scrape()
    proc.daemon = _daemon(joined=3, unknown=2, alarms=1, overflow=50, metrics=m)
    m.label_outcomes.update(joined=1)  # the rebuilt daemon's first new join
    assert proc.scrape()[("stream_cl_labels_total", (("outcome", "joined"),))] == 8


def test_an_unreadable_learner_still_skips_its_series():
    proc = _Process(_daemon(joined=1, unknown=0, alarms=4, overflow=10))
    m = proc.daemon.metrics
    m.category_overflow = 4
    proc.scrape()
    proc.daemon = _daemon(joined=1, unknown=0, alarms=0, overflow=0, readable=False, metrics=m)
    skipped = proc.scrape()
    assert ("stream_cl_category_overflow_total", ()) not in skipped  # no learner series this scrape, as before
    proc.daemon = _daemon(joined=1, unknown=0, alarms=2, overflow=3, metrics=m)
    assert proc.scrape()[("stream_cl_category_overflow_total", ())] == 4


def test_a_new_process_exports_the_restored_counters_from_zero():
    """After a crash the checkpoint is older than the last scrape: a new process that exported the
    restored totals (80 joined after 100 scraped) read to Prometheus as a reset, and increase()
    counted the whole restored value again (labels counted twice)."""
    proc = _Process(_daemon(joined=80, unknown=2, alarms=3, overflow=69))
    first = proc.scrape()
    assert first and all(v == 0 for v in first.values()), first


def test_drift_alarms_are_the_process_own_count_not_the_restored_model_totals():
    """The drift counter is the router's count of this process's alarms (DaemonMetrics.drift_alarms):
    a restored (or taken-over) model's lifetime totals never reach it, so it cannot fall back either."""
    proc = _Process(_daemon(joined=0, unknown=0, alarms=3, overflow=0))
    assert _drift(proc) == 0  # 3 restored alarms: exported at 0, the configured pair present
    proc.daemon.metrics.drift_alarms = {"ddm": {"record": 2}}
    assert _drift(proc) == 2
    proc.daemon = _daemon(joined=0, unknown=0, alarms=0, overflow=0)  # started over: an older checkpoint
    proc.daemon.metrics.drift_alarms = {"ddm": {"record": 2}}  # the same DaemonMetrics in the process
    assert _drift(proc) == 2


def _drift(proc) -> float:
    text = generate_latest(proc.registry).decode()
    values = [s.value for fam in text_string_to_metric_families(text) for s in fam.samples
              if s.name == "stream_cl_drift_alarms_total" and s.labels == {"detector": "ddm", "response": "record"}]
    assert len(values) == 1
    return values[0]
