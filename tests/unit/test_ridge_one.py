"""The compiled one-row ridge update (stream_cl/heads/ridge_one.py) and its pending downdate."""

import numpy as np
import pytest

from stream_cl.heads import ridge_one
from stream_cl.heads.ridge import RecursiveRidge


def _assert_compiled():
    # numba is a dependency: a broken install fails these tests (not a skip), as test_ridge_rows does
    assert ridge_one.compiled(), "the one-row ridge update did not compile (is numba importable?)"


def test_numba_compiles_the_one_row_update():
    _assert_compiled()


def _rows(n, d, c, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    k = rng.integers(0, c, size=n)
    w = np.where(rng.uniform(size=n) < 0.2, rng.uniform(0.5, 2.0, size=n), 1.0)
    return X, np.eye(c)[k], k, w


def _learn(ridge, X, Y, k, w, read_every=0):
    """Rows learned one at a time; ``read_every``: read ``R`` in full after every so many rows."""
    priors = []
    for i in range(len(X)):
        priors.append(ridge.update_one(X[i], Y[i], float(w[i]), int(k[i]) if w[i] == 1.0 else None).copy())
        if read_every and i % read_every == 0:
            ridge.R  # noqa: B018 -- a reader (a checkpoint, the batch path) adds the pending term
    return np.array(priors)


@pytest.mark.parametrize("lam", [1.0, 0.97])
def test_the_compiled_update_equals_the_blas_calls_up_to_rounding(monkeypatch, lam):
    _assert_compiled()
    X, Y, k, w = _rows(300, 40, 5, seed=1)
    fast, blas = RecursiveRidge(0.5, lam), RecursiveRidge(0.5, lam)
    fast.grow(40, 5)
    blas.grow(40, 5)
    got = _learn(fast, X, Y, k, w)
    monkeypatch.setattr(ridge_one, "compiled", lambda: False)  # the BLAS calls of before
    expected = _learn(blas, X, Y, k, w)
    np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-12)
    for name in ("R", "A", "B"):
        np.testing.assert_allclose(getattr(fast, name), getattr(blas, name), rtol=1e-11, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(fast.weights(), blas.weights(), rtol=1e-10, atol=1e-12)
    assert fast.decay == blas.decay and fast.rows_since_anchor == blas.rows_since_anchor


def test_reading_r_between_rows_changes_no_bit():
    _assert_compiled()
    # The pending downdate is added by whoever reads R first, the next row's pass or a reader,
    # with the same expression. (With forgetting < 1 a full read also folds the scalar into
    # the matrix, which rounds: that was so before the compiled update, with the BLAS calls.)
    X, Y, k, w = _rows(200, 30, 4, seed=2)
    untouched, read = RecursiveRidge(1.0), RecursiveRidge(1.0)
    untouched.grow(30, 4)
    read.grow(30, 4)
    a, b = _learn(untouched, X, Y, k, w), _learn(read, X, Y, k, w, read_every=3)
    assert np.array_equal(a, b)
    for name in ("R", "A", "B"):
        assert np.array_equal(getattr(untouched, name), getattr(read, name)), name
    assert np.array_equal(untouched.weights(), read.weights())


def test_the_pending_downdate_is_part_of_r_for_every_reader():
    _assert_compiled()
    X, Y, k, w = _rows(50, 6, 3, seed=3)
    ridge = RecursiveRidge(0.3)
    ridge.grow(6, 3)
    _learn(ridge, X, Y, k, w)
    A = (X.T * w) @ X
    np.testing.assert_allclose(ridge.R, np.linalg.inv(A + 0.3 * np.eye(6)), rtol=1e-10, atol=1e-12)
    state = ridge.state_dict()
    resumed = RecursiveRidge(1.0)
    resumed.load_state_dict(state)
    more = _rows(20, 6, 3, seed=4)
    assert np.array_equal(_learn(ridge, *more), _learn(resumed, *more))
