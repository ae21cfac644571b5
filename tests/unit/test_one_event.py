"""The per-event path (stream_cl/one_event.py) learns the same model as the batch path, bit for bit."""

import numpy as np
import pytest

from stream_cl.backbones import RandomFeatures
from stream_cl.base_learner import StreamingClassifier
from stream_cl.encoding import InvalidFeatureError
from stream_cl.features import FeatureIndex
from stream_cl.learner import OnlineContinualLearner


def _stream(n=700, seed=0):
    """Numeric events; a key appears late, a categorical key with nulls, classes appear late."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        if i >= 150:
            x["c"] = float(rng.normal())
        if i % 97 == 5:
            x["color"] = ["red", "blue", None][i % 3]
        y = "p" if x["a"] + 0.5 * x["b"] > 0 else "n"
        if i >= 300 and x["b"] > 1.2:
            y = "late"
        out.append((x, y))
    return out


def _arrays(state, prefix=""):
    """Every array in a nested state dict, by path."""
    out = {}
    if isinstance(state, dict):
        for k, v in state.items():
            out.update(_arrays(v, f"{prefix}/{k}"))
    elif isinstance(state, (list, tuple)):
        for i, v in enumerate(state):
            out.update(_arrays(v, f"{prefix}/{i}"))
    elif isinstance(state, np.ndarray):
        out[prefix] = state
    return out


@pytest.mark.parametrize("kwargs", [{}, {"backbone": RandomFeatures(width=16, kind="fourier"), "key_units": 3}])
def test_per_event_path_learns_the_batch_paths_model_bit_for_bit(kwargs):
    fast = OnlineContinualLearner(device="cpu", **kwargs)
    slow = OnlineContinualLearner(device="cpu", **kwargs)
    worst = 0.0
    for x, y in _stream():
        p = fast.predict_proba_one(x)
        q = StreamingClassifier.predict_proba_one(slow, x)  # through predict_proba_batch
        assert p.keys() == q.keys()
        worst = max([worst] + [abs(p[c] - q[c]) for c in p])
        fast.learn_one(x, y)
        StreamingClassifier.learn_one(slow, x, y)  # through prequential_batch
    assert worst <= 1e-13  # the softmax (math.exp) and the scores (vector-matrix products) round differently
    a, b = _arrays(fast.state_dict()), _arrays(slow.state_dict())
    assert a.keys() == b.keys() and len(a) > 10
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_per_event_learning_without_a_prediction_and_with_weights():
    fast = OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=2, device="cpu")
    slow = OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=2, device="cpu")
    for i, (x, y) in enumerate(_stream(300, seed=3)):
        if i % 3:
            fast.predict_proba_one(x)  # the memo is used, or (every third event) there is none
        fast.learn_one(x, y, w=2.0 if i % 5 == 0 else 1.0)
        StreamingClassifier.learn_one(slow, x, y, w=2.0 if i % 5 == 0 else 1.0)
    a, b = _arrays(fast.state_dict()), _arrays(slow.state_dict())
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_a_changed_event_is_not_served_from_the_memo():
    model = OnlineContinualLearner(backbone=RandomFeatures(width=8), device="cpu")
    for x, y in _stream(50):
        model.learn_one(x, y)
    x = {"a": 0.3, "b": -0.2}
    model.predict_proba_one(x)
    twin = OnlineContinualLearner(backbone=RandomFeatures(width=8), device="cpu")
    for e, y in _stream(50):
        twin.learn_one(e, y)
    x["a"] = 5.0  # mutated between predict and learn: the learned row is the new one
    model.learn_one(x, "p")
    twin.learn_one({"a": 5.0, "b": -0.2}, "p")
    assert np.array_equal(model.scaler_.mean, twin.scaler_.mean)


def test_vectorize_row_equals_the_general_path():
    index = FeatureIndex(None, 4, True, False)
    events = [{"a": 1.0, "b": 2}, {"a": 1.5, "b": True}, {"b": 3.0, "a": 2.0}, {"a": 1.0}, {"a": 1.0, "b": 2, "c": "x"},
              {"a": 1.0, "b": 2.0}]
    for x in events:
        X, M, new = index.vectorize_row(x)
        X2, M2, new2 = index.vectorize_masked([x])
        assert np.array_equal(X, X2) and np.array_equal(M, M2) and list(new) == list(new2)
        index.commit(new)
    for bad in ({"a": float("inf"), "b": 1.0, "c=x": 1.0}, {"a": float("nan"), "b": 1.0}):
        with pytest.raises(InvalidFeatureError):  # a bad value is refused the same way, by the general path
            index.vectorize_row(bad)
