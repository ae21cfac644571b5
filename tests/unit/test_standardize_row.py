"""The standardiser's one-row methods give the batch methods' numbers, bit for bit."""

import numpy as np
import pytest

from stream_cl.backbones.standardize import ROW_LOOP_MAX, OnlineStandardizer


def _rows(d, n=400, seed=0):
    """Rows with missing values, a 0/1 indicator column, a constant column and outliers."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 5.0, size=d)
    X[:, 1] = (X[:, 1] > 0).astype(float)  # an indicator
    X[:, 2] = 3.0  # constant: centred, never scaled
    X[::37, 0] = 1e6  # clipped
    M = rng.random((n, d)) > 0.15
    M[:5, 3] = False  # a column first seen late
    raw = np.zeros(d, dtype=bool)
    raw[1] = True
    return X, M, raw


@pytest.mark.parametrize("d", [6, ROW_LOOP_MAX + 5])  # Python floats, and numpy for wide rows
def test_one_row_methods_equal_the_batch_methods(d):
    X, M, raw = _rows(d)
    row, batch = OnlineStandardizer(), OnlineStandardizer()
    for i in range(X.shape[0]):
        z, known = row.transform_row(X[i], M[i], raw)
        Z, K = batch.transform(X[i : i + 1], M[i : i + 1], raw, known=True)
        assert np.array_equal(z, Z[0]) and np.array_equal(known, K[0]), i
        row.learn_row(X[i], M[i])
        Zp, Kp = batch.prequential(X[i : i + 1], M[i : i + 1], np.ones(1, dtype=bool), raw, known=True)
        assert np.array_equal(Zp[0], z) and np.array_equal(Kp[0], known), i  # learning saw the same row
        for a in ("count", "mean", "m2"):
            assert np.array_equal(getattr(row, a), getattr(batch, a)), (i, a)
    assert np.abs(z).max() <= row.clip and row.count[3] < X.shape[0] - 5


def test_a_row_narrower_than_the_statistics_keeps_the_known_columns():
    s = OnlineStandardizer()
    s.learn_row(np.array([1.0, 2.0, 3.0]), np.ones(3, dtype=bool))
    s.learn_row(np.array([3.0, 2.0, 5.0]), np.ones(3, dtype=bool))
    z, known = s.transform_row(np.array([5.0]), np.ones(1, dtype=bool))
    assert z.tolist() == [3.0] and known.tolist() == [True]


def test_learning_a_row_narrower_than_the_statistics_leaves_what_the_batch_method_leaves():
    row, batch = OnlineStandardizer(), OnlineStandardizer()
    for s in (row, batch):
        s.learn_row(np.array([1.0, 2.0, 3.0]), np.ones(3, dtype=bool))
    x, m = np.array([5.0, 7.0]), np.array([True, False])
    row.learn_row(x, m)
    batch.prequential(x[None, :], m[None, :], np.ones(1, dtype=bool))
    for a in ("count", "mean", "m2"):
        assert np.array_equal(getattr(row, a), getattr(batch, a)), a


@pytest.mark.parametrize("scale", [1e-13, 1e-100, 1e100])
@pytest.mark.parametrize("d", [6, ROW_LOOP_MAX + 5])  # compiled, and numpy for wide rows
def test_a_feature_on_a_tiny_or_huge_scale_reads_as_at_unit_scale_and_a_constant_one_stays_0(d, scale):
    # the constant test is relative (sd above 1e-12 of |mean|), not var > 1e-24
    X, M, raw = _rows(d, n=150, seed=2)
    Xs = np.where(raw, X, X * scale)  # the indicator keeps its 0/1
    unit, row, batch = OnlineStandardizer(), OnlineStandardizer(), OnlineStandardizer()
    peak = 0.0
    for i in range(X.shape[0]):
        zu, ku = unit.transform_row(X[i], M[i], raw)
        z, known = row.transform_row(Xs[i], M[i], raw)
        Z, K = batch.prequential(Xs[i : i + 1], M[i : i + 1], np.ones(1, dtype=bool), raw, known=True)
        assert np.array_equal(z, Z[0]) and np.array_equal(known, K[0]), i  # the two paths agree
        np.testing.assert_allclose(z, zu, rtol=1e-9, atol=1e-12, err_msg=str(i))
        assert np.array_equal(known, ku) and z[2] == 0.0, i  # the constant column is only centred
        peak = max(peak, np.abs(z[~raw[:d]]).max())
        unit.learn_row(X[i], M[i])
        row.learn_row(Xs[i], M[i])
    assert peak > 2.0  # scaled, not only centred
    assert np.array_equal(batch.transform(Xs, M, raw), row.transform(Xs, M, raw))


@pytest.mark.parametrize("scale", [1.0, 1e-13])
def test_without_numba_the_same_row_loops_run_in_python(monkeypatch, scale):
    from stream_cl.backbones import standardize_row

    X, M, raw = _rows(6, n=60, seed=4)
    X = np.where(raw, X, X * scale)
    compiled, python = OnlineStandardizer(), OnlineStandardizer()
    peak = 0.0
    for i in range(X.shape[0]):
        z, known = compiled.transform_row(X[i], M[i], raw)
        compiled.learn_row(X[i], M[i])
        with monkeypatch.context() as patch:
            patch.setattr(standardize_row._transform, "get", lambda: None)
            patch.setattr(standardize_row._learn, "get", lambda: None)
            zp, kp = python.transform_row(X[i], M[i], raw)
            python.learn_row(X[i], M[i])
        assert np.array_equal(z, zp) and np.array_equal(known, kp), i
        peak = max(peak, np.abs(zp[3:]).max())  # columns without outliers
    for a in ("count", "mean", "m2"):
        assert np.array_equal(getattr(compiled, a), getattr(python, a)), a
    assert peak > 2.0  # the numeric columns were scaled at either scale


@pytest.mark.parametrize("d", [3, ROW_LOOP_MAX + 5])  # the compiled row loop and the array code
def test_an_indicator_column_is_clipped_like_a_standardised_one(d):
    # with hash_width a bucket takes the kind of the first key hashed into it: a number landing in
    # a category's bucket was read raw, unclipped (amount 21,000 entered the backbone as 10,500)
    scaler = OnlineStandardizer()
    X = np.ones((4, d))
    M = np.ones((4, d), dtype=bool)
    raw = np.zeros(d, dtype=bool)
    raw[0] = True
    scaler.prequential(X, M, np.ones(4, dtype=bool), raw)
    x = np.ones(d)
    for value, expected in ((1.0, 0.5), (2.0, 1.0), (21_000.0, scaler.clip), (-21_000.0, -scaler.clip)):
        x[0] = value
        z, _ = scaler.transform_row(x, np.ones(d, dtype=bool), raw)
        Z = scaler.transform(x[None, :], np.ones((1, d), dtype=bool), raw)
        assert z[0] == Z[0, 0] == expected
