"""Inputs a review found half-refused or misread: a weight that is not one real number, an event
that is not a mapping, tuple class labels in ``predict_many``."""

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.trainable import TrainableLearner

LEARNERS = [lambda: OnlineContinualLearner(device="cpu"), AnalyticClassifier,
            lambda: OnlineContinualLearner(device="cpu", hash_width=32)]


def _trained(make, seed=0):
    rng = np.random.default_rng(seed)
    model = make()
    for i in range(60):
        model.learn_one({"a": float(rng.normal()), "b": float(rng.normal())}, "p" if i % 3 else "q")
    return model


PROBE = [{"a": 0.3, "b": -1.0}, {"a": -2.0, "b": 0.5}, {"a": 1.0, "b": 1.0}]


def _probas(model):
    return [model.predict_proba_one(x) for x in PROBE]


@pytest.mark.parametrize("make", LEARNERS[:2])
@pytest.mark.parametrize("w", [np.array([2.0]), Decimal("2"), True, "2"])
def test_a_weight_that_is_not_one_real_number_is_refused_before_anything_changes(make, w):
    # a one-element array and a Decimal compared like numbers, then failed as weights after the
    # feature index, the standardiser (and, for a Decimal, the ridge heads) had taken the event
    model, twin = _trained(make), _trained(make)
    with pytest.raises(TypeError, match="sample weight must be one real number"):
        model.learn_one({"a": 1.0, "b": 2.0, "new_feature": 3.0}, "q", w=w)
    assert model.feature_names_in_ == twin.feature_names_in_
    assert _probas(model) == _probas(twin)


@pytest.mark.parametrize("make", LEARNERS)
@pytest.mark.parametrize("x", ["abc", None, ["u", "v"], 3.0])
def test_an_event_that_is_not_a_mapping_is_refused_by_name(make, x):
    # with hash_width a string was learned as one category per letter; the others failed with
    # "'str' object has no attribute 'values'" or "'NoneType' object is not iterable"
    model, twin = _trained(make), _trained(make)
    for call in (lambda: model.learn_one(x, "q"), lambda: model.predict_proba_one(x), lambda: model.predict_one(x)):
        with pytest.raises(TypeError, match="an event must be a mapping of feature names to values"):
            call()
    assert _probas(model) == _probas(twin)


@pytest.mark.parametrize("make", LEARNERS[:2])
def test_predict_many_keeps_tuple_labels_whole(make):
    model = make()
    for i in range(30):
        model.learn_one({"a": float(i % 2)}, ("fraud", 1) if i % 2 else ("ok", 0))
    X = pd.DataFrame({"a": [1.0, 0.0, 1.0]})
    assert model.predict_many(X).tolist() == [("fraud", 1), ("ok", 0), ("fraud", 1)]


@pytest.mark.parametrize("make", LEARNERS + [lambda: TrainableLearner(
    hidden=(4,), device="cpu")])
@pytest.mark.parametrize("x", ["ab", ["a", 1.0]])
def test_the_batch_methods_refuse_an_event_that_is_not_a_mapping_by_name(make, x):
    # (a docs review: the batch methods and the trainable learner's raised AttributeError from the index)
    model = _trained(make)
    for call in (lambda: model.prequential_batch([{"a": 1.0, "b": 0.0}, x], ["q", "p"]),
                 lambda: model.predict_proba_batch([x])):
        with pytest.raises(TypeError, match="an event must be a mapping of feature names to values"):
            call()
    assert model.classes_ == _trained(make).classes_


def test_a_tuple_label_beside_a_numpy_int_label_is_learned_whole():
    # (a review: row_hit's `y in classes` compared np.int64(1) with ("x", 1) as an array and raised,
    # after the ridge heads had learned the event and before the mixer had)
    model, twin = OnlineContinualLearner(device="cpu"), OnlineContinualLearner(device="cpu")
    for m in (model, twin):
        m.learn_one({"a": 1.0}, np.int64(1))
    model.learn_one({"a": 2.0}, ("x", 1))
    twin.prequential_batch([{"a": 2.0}], [("x", 1)])
    assert model.classes_ == [1, ("x", 1)]
    assert model.predict_proba_one({"a": 1.5}) == pytest.approx(twin.predict_proba_one({"a": 1.5}), abs=1e-12)
