"""connectors/prometheus.py: the collector exports exactly connectors/metric_names.py, read at scrape time."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.daemon import DaemonMetrics
from connectors.metric_names import EVENT_OUTCOMES, EXPORTED_METRICS, LABEL_OUTCOMES, METRIC_LABELS, base_metric
from connectors.prometheus import (CHECKPOINT_BUCKETS, LATENCY_BUCKETS, STEP_BUCKETS, BatchHistogram, TaskAccuracy,
                                   register_metrics)
from stream_cl.events import REASONS, Prediction
from stream_cl.prequential import PrequentialStats
from stream_cl.status import DriftStatus, HeadStatus, LearnerStatus

HISTOGRAM_BUCKETS = {"stream_cl_model_step_seconds": STEP_BUCKETS, "stream_cl_event_latency_seconds": LATENCY_BUCKETS,
                     "stream_cl_checkpoint_duration_seconds": CHECKPOINT_BUCKETS}


class FakeLearner:
    """A learner whose status() is built from attributes a test can change between scrapes."""

    def __init__(self):
        self.classes_ = ["a", "b", "c"]
        self.feature_names_in_ = ["f0", "f1"]
        self.alarm_counts_ = {"adwin": {"record": 2}}
        self.need_ = 0.25
        self.forgetting_ = [1.0, 0.99]
        self.learning_rates_ = [0.01, 0.02]

    def status(self) -> LearnerStatus:
        return LearnerStatus(kind="Fake", classes=list(self.classes_), features=list(self.feature_names_in_),
                             category_overflow=11, heads=[HeadStatus(f) for f in self.forgetting_],
                             drift=DriftStatus("adwin", "record", 2, self.alarm_counts_, []), need=self.need_,
                             replay_samples=40, replay_bytes=4096, learning_rates=list(self.learning_rates_))


def fake_daemon(learner=None) -> SimpleNamespace:
    m = DaemonMetrics()
    m.events.update(learned=7, predicted=2, dead_letter=3, label_joined=1)
    m.dead_letters.update(["malformed", "malformed", "wrong_type"])
    m.labels = {"joined": 1, "unknown": 2, "expired": 3, "evicted": 4, "added": 9, "pending": 1}  # the store's lifetime
    m.label_outcomes.update(joined=1, expired=7, unknown=2)  # counted by the router, new work only
    m.category_overflow = 5  # counted by the router (the learner's lifetime count is its status': 11)
    m.waiting_labels = 7
    m.lag, m.committed = {"events/0": 5, "events/1": None}, {"events/0": 100, "events/1": 42}
    m.checkpoints, m.checkpoint_seq, m.checkpoint_bytes, m.checkpoint_at = 2, 6, 1234, 1000.0
    m.drift_alarms = {"adwin": {"record": 2}}  # counted by the router, per step
    m.beat()
    m.step_seconds.observe(0.003, 1)
    m.event_latency.observe(0.02, 256)
    m.checkpoint_duration.observe(0.2)
    m.tasks = TaskAccuracy(window=2)
    m.tasks.update([Prediction("1", "a", 1.0, "a", "t1"), Prediction("2", "b", 1.0, "a", "t1")])
    stats = PrequentialStats(window=2)
    stats.update(["a", "b", "a"], ["a", "a", "a"])
    return SimpleNamespace(metrics=m, learner=learner if learner is not None else FakeLearner(),
                           step=SimpleNamespace(stats=stats), pending=[1, 2, 3])


def scrape(daemon, clock=None) -> tuple[str, dict]:
    registry = CollectorRegistry()
    kwargs = {"clock": clock} if clock else {}
    register_metrics(registry, lambda: daemon, **kwargs)
    text = generate_latest(registry).decode()
    return text, {f.name: f for f in text_string_to_metric_families(text)}


def value(families: dict, name: str, **labels) -> float:
    """The sample of ``name`` (a PromQL series name) with exactly ``labels``."""
    fam = families[base_metric(name).removesuffix("_total")]
    found = [s.value for s in fam.samples if s.name == name and s.labels == labels]
    assert len(found) == 1, f"{name}{labels}: {fam.samples}"
    return found[0]


def family(families: dict, name: str):
    return families[base_metric(name).removesuffix("_total")]


def exported(families: dict) -> dict[str, tuple[str, tuple]]:
    """PromQL name -> (type, label names of its samples), as Prometheus sees them."""
    out = {}
    for fam in families.values():
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        labels = set()
        for s in fam.samples:
            labels |= set(s.labels) - ({"le"} if fam.type == "histogram" else set())
        out[name] = (fam.type, tuple(sorted(labels)))
    return out


def test_exports_exactly_the_listed_metrics_with_their_types_and_labels():
    text, families = scrape(fake_daemon())
    assert exported(families) == {n: (t, tuple(sorted(METRIC_LABELS[n]))) for n, t in EXPORTED_METRICS.items()}
    for fam in families.values():
        assert fam.samples, f"{fam.name}: no samples from a fully populated daemon"
    for line in text.splitlines():
        if not line.startswith("#"):
            assert base_metric(line.split("{")[0].split(" ")[0]) is not None, line
    assert "_created" not in text


def test_every_family_is_described_before_the_daemon_exists():
    text, families = scrape(None)
    assert {n + ("_total" if f.type == "counter" else "") for n, f in families.items()} == set(EXPORTED_METRICS)
    assert all(not f.samples for f in families.values()) and "_created" not in text


def test_counters_are_the_daemons_own_counts():
    _, fams = scrape(fake_daemon())
    assert {o: value(fams, "stream_cl_events_total", outcome=o) for o in EVENT_OUTCOMES} == {
        "learned": 7, "predicted_only": 2, "dead_lettered": 3}
    reasons = {s.labels["reason"]: s.value for s in family(fams, "stream_cl_dead_letters_total").samples}
    assert set(reasons) == set(REASONS) and reasons["malformed"] == 2 and reasons["wrong_type"] == 1
    assert sum(reasons.values()) == 3
    assert {o: value(fams, "stream_cl_labels_total", outcome=o) for o in LABEL_OUTCOMES} == {
        "joined": 1, "expired": 7, "unknown": 2}
    assert value(fams, "stream_cl_checkpoints_total") == 2
    assert value(fams, "stream_cl_drift_alarms_total", detector="adwin", response="record") == 2


def test_drift_alarms_are_the_routers_count_not_the_models_totals():
    daemon = fake_daemon()
    daemon.learner.alarm_counts_ = {"adwin": {"record": 9}}  # a part taken over brought 7 alarms raised elsewhere
    _, fams = scrape(daemon)
    assert value(fams, "stream_cl_drift_alarms_total", detector="adwin", response="record") == 2


def test_histograms_have_the_chosen_buckets_and_batch_counts():
    _, fams = scrape(fake_daemon())
    for name, bounds in HISTOGRAM_BUCKETS.items():
        les = [s.labels["le"] for s in fams[name].samples if s.name == name + "_bucket"]
        assert [float(le) for le in les] == [*bounds, math.inf], name
    assert value(fams, "stream_cl_event_latency_seconds_count") == 256  # one observation for a batch of 256
    assert value(fams, "stream_cl_event_latency_seconds_sum") == pytest.approx(0.02 * 256)
    assert value(fams, "stream_cl_event_latency_seconds_bucket", le="0.01") == 0
    assert value(fams, "stream_cl_event_latency_seconds_bucket", le="0.025") == 256
    assert value(fams, "stream_cl_model_step_seconds_bucket", le="0.0025") == 0
    assert value(fams, "stream_cl_model_step_seconds_bucket", le="0.005") == 1
    assert 0.001 <= STEP_BUCKETS[1] and STEP_BUCKETS[-2] >= 2.0  # ~1 ms .. 2 s per micro-batch
    assert LATENCY_BUCKETS[0] <= 0.001 and LATENCY_BUCKETS[-2] >= 10.0  # ~1 ms .. 10 s per event


def test_gauges_read_the_state_at_scrape_time():
    now = [2000.0]
    daemon = fake_daemon()
    _, fams = scrape(daemon, clock=lambda: now[0])
    assert value(fams, "stream_cl_homeostatic_need") == 0.25
    assert value(fams, "stream_cl_classes") == 3 and value(fams, "stream_cl_features") == 2
    assert value(fams, "stream_cl_consumer_lag_messages", topic="events", partition="0") == 5
    assert len(fams["stream_cl_consumer_lag_messages"].samples) == 1  # unknown lag: no sample
    assert value(fams, "stream_cl_committed_offset", topic="events", partition="1") == 42
    assert value(fams, "stream_cl_checkpoint_age_seconds") == 1000.0
    assert value(fams, "stream_cl_forgetting_factor", head="1") == 0.99
    assert value(fams, "stream_cl_learning_rate", layer="1") == 0.02
    assert value(fams, "stream_cl_replay_buffer_samples") == 40 and value(fams, "stream_cl_replay_buffer_bytes") == 4096
    assert value(fams, "stream_cl_model_version") == 6 and value(fams, "stream_cl_pending_labels") == 3
    assert value(fams, "stream_cl_waiting_labels") == 7
    assert value(fams, "stream_cl_category_overflow_total") == 5  # the router's count, not the learner's 11
    assert value(fams, "stream_cl_prequential_accuracy_ratio") == 0.5  # the last complete window of 2
    assert value(fams, "stream_cl_task_accuracy_ratio", task="t1") == 0.5
    assert value(fams, "stream_cl_last_progress_timestamp_seconds") == daemon.metrics.last_progress

    # change the state; the next scrape sees it (nothing was cached at registration)
    learner, m = daemon.learner, daemon.metrics
    learner.need_, learner.classes_, learner.forgetting_ = 1.5, ["a", "b", "c", "d"], [1.0, 0.97]
    m.drift_alarms = {"adwin": {"record": 3}}
    m.lag = {"events/0": 0, "events/1": 9}
    m.checkpoint_seq = 7
    m.events["learned"] += 5
    daemon.step.stats.update(["a", "a"], ["a", "a"])
    now[0] = 2010.0
    _, fams = scrape(daemon, clock=lambda: now[0])
    assert value(fams, "stream_cl_homeostatic_need") == 1.5 and value(fams, "stream_cl_classes") == 4
    assert value(fams, "stream_cl_forgetting_factor", head="1") == 0.97
    assert value(fams, "stream_cl_consumer_lag_messages", topic="events", partition="1") == 9
    assert value(fams, "stream_cl_model_version") == 7 and value(fams, "stream_cl_checkpoint_age_seconds") == 1010.0
    assert value(fams, "stream_cl_events_total", outcome="learned") == 12
    assert value(fams, "stream_cl_drift_alarms_total", detector="adwin", response="record") == 3
    assert value(fams, "stream_cl_prequential_accuracy_ratio") == 1.0


def test_a_learner_without_monitoring_attributes_gives_no_series_and_no_error():
    daemon = fake_daemon(learner=object())
    daemon.step = None
    _, fams = scrape(daemon)
    for name in ("stream_cl_classes", "stream_cl_features", "stream_cl_drift_alarms_total", "stream_cl_homeostatic_need",
                 "stream_cl_forgetting_factor", "stream_cl_learning_rate", "stream_cl_replay_buffer_samples",
                 "stream_cl_replay_buffer_bytes", "stream_cl_prequential_accuracy_ratio", "stream_cl_category_overflow_total"):
        assert not family(fams, name).samples, name
    assert value(fams, "stream_cl_events_total", outcome="learned") == 7  # the daemon's own series remain

    class Broken(FakeLearner):
        def status(self):
            raise RuntimeError("mid-update")

    _, fams = scrape(fake_daemon(learner=Broken()))  # a failing read skips the learner's series, not the scrape
    assert not fams["stream_cl_classes"].samples and not fams["stream_cl_features"].samples
    assert value(fams, "stream_cl_events_total", outcome="learned") == 7


def test_a_configured_detector_exports_zero_before_its_first_alarm():
    learner = FakeLearner()
    learner.alarm_counts_ = {}
    daemon = fake_daemon(learner)
    daemon.metrics.drift_alarms = {}
    _, fams = scrape(daemon)
    assert value(fams, "stream_cl_drift_alarms_total", detector="adwin", response="record") == 0


def test_the_real_learners_attributes_are_exported():
    """The real learner's status() carries what the collector exports."""
    from stream_cl.config import load_config_dict
    from stream_cl.factory import build_learner

    cfg = load_config_dict({"model": {"device": "cpu", "width": 8, "key_units": 0},
                            "replay": {"policy": "reservoir", "max_samples": 50},
                            "drift": {"detector": "adwin", "response": ["need", "forget"]},
                            "homeostasis": {"enabled": True}})
    cfg = cfg.replace("model", max_categories=2)
    learner = build_learner(cfg)
    learner.prequential_batch([{"u": float(i % 3), "v": 1.0, "c": f"c{i % 4}"} for i in range(64)],
                              [str(i % 3) for i in range(64)])
    daemon = fake_daemon(learner)
    daemon.metrics.drift_alarms = {}  # no router stepped it: the configured pair at 0
    daemon.metrics.category_overflow = 0  # nor counted its overflow
    _, fams = scrape(daemon)
    assert value(fams, "stream_cl_classes") == 3 and value(fams, "stream_cl_features") == 5  # u, v, c=c0, c=c1, c=<other>
    assert learner.status().category_overflow == 32  # c2 and c3: 16 events each ...
    assert value(fams, "stream_cl_category_overflow_total") == 0  # ... learned by no router: none in this process
    factors = fams["stream_cl_forgetting_factor"].samples  # one per ridge head: 1.0, 0.995, inputs 0.999 and 1.0
    assert len(factors) == 4 and sorted(s.value for s in factors) == sorted(learner.forgetting_)
    assert value(fams, "stream_cl_replay_buffer_samples") > 0 and value(fams, "stream_cl_replay_buffer_bytes") > 0
    assert value(fams, "stream_cl_homeostatic_need") == learner.status().need  # (>= 0 held for any value; review r102)
    alarms = {(s.labels["detector"], s.labels["response"]): s.value for s in family(fams, "stream_cl_drift_alarms_total").samples}
    assert alarms == {("adwin", "need+forget"): 0}


def test_batch_histogram_and_task_accuracy():
    with pytest.raises(ValueError):
        BatchHistogram((0.1, 0.01))
    h = BatchHistogram((1.0,))
    h.observe(1.0, count=2)  # on the bound: le="1.0"
    h.observe(0.5, count=0)  # nothing
    assert h.snapshot() == ([2, 2], 2.0, 2)
    acc = TaskAccuracy(window=3, max_tasks=2)
    hits = {"t0": [1, 0, 0, 1, 1], "t1": [1, 1, 1], "t2": [1], "t3": [0]}  # t2, t3: the latest, over max_tasks
    acc.update([Prediction("i", "a", 1.0, "a" if hit else "b", task) for task, hs in hits.items() for hit in hs])
    acc.update([Prediction("j", "a", 1.0, None, "t1"), Prediction("k", "a", 1.0, "a", None)])  # unlabelled, no task
    assert acc.snapshot() == {"t2": 1.0, "t3": 0.0} and acc.dropped == 2  # the latest 2 tasks: t0, t1 dropped
