"""Review r36: a library learner's state loads only into a learner of the same settings.

* ``TrainableLearner.load_state_dict`` refuses, naming it, a state written with another setting
  (``lr``, ``micro_batch``, the continual parts' parameters, ...), as the other learners do; it
  loaded them, and went on under its own settings (the drift detector under the checkpoint's).
* ``DriftMonitor.load_state_dict`` refuses a detector state of other parameters: restored, they
  replaced the monitor's own while ``params`` reported its own.
* A learner compares its backbone by exact values too (River's display ``repr`` printed
  ``bandwidth`` 5e-5 and 5.4e-5 alike), where a state keeps them; it keeps the display form beside
  them, so that states and parts older releases wrote load and merge and theirs merge in them
  (review r38).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from state_kit import same

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.checkpoint import load_checkpoint, save_checkpoint
from stream_cl.contribution import Contribution, ContributionError
from stream_cl.drift import DriftMonitor
from stream_cl.homeostasis import Homeostasis
from stream_cl.replay import ReservoirReplay
from stream_cl.trainable import TrainableLearner


def _stream(n: int, seed: int = 0) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    ys = [str(int(x[0] + 0.5 * x[1] > 0)) for x in X]
    return [{"a": x[0], "b": x[1], "c": "red" if x[2] > 0 else None} for x in X], ys


def _trainable(**kw) -> TrainableLearner:
    model = TrainableLearner(**{"hidden": (4,), "micro_batch": 8, "device": "cpu", **kw})
    xs, ys = _stream(60)
    model.prequential_batch(xs, ys)
    return model


def _old(state: dict) -> dict:
    """``state`` as older code wrote it: without the learner's identity."""
    return {k: v for k, v in state.items() if k != "identity"}


def _adwin(delta: float) -> DriftMonitor:
    return DriftMonitor("adwin", params={"delta": delta}, response=("record",))


OTHER = {  # setting: (the checkpoint's, the learner's)
    "lr": (0.01, 0.1),
    "micro_batch": (8, 4),
    "steps": (1, 2),
    "weight_decay": (0.0, 1e-4),
    "replay": (ReservoirReplay(max_samples=20), ReservoirReplay(max_samples=200, ratio=3.0)),
    "homeostasis": (Homeostasis(lr_high=4.0), Homeostasis(lr_high=2.0)),
    "max_categories": (1000, 1),
    "missing_indicators": (False, True),
    "time_features": (False, True),
    "drift": (_adwin(0.5), _adwin(1e-5)),
}


@pytest.mark.parametrize("setting", list(OTHER))
def test_a_trainable_state_of_another_setting_is_refused_by_name(setting):
    theirs, mine = OTHER[setting]
    state = _trainable(**{setting: theirs}).state_dict()
    learner = _trainable(**{setting: mine})
    xs, _ = _stream(10, seed=1)
    before, before_state = learner.predict_proba_batch(xs), learner.state_dict()
    with pytest.raises(ValueError, match=f"differ in settings.* with {setting}="):
        learner.load_state_dict(state)
    assert np.array_equal(learner.predict_proba_batch(xs), before)
    assert same(learner.state_dict(), before_state)


def test_a_trainable_state_of_the_same_settings_loads_also_when_written_before_the_identity(tmp_path):
    """Written before the identity was kept (older code: the same state without it), or through a
    checkpoint file, a state of the same settings loads and predicts as its writer."""
    settings = {"replay": ReservoirReplay(max_samples=20), "homeostasis": Homeostasis(),
                "drift": DriftMonitor("page_hinkley", params={"threshold": 5.0}, response=("need",))}
    src = _trainable(**settings)
    xs, _ = _stream(10, seed=1)
    expected = src.predict_proba_batch(xs)
    save_checkpoint(tmp_path / "t.safetensors", src.state_dict())
    for state in (src.state_dict(), _old(src.state_dict()), load_checkpoint(tmp_path / "t.safetensors")[0]):
        fresh = TrainableLearner(**{"hidden": (4,), "micro_batch": 8, "device": "cpu", **settings})
        assert np.array_equal(fresh.load_state_dict(state).predict_proba_batch(xs), expected)


