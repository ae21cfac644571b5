"""r29 F1: with many high-cardinality string features (ids, timestamps sent as strings, URLs), the
``max_columns`` bound is reached long before any feature has ``max_categories`` columns of its own.
Every later labelled event with a new value was refused (``rejected_by_model``) and the model stopped
learning. Now a category whose own column would not fit goes to its feature's ``k=<other>``, as one past
``max_categories`` does, and a column is held back for the ``k=<other>`` of every feature with categories
of its own, so such a feature can always overflow. A new numeric input past the bound is still refused.
The per-event and batched paths make the same choices (probabilities to 1e-12)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from stream_cl import OnlineContinualLearner
from stream_cl.heads.analytic import AnalyticClassifier
from stream_cl.trainable import TrainableLearner


def _stream(n: int, n_ids: int, seed: int = 0, predict_only_every: int = 0) -> list[tuple[dict, object]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        x = {"amount": rng.gauss(0, 1)}
        for f in range(n_ids):
            x[f"id{f}"] = f"v{rng.randrange(10**6)}"  # nearly every value new
        if i % 7 == 3:
            x["tags"] = [f"t{rng.randrange(50)}", f"t{rng.randrange(50)}"]  # two categories of one feature
        y = None if predict_only_every and i % predict_only_every == 0 else ("ok" if x["amount"] > 0 else "fraud")
        out.append((x, y))
    return out


MODELS = {
    "online": lambda: OnlineContinualLearner(device="cpu", max_categories=100, max_columns=400),
    "online-no-key-units": lambda: OnlineContinualLearner(device="cpu", max_categories=100, max_columns=330,
                                                          key_units=0),
    "analytic": lambda: AnalyticClassifier(max_categories=100, max_columns=150),
    "trainable": lambda: TrainableLearner(hidden=(8,), max_categories=100, max_columns=150, micro_batch=4, seed=0),
}


def _per_event(model, stream) -> np.ndarray:
    rows = []
    for x, y in stream:
        p = model.predict_proba_one(x)
        rows.append(p)
        if y is not None:
            model.learn_one(x, y)
    classes = list(model.classes_) if hasattr(model, "classes_") else sorted({k for p in rows for k in p})
    return np.array([[p.get(c, 0.0) for c in classes] for p in rows])


@pytest.mark.parametrize("name", MODELS)
def test_many_high_cardinality_features_overflow_instead_of_being_refused(name):
    model = MODELS[name]()
    stream = _stream(300, n_ids=6)
    for x, y in stream:
        model.learn_one(x, y)  # raised ValueError ("over max_columns") from about the 40th event on before
    report = model.index_.report()
    assert report["overflow_total"] > 0
    assert all(f"id{f}=<other>" in model.index_.names for f in range(6))
    assert model.index_.categories["id0"] < 100  # the column bound came first, not max_categories


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("chunk", [1, 13, 64])
def test_per_event_and_batched_make_the_same_choices_at_the_bound(name, chunk):
    stream = _stream(240, n_ids=5, seed=1, predict_only_every=5)
    one = _per_event(MODELS[name](), stream)
    batched = MODELS[name]()
    parts = []
    for s in range(0, len(stream), chunk):
        xs, ys = zip(*stream[s : s + chunk])
        parts.append(batched.prequential_batch(list(xs), list(ys)))
    width = max(p.shape[1] for p in parts)
    P = np.vstack([np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in parts])
    assert P.shape == one.shape
    np.testing.assert_allclose(P, one, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["online", "analytic", "trainable"])
def test_the_index_is_the_same_on_both_paths(name):
    stream = _stream(200, n_ids=5, seed=2, predict_only_every=4)
    a, b = MODELS[name](), MODELS[name]()
    for x, y in stream:
        a.predict_proba_one(x)
        if y is not None:
            a.learn_one(x, y)
    for s in range(0, len(stream), 32):
        xs, ys = zip(*stream[s : s + 32])
        b.prequential_batch(list(xs), list(ys))
    assert a.index_.names == b.index_.names and a.index_.overflow == b.index_.overflow


@pytest.mark.parametrize("name", ["online", "analytic", "trainable"])
def test_predicting_many_equals_predicting_one_at_a_time_at_the_bound(name):
    model = MODELS[name]()
    for x, y in _stream(120, n_ids=5, seed=3):
        model.learn_one(x, y)
    queries = [x for x, _ in _stream(40, n_ids=5, seed=4)]
    many = model.predict_proba_batch(queries)
    one = [model.predict_proba_one(x) for x in queries]
    classes = list(model.classes_)
    np.testing.assert_allclose(many, [[p.get(c, 0.0) for c in classes] for p in one], atol=1e-12, rtol=0)


def test_a_column_is_held_back_for_each_feature_that_may_overflow():
    """Numbers fill the room to within the held-back columns; each category feature can still make its
    ``k=<other>`` and learn, where its own new columns no longer fit."""
    model = AnalyticClassifier(max_columns=12)
    model.learn_one({"a": "x", "b": "y"}, 0)  # 2 inputs, 2 held back: 3 + 2 of 12
    model.learn_one({f"n{i}": 1.0 for i in range(7)}, 1)  # 9 inputs: 10 columns, with the 2 held back 12
    with pytest.raises(ValueError, match="max_columns"):
        model.learn_one({"n7": 1.0}, 1)  # past the bound: a new number is refused, as before
    model.learn_one({"a": "new", "b": "new"}, 0)  # own columns would not fit: both to k=<other>
    assert model.index_.names[-2:] == ["a=<other>", "b=<other>"] and model.index_.overflow == {"a": 1, "b": 1}
    assert 1 + model.index_.width == 12
    with pytest.raises(ValueError, match="max_columns"):
        model.learn_one({"c": "first"}, 1)  # a new feature with no room for any column: refused


@pytest.mark.parametrize("make", [lambda: AnalyticClassifier(max_columns=12),
                                  lambda: OnlineContinualLearner(device="cpu", key_units=0, max_columns=257 + 11)])
def test_a_new_features_shared_column_does_not_take_one_held_back_for_another(make):
    """r31 F1: a new string feature whose first value found no room for its own column made its k=<other>
    in the column held back for b's, and b's new values were refused for good (20 of 20). Such a k=<other>
    is a new input like a number: refused where it would take a held-back column."""
    model = make()
    model.learn_one({"a": "x", "b": "y"}, 0)
    model.learn_one({f"n{i}": 1.0 for i in range(7)}, 1)  # the room is full to the 2 held-back columns
    with pytest.raises(ValueError, match="held back for the k=<other>"):
        model.learn_one({"c": "first"}, 1)
    assert "c=<other>" not in model.index_.names
    model.learn_one({"a": "new"}, 0)
    for i in range(20):
        model.learn_one({"b": f"new{i}"}, 0)  # every one overflows
    assert model.index_.overflow == {"a": 1, "b": 20}
