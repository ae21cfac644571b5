"""Review r136: the analytic ridge heads and partition-mergeable learners.

Findings (each test named ``test_f<N>_...`` failed before its fix):

* F1 (low): a ridge head's saved state was loaded without checking its values. A state (a
  checkpoint's ``head``/``heads``, a several-partition state's ``served`` heads) holding a NaN or
  an infinity in ``A``, ``B`` or ``R``, a ridge decay of 0 or past 1, a negative row count, or
  fewer class counts than classes loaded silently: a NaN in ``B`` made every prediction NaN, one in
  ``A`` every probability 1/c, for good, and short counts failed the next ``learn_one`` with an
  IndexError; a partition's part holding the same was already refused (``PartStats.from_state``,
  review r74). They are now a ``ValueError`` that changes nothing.
* F2 (low): ``sufficient_statistics`` gave ``features == []`` for a learner with ``hash_width``,
  whose design columns are the bias and ``hash_width`` buckets: the list did not describe ``xtx``.
  It now gives the bucket numbers, as ``coef_``'s columns are.

The other tests hold the promises found sound (closed-form ridge, the forgetting convention,
merges in any order, ill-conditioned inputs, non-finite inputs), all in float64 with fixed seeds.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pandas as pd
import pytest

from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.model_state import sufficient_statistics

NAMES = ["f0", "f1", "f2"]


def _stream(seed: int, n: int = 240, late: int = 100):
    """Rows (n, 3), their dict events and labels of three classes, ``"c"`` first seen after row ``late``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(NAMES)))
    labels = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    labels[:late] = np.where(labels[:late] == "c", "a", labels[:late])
    return X, [dict(zip(NAMES, r)) for r in X], labels.tolist()


def _closed_form(X, labels, classes, ridge, weights=None):
    """``(Z'DZ + ridge I)^-1 Z'DY``, ``Z = [1, X]``, ``Y`` one-hot in ``classes`` order, ``D = diag(weights)``."""
    Z = np.hstack([np.ones((len(X), 1)), X])
    Y = np.array([[1.0 if y == c else 0.0 for c in classes] for y in labels])
    w = np.ones(len(X)) if weights is None else np.asarray(weights)
    return np.linalg.solve(Z.T @ (Z * w[:, None]) + ridge * np.eye(Z.shape[1]), Z.T @ (Y * w[:, None]))


def _weights(model, classes=None) -> np.ndarray:
    """The head's weights (1 + inputs, classes), columns in ``classes`` order (default: the model's)."""
    W = np.vstack([model.intercept_[None, :], model.coef_.T])
    return W if classes is None else W[:, [model.classes_.index(c) for c in classes]]


def _trained(n: int = 40, **params) -> AnalyticClassifier:
    _, xs, labels = _stream(0, n, late=0)
    model = AnalyticClassifier(**params)
    for x, y in zip(xs, labels):
        model.learn_one(x, y)
    return model


# -- F1: a head's saved state with values no head holds ----------------------------------------------
@pytest.mark.parametrize("field, value", [("A", np.nan), ("B", np.inf), ("B", np.nan), ("R", -np.inf)])
def test_f1_head_state_with_non_finite_statistics_is_refused_and_changes_nothing(field, value):
    model = _trained()
    state = copy.deepcopy(model.state_dict())
    assert "R" in state["head"]["ridge"]  # a head learned one event at a time keeps R
    state["head"]["ridge"][field][1, 0] = value
    target = _trained(20, gamma=1.0)
    before = target.predict_proba_batch(_stream(1, 10)[1])
    with pytest.raises(ValueError, match=f"ridge {field}"):
        target.load_state_dict(state)
    # (to rounding: taking the state to restore folds the head's cached weights, as state_dict documents)
    np.testing.assert_allclose(target.predict_proba_batch(_stream(1, 10)[1]), before, rtol=0, atol=1e-13)


@pytest.mark.parametrize("field, value", [("decay", 0.0), ("decay", 1.5), ("decay", float("nan")),
                                          ("gamma", -1.0), ("n_rows", -1), ("rows_since_anchor", -3)])
def test_f1_head_state_with_scalars_out_of_range_is_refused(field, value):
    state = copy.deepcopy(_trained(forgetting=0.99).state_dict())
    state["head"]["ridge"][field] = value
    with pytest.raises(ValueError, match=f"ridge {field}"):
        AnalyticClassifier(forgetting=0.99).load_state_dict(state)


def test_f1_head_state_with_fewer_counts_than_classes_is_refused():
    state = copy.deepcopy(_trained().state_dict())
    state["head"]["counts"] = state["head"]["counts"][:-1]  # loaded, the next event of the last class failed
    with pytest.raises(ValueError, match="counts"):
        AnalyticClassifier().load_state_dict(state)


