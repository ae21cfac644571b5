"""Loading a learner's state: all or nothing, only into a learner of the same settings, exact mid-event."""

from __future__ import annotations

import numpy as np
import pytest
from state_kit import same

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.checkpoint import load_checkpoint, save_checkpoint
from stream_cl.drift import DriftMonitor
from stream_cl.replay import ReservoirReplay
from stream_cl.trainable import TrainableLearner


def _stream(n: int, seed: int = 0) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    ys = [str(int(x[0] + 0.5 * x[1] > 0)) for x in X]
    return [{"a": x[0], "b": x[1], "c": x[2]} for x in X], ys


def _online(**kw) -> OnlineContinualLearner:
    settings = {"backbone": RandomFeatures(width=8, seed=1), "key_units": 2, "device": "cpu"}
    return OnlineContinualLearner(**{**settings, **kw})


def _trained(make, lo: int, hi: int, **kw):
    xs, ys = _stream(300)
    model = make(**kw)
    model.prequential_batch(xs[lo:hi], ys[lo:hi])
    return model


def _old(state: dict) -> dict:
    """``state`` as a checkpoint written before states carried the learner's identity."""
    return {k: v for k, v in state.items() if k != "identity"}


REFUSED = {  # name: (the checkpoint's settings, the learner's)
    "sgd": ({"sgd_lr": None}, {}),
    "replay off, on": ({}, {"replay": ReservoirReplay(max_samples=20)}),
    "replay on, off": ({"replay": ReservoirReplay(max_samples=20)}, {}),
    "drift detector": ({"drift": DriftMonitor("ddm")}, {"drift": DriftMonitor("adwin")}),
}


@pytest.mark.parametrize("old", [False, True], ids=["identity", "older checkpoint"])
@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_load_leaves_the_learner_as_it_was(case, old):
    saved, mine = REFUSED[case]
    state = _trained(_online, 0, 150, **saved).state_dict()
    learner = _trained(_online, 150, 300, **mine)
    xs, _ = _stream(20, seed=1)
    before, before_state = learner.predict_proba_batch(xs), learner.state_dict()
    with pytest.raises(ValueError):
        learner.load_state_dict(_old(state) if old else state)
    assert np.array_equal(learner.predict_proba_batch(xs), before)
    assert same(learner.state_dict(), before_state)


def _trainable():
    return TrainableLearner(hidden=(4,), micro_batch=4, device="cpu")


@pytest.mark.parametrize("make, missing", [(_online, "scaler"), (_online, "mixer"), (_trainable, "scaler"),
                                           (_trainable, "pending")])
def test_a_state_missing_a_key_is_a_value_error_naming_it_and_changes_nothing(make, missing):
    state = _trained(make, 0, 100).state_dict()
    del state[missing]
    learner = _trained(make, 100, 200)
    before = learner.state_dict()
    with pytest.raises(ValueError, match=f"'{missing}'") as e:
        learner.load_state_dict(state)
    assert not isinstance(e.value, KeyError)
    assert same(learner.state_dict(), before)


def test_a_state_of_another_learner_kind_is_a_value_error_and_changes_nothing():
    trainable = _trained(_trainable, 0, 100)
    online = _trained(_online, 100, 200)
    before_online, before_trainable = online.state_dict(), trainable.state_dict()
    with pytest.raises(ValueError, match="differ in settings: the checkpoint's learner is TrainableLearner"):
        online.load_state_dict(trainable.state_dict())  # refused by its identity, before its keys are read
    with pytest.raises(ValueError, match="checkpoint state has no"):
        trainable.load_state_dict(_old(before_online))
    assert same(online.state_dict(), before_online) and same(trainable.state_dict(), before_trainable)


def test_the_trainable_learner_refuses_a_replay_mismatch_changing_nothing():
    make = lambda **kw: TrainableLearner(hidden=(4,), micro_batch=4, device="cpu", **kw)  # noqa: E731
    state = _trained(make, 0, 100).state_dict()
    learner = _trained(make, 100, 200, replay=ReservoirReplay(max_samples=20))
    before = learner.state_dict()
    with pytest.raises(ValueError, match="replay"):
        learner.load_state_dict(state)
    assert same(learner.state_dict(), before)


