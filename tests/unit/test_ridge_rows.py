"""A narrow ridge head's chunks learned row by row (compiled) against the batched factor."""

import numpy as np
import pytest

from stream_cl.heads import ridge as ridge_module
from stream_cl.heads import ridge_rows
from stream_cl.heads.ridge import RecursiveRidge, rows_are_cheaper


def test_numba_compiles_the_loop():
    # CI installs numba (a dependency): narrow heads must not silently fall back to the factor
    assert ridge_rows.compiled()


def _learned(way: str, monkeypatch, forgetting: float, seed: int = 5, d: int = 9, c: int = 4):
    """A head that learned 300 rows in two batches, then a 256-row batch with queries, ``way``."""
    monkeypatch.setattr(ridge_module, "rows_are_cheaper", lambda b, d, c: way == "rows")
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(556, d)), np.eye(c)[rng.integers(0, c, size=556)]
    w = rng.uniform(0.5, 2.0, size=556)
    Xq, qpos = rng.normal(size=(7, d)), np.array([256, 0, 13, 13, 200, 255, 1])
    ridge = RecursiveRidge(0.7, forgetting)
    ridge.grow(d, c)
    ridge.update(X[:120], Y[:120], w[:120])
    ridge.update(X[120:300], Y[120:300], w[120:300])
    prior, query = ridge.update(X[300:], Y[300:], w[300:], X_query=Xq, query_pos=qpos)
    return ridge, prior, query


@pytest.mark.parametrize("forgetting", [1.0, 0.995])
def test_row_by_row_gives_the_factors_scores_and_the_same_statistics_bit_for_bit(monkeypatch, forgetting):
    rows, prior_rows, query_rows = _learned("rows", monkeypatch, forgetting)
    factor, prior_factor, query_factor = _learned("factor", monkeypatch, forgetting)
    # the same prequential scores up to rounding (the Kalman recursion against the batch's factor)
    np.testing.assert_allclose(prior_rows, prior_factor, rtol=0, atol=1e-12)
    np.testing.assert_allclose(query_rows, query_factor, rtol=0, atol=1e-12)
    assert np.abs(prior_rows - prior_factor).max() > 0  # two computations, not one twice
    # ... and the same model: A and B are added the same way, whichever way scored the rows
    assert np.array_equal(rows.A, factor.A) and np.array_equal(rows.B, factor.B)
    assert np.array_equal(rows.weights(), factor.weights())
    assert (rows.decay, rows.rows_since_anchor, rows.n_rows) == (factor.decay, factor.rows_since_anchor, factor.n_rows)


def test_the_compiled_loop_does_the_interpreted_sources_arithmetic():
    rng = np.random.default_rng(8)
    d, c, b = 7, 3, 40
    M = rng.normal(size=(d, d))
    R0 = np.linalg.inv(M @ M.T + np.eye(d))
    W0, X, Y = rng.normal(size=(d, c)), rng.normal(size=(b, d)), rng.normal(size=(b, c))
    noise, Xq, qpos = rng.uniform(0.5, 1.5, size=b), rng.normal(size=(3, d)), np.array([0, 17, 40])
    prior, query = ridge_rows.learn_rows(R0, W0, X, Y, noise, Xq, qpos)
    R, W = R0.copy(), W0.copy()
    prior_py, query_py, done = ridge_rows._learn_rows(R, W, X, Y, noise, Xq, qpos, np.inf)
    assert np.array_equal(prior, prior_py) and np.array_equal(query, query_py) and done == b
    assert np.array_equal(R0, np.linalg.inv(M @ M.T + np.eye(d)))  # the caller's start is not changed
    # the loop is the per-event recursion: the last query sees the model after every row
    expected = np.linalg.solve(np.linalg.inv(R0) + X.T @ (X / noise[:, None]),
                               np.linalg.inv(R0) @ W0 + X.T @ (Y / noise[:, None]))
    np.testing.assert_allclose(query[2], Xq[2] @ expected, rtol=1e-10)


def test_narrow_cpu_heads_learn_long_chunks_row_by_row_and_wide_short_or_torch_ones_do_not(monkeypatch):
    ways = []
    for name in ("_chunk_row_by_row", "_chunk_from_factor", "_chunk_updating_R"):
        original = getattr(RecursiveRidge, name)
        monkeypatch.setattr(RecursiveRidge, name, lambda self, *a, _o=original, _n=name, **k: ways.append(_n) or _o(self, *a, **k))
    rng = np.random.default_rng(2)
    for b, d, device in [(256, 11, "cpu"), (256, 25, "cpu"), (256, 64, "cpu"), (32, 11, "cpu"), (256, 11, "torch:cpu")]:
        ridge = RecursiveRidge(1.0, device=device)
        ridge.grow(d, 5)
        ridge.update(ridge.la.asarray(rng.normal(size=(b, d))), ridge.la.asarray(rng.normal(size=(b, 5))))
    # the default learner's input heads (11 and 25 wide on head_speed's and LEDDrift's streams) go row by row
    assert ways == ["_chunk_row_by_row", "_chunk_row_by_row", "_chunk_from_factor", "_chunk_from_factor", "_chunk_from_factor"]
    # the rule's verdicts where both ways were timed (RESULTS.md 9h): 285 against 778 µs, 565 against 419
    assert rows_are_cheaper(256, 16, 200) and not rows_are_cheaper(256, 64, 5)


def test_a_query_after_a_last_row_at_a_new_magnitude_is_scored():
    # (a review: the loop stopped after such a row to rebuild R, and a query after the chunk's last
    # row came back as zeros)
    rng = np.random.default_rng(0)
    b, d, c = 256, 5, 3
    X = np.c_[np.ones(b), rng.normal(size=(b, d - 1))]
    X[-1, 1] = 1e6  # leverage ~1e12, past REBUILD_LEVERAGE
    Y = np.eye(c)[rng.integers(0, c, b)]
    Xq = np.c_[np.ones(2), rng.normal(size=(2, d - 1))]
    ridge = RecursiveRidge(gamma=1.0)
    ridge.grow(d, c)
    _, query = ridge.update(X, Y, X_query=Xq, query_pos=np.array([b - 1, b]))
    np.testing.assert_allclose(query[1], Xq[1] @ ridge.weights(), rtol=1e-9)