def test_an_older_trainable_state_of_other_drift_params_is_refused_by_the_monitor():
    """A state without the identity is compared by its parts: the drift detector's parameters."""
    state = _old(_trainable(drift=_adwin(0.5)).state_dict())
    learner = _trainable(drift=_adwin(1e-5))
    before = learner.state_dict()
    with pytest.raises(ValueError, match=r"delta=0\.5, this one delta=1e-05"):
        learner.load_state_dict(state)
    assert same(learner.state_dict(), before) and learner.drift_.detector_.delta == 1e-5


@pytest.mark.parametrize("name, theirs, mine", [("adwin", {"delta": 0.5}, {"delta": 1e-5}),
                                                ("page_hinkley", {"threshold": 5.0}, {"threshold": 500.0}),
                                                ("adwin", {"delta": 0.5}, None)])
def test_a_drift_monitor_refuses_a_detector_state_of_other_params(name, theirs, mine):
    src = DriftMonitor(name, params=theirs)
    for i in range(60):
        src.update(float(i % 3 == 0), 0.5)
    monitor = DriftMonitor(name, params=mine)
    monitor.update(1.0, 1.0)
    before = monitor.state_dict()
    key = next(iter(theirs))
    with pytest.raises(ValueError, match=f"has {key}={theirs[key]!r}, this one {key}="):
        monitor.load_state_dict(src.state_dict())
    assert same(monitor.state_dict(), before)
    assert getattr(monitor.detector_, key) == getattr(DriftMonitor(name, params=mine).detector_, key)
    same_params = DriftMonitor(name, params=theirs).load_state_dict(src.state_dict())
    assert same_params.n_ == 60 and same(same_params.state_dict(), src.state_dict())


# -- backbone identities ---------------------------------------------------------------------
def _fourier(bandwidth: float, partition=None, n: int = 80) -> OnlineContinualLearner:
    model = OnlineContinualLearner(backbone=RandomFeatures(width=8, kind="fourier", bandwidth=bandwidth),
                                   key_units=0, device="cpu")
    xs, ys = _stream(n)
    for x, y in zip(xs, ys):
        model.learn_one(x, y, partition=partition)
    return model


@pytest.mark.parametrize("theirs, mine", [(5e-5, 5.4e-5), (1.2e5, 1.4e5), (0.1234567, 0.1234568)])
def test_a_backbone_of_a_float_that_river_displays_alike_is_another_backbone(theirs, mine):
    assert repr(RandomFeatures(bandwidth=theirs)) == repr(RandomFeatures(bandwidth=mine))  # the display rounds
    src = _fourier(theirs)
    with pytest.raises(ValueError, match="differ in settings.*backbone"):
        _fourier(mine).load_state_dict(src.state_dict())
    with pytest.raises(ContributionError, match="bandwidth"):
        _fourier(mine, partition=1, n=20).merge(0, src.contribution(None).to_bytes())


_NOT_COMPARED_BEFORE = ("device", "backbone", "max_columns")  # the settings releases before this one left out


def _as_older(identity: dict, backbone) -> dict:
    """An identity as releases before this one kept it: the backbone by River's display ``repr``
    alone (what ``Backbone.identity`` returns), no exact form among the settings."""
    settings = {k: v for k, v in identity["settings"].items() if k != "backbone"}
    return {**identity, "backbone": repr(backbone), "settings": settings}


def _as_an_older_release_compares(identity: dict) -> dict:
    """What a member of a release before this one compares of a part's identity: its settings less
    those it left out (its ``_model_identity``), the display form of the backbone."""
    return {**identity, "settings": {k: v for k, v in identity["settings"].items() if k not in _NOT_COMPARED_BEFORE}}


