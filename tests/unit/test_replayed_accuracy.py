"""Events re-learned after a restore ("replayed": silent records) count once in the accuracies (connectors/router.py).

After a restore the source returns the records between the checkpoint's offsets and the committed
ones again, marked silent: the model re-learns them, nothing is published, and they must not be
counted again in ``stream_cl_prequential_accuracy_ratio`` / ``stream_cl_task_accuracy_ratio``: each event counts
once, with the prediction that was published (before the restore).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from connectors.kafka import PolledBatch
from connectors.prometheus import TaskAccuracy
from connectors.router import Router
from connectors.status import DaemonMetrics
from stream_cl.config import load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.pending import LabelUpdate
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import Prequential
from router_kit import RecordingPublisher  # tests/unit/router_kit.py


class _SpyTasks(TaskAccuracy):
    """Task accuracy that also records the origin of every labelled prediction it counts."""

    def __init__(self):
        super().__init__(window=1000)
        self.counted: list[str] = []

    def update(self, predictions) -> None:
        predictions = list(predictions)
        self.counted += [p.origin for p in predictions if p.task is not None and p.y_true is not None]
        super().update(predictions)


def _router(batch_size=4, labels_topic="labels"):
    cfg = load_config_dict({"model": {"kind": "analytic", "forgetting": [1.0]},
                            "kafka": {"topics": ["events"], "predictions_topic": "p", "labels_topic": labels_topic},
                            "run": {"batch_size": batch_size}})
    learner = build_learner(cfg.model)
    metrics = DaemonMetrics()
    metrics.tasks = _SpyTasks()
    step = Prequential(learner, window=5)
    state = SimpleNamespace(add=lambda n: None, touched=lambda key, n: None)
    router = Router(cfg, step, learner, PendingStores(), RecordingPublisher(), metrics, state, partitioned=False)
    return router, cfg


def _events(n, seed=0, labelled=True, start=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(start, start + n):
        x = rng.normal(size=2)
        y = ("p" if x[0] > 0 else "n") if labelled else None
        out.append(Event({"a": float(x[0]), "b": float(x[1])}, y, str(i), f"t{i % 2}", None, f"events/0@{i}"))
    return out


def test_replayed_events_are_learned_but_not_counted_in_the_accuracies():
    router, cfg = _router()
    events = _events(12)
    silent = frozenset(e.origin for e in events[:7])  # a chunk of 4 holds both kinds: events 4-7
    router.process(PolledBatch(list(events), {}, silent))
    fresh = [e.origin for e in events[7:]]
    m, stats = router.metrics, router.step.stats
    assert m.tasks.counted == fresh  # each published prediction once; none of the replayed ones
    assert (stats.events, stats.labelled) == (5, 5)  # the exported prequential accuracy: the same 5 events
    assert m.events["replayed"] == 7 and m.events["learned"] == 5
    assert [p.origin for p in router.publisher.predictions] == fresh
    # every event was learned, in order, as if in one batch
    ref = build_learner(cfg.model)
    ref.prequential_batch([e.x for e in events], [e.y for e in events])
    got, want = router.learner.state_dict()["head"]["ridge"], ref.state_dict()["head"]["ridge"]
    for k in ("A", "B"):
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-9)


def test_delayed_labels_joined_again_in_the_replay_are_not_counted_again():
    router, _ = _router()
    a, b, c, d = _events(4, labelled=False)
    # replayed: a and b were predicted before the restore and wait (again) for their labels
    router.process(PolledBatch([a, b], {}, frozenset({a.origin, b.origin})))
    # a's label was read (and counted) before the restore; b's is new
    la, lb = LabelUpdate(a.id, "p", "labels/0@0"), LabelUpdate(b.id, "n", "labels/0@1")
    router.process(PolledBatch([la, lb], {}, frozenset({la.origin})))
    # labels that came before their events: c's label and c replayed, d's label and d new
    lc, ld = LabelUpdate(c.id, "p", "labels/0@2"), LabelUpdate(d.id, "n", "labels/0@3")
    router.process(PolledBatch([lc, ld], {}, frozenset({lc.origin})))
    router.process(PolledBatch([c, d], {}, frozenset({c.origin})))
    # b's prediction was published before the restore and is not known now: learned, not scored
    assert router.metrics.tasks.counted == [d.origin]
    assert router.step.stats.labelled == 1 and router.step.stats.unscored == 1
    assert router.pending.counters()["joined"] == 4  # all four learned


def test_a_delayed_label_is_scored_against_the_prediction_that_was_published():
    router, _ = _router(batch_size=64)
    router.process(PolledBatch(_events(40), {}, frozenset()))  # the concept: "p" where a > 0
    waiting = Event({"a": 2.0, "b": 0.0}, None, "w", "t0", None, "events/0@1000")
    router.process(PolledBatch([waiting], {}, frozenset()))
    assert router.publisher.predictions[-1].y_pred == "p"  # what the consumers were told
    flipped = [Event(e.x, {"p": "n", "n": "p"}[e.y], e.id, e.task, e.ts, e.origin)
               for e in _events(400, seed=1, start=2000)]  # the concept turns over before the label comes
    router.process(PolledBatch(flipped, {}, frozenset()))
    assert router.learner.predict_one(waiting.x) == "n"  # a prediction made now would be right
    before = (router.step.stats.labelled, router.step.stats.correct)
    router.process(PolledBatch([LabelUpdate("w", "n", "labels/0@0")], {}, frozenset()))
    assert (router.step.stats.labelled, router.step.stats.correct) == (before[0] + 1, before[1])  # the published "p" missed
    assert router.metrics.tasks.counted[-1] == waiting.origin
    assert router.pending.counters()["joined"] == 1


def test_a_delayed_label_of_an_event_re_read_after_a_restore_is_not_scored_against_the_replay():
    """Found by review against a broker: after a crash, an event re-read below the committed offsets while
    it waited for its label was scored against the replay's prediction, not the one published before the
    crash (50 labels: accuracy 0.0 against 0.98). Here the replay predicts with a model that has learned
    nothing yet (no class: no label), while "p" had been published and was right."""
    router, _ = _router(batch_size=64)
    waiting = Event({"a": 2.0, "b": 0.0}, None, "w", "t0", None, "events/0@1000")
    router.process(PolledBatch([waiting], {}, frozenset({waiting.origin})))  # re-read silently
    assert router.replay_step().stats.report()["predicted_counts"] == {}  # the replay's prediction: none
    router.process(PolledBatch([LabelUpdate("w", "p", "labels/0@0")], {}, frozenset()))  # a new label
    stats = router.step.stats
    assert (stats.labelled, stats.correct, stats.unscored) == (0, 0, 1)  # scored it was a miss (1, 0)
    assert router.metrics.tasks.counted == []
    assert router.learner.classes_ == ["p"]  # learned


def test_a_label_that_came_first_is_scored_against_the_prediction_published_on_arrival():
    router, _ = _router(batch_size=64)
    router.process(PolledBatch(_events(40), {}, frozenset()))
    router.process(PolledBatch([LabelUpdate("w", "n", "labels/0@0")], {}, frozenset()))  # before its event
    waiting = Event({"a": 2.0, "b": 0.0}, None, "w", "t0", None, "events/0@1000")
    flipped = [Event(e.x, {"p": "n", "n": "p"}[e.y], e.id, e.task, e.ts, e.origin)
               for e in _events(400, seed=1, start=2000)]
    before = (router.step.stats.labelled, router.step.stats.correct)
    # the event, then a turned-over concept in the same poll: its label is learned after them
    router.process(PolledBatch([waiting, *flipped], {}, frozenset()))
    published = router.publisher.predictions[-401:]
    assert published[0].origin == waiting.origin and published[0].y_pred == "p"
    assert router.learner.predict_one(waiting.x) == "n"  # a prediction made at the join would be right
    hits = sum(p.y_pred == p.y_true for p in published[1:])
    assert (router.step.stats.labelled, router.step.stats.correct) == (before[0] + 401, before[1] + hits)


def _refusing_router():
    """A router whose model refuses to learn an event with a third input (max_columns: the bias and two)."""
    cfg = load_config_dict({"model": {"kind": "analytic", "forgetting": [1.0], "max_columns": 3},
                            "kafka": {"topics": ["events"], "predictions_topic": "p", "labels_topic": "labels",
                                      "dead_letter_topic": "dead"}})
    learner = build_learner(cfg.model)
    state = SimpleNamespace(add=lambda n: None, touched=lambda key, n: None)
    router = Router(cfg, Prequential(learner, window=5), learner, PendingStores(), RecordingPublisher(), DaemonMetrics(), state,
                    partitioned=False)
    router.process(PolledBatch(_events(10), {}, frozenset()))
    return router, Event({"a": 1.0, "b": 0.0, "c": 1.0}, None, "w", None, None, "events/0@100")


def test_the_dead_letter_of_a_refused_join_is_published_once_across_a_restore():
    """Found by review against a broker: the replayed join's dead letter was filtered by its event's
    origin, which the replay had not re-read: a read_committed reader saw it twice."""
    router, waiting = _refusing_router()
    router.process(PolledBatch([waiting], {}, frozenset()))  # predicted (its new input ignored), then waits
    label = LabelUpdate("w", "p", "labels/0@0")
    router.process(PolledBatch([label], {}, frozenset()))
    # the label record's dead letter (review r56 #3: it was the event's, whose prediction was published)
    assert [dict(h)["stream-cl.origin"] for _, _, h in router.publisher.dead] == [b"labels/0@0"]
    # after a restore to before the label, the label is read again (silent) and joins the restored event
    restored, _ = _refusing_router()
    restored.process(PolledBatch([waiting], {}, frozenset({waiting.origin})))
    restored.process(PolledBatch([label], {}, frozenset({label.origin})))
    assert restored.publisher.dead == [] and restored.pending.counters()["joined"] == 1


def test_a_new_join_with_an_event_read_again_in_the_same_poll_publishes_its_dead_letter():
    router, waiting = _refusing_router()
    label = LabelUpdate("w", "p", "labels/0@0")  # new, while its event is re-read (silent) in the same poll
    router.process(PolledBatch([waiting, label], {}, frozenset({waiting.origin})))
    assert [dict(h)["stream-cl.reason"] for _, _, h in router.publisher.dead] == [b"rejected_by_model"]


def _restored_router():
    """A router after a restore: its model learned two events, re-read silently."""
    router, _ = _router()
    router.process(PolledBatch(_events(2), {}, frozenset(e.origin for e in _events(2))))
    return router


_W = Event({"a": 2.0, "b": 0.0}, None, "w", "t0", None, "events/0@5")
_LW = LabelUpdate("w", "p", "labels/0@3")


@pytest.mark.parametrize("case", ["X", "Y"])
def test_a_join_with_one_record_re_read_silently_is_a_new_join(case):
    """Found by review. Case X: a new label read before its event, which was committed before the
    crash and is re-read silently. Case Y: a label committed while it waited for its event is re-read
    silently after the event, which came new. Either way the join never happened before the crash,
    so it counts once now (it had counted nowhere): in Y scored against the prediction published now; in
    X, whose prediction was published before the crash and is not known, learned and not scored."""
    router = _restored_router()
    first, second = (_LW, _W) if case == "X" else (_W, _LW)
    router.process(PolledBatch([first], {}, frozenset()))
    router.process(PolledBatch([second], {}, frozenset({second.origin})))
    assert router.pending.counters()["joined"] == 1
    assert router.metrics.tasks.counted == ([] if case == "X" else [_W.origin])
    assert (router.step.stats.labelled, router.step.stats.unscored) == ((0, 1) if case == "X" else (1, 0))


def test_a_refused_new_join_with_one_record_re_read_silently_publishes_its_dead_letter():
    """Cases X and Y with a join the model refuses: being new, its dead letter is published (once)."""
    for case in "XY":
        router, waiting = _refusing_router()
        label = LabelUpdate("w", "p", "labels/0@0")
        if case == "X":  # a new label first, then its event re-read silently
            steps = [([label], frozenset()), ([waiting], frozenset({waiting.origin}))]
        else:  # a new event first, then its label re-read silently
            steps = [([waiting], frozenset()), ([label], frozenset({label.origin}))]
        for items, silent in steps:
            router.process(PolledBatch(items, {}, silent))
        assert router.pending.counters()["joined"] == 1, case
        # the label record's dead letter (review r56 #3: it was the event's, whose prediction was published)
    assert [dict(h)["stream-cl.origin"] for _, _, h in router.publisher.dead] == [b"labels/0@0"], case


def test_joins_after_a_checkpoint_round_trip_are_replayed_only_when_both_records_were_committed():
    """Every entry of a saved store was committed (a checkpoint is written after its commit, a changelog
    record in it): joined with a silent record, the join is a replayed one; with a new one, a new join."""
    router, _ = _router()
    router.process(PolledBatch(_events(2), {}, frozenset()))
    w1, w2 = (Event({"a": 2.0, "b": 0.0}, None, f"w{i}", "t0", None, f"events/0@{10 + i}") for i in (1, 2))
    l1, l2 = (LabelUpdate(f"v{i}", "p", f"labels/0@{i}") for i in (1, 2))
    router.process(PolledBatch([w1, w2, l1, l2], {}, frozenset()))  # two events and two early labels wait
    restored, _ = _router()
    restored.pending.load_state_dict(router.pending.state_dict())
    restored.process(PolledBatch(_events(2), {}, frozenset(e.origin for e in _events(2))))
    lw1, lw2 = LabelUpdate("w1", "p", "labels/0@3"), LabelUpdate("w2", "p", "labels/0@4")
    v1, v2 = (Event({"a": 2.0, "b": 0.0}, None, f"v{i}", "t0", None, f"events/0@{12 + i}") for i in (1, 2))
    restored.process(PolledBatch([lw1, lw2], {}, frozenset({lw1.origin})))  # lw1 re-read, lw2 new
    restored.process(PolledBatch([v1, v2], {}, frozenset({v1.origin})))  # v1 re-read, v2 new
    assert restored.pending.counters()["joined"] == 4
    assert sorted(restored.metrics.tasks.counted) == sorted([w2.origin, v2.origin])
    assert restored.step.stats.labelled == 2
