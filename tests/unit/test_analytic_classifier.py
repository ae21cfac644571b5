"""AnalyticClassifier: River conformance, exactness against closed-form ridge, bad input."""

import math
import pickle
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from river import checks, datasets, evaluate, linear_model, metrics, multiclass, preprocessing

from stream_cl import AnalyticClassifier
from stream_cl.contribution import ContributionError
from stream_cl.features import InvalidFeatureError


@pytest.mark.parametrize("params", list(AnalyticClassifier._unit_test_params()), ids=str)
def test_river_check_estimator(params):
    checks.check_estimator(AnalyticClassifier(**params))


def test_no_river_check_is_skipped():
    assert not AnalyticClassifier()._unit_test_skips()


def _closed_form(rows, labels, classes, names, gamma):
    X = np.array([[1.0] + [r.get(k, 0.0) for k in names] for r in rows])
    Y = np.array([[float(y == c) for c in classes] for y in labels])
    return np.linalg.solve(X.T @ X + gamma * np.eye(X.shape[1]), X.T @ Y)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streamed_coefficients_equal_closed_form_ridge(seed):
    """Random batch sizes, learn_one/learn_many/prequential_batch mixed, labels in random
    order (classes appear late), features that appear late: still closed-form ridge."""
    rng = np.random.default_rng(seed)
    n = 600
    keys = [f"f{i}" for i in range(12)]
    rows, labels = [], []
    for i in range(n):
        present = keys[: 6 + min(6, i // 80)]  # features emerge over time
        rows.append({k: float(rng.normal() * (1 + j)) for j, k in enumerate(present) if rng.random() > 0.1})
        labels.append(int(rng.integers(0, 2 + min(5, i // 100))))  # classes emerge too
    order = rng.permutation(n)  # random label arrival order
    rows, labels = [rows[i] for i in order], [labels[i] for i in order]
    gamma = 0.05
    model = AnalyticClassifier(gamma=gamma)
    i = 0
    while i < n:
        b = int(rng.choice([1, 1, 2, 7, 33, 128]))
        chunk = slice(i, min(n, i + b))
        kind = rng.integers(0, 3)
        if b == 1 or kind == 0:
            for x, y in zip(rows[chunk], labels[chunk]):
                model.learn_one(x, y)
        elif kind == 1:
            frame = pd.DataFrame(rows[chunk]).fillna(0.0)
            model.learn_many(frame, pd.Series(labels[chunk]))
        else:
            model.prequential_batch(rows[chunk], labels[chunk])
        i += b
    W = _closed_form(rows, labels, model.classes_, model.feature_names_in_, gamma)
    got = np.vstack([model.intercept_[None, :], model.coef_.T])
    rel = np.abs(got - W).max() / np.abs(W).max()
    assert rel < 1e-6, rel
    assert model.coef_.shape == (len(model.classes_), len(model.feature_names_in_))


def test_a_feature_at_a_large_magnitude_leaves_the_per_event_loop_exact():
    # An amount in cents beside a feature near 1: a row at a magnitude the head has not met has a
    # leverage x'Rx ~1e20, and its rank-1 downdate of R cancels ~16 digits. Before R was rebuilt after
    # such a row, the loop ended 9e-4 off closed-form ridge (computed here in 60 digits), and
    # predicted 2 of 600 events otherwise than it.
    import mpmath  # sympy's, which torch installs: a missing one fails, never skips (review r102)
    mpmath.mp.dps = 60
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for _ in range(600):
        a = float(rng.normal())
        xs.append({"a": a, "amount": float(np.exp(rng.normal(0, 3))) * 1e9})
        ys.append("x" if a > 0 else "y")
    model = AnalyticClassifier()
    A, b = mpmath.eye(3), {"x": mpmath.zeros(3, 1), "y": mpmath.zeros(3, 1)}
    disagree = 0
    for i, (x, y) in enumerate(zip(xs, ys)):
        q = mpmath.matrix([1.0, x["a"], x["amount"]])
        if i:
            scores = {c: (q.T * mpmath.lu_solve(A, b[c]))[0] for c in b}
            disagree += model.predict_one(x) != max(scores, key=scores.get)
        model.learn_one(x, y)
        A += q * q.T
        b[y] += q
    assert disagree == 0
    for c in model.classes_:
        exact = np.array([float(v) for v in mpmath.lu_solve(A, b[c])])  # (3,): bias, a, amount
        k = model.classes_.index(c)
        got = np.array([model.intercept_[k], *model.coef_[k]])
        assert np.abs(got - exact).max() < 1e-12


def test_a_batch_with_rows_at_a_large_magnitude_is_its_per_event_loop():
    # The batch's rows are learned from the chunk's inverse one at a time; after a row that cancels
    # digits the rest start from R rebuilt, as the per-event loop does (before: probabilities 0.98
    # apart on 3 of 600 events). Every 5th event is predict-only: a query scored between rows.
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for i in range(600):
        a = float(rng.normal())
        xs.append({"a": a, "amount": float(np.exp(rng.normal(0, 3))) * 1e9})
        ys.append(None if i % 5 == 4 else ("x" if a > 0 else "y"))
    loop, batch = AnalyticClassifier(), AnalyticClassifier()
    P_loop = []
    for x, y in zip(xs, ys):
        P_loop.append(loop.predict_proba_one(x).get("x", 0.0))
        if y is not None:
            loop.learn_one(x, y)
    P_batch = batch.prequential_batch(xs, ys)[:, batch.classes_.index("x")]
    np.testing.assert_allclose(P_batch, P_loop, rtol=0, atol=1e-6)


def test_prequential_batch_equals_predict_then_learn_loop():
    data = list(datasets.ImageSegments().take(400))
    xs, ys = [x for x, _ in data], [y for _, y in data]
    ys_partly_unlabelled = [None if i % 5 == 0 else y for i, y in enumerate(ys)]
    loop = AnalyticClassifier(gamma=0.5, forgetting=0.995)
    expected = []
    for x, y in zip(xs, ys_partly_unlabelled):
        expected.append(loop.predict_proba_one(x))
        if y is not None:
            loop.learn_one(x, y)
    # compare row by row (the class set grows between batches)
    batch = AnalyticClassifier(gamma=0.5, forgetting=0.995)
    for s in range(0, 400, 64):
        probas = batch.prequential_batch(xs[s:s + 64], ys_partly_unlabelled[s:s + 64])
        for i, row in enumerate(probas):
            want = expected[s + i]
            have = {c: p for c, p in zip(batch.classes_, row) if c in want or p > 0}
            assert set(have) == set(want)
            for c in want:
                assert math.isclose(have[c], want[c], rel_tol=1e-7, abs_tol=1e-9)


def test_beats_logistic_regression_on_image_segments():
    ours = evaluate.progressive_val_score(datasets.ImageSegments(), AnalyticClassifier(gamma=0.1), metrics.Accuracy())
    lr = multiclass.OneVsRestClassifier(linear_model.LogisticRegression())
    theirs = evaluate.progressive_val_score(datasets.ImageSegments(), preprocessing.StandardScaler() | lr, metrics.Accuracy())
    assert ours.get() > theirs.get()


@pytest.mark.parametrize(
    "x, message",
    [
        ({"a": float("nan")}, "not finite"),
        ({"a": float("inf")}, "not finite"),
        ({"a": b"3.0"}, "expected a number, a string"),  # strings, nulls and arrays are features (test_encoding.py)
        ({"a": {1, 2}}, "not set"),
        ({"a": datetime(2024, 1, 1)}, "time_features=True"),
        ({"a": [[[[[1.0]]]]]}, "nested deeper than 4 levels"),
    ],
)
def test_bad_features_raise_and_leave_the_model_untouched(x, message):
    model = AnalyticClassifier()
    model.learn_one({"a": 1.0, "b": 2.0}, "yes").learn_one({"a": -1.0, "b": 0.5}, "no")
    before = pickle.dumps(model)
    with pytest.raises(InvalidFeatureError, match=message):
        model.learn_one({**x, "new": 1.0}, "yes")
    with pytest.raises(InvalidFeatureError):
        model.prequential_batch([{"a": 1.0}, {**x, "z": 2.0}], ["yes", "no"])
    assert pickle.dumps(model) == before


def test_bad_labels_raise():
    model = AnalyticClassifier()
    with pytest.raises(ValueError, match="None"):
        model.learn_one({"a": 1.0}, None)
    with pytest.raises(TypeError, match="hashable"):
        model.learn_one({"a": 1.0}, ["x"])
    with pytest.raises(ValueError, match="label is missing"):
        model.learn_one({"a": 1.0}, float("nan"))


def test_hashing_keeps_a_fixed_width_for_unbounded_keys():
    model = AnalyticClassifier(hash_width=32)
    for i in range(500):
        model.learn_one({f"user_{i}": 1.0, "bias_feature": float(i % 2)}, i % 2)
    assert model.coef_.shape == (2, 32)
    assert model.predict_one({"bias_feature": 1.0}) == 1


def test_state_dict_round_trip_resumes_exactly():
    data = list(datasets.Phishing().take(300))
    a = AnalyticClassifier(gamma=0.3, forgetting=0.99)
    for x, y in data[:150]:
        a.learn_one(x, y)
    b = AnalyticClassifier(**a.state_dict()["params"]).load_state_dict(a.state_dict())
    for x, y in data[150:]:
        a.learn_one(x, y)
        b.learn_one(x, y)
    assert np.array_equal(a.coef_, b.coef_)
    assert a.predict_proba_one(data[0][0]) == b.predict_proba_one(data[0][0])


def test_the_remembered_row_is_reused_only_for_the_same_event():
    """predict_one then learn_one reuse the row; a changed value, or a new column, is not missed."""
    a, b = AnalyticClassifier(), AnalyticClassifier()
    x = {"u": 1.0, "v": 2.0}
    for model in (a, b):
        model.learn_one({"u": 0.5, "v": -1.0}, "p").learn_one({"u": -0.5, "v": 1.0}, "q")
    a.predict_one(x)
    x["v"] = 5.0  # changed between predict and learn
    a.learn_one(x, "p")
    b.learn_one({"u": 1.0, "v": 5.0}, "p")
    assert np.array_equal(a.coef_, b.coef_)
    a.predict_one(x)
    for model in (a, b):
        model.learn_one({"w": 3.0}, "q")  # another event adds a column
    a.learn_one(x, "q")
    b.learn_one({"u": 1.0, "v": 5.0}, "q")
    assert np.array_equal(a.coef_, b.coef_)


def test_an_empty_event_after_the_index_grew():
    """An event {} has the keys (); once a column was added after a remembered event, the
    remembered columns must not be taken for its own (they were, and it crashed)."""
    events = [({"a": 1.0}, "x"), ({"b": 1.0}, "y"), ({}, "x"), ({"a": 2.0, "b": -1.0}, "y"), ({}, "y")]
    loop = AnalyticClassifier()
    loop.learn_one(*events[0])
    loop.predict_proba_one({"a": 2.0})  # remembers the keys ("a",), in index order
    loop.learn_one(*events[1])  # adds "b"
    assert sum(loop.predict_proba_one({}).values()) == pytest.approx(1.0)
    loop.learn_one(*events[2])
    loop.predict_proba_one({"b": 1.0, "a": 2.0})  # remembers keys out of index order
    loop.learn_one({"c": 1.0}, "y")  # adds "c"
    assert set(loop.predict_proba_one({})) == {"x", "y"}
    loop.learn_one({}, "y")
    batch = AnalyticClassifier()
    batch.prequential_batch([x for x, _ in events[:3]] + [{"c": 1.0}, {}], [y for _, y in events[:3]] + ["y", "y"])
    np.testing.assert_allclose(loop.coef_, batch.coef_, rtol=1e-9, atol=1e-12)
    stream = [({"a": 1.0}, "x"), ({"a": 2.0}, "y"), ({"a": -1.0, "b": 1.0}, "y"), ({}, "x")]
    evaluate.progressive_val_score(stream, AnalyticClassifier(), metrics.Accuracy())


def test_a_row_narrower_than_the_head_is_refused_before_its_class_is_added():
    from stream_cl.heads import RidgeClassHead

    head = RidgeClassHead(1.0, 1.0)
    head.learn_row(np.array([1.0, 2.0, 3.0]), "x")
    with pytest.raises(ValueError):
        head.learn_row(np.array([1.0, 2.0]), "phantom")
    assert head.classes == ["x"] and head.counts == [1.0]  # not a class that was never learned
    with pytest.raises(ValueError, match="fewer than the head's 3"):
        head.prequential(np.ones((2, 2)), ["phantom", "x"])
    assert head.classes == ["x"] and head.counts == [1.0]


def test_a_failed_learn_one_or_learn_many_changes_nothing():
    """River's convention: a call that raises changes nothing, not even the partition's part."""
    model = AnalyticClassifier()
    before = pickle.dumps(model)
    with pytest.raises(InvalidFeatureError):
        model.learn_one({"a": float("nan")}, "x", partition="p")
    with pytest.raises(InvalidFeatureError):
        model.learn_many(pd.DataFrame({"a": [1.0, {1, 2}]}), pd.Series(["x", "y"]), partition="p")
    assert pickle.dumps(model) == before


@pytest.mark.parametrize("params", [{"max_categories": 2}, {"missing_indicators": True}, {"hash_width": 8}], ids=str)
def test_learn_many_with_unlabelled_rows_equals_a_learn_one_loop(params):
    """Rows labelled None are predicted only: they create no column and use no category slot."""
    X = pd.DataFrame({"c": ["blue", "green", "purple", "red", "purple", "red"],
                      "n": [5.0, None, 1.0, None, 2.0, -1.0],
                      "only_unlabelled": [7.0, None, None, None, None, None]})
    y = pd.Series([None, "g", "p", "g", None, "g"], dtype=object)
    many = AnalyticClassifier(**params).learn_many(X, y)
    loop = AnalyticClassifier(**params)
    for x, label in zip(X.to_dict("records"), y):
        x = {k: (None if v != v else v) for k, v in x.items()}  # NaN is a null cell of the frame
        if label is not None:
            loop.learn_one(x, label)
    assert many.index_.state_dict()["names"] == loop.index_.state_dict()["names"]
    assert many.index_.kinds == loop.index_.kinds
    assert (many.index_.categories, many.index_.overflow) == (loop.index_.categories, loop.index_.overflow)
    np.testing.assert_allclose(many.coef_, loop.coef_, rtol=1e-9, atol=1e-12)
    assert many.predict_proba_one({"c": "purple"}) == pytest.approx(loop.predict_proba_one({"c": "purple"}))


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"a": pd.Series([], dtype=float), "b": pd.Series([], dtype=float)}),
    pd.DataFrame({"new": [1.0, 2.0], "c": ["u", "v"]}),  # every row unlabelled: predicted only
    pd.DataFrame({"new": [1.0, 2.0]}),  # the numeric fast path
], ids=["empty", "categories", "numeric"])
def test_learn_many_without_labelled_rows_changes_nothing(frame):
    model = AnalyticClassifier().learn_one({"a": 1.0}, "x")
    before = pickle.dumps(model)
    assert model.learn_many(frame, pd.Series([None] * len(frame), dtype=object)) is model
    assert model.learn_many(frame, pd.Series([None] * len(frame), dtype=object), partition="other") is model
    assert pickle.dumps(model) == before
    fresh = AnalyticClassifier()
    fresh.learn_many(frame, pd.Series([None] * len(frame), dtype=object))
    assert fresh.feature_names_in_ == [] and fresh.classes_ == []


def test_a_frame_with_repeated_column_names_is_refused():
    frame = pd.DataFrame([[1.0, 2.0, 0.5], [-1.0, 0.0, 0.1]], columns=["a", "a", "b"])
    model = AnalyticClassifier().learn_one({"a": 1.0, "b": 0.0}, "x")
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match=r"column names repeat: \['a'\]"):
        model.learn_many(frame, pd.Series(["x", "y"]))
    with pytest.raises(ValueError, match="column names repeat"):
        model.learn_many(frame.iloc[:0], pd.Series([], dtype=object))  # refused even with nothing to learn
    with pytest.raises(ValueError, match="column names repeat"):
        model.predict_proba_many(frame)
    with pytest.raises(ValueError, match="column names repeat"):
        model.predict_many(frame)
    assert pickle.dumps(model) == before


def test_max_columns_bounds_the_analytic_head_before_anything_is_learned():
    # found by review: the analytic kind had no bound, and one event with 40,000 keys (within
    # max_event_bytes) asked for 11.9 GiB and ended the run; a large hash_width for 74.5 GiB
    import pandas as pd

    from stream_cl.config import ConfigError, ModelConfig
    from stream_cl.events import Event
    from stream_cl.factory import build_learner
    from stream_cl.prequential import Prequential

    model = AnalyticClassifier(max_columns=4)  # the bias and 3 inputs
    for i in range(10):
        model.learn_one({"a": float(i % 3), "b": float(i % 2)}, i % 2)
    model.learn_one({"c": 1.0}, 0)  # 4 columns: at the bound
    probe = {"a": 1.0, "b": 0.0, "c": 1.0}
    before = model.predict_proba_one(probe)
    for learn in (lambda x: model.learn_one(x, 0), lambda x: model.learn_many(pd.DataFrame([x]), pd.Series([0])),
                  lambda x: model.prequential_batch([x], [0])):
        with pytest.raises(ValueError, match=r"4 inputs would give the head 5 design columns, over max_columns \(4\)"):
            learn({"a": 1.0, "d": 2.0})
    assert model.feature_names_in_ == ["a", "b", "c"] and model.predict_proba_one(probe) == before
    # in a run loop that event is a dead letter, the others of its batch are learned
    events = [Event({"a": 1.0}, 0), Event({"e": 1.0}, 1, origin="o:2"), Event({"b": 1.0}, 1)]
    predictions, dead = Prequential(model).process(events)
    assert len(predictions) == 2 and [(d.reason, d.origin) for d in dead] == [("rejected_by_model", "o:2")]
    # a hash width past the bound is refused when the learner is made, by the factory as a config error
    with pytest.raises(ValueError, match=r"hash_width=100000 gives the head 100,001 design columns"):
        AnalyticClassifier(hash_width=100000)
    assert AnalyticClassifier(hash_width=100000, max_columns=None).max_columns is None
    with pytest.raises(ConfigError, match=r"^model\.hash_width: hash_width=8 gives the head 9 design columns, over max_columns \(8\)"):
        build_learner(ModelConfig(kind="analytic", forgetting=[1.0], hash_width=8, max_columns=8))
    assert build_learner(ModelConfig(kind="analytic", forgetting=[1.0], max_columns=0)).max_columns is None


def test_members_with_different_max_columns_merge_their_parts():
    # a bound on memory, not part of the model: it is left out of what parts must share
    left, right = AnalyticClassifier(), AnalyticClassifier(max_columns=50)
    for i in range(40):
        (left if i % 2 else right).learn_one({"a": float(i % 5), "b": float(i % 3)}, i % 3, partition=i % 2)
    left.merge(0, right.contribution(0).to_bytes())
    assert sorted(left.partitions_) == [0, 1]
    with pytest.raises(ContributionError, match="gamma"):
        AnalyticClassifier(gamma=0.5).merge(0, right.contribution(0))