@pytest.mark.parametrize("bandwidth", [5.4e-5, 0.5])
def test_a_state_and_a_part_of_older_releases_still_load_and_merge(bandwidth):
    src = _fourier(bandwidth)
    xs, _ = _stream(10, seed=1)
    state = src.state_dict()
    state["identity"] = _as_older(state["identity"], src.backbone_)
    assert type(state["identity"]["backbone"]) is str and "\n" in state["identity"]["backbone"]
    restored = _fourier(bandwidth, n=0).load_state_dict(state)
    assert np.array_equal(restored.predict_proba_batch(xs), src.predict_proba_batch(xs))
    c = src.contribution(None)
    older = Contribution.from_bytes(dataclasses.replace(c, identity=_as_older(c.identity, src.backbone_)).to_bytes())
    member = _fourier(bandwidth, partition=1, n=20)
    member.merge(0, older)
    assert set(member._parts) == {0, 1}
    with pytest.raises(ValueError, match="backbone"):  # an older state of a bandwidth displayed otherwise
        _fourier(bandwidth * 2, n=0).load_state_dict(state)


def test_a_part_written_now_is_what_a_member_of_an_older_release_takes():
    """A rolling upgrade: the exact backbone travels as the setting ``backbone``, which older
    releases leave out of what they compare, beside the display form they compare; a part holding
    only the exact form (0f46482's) was refused by every older member and taken as missing."""
    src = _fourier(5.4e-5)
    c = src.contribution(None)
    assert c.identity["backbone"] == repr(src.backbone_) == src.backbone_.identity()
    assert "5.4e-05" in c.identity["settings"]["backbone"]
    older_member_identity = _as_older(_fourier(5.4e-5, n=0).contribution(None).identity, src.backbone_)
    assert _as_an_older_release_compares(c.identity) == older_member_identity
    state = src.state_dict()  # a library checkpoint, as an older release compares it (its check_identity)
    assert _as_an_older_release_compares(state["identity"])["backbone"] == repr(src.backbone_)


def test_an_exact_backbone_names_functions_and_sorts_sets():
    """A custom backbone's function or set hyperparameter is spelled the same in every process (a
    function's repr holds its address; a set's order follows the process's string hashes)."""
    from stream_cl.part_exchange import exact_backbone

    class Custom(RandomFeatures):
        def __init__(self, width=8, activation=np.tanh, keep=frozenset({"b", "a", "c"})):
            super().__init__(width=width)
            self.activation = activation
            self.keep = keep

    spelled = exact_backbone(Custom())
    assert "0x" not in spelled and "numpy.tanh" in spelled and "{'a', 'b', 'c'}" in spelled
    assert exact_backbone(RandomFeatures(bandwidth=5e-5)) != exact_backbone(RandomFeatures(bandwidth=5.4e-5))


def test_a_river_default_that_changed_leaves_an_older_detector_running_as_it_was():
    """Only the params given are compared: the daemon gives none, and a River release whose ADWIN
    default differed from the writer's must not make its checkpoints unloadable (its config could
    not name the checkpoint's value); the state's detector then runs as it was written."""
    src = DriftMonitor("adwin")
    for i in range(60):
        src.update(float(i % 3 == 0), 0.5)
    state = src.state_dict()
    state["detector"] = {**state["detector"], "delta": 0.25}  # as a release of another default wrote it
    restored = DriftMonitor("adwin").load_state_dict(state)
    assert restored.detector_.delta == 0.25 and restored.n_ == 60
    with pytest.raises(ValueError, match=r"has delta=0\.25, this one delta=0\.002"):
        DriftMonitor("adwin", params={"delta": 0.002}).load_state_dict(state)  # given here: compared


def test_nested_parts_keep_the_spelling_checkpoints_have_always_had():
    """River writes a nested part's setting as a (class, params) pair, which checkpoints spell with the
    class's repr; naming classes as functions (bb18ab8) refused every library checkpoint with a drift,
    replay, homeostasis or imbalance part across that commit, in both directions (review r39)."""
    from stream_cl.drift import DriftMonitor

    model = OnlineContinualLearner(drift=DriftMonitor("adwin"), device="cpu")
    model.learn_one({"a": 1.0}, "x")
    assert model.state_dict()["identity"]["settings"]["drift"].startswith("(<class 'stream_cl.drift.DriftMonitor'>, {")
