"""A review of the non-default learners (AnalyticClassifier, TrainableLearner): sample weights of
two dimensions or of a huge size, partition keys that name no part, a TrainableLearner state of
another network, TrainableLearner's hyperparameter checks, and the ridge penalty with forgetting.
A refused call changes nothing: the learner's ``state_dict`` is the same as before it."""

import copy

import numpy as np
import pandas as pd
import pytest
from state_kit import same

from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.base_learner import MAX_WEIGHT
from stream_cl.trainable import TrainableLearner


def _analytic():
    m = AnalyticClassifier()
    for i in range(10):
        m.learn_one({"a": float(i)}, i % 2, partition=0)
    return m


def _online():
    m = OnlineContinualLearner(device="cpu")
    for i in range(10):
        m.learn_one({"a": float(i)}, i % 2, partition=0)
    return m


LEARNERS = [pytest.param(_analytic, id="analytic"), pytest.param(_online, id="online")]
X_NEW = pd.DataFrame({"a": [0.5, 1.5, 2.5], "b": [1.0, 2.0, 3.0]})  # "b" and class 7 are new
Y_NEW = pd.Series([7, 7, 1])


def _refused(model, call, error, match):
    """``call(model)`` raises ``error`` matching ``match`` and leaves the state as it was."""
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(error, match=match):
        call(model)
    assert same(model.state_dict(), before)


# -- F2: sample weights in two dimensions ----------------------------------------------------
@pytest.mark.parametrize("make", LEARNERS)
@pytest.mark.parametrize("weights", [pd.DataFrame({"w": [1.0, 2.0, 1.0]}), np.array([[1.0], [2.0], [1.0]])],
                         ids=["frame", "column"])
def test_weights_of_two_dimensions_are_refused_before_anything_changes(make, weights):
    # AnalyticClassifier.learn_many had indexed "b" and added class 7 (no data, probability > 0),
    # then failed to broadcast the (3, 1) weights
    model = make()
    match = "sample weights must be one number per event in one dimension"
    _refused(model, lambda m: m.learn_many(X_NEW, Y_NEW, w=weights), ValueError, match)
    _refused(model, lambda m: m.prequential_batch(X_NEW.to_dict("records"), list(Y_NEW), weights), ValueError, match)
    assert model.classes_ == [0, 1] and model.feature_names_in_ == ["a"]


@pytest.mark.parametrize("make", LEARNERS)
def test_weights_in_one_dimension_are_taken(make):
    model = make()
    model.learn_many(X_NEW, Y_NEW, w=pd.Series([1.0, 2.0, 1.0]))
    model.prequential_batch(X_NEW.to_dict("records"), list(Y_NEW), np.array([1.0, 2.0, 1.0]))
    assert model.classes_ == [0, 1, 7]


# -- F7: a finite but huge sample weight -----------------------------------------------------
@pytest.mark.parametrize("make", LEARNERS)
def test_a_huge_weight_is_refused_naming_the_bound(make):
    # w=1e308 made X'X infinite: the model restored from its checkpoint predicted NaN
    model = make()
    match = r"sample weight must be a positive finite number from 1e-300 to 1e\+50, got 1e\+308"
    _refused(model, lambda m: m.learn_one({"a": 3.0}, 1, w=1e308), ValueError, match)
    _refused(model, lambda m: m.learn_many(X_NEW, Y_NEW, w=[1.0, 1e308, 1.0]), ValueError, match)
    _refused(model, lambda m: m.prequential_batch([{"a": 3.0}], [1], [1e308]), ValueError, match)


def test_the_largest_weight_keeps_the_checkpoint_finite():
    model = _analytic()
    model.learn_one({"a": 3.0}, 1, w=MAX_WEIGHT)
    state = model.state_dict()
    assert np.isfinite(state["head"]["ridge"]["A"]).all()
    restored = AnalyticClassifier().load_state_dict(copy.deepcopy(state))
    assert restored.predict_proba_one({"a": 0.5}) == model.predict_proba_one({"a": 0.5})


# -- F6: partition keys that name no part ----------------------------------------------------
@pytest.mark.parametrize("make", LEARNERS)
@pytest.mark.parametrize("key, error, match", [(["p1"], TypeError, "partition must be hashable, got list"),
                                               (float("nan"), ValueError, r"partition is missing \(nan\)"),
                                               (pd.NA, ValueError, "partition is missing")], ids=["list", "nan", "NA"])
def test_a_partition_key_naming_no_part_is_refused_before_anything_changes(make, key, error, match):
    # a list failed after the learner had gone over to several parts; each NaN made a part of its own
    model = make()
    x, rows = {"a": 1.0, "b": 2.0}, X_NEW.to_dict("records")
    _refused(model, lambda m: m.learn_one(x, 7, partition=key), error, match)
    _refused(model, lambda m: m.learn_many(X_NEW, Y_NEW, partition=key), error, match)
    _refused(model, lambda m: m.prequential_batch(rows, list(Y_NEW), partition=key), error, match)
    _refused(model, lambda m: m.predict_proba_one(x, partition=key), error, match)
    _refused(model, lambda m: m.predict_proba_many(X_NEW, partition=key), error, match)
    assert model.partitions_ == [0] and model.feature_names_in_ == ["a"]


