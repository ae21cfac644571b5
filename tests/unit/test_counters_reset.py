"""Counters restored from a checkpoint never decrease within one process (connectors/prometheus.py).

A daemon that is fenced, fails a commit or loses its partitions starts over in the same process
(connectors/daemon.py, ``_build_and_run``): the rebuilt daemon restores an older checkpoint, so the
label store's counters and the learner's category overflow fall back. One
collector serves every daemon the process builds; it must not export the decrease (Prometheus reads
one as a counter reset and ``rate()`` / ``increase()`` would count the whole value again).
"""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.prometheus import RESTORED_COUNTERS, register_metrics
from connectors.status import DaemonMetrics
from stream_cl.status import DriftStatus, LearnerStatus


def _daemon(joined: int, unknown: int, alarms: int, overflow: int, readable: bool = True) -> SimpleNamespace:
    """A daemon as the collector reads it: the label store's counters and the learner's status."""
    m = DaemonMetrics()
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
                if s.name in RESTORED_COUNTERS:
                    out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out


def test_restored_counters_do_not_decrease_when_the_daemon_starts_over_in_the_same_process():
    proc = _Process(_daemon(joined=7, unknown=2, alarms=3, overflow=69))
    before = proc.scrape()
    assert before[("stream_cl_labels_total", (("outcome", "joined"),))] == 7
    assert before[("stream_cl_category_overflow_total", ())] == 69
    proc.daemon = _daemon(joined=3, unknown=2, alarms=0, overflow=50)  # rebuilt: an older checkpoint restored
    after = proc.scrape()
    assert after.keys() == before.keys()
    assert all(after[k] >= before[k] for k in before), {k: (before[k], after[k]) for k in before if after[k] < before[k]}
    assert after == before  # held at the last exported values while the restored state catches up


def test_a_held_counter_rises_again_once_the_restored_count_passes_it():
    proc = _Process(_daemon(joined=7, unknown=2, alarms=3, overflow=69))
    proc.scrape()
    proc.daemon = _daemon(joined=3, unknown=2, alarms=1, overflow=50)
    proc.scrape()
    proc.daemon.metrics.labels = {"joined": 6, "unknown": 4, "expired": 1, "evicted": 0}  # re-learning brings them back
    mid = proc.scrape()
    assert mid[("stream_cl_labels_total", (("outcome", "joined"),))] == 7  # still below the mark
    assert mid[("stream_cl_labels_total", (("outcome", "unknown"),))] == 4  # past it: the count itself
    proc.daemon = _daemon(joined=9, unknown=4, alarms=5, overflow=80)
    later = proc.scrape()
    assert later[("stream_cl_labels_total", (("outcome", "joined"),))] == 9
    assert later[("stream_cl_category_overflow_total", ())] == 80


def test_an_unreadable_learner_still_skips_its_series_and_keeps_their_marks():
    proc = _Process(_daemon(joined=1, unknown=0, alarms=4, overflow=10))
    proc.scrape()
    proc.daemon = _daemon(joined=1, unknown=0, alarms=0, overflow=0, readable=False)
    skipped = proc.scrape()
    assert ("stream_cl_category_overflow_total", ()) not in skipped  # no learner series this scrape, as before
    proc.daemon = _daemon(joined=1, unknown=0, alarms=2, overflow=3)
    back = proc.scrape()
    assert back[("stream_cl_category_overflow_total", ())] == 10



def test_a_new_process_exports_the_restored_counters_from_zero():
    """After a crash the checkpoint is older than the last scrape: a new process that exported the
    restored totals (80 joined after 100 scraped) read to Prometheus as a reset, and increase()
    counted the whole restored value again (labels counted twice)."""
    from connectors.prometheus import restored_counts

    d = _daemon(joined=80, unknown=2, alarms=3, overflow=69)
    d.metrics.counter_base = restored_counts(d)  # as Daemon.__init__ takes it, just after its restore
    proc = _Process(d)
    first = proc.scrape()
    assert first and all(v == 0 for v in first.values()), first
    d.metrics.labels = {"joined": 85, "unknown": 2, "expired": 1, "evicted": 0}
    proc.daemon = SimpleNamespace(metrics=d.metrics, learner=_daemon(0, 0, alarms=4, overflow=70).learner)
    later = proc.scrape()
    assert later[("stream_cl_labels_total", (("outcome", "joined"),))] == 5
    assert later[("stream_cl_category_overflow_total", ())] == 1


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
