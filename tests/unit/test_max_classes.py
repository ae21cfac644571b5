"""``model.max_classes``: a label new on every event (an order id taken for the label) grew every
head without end (a review measured 1.64 GB at 10,000 classes); past the bound such an event is a
dead letter and the model is the one that never saw it."""

import json

import numpy as np
import pytest

from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.config import ConfigError, load_config_dict
from stream_cl.events import Event
from stream_cl.prequential import Prequential


def _events(labels, start=0):
    return [Event({"a": float(i % 5), "b": float(i % 3)}, y, str(i), None, None, f"t/0@{i}")
            for i, y in enumerate(labels, start)]


@pytest.mark.parametrize("make", [AnalyticClassifier, lambda: OnlineContinualLearner(device="cpu")])
def test_labels_past_the_bound_are_dead_letters_and_the_rest_learn_as_without_them(make):
    labels = ["a", "b", "a", "c", "d", None, "b", "e", "c", "a"]
    step, twin = Prequential(make(), max_classes=3), Prequential(make())
    predictions, dead = step.process(_events(labels))
    assert step.learner.classes_ == ["a", "b", "c"]
    assert [json.loads(d.raw)["y"] for d in dead] == ["d", "e"]
    assert {d.reason for d in dead} == {"rejected_by_model"}
    assert all("model.max_classes = 3" in d.detail for d in dead)
    kept = [e for e in _events(labels) if e.y not in ("d", "e")]
    twin_predictions, _ = twin.process(kept)
    assert [p.id for p in predictions] == [p.id for p in twin_predictions]
    # (the refused events cut the batch: the same model, to rounding)
    np.testing.assert_allclose([p.proba for p in predictions], [p.proba for p in twin_predictions], rtol=0, atol=1e-9)
    probe = {"a": 2.0, "b": 1.0}
    mine, theirs = step.learner.predict_proba_one(probe), twin.learner.predict_proba_one(probe)
    assert mine.keys() == theirs.keys()
    np.testing.assert_allclose([mine[k] for k in mine], [theirs[k] for k in mine], rtol=0, atol=1e-9)
    assert step.stats.dead_letters["rejected_by_model"] == 2
    # a later batch: known labels and predict-only events go on, a new label is refused again
    predictions, dead = step.process(_events(["b", None, "f"], start=10))
    assert [p.id for p in predictions] == ["10", "11"] and [json.loads(d.raw)["y"] for d in dead] == ["f"]


def test_no_bound_and_room_enough_refuse_nothing():
    labels = [f"order-{i}" for i in range(50)]
    for bound in (None, 50):
        step = Prequential(AnalyticClassifier(), max_classes=bound)
        _, dead = step.process(_events(labels))
        assert dead == [] and len(step.learner.classes_) == 50


def test_the_config_key():
    assert load_config_dict({}).model.max_classes == 10_000
    assert load_config_dict({"model": {"max_classes": 0}}).model.max_classes == 0
    with pytest.raises(ConfigError, match="model.max_classes"):
        load_config_dict({"model": {"max_classes": -1}})


def test_an_event_refused_for_another_reason_takes_no_room_for_its_class():
    # (a review: a new label on an event refused for a NaN took the last room in the batch, and a good
    # event's new label after it was refused as past the bound; one event at a time learned it)
    step = Prequential(AnalyticClassifier(), max_classes=3)
    step.process(_events(["a", "b"]))
    bad = Event({"a": float("nan"), "b": 1.0}, "c", "bad", None, None, "t/0@2")
    _, dead = step.process([bad, *_events(["d", "a"], start=3)])
    assert step.learner.classes_ == ["a", "b", "d"]
    assert [(json.loads(d.raw)["y"], d.reason) for d in dead] == [("c", "non_finite")]