# -- F3: a TrainableLearner state of another network ----------------------------------------
def _rows(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [{"a": float(rng.normal()), "b": float(rng.normal())} for _ in range(n)], [int(v) for v in rng.integers(0, 2, n)]


def _trained(**kw):
    m = TrainableLearner(**{"hidden": (8,), "micro_batch": 4, "device": "cpu", **kw})
    xs, ys = _rows()
    m.prequential_batch(xs[:22], ys[:22])  # two labelled events pending
    return m


@pytest.mark.parametrize("theirs, mine, name", [({"hidden": (8, 4)}, {"hidden": (16,)}, "hidden"),
                                                ({"hidden": (8,)}, {"hidden": None}, "hidden"),
                                                ({"dtype": "float32"}, {}, "dtype"),
                                                ({"hash_width": 16}, {}, "hash_width"),
                                                ({"seed": 1}, {}, "seed")], ids=str)
def test_a_state_of_another_network_is_refused_naming_the_setting(theirs, mine, name):
    # a state of other widths was taken, and the next micro-batch failed with an IndexError after
    # its events had been counted and dropped
    state = _trained(**theirs).state_dict()
    model = _trained(**mine)
    _refused(model, lambda m: m.load_state_dict(state), ValueError, f"^checkpoint and learner differ in {name}: ")
    xs, ys = _rows()
    model.prequential_batch(xs[22:], ys[22:])  # it goes on learning
    assert model.n_labelled_ == 40


def test_a_state_of_the_same_settings_loads_with_or_without_its_seed():
    xs, ys = _rows()
    src = _trained(seed=3)
    state = src.state_dict()
    older = {k: v for k, v in copy.deepcopy(state).items() if k != "seed"}  # as written before the seed was kept
    for s in (state, older):
        dst = TrainableLearner(hidden=(8,), micro_batch=4, device="cpu", seed=3).load_state_dict(copy.deepcopy(s))
        assert same(dst.prequential_batch(xs[22:], ys[22:]), copy.deepcopy(src).prequential_batch(xs[22:], ys[22:]))


# -- F4: TrainableLearner's hyperparameters -------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [({"seed": -1}, "^seed must be an int >= 0"), ({"seed": None}, "^seed must"),
                                           ({"seed": 1.5}, "^seed must"), ({"seed": True}, "^seed must"),
                                           ({"hidden": (True,)}, r"^hidden\[0\] must be an int >= 1"),
                                           ({"hidden": (4, 2.0)}, r"^hidden\[1\] must be an int >= 1"),
                                           ({"micro_batch": True}, "^micro_batch must be an int >= 1"),
                                           ({"steps": True}, "^steps must be an int >= 1"),
                                           ({"steps": 0}, "^steps must be an int >= 1")], ids=str)
def test_trainable_hyperparameters_are_refused_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainableLearner(device="cpu", **kwargs)


def test_trainable_takes_numpy_ints():
    xs, ys = _rows()
    a = TrainableLearner(hidden=(np.int64(8),), micro_batch=np.int64(4), steps=np.int64(2), seed=np.int64(1), device="cpu")
    b = TrainableLearner(hidden=(8,), micro_batch=4, steps=2, seed=1, device="cpu")
    assert same(a.prequential_batch(xs, ys), b.prequential_batch(xs, ys))
    assert same(a.state_dict(), b.state_dict())


# -- F5: the ridge penalty with forgetting (README, AnalyticClassifier's ``forgetting``) -------
def test_forgetting_weights_are_ridge_with_the_decayed_penalty():
    # (X'LX + gamma l**k I)^-1 X'LY, L the rows' l**age times their weight, k the rows since the
    # last re-anchor: the penalty falls to 0.1 * gamma, and a re-anchor resets it to gamma
    rng = np.random.default_rng(0)
    lam, gamma, n = 0.99, 5.0, 460
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    w = rng.uniform(0.5, 2.0, n)
    m = AnalyticClassifier(gamma=gamma, forgetting=lam)
    penalties = []
    for t in range(n):
        m.learn_one(dict(zip("abc", X[t])), int(y[t]), w=float(w[t]))
        k = t + 1
        if k in (229, 230, 231, 460):
            Z, Y = np.hstack([np.ones((k, 1)), X[:k]]), np.eye(2)[y[:k]][:, m.classes_]
            L = w[:k] * lam ** (k - 1 - np.arange(k))  # (k,)
            since = k % 230  # re-anchored at rows 230 and 460
            W = np.linalg.solve(Z.T @ (L[:, None] * Z) + gamma * lam**since * np.eye(4), Z.T @ (L[:, None] * Y))
            assert np.allclose(np.vstack([m.intercept_, m.coef_.T]), W, rtol=1e-10, atol=1e-12)
            penalties.append(gamma * lam**since)
    assert min(penalties) == pytest.approx(gamma * lam**229) and 0.1 * gamma < gamma * lam**229 < 0.11 * gamma