def test_f1_served_head_of_several_partitions_with_nan_is_refused():
    _, xs, labels = _stream(2, 60)
    model = AnalyticClassifier(forgetting=0.99)
    for i, (x, y) in enumerate(zip(xs, labels)):
        model.learn_one(x, y, partition=i % 2)
    state = copy.deepcopy(model.state_dict())
    state["parts"]["served"][0]["ridge"]["B"][0, 0] = np.nan  # the heads as served, which a restore resumes
    with pytest.raises(ValueError, match="ridge B"):
        AnalyticClassifier(forgetting=0.99).load_state_dict(state)


def test_f1_online_learner_head_state_with_nan_is_refused():
    _, xs, labels = _stream(3, 30)
    model = OnlineContinualLearner(device="cpu", seed=0)
    for x, y in zip(xs, labels):
        model.learn_one(x, y)
    state = copy.deepcopy(model.state_dict())
    state["heads"][1]["ridge"]["A"][0, 0] = np.nan
    fresh = OnlineContinualLearner(device="cpu", seed=0)
    with pytest.raises(ValueError, match="ridge A"):
        fresh.load_state_dict(state)


# -- F2: sufficient statistics of a hashed learner ----------------------------------------------------
def test_f2_sufficient_statistics_of_hashed_inputs_name_the_buckets():
    model = AnalyticClassifier(hash_width=4)
    for i in range(12):
        model.learn_one({"a": float(i), "b": 1.0, "z": -2.0}, "x" if i % 2 else "y")
    (head,) = sufficient_statistics(model.state_dict())
    assert head["features"] == [0, 1, 2, 3]
    assert head["xtx"].shape == (1 + len(head["features"]),) * 2  # layout "bias+features"
    assert model.coef_.shape == (2, 4)


def test_sufficient_statistics_of_named_inputs_are_unchanged():
    model = _trained()
    (head,) = sufficient_statistics(model.state_dict())
    assert head["features"] == NAMES and head["xtx"].shape == (4, 4)