def test_the_bound_counts_the_partitions_own_classes_so_a_takeover_decides_as_the_owner_did():
    # (a review on a real broker: a member taking over a partition re-learned its committed events
    # against its own model's classes and refused all 300 of them: learned by nobody, no dead letter)
    def events(labels, part, start=0):
        return [Event({"a": float(i % 5), "b": float(i % 3)}, y, f"{part}-{i}", None, None, f"t/{part}@{i}")
                for i, y in enumerate(labels, start)]

    owner, survivor = Prequential(AnalyticClassifier(), max_classes=3), Prequential(AnalyticClassifier(), max_classes=3)
    survivor.process(events(list("abcabc"), 0), partition="t/0")
    p1 = events(list("defdefg"), 1)
    _, dead = owner.process(p1, partition="t/1")
    assert [json.loads(d.raw)["y"] for d in dead] == ["g"]  # the owner's decisions
    _, again = survivor.process(p1, partition="t/1")  # the survivor learns the partition's records anew
    assert [json.loads(d.raw)["y"] for d in again] == ["g"]
    assert survivor.learner.classes_of("t/1") == ["d", "e", "f"]
    assert survivor.learner.classes_ == ["a", "b", "c", "d", "e", "f"]
    # a class another partition brought is a new one for this partition too
    _, dead = survivor.process(events(["d"], 0, start=6), partition="t/0")
    assert [json.loads(d.raw)["y"] for d in dead] == ["d"]


def test_a_state_from_before_partitions_keeps_its_classes_counted():
    # (a review: restored heads with classes but no part gave every partition the whole room again)
    def ev(labels, start=0):
        return [Event({"a": float(i % 5), "b": float(i % 3)}, y, str(i), None, None, f"t/0@{i}")
                for i, y in enumerate(labels, start)]

    old = Prequential(AnalyticClassifier(), max_classes=3)
    old.process(ev("abcabc"), partition="t/0")
    state = old.learner.state_dict()
    state.pop("parts")  # as a checkpoint written before partitions
    restored = AnalyticClassifier()
    restored.load_state_dict(state)
    assert restored.classes_of("t/0") == ["a", "b", "c"]
    _, dead = Prequential(restored, max_classes=3).process(ev("defg", 6), partition="t/0")
    assert [json.loads(d.raw)["y"] for d in dead] == ["d", "e", "f", "g"]


def test_after_a_drift_reset_a_member_holding_other_partitions_decides_as_the_owner():
    # (a review: one part counted the heads' classes, several the part's counts, which a reset starts
    # anew: a survivor that took the partition over accepted labels the owner refused)
    from stream_cl.backbones import RandomFeatures
    from stream_cl.drift import DriftMonitor

    def learner():
        return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu", sgd_lr=None,
                                      heads=((1.0, "all"), (0.99, "all")), control_every=4,
                                      drift=DriftMonitor("ddm", response=("reset",), restart_after=40))

    rng = np.random.default_rng(0)
    E = []
    for i in range(760):
        a, b = float(rng.normal()), float(rng.normal())
        y = ("a" if a > 0.5 else ("b" if a > -0.5 else "c")) if i < 300 else (
            ("b" if a > 0 else "a") if i < 700 else ("d" if i % 4 == 0 else ("b" if a > 0 else "a")))
        E.append(Event({"a": a, "b": b}, y, f"t/1-{i}", None, None, f"t/1@{i}"))
    owner = Prequential(learner(), max_classes=3)
    for i in range(0, 700, 20):
        owner.process(E[i : i + 20], partition="t/1")
    assert owner.learner.n_restarts_ > 0
    survivor = Prequential(learner(), max_classes=3)
    survivor.process([Event({"a": float(rng.normal()), "b": 0.0}, "xy"[i % 2], f"t/0-{i}", None, None, f"t/0@{i}")
                      for i in range(50)], partition="t/0")
    survivor.learner.merge("t/1", owner.learner.contribution("t/1", offset=700).to_bytes())
    assert survivor.learner.classes_of("t/1") == owner.learner.classes_of("t/1")
    dead_owner, dead_survivor = [], []
    for i in range(700, 760, 20):
        dead_owner += owner.process(E[i : i + 20], partition="t/1")[1]
        dead_survivor += survivor.process(E[i : i + 20], partition="t/1")[1]
    assert [d.origin for d in dead_survivor] == [d.origin for d in dead_owner]


