"""A TrainableLearner's saved network is checked as it is loaded (review r138's left-out item).

The other learners refuse a saved state with non-finite numbers or inconsistent shapes (r93, r105,
r136); ``TrainableLearner.load_state_dict`` took any parameters and Adam moments. A NaN weight made
every later probability NaN; a moment of another shape failed at the next training step, after that
micro-batch's events had been counted. Each is now a ``ValueError`` that changes nothing.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from stream_cl.trainable import TrainableLearner

ROWS = [({"a": float(i % 7), "b": float(i % 3)}, i % 2) for i in range(64)]


def _trained() -> TrainableLearner:
    model = TrainableLearner(seed=3, hidden=(8,))
    for x, y in ROWS:
        model.learn_one(x, y)
    return model


def _refused(change) -> tuple[TrainableLearner, dict, str]:
    model = _trained()
    before = model.predict_proba_one({"a": 1.0, "b": 2.0})
    state = copy.deepcopy(model.state_dict())
    change(state)
    with pytest.raises(ValueError) as e:
        model.load_state_dict(state)
    assert model.predict_proba_one({"a": 1.0, "b": 2.0}) == before  # nothing changed
    return model, state, str(e.value)


def _set(name: str, i: int, value: float):
    def change(state):
        a = np.array(state[name][i], copy=True)
        a.reshape(-1)[0] = value
        state[name][i] = a
    return change


@pytest.mark.parametrize("name", ["params", "m", "v"])
def test_a_nan_in_the_network_is_refused(name):
    _, _, message = _refused(_set(name, 0, np.nan))
    assert f"network {name}[0]" in message and "finite" in message


def test_a_negative_second_moment_is_refused():
    _, _, message = _refused(_set("v", 2, -1.0))
    assert "network v[2]" in message


def test_a_moment_of_another_shape_is_refused():
    def change(state):
        state["m"][1] = np.zeros(3, dtype=np.asarray(state["m"][1]).dtype)
    _, _, message = _refused(change)
    assert "network m[1] has shape (3,)" in message


def test_layers_that_do_not_chain_are_refused():
    def change(state):
        for name in ("params", "m", "v"):
            state[name][2] = np.zeros((2, 5), dtype=np.asarray(state[name][2]).dtype)  # output W over 5, not 8
    _, _, message = _refused(change)
    assert "network layer 1" in message


def test_outputs_that_are_not_one_per_class_are_refused():
    def change(state):
        for name in ("params", "m", "v"):
            state[name][2] = np.asarray(state[name][2])[:1]
            state[name][3] = np.asarray(state[name][3])[:1]
    _, _, message = _refused(change)
    assert "1 outputs for 2 classes" in message


def test_an_intact_state_loads_and_predicts_the_same():
    model = _trained()
    other = TrainableLearner(seed=3, hidden=(8,)).load_state_dict(model.state_dict())
    x = {"a": 1.0, "b": 2.0}
    assert other.predict_proba_one(x) == model.predict_proba_one(x)
