"""Events re-learned after a restore ("replayed": silent records) count once in the accuracies (connectors/router.py).

After a restore the source returns the records between the checkpoint's offsets and the committed
ones again, marked silent: the model re-learns them, nothing is published, and they must not be
counted again in ``stream_cl_prequential_accuracy`` / ``stream_cl_task_accuracy``: each event counts
once, with the prediction that was published (before the restore).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

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


class _SpyTasks(TaskAccuracy):
    """Task accuracy that also records the origin of every labelled prediction it counts."""

    def __init__(self):
        super().__init__(window=1000)
        self.counted: list[str] = []

    def update(self, predictions) -> None:
        predictions = list(predictions)
        self.counted += [p.origin for p in predictions if p.task is not None and p.y_true is not None]
        super().update(predictions)


class _Publisher:
    def __init__(self):
        self.predictions, self.dead = [], []

    def write(self, predictions):
        self.predictions += predictions

    def write_dead(self, records):
        self.dead += records


def _router(batch_size=4, labels_topic="labels"):
    cfg = load_config_dict({"model": {"kind": "analytic", "forgetting": [1.0]},
                            "kafka": {"topics": ["events"], "predictions_topic": "p", "labels_topic": labels_topic},
                            "run": {"batch_size": batch_size}})
    learner = build_learner(cfg.model)
    metrics = DaemonMetrics()
    metrics.tasks = _SpyTasks()
    step = Prequential(learner, window=5)
    state = SimpleNamespace(add=lambda n: None, touched=lambda key, n: None)
    router = Router(cfg, step, learner, PendingStores(), _Publisher(), metrics, state, partitioned=False)
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
    assert router.metrics.tasks.counted == [b.origin, d.origin]
    assert router.step.stats.labelled == 2
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
    router = Router(cfg, Prequential(learner, window=5), learner, PendingStores(), _Publisher(), DaemonMetrics(), state,
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
    assert [dict(h)["stream-cl.origin"] for _, _, h in router.publisher.dead] == [b"events/0@100"]
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
