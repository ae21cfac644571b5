"""The continual-learning parts refuse bad settings and bad tasks before any state changes,
naming what was wrong (review r17: findings 2, 3, 4, 5, 7 and 8)."""

import numpy as np
import pytest

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.config import ConfigError, load_config_dict
from stream_cl.drift import DriftMonitor
from stream_cl.homeostasis import Homeostasis
from stream_cl.imbalance import ImbalanceCompensator
from stream_cl.replay import PowerLawReplay, ReservoirReplay
from stream_cl.trainable import TrainableLearner

NAN, INF = float("nan"), float("inf")


# -- ImbalanceCompensator: seed and power (findings 2 and 3) ----------------------------------
@pytest.mark.parametrize("seed", [-1, 1.5, "x", None, True])
def test_imbalance_seed_must_be_a_nonnegative_int(seed):
    # seed=-1 used to fail at the first pseudo row, mid-batch, after the index and scaler had changed
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        ImbalanceCompensator(mode="pseudo", seed=seed)


def test_imbalance_seed_may_be_a_numpy_int():
    assert ImbalanceCompensator(seed=np.int64(3)).seed == 3


@pytest.mark.parametrize("power", [NAN, INF, -1.0, None, "x", True])
def test_imbalance_power_must_be_a_finite_nonnegative_number(power):
    # NaN weighed every row 1/max_weight; None failed in learn_one after the index and scaler had changed
    with pytest.raises(ValueError, match="power must be a finite number >= 0"):
        ImbalanceCompensator(mode="reweight", power=power)


def test_imbalance_power_zero_weighs_every_row_one():
    out = ImbalanceCompensator(mode="reweight", power=0).step([np.ones((4, 1))], ["a", "a", "a", "b"])
    assert out.weights.tolist() == [1.0] * 4


@pytest.mark.parametrize("key, value", [("seed", -1), ("power", INF)])
def test_imbalance_config_refuses_what_the_compensator_refuses(key, value):
    with pytest.raises(ConfigError, match=f"imbalance.{key}: must be"):
        load_config_dict({"imbalance": {"mode": "pseudo", key: value}})


# -- tasks (finding 4) ------------------------------------------------------------------------
def _replaying(seed=0):
    return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu",
                                  replay=PowerLawReplay(max_samples=50, alpha=1.0, seed=seed))


def _stream(n=30):
    rng = np.random.default_rng(0)
    xs = [{"a": float(rng.normal())} for _ in range(n)]
    return xs, [int(x["a"] > 0) for x in xs]


@pytest.mark.parametrize("bad", [[2], NAN, np.nan, True, 1.5, ("t", 1)])
def test_a_bad_task_is_refused_before_anything_is_learned(bad):
    xs, ys = _stream()
    untouched, refused = _replaying(), _replaying()
    for m in (untouched, refused):
        m.prequential_batch(xs[:20], ys[:20], tasks=[0] * 20)
    with pytest.raises(TypeError, match=r"tasks\[2\] must be a string or an integer"):
        refused.prequential_batch([{"a": 0.3}, {"a": -0.2, "new": 1.0}, {"a": 0.1}], [1, 0, 1], tasks=[1, 1, bad])
    assert refused.replay_.n_seen_ == untouched.replay_.n_seen_
    assert refused.feature_names_in_ == untouched.feature_names_in_
    assert refused.replay_.keys_ == untouched.replay_.keys_
    Pa = untouched.prequential_batch(xs[20:], ys[20:], tasks=[0] * 10)
    Pb = refused.prequential_batch(xs[20:], ys[20:], tasks=[0] * 10)
    assert np.array_equal(Pa, Pb)


def test_string_and_integer_tasks_are_taken():
    xs, ys = _stream(6)
    m = _replaying()
    m.prequential_batch(xs, ys, tasks=["a", 1, np.int64(1), None, "a", 2])
    assert sorted(map(str, m.replay_.keys_)) == sorted(map(str, [("task", "a"), ("task", 1), ("task", 2)]))