# -- promises found sound -----------------------------------------------------------------------------
def test_forgetting_one_is_closed_form_ridge_per_event_batches_and_across_a_checkpoint():
    X, xs, labels = _stream(4, 300)
    gamma = 0.7
    per_event = AnalyticClassifier(gamma=gamma)
    for x, y in zip(xs, labels):
        per_event.learn_one(x, y)
    reference = _closed_form(X, labels, per_event.classes_, gamma)  # "c" has zeros in every row before it came
    np.testing.assert_allclose(_weights(per_event), reference, rtol=0, atol=1e-12)
    batched, start = AnalyticClassifier(gamma=gamma), 0
    for size in (1, 7, 64, 3, 100, 2, 123):  # mixed sizes, the first a single row
        if start == 150:  # a checkpoint round trip in the middle
            batched = AnalyticClassifier(gamma=gamma).load_state_dict(copy.deepcopy(batched.state_dict()))
        batched.learn_many(pd.DataFrame(X[start:start + size], columns=NAMES), pd.Series(labels[start:start + size]))
        start += size
    assert start == len(X)
    np.testing.assert_allclose(_weights(batched, per_event.classes_), reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_forgetting_below_one_is_the_documented_exponentially_weighted_ridge(weighted):
    """``(X'LX + gamma l**k I)^-1 X'LY``: ``L`` the rows' ``l**age`` times their weight, ``k`` the rows since
    the last re-anchor (the ridge term decays with the rows and is reset to ``gamma`` below 0.1 gamma)."""
    X, xs, labels = _stream(5, 300)
    lam, gamma = 0.98, 0.7
    w = np.random.default_rng(6).uniform(0.5, 2.0, len(X)) if weighted else np.ones(len(X))
    per_event = AnalyticClassifier(gamma=gamma, forgetting=lam)
    for x, y, wi in zip(xs, labels, w):
        per_event.learn_one(x, y, w=float(wi))
    k = per_event.head_.ridge.rows_since_anchor
    assert 0 < k < len(X) and per_event.head_.ridge.decay == pytest.approx(lam**k)  # re-anchored at least once
    age = np.arange(len(X) - 1, -1, -1)
    reference = _closed_form(X, labels, per_event.classes_, gamma * lam**k, w * lam**age)
    np.testing.assert_allclose(_weights(per_event), reference, rtol=0, atol=1e-12)
    batched, start = AnalyticClassifier(gamma=gamma, forgetting=lam), 0
    for size in (1, 7, 64, 3, 100, 2, 123):
        batched.learn_many(pd.DataFrame(X[start:start + size], columns=NAMES), pd.Series(labels[start:start + size]),
                           w=pd.Series(w[start:start + size]))
        start += size
    np.testing.assert_allclose(_weights(batched, per_event.classes_), reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("lam", [1.0, 0.99])
def test_merged_disjoint_partitions_give_one_learners_statistics_in_any_order(lam):
    X, xs, labels = _stream(7, 240)
    part = np.random.default_rng(8).integers(0, 3, len(X)).tolist()
    one = AnalyticClassifier(forgetting=lam)
    members = [AnalyticClassifier(forgetting=lam) for _ in range(3)]
    for x, y, p in zip(xs, labels, part):
        one.learn_one(x, y, partition=p)
        members[p].learn_one(x, y, partition=p)
    raw = [members[p].contribution(p).to_bytes() for p in range(3)]
    one.resum()  # a forgetting head is exact at a re-sum (between them, documented as approximate)
    classes = sorted(one.classes_)
    for order in itertools.permutations(range(3)):
        served = AnalyticClassifier(forgetting=lam)
        for p in order:
            served.merge(p, raw[p])
        np.testing.assert_allclose(_weights(served, classes), _weights(one, classes), rtol=0, atol=1e-12)
        mine, theirs = served.served_statistics()[0], one.served_statistics()[0]
        cols = [served.classes_.index(c) for c in one.classes_]
        np.testing.assert_allclose(mine.A, theirs.A, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(mine.B[:, cols], theirs.B, rtol=1e-13, atol=1e-12)
    if lam == 1.0:  # and closed form on the union
        np.testing.assert_allclose(_weights(one), _closed_form(X, labels, one.classes_, 1.0), rtol=0, atol=1e-12)


def test_merging_a_partition_with_no_events_leaves_exact_predictions_alone():
    _, xs, labels = _stream(9, 120)
    model = AnalyticClassifier()
    for x, y in zip(xs, labels):
        model.learn_one(x, y, partition=0)
    before = model.predict_proba_batch(xs[:30], partition=0)
    model.merge(42, AnalyticClassifier().contribution(42).to_bytes())
    assert model.partitions_ == [0, 42]
    np.testing.assert_allclose(model.predict_proba_batch(xs[:30], partition=0), before, rtol=0, atol=1e-13)


@pytest.mark.parametrize("lam", [1.0, 0.99])
def test_ill_conditioned_inputs_give_finite_predictions_alike_per_event_and_batched(lam):
    rng = np.random.default_rng(10)
    n = 200
    base = rng.normal(size=n)
    labels = ["p" if v > 0 else "q" for v in base]
    cases = [
        [{"a": base[i], "a_again": base[i], "c": rng.normal()} for i in range(n)],  # duplicate columns
        [{"big": 1e8 * base[i], "small": 1e-8 * rng.normal(), "c": rng.normal()} for i in range(n)],  # scales
        [{"k": 1e8, "a": base[i]} for i in range(n)],  # a constant column
        [{"s": 1.7e9 + i, "ms": (1.7e9 + i) * 1000, "a": base[i]} for i in range(n)],  # equilibrated fallback
    ]
    for rows in cases:
        per_event = AnalyticClassifier(forgetting=lam)
        for x, y in zip(rows, labels):
            assert all(np.isfinite(list(per_event.predict_proba_one(x).values())))
            per_event.learn_one(x, y)
        batched = AnalyticClassifier(forgetting=lam)
        P = np.vstack([batched.prequential_batch(rows[s:s + 37], labels[s:s + 37]) for s in range(0, n, 37)])
        assert np.isfinite(P).all() and np.isfinite(per_event.predict_proba_batch(rows)).all()
        W1, W2 = per_event.head_.ridge.weights(), batched.head_.ridge.weights()
        assert np.isfinite(W1).all()
        np.testing.assert_allclose(W2, W1, rtol=0, atol=1e-9 * max(1.0, np.abs(W1).max()))
    assert per_event.head_.ridge.equilibrated  # the last case: the documented fallback


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e101])
def test_non_finite_inputs_never_reach_the_statistics(value):
    model = _trained(forgetting=0.99)
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError):
        model.learn_one({"f0": value, "f1": 1.0}, "a")
    with pytest.raises(ValueError):
        model.prequential_batch([{"f0": 1.0}, {"f0": value}], ["a", "b"])
    if not np.isnan(value):  # a NaN cell of a frame is missing (README), not refused
        with pytest.raises(ValueError):
            model.learn_many(pd.DataFrame({"f0": [1.0, value]}), pd.Series(["a", "b"]))
    after = model.state_dict()
    np.testing.assert_array_equal(after["head"]["ridge"]["A"], state["head"]["ridge"]["A"])
    np.testing.assert_array_equal(after["head"]["ridge"]["B"], state["head"]["ridge"]["B"])
    model.learn_many(pd.DataFrame({"f0": [1.0, np.nan]}), pd.Series(["a", "b"]))  # missing: read as 0
    assert np.isfinite(model.head_.ridge.A).all() and np.isfinite(model.head_.ridge.B).all()