def test_drift_resets_free_no_room():
    # (a review: the room followed the part's counts, which a reset starts anew: one partition with
    # max_classes = 3 grew a class per reset, 10 after 7 resets)
    from stream_cl.backbones import RandomFeatures
    from stream_cl.drift import DriftMonitor

    learner = OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu", sgd_lr=None,
                                     heads=((1.0, "all"), (0.99, "all")), control_every=4,
                                     drift=DriftMonitor("ddm", response=("reset",), restart_after=40))
    step = Prequential(learner, max_classes=3)
    rng = np.random.default_rng(0)
    for k in range(4):
        batch = []
        for i in range(400):
            a, b = float(rng.normal()), float(rng.normal())
            y = ("a" if a > 0 else "b") if k % 2 == 0 else ("b" if a > 0 else "a")  # the concept flips each phase
            batch.append(Event({"a": a, "b": b}, f"extra{k}" if i % 20 == 10 else y, f"{k}-{i}", None, None, None))
        for s in range(0, 400, 20):
            step.process(batch[s : s + 20])
    assert learner.n_restarts_ >= 3
    assert learner.classes_ == ["a", "b", "extra0"] and learner.classes_of(None) == ["a", "b", "extra0"]


def test_a_partitions_classes_travel_with_its_part():
    def ev(labels, part):
        return [Event({"a": float(i % 5)}, y, str(i), None, None, f"t/{part}@{i}") for i, y in enumerate(labels)]

    owner = Prequential(AnalyticClassifier(), max_classes=3)
    owner.process(ev("abcab", 1), partition="t/1")
    raw = owner.learner.contribution("t/1").to_bytes()
    survivor = AnalyticClassifier().learn_one({"a": 1.0}, "z", partition="t/0")
    survivor.merge("t/1", raw)
    assert survivor.classes_of("t/1") == ["a", "b", "c"] and survivor.classes_of("t/0") == ["z"]
    restored = AnalyticClassifier()
    restored.load_state_dict(survivor.state_dict())
    assert restored.classes_of("t/1") == ["a", "b", "c"]
    with pytest.raises(TypeError, match="partition"):  # an unhashable key, named as the learner names it
        restored.classes_of(["t", 1])


def test_a_state_without_kept_classes_keeps_them_from_its_restore_on():
    # (a review: a checkpoint of the commit before the classes were kept loaded them as unknown, and
    # they stayed unknown in every later state: the room followed the counts, which resets renew)
    model = AnalyticClassifier()
    for i, y in enumerate("abcab"):
        model.learn_one({"a": float(i)}, y, partition="t/0")
    model.learn_one({"a": 1.0}, "z", partition="t/1")
    state = model.state_dict()
    del state["parts"]["classes"]  # as the previous commit wrote it
    restored = AnalyticClassifier()
    restored.load_state_dict(state)
    restored.learn_one({"a": 2.0}, "d", partition="t/0")
    assert restored.state_dict()["parts"]["classes"][0] == ["a", "b", "c", "d"]


def test_a_state_taken_does_not_change_with_later_learning():
    model = AnalyticClassifier().learn_one({"a": 1.0}, "a", partition="t/0")
    state = model.state_dict()
    model.learn_one({"a": 2.0}, "b", partition="t/0")
    assert state["parts"]["classes"] == [["a"]]


def test_an_unhashable_partition_key_is_refused_by_the_learner_not_the_bound():
    step = Prequential(AnalyticClassifier(), max_classes=3)
    _, dead = step.process(_events(["a", "b"]), partition=["t", 0])
    assert [d.reason for d in dead] == ["rejected_by_model"] * 2