def test_tasks_must_be_one_per_event():
    xs, ys = _stream(3)
    with pytest.raises(ValueError, match="3 events and 2 tasks"):
        _replaying().prequential_batch(xs, ys, tasks=[0, 0])


def test_the_trainable_learner_refuses_a_bad_task_before_learning():
    xs, ys = _stream(8)
    m = TrainableLearner(hidden=(4,), micro_batch=4, replay=ReservoirReplay(max_samples=20), device="cpu")
    with pytest.raises(TypeError, match=r"tasks\[3\]"):
        m.prequential_batch(xs, ys, tasks=[0, 0, 0, [1], 0, 0, 0, 0])
    assert m.n_events_ == 0 and m.n_updates_ == 0 and m.replay_.n_seen_ == 0 and not m.feature_names_in_


# -- PowerLawReplay with and without tasks (finding 5) ----------------------------------------
def test_rows_without_a_task_are_not_members_of_the_newest_group():
    # rows without a task have gid -1; counts[-1] read the count of the group created last (B)
    one = np.ones(1, dtype=bool)
    for seed in range(60):
        buf = PowerLawReplay(max_samples=6, seed=seed)
        for task in ["A", "B", "B", None, None, None]:
            buf.offer(np.zeros(1), one, "y", task=task)
        buf.offer(np.zeros(1), one, "y", task="A")  # A is not the largest group: a row of B makes room
        assert sorted(buf.task_, key=str) == ["A", "A", "B", None, None, None], seed


def test_a_shrinking_budget_evicts_from_the_largest_group_not_rows_without_a_task():
    one = np.ones(1, dtype=bool)
    cap6 = 6 * ReservoirReplay.row_bytes(1)  # six rows of one input; four of two
    for seed in range(60):
        buf = PowerLawReplay(max_samples=100, max_bytes=cap6, seed=seed)
        for task in ["A", "B", "B", None, None, None]:
            buf.offer(np.zeros(1), one, "y", task=task)
        buf._fit_width(2)  # a second input: room for four rows
        assert buf.size_ == 4 and sum(t is None for t in buf.task_) == 3, seed


# -- TrainableLearner's parts (finding 7) -----------------------------------------------------
@pytest.mark.parametrize("kw, message", [({"drift": "adwin"}, "drift must be a DriftMonitor"),
                                         ({"replay": "reservoir"}, "replay must be a ReplayBuffer"),
                                         ({"homeostasis": True}, "homeostasis must be a Homeostasis")])
def test_trainable_parts_of_the_wrong_kind_are_named(kw, message):
    with pytest.raises(TypeError, match=message):
        TrainableLearner(device="cpu", **kw)


# -- parameters of the wrong type are named (finding 8) ---------------------------------------
@pytest.mark.parametrize("cls, name, value", [
    (ReservoirReplay, "ratio", "1"), (ReservoirReplay, "ratio", None), (ReservoirReplay, "ratio", True),
    (PowerLawReplay, "alpha", None), (PowerLawReplay, "alpha", "1"),
    (DriftMonitor, "forget_value", "x"), (DriftMonitor, "forget_value", None), (DriftMonitor, "params", "x"),
    (Homeostasis, "recent_rate", "x"), (Homeostasis, "set_point_rate", None), (Homeostasis, "need_decay", "x"),
    (Homeostasis, "min_forgetting", "x"), (Homeostasis, "lr_low", "x"), (Homeostasis, "lr_high", None),
    (ImbalanceCompensator, "max_weight", "x"),
])
def test_a_parameter_of_the_wrong_type_is_named(cls, name, value):
    with pytest.raises((ValueError, TypeError)) as err:
        cls(**{name: value})
    assert name in str(err.value)


def test_unknown_detector_params_are_named():
    with pytest.raises(ValueError, match="bad params for drift detector 'adwin'"):
        DriftMonitor(params={"nope": 1})