def test_a_successful_load_keeps_the_object_and_its_parameters():
    backbone = RandomFeatures(width=8, seed=1)
    learner = OnlineContinualLearner(backbone=backbone, key_units=2, device="cpu")
    state = _trained(_online, 0, 150).state_dict()
    assert learner.load_state_dict(state) is learner
    assert learner.backbone is backbone  # the caller's hyperparameters, not a clone's copies
    assert same(learner.state_dict(), state)


@pytest.mark.parametrize("setting, saved, mine", [
    ("temperature", {"temperature": 0.5}, {}),
    ("backbone", {}, {"backbone": RandomFeatures(width=8, seed=1, kind="fourier")}),
    ("heads", {"heads": ((1.0, "inputs"), (1.0, "all"))}, {"heads": ((1.0, "all"), (1.0, "inputs"))}),
    ("replay", {"replay": ReservoirReplay(max_samples=20)}, {"replay": ReservoirReplay(max_samples=30)}),
])
def test_a_checkpoint_of_other_settings_is_refused_naming_them(setting, saved, mine):
    state = _trained(_online, 0, 150, **saved).state_dict()
    learner = _online(**mine)
    learner.prequential_batch(*_stream(20))
    before = learner.state_dict()
    with pytest.raises(ValueError, match=rf"differ in settings: .*{setting}.*build the learner with the checkpoint's"):
        learner.load_state_dict(state)
    assert same(learner.state_dict(), before)


def test_placement_and_the_column_bound_may_differ():
    state = _trained(_online, 0, 150, max_columns=4096).state_dict()
    learner = _online(max_columns=None, device="auto")
    learner.load_state_dict(state)  # device and max_columns leave the arithmetic alone
    assert same(_old(learner.state_dict()), _old(state))


def test_an_older_checkpoint_without_identity_loads_as_before():
    model = _trained(_online, 0, 150)
    xs, _ = _stream(20, seed=1)
    restored = _online().load_state_dict(_old(model.state_dict()))
    assert np.array_equal(restored.predict_proba_batch(xs), model.predict_proba_batch(xs))


def test_a_setting_newer_than_the_checkpoint_is_not_compared():
    state = _trained(_online, 0, 150).state_dict()
    del state["identity"]["settings"]["time_features"]  # as if written before the setting existed
    restored = _online().load_state_dict(state)
    xs, _ = _stream(20, seed=1)  # and it is the model saved (review r102: nothing was compared)
    assert np.array_equal(restored.predict_proba_batch(xs), _trained(_online, 0, 150).predict_proba_batch(xs))


def test_a_partitioned_state_resumes_exactly_in_a_used_learner():
    xs, ys = _stream(300)
    model = _online()
    for p in range(3):
        model.prequential_batch(xs[p * 50:(p + 1) * 50], ys[p * 50:(p + 1) * 50], partition=p)
    used = _trained(_online, 200, 300)
    used.prequential_batch(xs[:30], ys[:30], partition="other")
    used.load_state_dict(model.state_dict())
    assert used.partitions_ == [0, 1, 2]
    for p in range(3):
        assert np.array_equal(used.prequential_batch(xs[150:200], ys[150:200], partition=p),
                              model.prequential_batch(xs[150:200], ys[150:200], partition=p))


def test_a_checkpoint_between_predict_and_learn_resumes_bit_for_bit():
    xs, ys = _stream(300)
    model = _online()
    for x, y in zip(xs[:100], ys[:100]):
        model.predict_proba_one(x)
        model.learn_one(x, y)
    model.predict_proba_one(xs[100])  # its memo holds the scores of the event learned next
    restored = _online().load_state_dict(model.state_dict())
    for x, y in zip(xs[100:200], ys[100:200]):
        model.learn_one(x, y)
        restored.learn_one(x, y)
        assert model.predict_proba_one(xs[0]) == restored.predict_proba_one(xs[0])
    assert same(model.state_dict(), restored.state_dict())


