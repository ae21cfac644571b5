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


@pytest.mark.parametrize("seed", [0, 1])
def test_a_batch_of_rows_is_each_rows_compiled_row_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    d, keys = 17, [f"k{j}" for j in range(17)]
    layer, units = RandomFeatures(width=64, seed=seed), KeyUnits(per_key=4, seed=seed)
    _numpy_row(layer, units, np.zeros(d), np.ones(d, dtype=bool), keys, None, None)  # the layers learn the keys
    raw = rng.random(d) < 0.3
    late = raw & (rng.random(d) < 0.5)
    Z = rng.normal(size=(300, d)) * (rng.random((300, d)) < 0.8)
    P = Z != 0.0
    for r, s in [(None, None), (raw, late)]:
        rows = design_row.relu_units_rows(layer, units, Z, P, r, s)  # (300, columns)
        assert rows.shape == (300, 1 + 64 + int((~raw).sum()) * 5 + int((raw & ~late).sum()) if r is not None else 1 + 64 + d * 5)
        for i in (0, 1, 150, 299):
            assert np.array_equal(rows[i], design_row.relu_units_row(layer, units, Z[i], P[i], r, s))
    assert design_row.relu_units_rows(layer, units, np.zeros((0, d)), np.zeros((0, d), dtype=bool)).shape[0] == 0


def test_the_batch_path_builds_the_per_event_rows_and_torch_builds_what_they_cannot(monkeypatch):
    """A CPU batch's designs are the compiled rows (the bits of one event's row, where torch's
    product rounds differently in its last bit); a batch with a new key goes through torch,
    whose layers grow."""
    from stream_cl import ensemble

    rng = np.random.default_rng(5)
    model = OnlineContinualLearner(device="cpu")
    calls = []
    forward = model.backbone_.forward
    model.backbone_.forward = lambda *a: calls.append(1) or forward(*a)
    xs = [{"a": float(rng.normal()), "b": float(rng.normal())} for _ in range(64)]
    model.prequential_batch(xs, [int(x["a"] > 0) for x in xs])
    assert len(calls) == 1  # keys a and b first seen: torch, and the layers grew
    model.prequential_batch(xs, [int(x["a"] > 0) for x in xs])
    assert len(calls) == 1  # known keys: compiled
    Z, M = rng.normal(size=(40, 2)), np.ones((40, 2), dtype=bool)
    designs = model._designs(Z, M)
    assert len(calls) == 1
    for i in (0, 17, 39):
        row = model._design_row(Z[i], M[i])
        assert np.array_equal(designs["all"][i], row["all"][0])
        assert np.array_equal(designs["inputs"][i], row["inputs"][0])
    xs3 = [{**x, "c": 1.0} for x in xs]
    model.prequential_batch(xs3, [int(x["a"] > 0) for x in xs3])  # a new key: torch grows the layers
    assert len(calls) == 2
    monkeypatch.setattr(ensemble, "relu_units_rows", lambda *a: None)  # as without numba: torch
    by_torch = model._designs(Z, M)
    assert len(calls) == 3
    np.testing.assert_allclose(designs["all"], by_torch["all"], rtol=0, atol=1e-13)
    assert np.array_equal(designs["inputs"], by_torch["inputs"])
