"""A delayed label's join in the daemon's prequential report (status file ``report``, checkpoint ``stats``).

The report counts each event consumed once: ``events`` = ``labelled`` + ``predict_only``. An event whose
label comes later is counted as predict-only when it is predicted; when its label joins it becomes a
labelled one (scored against the prediction published), and is not counted a second time.
"""

from __future__ import annotations

from types import SimpleNamespace

from connectors.kafka import PolledBatch
from connectors.router import Router
from connectors.status import DaemonMetrics
from stream_cl import AnalyticClassifier
from stream_cl.config import load_config_dict
from stream_cl.events import Event, Prediction
from stream_cl.factory import build_learner
from stream_cl.pending import LabelUpdate
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import Prequential
from router_kit import RecordingPublisher  # tests/unit/router_kit.py


def _router(partitioned: bool = False):
    cfg = load_config_dict({"model": {"kind": "analytic", "forgetting": [1.0]},
                            "kafka": {"topics": ["events"], "predictions_topic": "p", "labels_topic": "labels"}})
    learner = build_learner(cfg.model)
    state = SimpleNamespace(add=lambda n: None, touched=lambda key, n: None)
    return Router(cfg, Prequential(learner, window=5), learner, PendingStores(), RecordingPublisher(), DaemonMetrics(), state,
                  partitioned=partitioned)


def _unlabelled(n, start=0):
    return [Event({"a": float(i % 3 - 1)}, None, str(i), None, None, f"events/0@{i}") for i in range(start, start + n)]


def _counts(stats):
    rep = stats.report()
    return rep["events"], rep["labelled"], rep["predict_only"], sum(rep["predicted_counts"].values())


def test_a_joined_event_counts_once_in_the_report():
    step = Prequential(AnalyticClassifier(), window=2)
    step.process([Event({"a": 1.0}, "x", id="0"), Event({"a": -1.0}, "y", id="1")])
    preds, _ = step.process([Event({"a": 1.0}, None, id="2"), Event({"a": -1.0}, None, id="3")])
    assert _counts(step.stats) == (4, 2, 2, 3)  # the first event had no class to predict
    step.process([Event({"a": 1.0}, "x", id="2"), Event({"a": -1.0}, "x", id="3")], published=preds)
    assert _counts(step.stats) == (4, 4, 0, 3)
    assert [p.y_pred for p in preds] == ["x", "y"]
    assert step.stats.correct == 0 + 1  # none of the first pair (no class, then "x" for "y"); "x" of the joined pair
    assert [w["events"] for w in step.stats.windows] == [2, 4]  # the window closed at the 4th event consumed


def test_a_join_of_an_event_predicted_elsewhere_takes_nothing_from_predict_only():
    step = Prequential(AnalyticClassifier())
    step.process([Event({"a": 1.0}, "x", id="0"), Event({"a": 1.0}, None, id="1")])
    told = Prediction("9", "x", 1.0)  # predicted before a restore (counted by that process)
    step.process([Event({"a": 1.0}, "x", id="9")], published=[told], counted=[False])
    assert _counts(step.stats) == (2, 2, 1, 1)


def test_the_daemon_report_counts_delayed_label_events_once():
    """Found by review: 10 events, all later labelled, were reported as 20 (10 predict-only)."""
    router = _router()
    router.process(PolledBatch(_unlabelled(10), {}, frozenset()))
    router.process(PolledBatch([LabelUpdate(str(i), "x" if i % 2 else "y", f"labels/0@{i}") for i in range(10)],
                               {}, frozenset()))
    assert len(router.publisher.predictions) == 10
    assert _counts(router.step.stats)[:3] == (10, 10, 0)
    assert router.step.stats.report()["events_per_s"] is not None


def test_labels_that_came_first_count_their_events_once():
    router = _router()
    router.process(PolledBatch([LabelUpdate(str(i), "x", f"labels/0@{i}") for i in range(4)], {}, frozenset()))
    router.process(PolledBatch(_unlabelled(6), {}, frozenset()))  # 4 join their waiting label, 2 wait
    assert _counts(router.step.stats)[:3] == (6, 4, 2)


def test_a_new_join_of_an_event_re_read_silently_is_learned_and_not_scored():
    router = _router()
    events = _unlabelled(3)
    router.process(PolledBatch(events, {}, frozenset(e.origin for e in events)))  # re-read after a restore
    router.process(PolledBatch([LabelUpdate("0", "x", "labels/0@0")], {}, frozenset()))  # a new label
    # its event was counted before the restore, with a prediction this process does not know
    assert _counts(router.step.stats)[:3] == (0, 0, 0)
    assert router.step.stats.report()["unscored"] == 1
    assert router.learner.classes_ == ["x"] and router.pending.counters()["joined"] == 1  # learned all the same


def test_an_event_whose_partition_came_back_to_this_member_counts_once():
    # found by review: a store reinstalled by a takeover (the partition revoked, then assigned back from
    # the changelog) marks its entries committed, and the joins of events this process had counted as
    # predict-only were added to labelled without leaving predict_only (labelled + predict_only = 24
    # against 14 events)
    router = _router(partitioned=True)
    router.process(PolledBatch([Event({"a": float(i % 3 - 1)}, "xy"[i % 2], f"L{i}", None, None, f"events/0@{i}")
                                for i in range(4)], {}, frozenset()))
    router.process(PolledBatch(_unlabelled(10, start=4), {}, frozenset()))
    assert _counts(router.step.stats)[:3] == (14, 4, 10)
    saved = router.pending.export("events/0")
    router.pending.drop("events/0")
    router.pending.install("events/0", saved)
    router.process(PolledBatch([LabelUpdate(str(i), "x", f"labels/0@{i}") for i in range(4, 14)], {}, frozenset()))
    assert _counts(router.step.stats)[:3] == (14, 14, 0)


def test_a_label_joined_in_the_store_from_before_partitions_does_not_also_wait():
    # a reviewer read it in the code: the partition's store, which did not hold the event, kept the label
    # waiting for it, joined or not in the store from before partitions (later counted unknown, or joined
    # with another event of that id)
    router = _router(partitioned=True)
    router.pending.for_key(None).add(Event({"a": 1.0}, None, "e1", None, None, "events/0@0"))  # a restored old store
    router.process(PolledBatch([LabelUpdate("e1", "x", "labels/0@0")], {}, frozenset()))
    assert router.pending.counters()["joined"] == 1
    assert router.pending.waiting_labels == 0
    router.process(PolledBatch([LabelUpdate("e2", "x", "labels/0@1")], {}, frozenset()))  # its event not read yet
    assert router.pending.for_key("events/0").waiting_labels == 1