def test_a_lone_surrogate_in_the_state_round_trips(tmp_path):
    state = {"names": ["temp\udc80", "\ud800"], "\udc80": np.arange(3.0), "x\udc80": {"\ud800": "é"}}
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, state)
    loaded, _ = load_checkpoint(path)
    assert same(loaded, state)


def test_a_learner_with_a_lone_surrogate_feature_name_resumes(tmp_path):
    model = _online()
    model.learn_one({"temp\udc80": 1.0, "b": 2.0}, "a\ud800")
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, model.state_dict())
    restored = _online().load_state_dict(load_checkpoint(path)[0])
    assert restored.predict_proba_one({"temp\udc80": 1.0}) == model.predict_proba_one({"temp\udc80": 1.0})


def test_the_analytic_classifier_refuses_a_state_of_other_settings_and_changes_nothing():
    from stream_cl import AnalyticClassifier

    rng = np.random.default_rng(4)
    xs = [{"a": float(v), "b": float(-v)} for v in rng.normal(size=60)]
    ys = ["p" if x["a"] > 0 else "n" for x in xs]
    src, target = AnalyticClassifier(gamma=0.5, forgetting=0.99), AnalyticClassifier(gamma=2.0)
    src.prequential_batch(xs[:40], ys[:40])
    target.prequential_batch(xs[40:], ys[40:])
    before = target.predict_proba_batch(xs[:10])
    with pytest.raises(ValueError, match="differ in settings.*gamma"):
        target.load_state_dict(src.state_dict())
    np.testing.assert_array_equal(target.predict_proba_batch(xs[:10]), before)
    same = AnalyticClassifier(gamma=0.5, forgetting=0.99).load_state_dict(src.state_dict())
    np.testing.assert_array_equal(same.predict_proba_batch(xs[:10]), src.predict_proba_batch(xs[:10]))


class _Tagged(OnlineContinualLearner):
    """A user's subclass that passes the learner's settings through ``**kwargs`` (river's clone() cannot see them)."""

    def __init__(self, tag: str = "x", **kwargs):
        super().__init__(**kwargs)
        self.tag = tag


def test_a_subclass_passing_settings_through_kwargs_resumes_exactly():
    def make():
        return _Tagged(tag="prod", backbone=RandomFeatures(width=8, seed=1), key_units=2, device="cpu",
                       temperature=0.5, heads=((1.0, "all"), (0.99, "inputs")))

    rng = np.random.default_rng(6)
    xs = [{"a": float(v[0]), "b": float(v[1])} for v in rng.normal(size=(200, 2))]
    ys = [str(int(x["a"] + x["b"] > 0)) for x in xs]
    live = make()
    live.prequential_batch(xs[:120], ys[:120])
    restored = make().load_state_dict(live.state_dict())
    assert restored.temperature == 0.5 and len(restored.heads_) == 2
    np.testing.assert_array_equal(restored.prequential_batch(xs[120:], ys[120:]), live.prequential_batch(xs[120:], ys[120:]))


def test_equal_settings_spelled_differently_are_the_same_identity():
    from stream_cl import AnalyticClassifier

    xs = [{"a": float(v)} for v in np.linspace(-1, 1, 20)]
    ys = [str(int(x["a"] > 0)) for x in xs]
    for saved, mine in ((AnalyticClassifier(gamma=1), AnalyticClassifier(gamma=1.0)),
                        (AnalyticClassifier(forgetting=np.float64(0.99)), AnalyticClassifier(forgetting=0.99)),
                        (OnlineContinualLearner(device="cpu", backbone=RandomFeatures(width=8), heads=[(1, "all")],
                                                drift=DriftMonitor("adwin", params={"delta": 0.01, "clock": 16})),
                         OnlineContinualLearner(device="cpu", backbone=RandomFeatures(width=8), heads=((1.0, "all"),),
                                                drift=DriftMonitor("adwin", params={"clock": 16, "delta": 0.01})))):
        saved.prequential_batch(xs, ys)
        mine.load_state_dict(saved.state_dict())  # no "differ in settings"
        np.testing.assert_array_equal(mine.predict_proba_batch(xs), saved.predict_proba_batch(xs))
