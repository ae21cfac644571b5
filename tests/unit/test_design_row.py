"""One event's compiled design row against the numpy calls it replaces, bit for bit."""

import numpy as np
import pytest

from stream_cl.backbones import KeyUnits, RandomFeatures
from stream_cl.backbones import design_row
from stream_cl.learner import OnlineContinualLearner


def _numpy_row(layer, units, z, present, keys, raw, late):
    return np.concatenate(([1.0], layer.forward_row(z, keys, present), units.forward_row(z, keys, present, raw, late)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_compiled_row_equals_the_numpy_row_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    d, keys = 13, [f"k{j}" for j in range(13)]
    layer, units = RandomFeatures(width=64, seed=seed), KeyUnits(per_key=4, seed=seed)
    _numpy_row(layer, units, np.zeros(d), np.ones(d, dtype=bool), keys, None, None)  # the layers learn the keys
    raw = rng.random(d) < 0.3  # indicators: [z_j] only
    late = raw & (rng.random(d) < 0.5)  # indicators without a block
    for _ in range(200):
        z = rng.normal(size=d) * (rng.random(d) < 0.8)  # zeros where absent
        present = z != 0.0
        for r, s in [(None, None), (raw, None), (raw, late)]:
            got = design_row.relu_units_row(layer, units, z, present, r, s)
            assert np.array_equal(got, _numpy_row(layer, units, z, present, keys, r, s))
            assert np.array_equal(np.signbit(got), np.signbit(_numpy_row(layer, units, z, present, keys, r, s)))


def test_the_numpy_path_builds_rows_the_compiled_one_cannot():
    layer, units = RandomFeatures(width=8, seed=0), KeyUnits(per_key=2, seed=0)
    z, present = np.array([0.5, -1.0]), np.array([True, True])
    assert design_row.relu_units_row(layer, units, z, present) is None  # keys not seen yet: the layers grow there
    _numpy_row(layer, units, z, present, ["a", "b"], None, None)
    assert design_row.relu_units_row(layer, units, z, present) is not None
    fourier = RandomFeatures(width=8, seed=0, kind="fourier")
    fourier.forward_row(z, ["a", "b"], present)
    assert design_row.relu_units_row(fourier, units, z, present) is None


def test_the_per_event_path_uses_the_compiled_row_and_learns_the_batch_paths_model(monkeypatch):
    calls = []
    compiled = design_row._loop.get()
    counting = lambda *a: calls.append(1) or compiled(*a)  # noqa: E731
    monkeypatch.setattr(design_row._loop, "get", lambda: counting)
    rng = np.random.default_rng(3)
    fast, slow = OnlineContinualLearner(device="cpu"), OnlineContinualLearner(device="cpu")
    for i in range(300):
        x = {"a": float(rng.normal()), "b": float(rng.normal()), **({"c": float(rng.normal())} if i > 100 else {})}
        y = int(x["a"] > 0)
        fast.predict_proba_one(x)
        fast.learn_one(x, y)
        slow.prequential_batch([x], [y])  # torch designs
    assert len(calls) > 250  # every event once its keys were seen
    a, b = fast.state_dict(), slow.state_dict()
    for h, (ha, hb) in enumerate(zip(a["heads"], b["heads"])):
        assert np.array_equal(ha["ridge"]["A"], hb["ridge"]["A"]), h
        assert np.array_equal(ha["ridge"]["B"], hb["ridge"]["B"]), h
