"""A batch standardises features far from 0 (epoch seconds) as a loop over its events does.

The batch path had summed deviations from the batch-start mean and subtracted ``s1^2/n``: with
a fresh scaler (mean 0) or after a mean shift, a feature at 1.7e9 with sd 20 cancelled to a
variance of 0 where the per-event path (Welford) had 409.5, and the learner's probabilities then
differed by up to 0.8 between micro-batches and single events.
"""

import warnings

import numpy as np
import pytest

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import standardize_row
from stream_cl.backbones.standardize import ROW_LOOP_MAX, OnlineStandardizer


def _offset_rows(d, offset, sd, n=600, seed=0):
    """Rows whose numeric columns sit at ``offset`` with spread ``sd`` (column 0 first near 0,
    then shifted: a mean shift), an indicator column, missing values and unlearned rows."""
    rng = np.random.default_rng(seed)
    X = offset + sd * rng.normal(size=(n, d))
    X[: n // 6, 0] = sd * rng.normal(size=n // 6)  # column 0 learns a mean near 0 first
    X[:, 1] = (rng.random(n) > 0.5).astype(float)  # an indicator
    M = rng.random((n, d)) > 0.1
    M[:7, 2] = False  # a column first seen late
    learn = rng.random(n) > 0.2
    raw = np.zeros(d, dtype=bool)
    raw[1] = True
    return X, M, learn, raw


def _per_event(X, M, learn, raw):
    """The per-event path: each row read with the statistics before it, then absorbed if learned."""
    s = OnlineStandardizer()
    Z, K = np.zeros(X.shape), np.zeros(X.shape, dtype=bool)
    for i in range(X.shape[0]):
        Z[i], K[i] = s.transform_row(X[i], M[i], raw)
        if learn[i]:
            s.learn_row(X[i], M[i])
    return s, Z, K


def _batched(X, M, learn, raw, size=256):
    s = OnlineStandardizer()
    parts = [s.prequential(X[i : i + size], M[i : i + size], learn[i : i + size], raw, known=True)
             for i in range(0, X.shape[0], size)]
    return s, np.vstack([Z for Z, _ in parts]), np.vstack([K for _, K in parts])


@pytest.mark.parametrize("offset, sd", [(1e9, 10.0), (1.7e9, 20.0)])
@pytest.mark.parametrize("d", [4, ROW_LOOP_MAX + 5])  # the compiled row loop, and numpy for wide rows
def test_a_batch_of_offset_features_learns_what_a_loop_of_events_learns(d, offset, sd):
    X, M, learn, raw = _offset_rows(d, offset, sd)
    loop, Z_loop, K_loop = _per_event(X, M, learn, raw)
    batch, Z_batch, K_batch = _batched(X, M, learn, raw)
    for a in ("count", "mean", "m2"):
        assert np.array_equal(getattr(batch, a), getattr(loop, a)), a
    assert np.array_equal(Z_batch, Z_loop) and np.array_equal(K_batch, K_loop)  # the same arithmetic
    # and the variance is the data's (it had cancelled to 0, the column then read unscaled)
    used = M & learn[:, None]
    col = X[used[:, 3], 3]
    assert batch.m2[3] / batch.count[3] == pytest.approx(col.var(), rel=1e-6)
    assert np.abs(Z_batch[:, 3]).max() < 6.0


def test_one_batch_from_a_fresh_scaler_keeps_the_variance_of_epoch_seconds():
    rng = np.random.default_rng(0)
    X = 1.7e9 + 20.0 * rng.normal(size=(256, 1))
    M = np.ones_like(X, dtype=bool)
    batch, loop = OnlineStandardizer(), OnlineStandardizer()
    Z = batch.prequential(X, M)
    for i in range(256):
        z, _ = loop.transform_row(X[i], M[i])
        assert abs(z[0] - Z[i, 0]) <= 1e-9, i
        loop.learn_row(X[i], M[i])
    assert np.array_equal(batch.m2, loop.m2) and np.array_equal(batch.mean, loop.mean)
    assert batch.m2[0] / batch.count[0] == pytest.approx(X.var(), rel=1e-6)  # 409.5 (the batch had 0)


def test_without_numba_the_batch_loop_runs_in_python_with_the_same_bits(monkeypatch):
    X, M, learn, raw = _offset_rows(5, 1e9, 10.0, n=80, seed=3)
    compiled, Z, K = _batched(X, M, learn, raw, size=32)
    with monkeypatch.context() as patch:
        patch.setattr(standardize_row._prequential, "get", lambda: None)
        python, Zp, Kp = _batched(X, M, learn, raw, size=32)
    assert np.array_equal(Z, Zp) and np.array_equal(K, Kp)
    for a in ("count", "mean", "m2"):
        assert np.array_equal(getattr(compiled, a), getattr(python, a)), a


def test_the_learner_predicts_the_same_batched_and_per_event_on_epoch_seconds():
    rng = np.random.default_rng(1)
    n = 600
    ts = 1.7e9 + np.cumsum(rng.uniform(0, 0.5, n))
    xs = [{"ts": float(t), "a": float(rng.normal())} for t in ts]
    ys = [int(x["a"] > 0) for x in xs]
    single, batched = OnlineContinualLearner(device="cpu"), OnlineContinualLearner(device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        P_loop = []
        for x, y in zip(xs, ys):
            p = single.predict_proba_one(x)
            P_loop.append([p.get(c, 0.0) for c in (0, 1)])
            single.learn_one(x, y)
        parts = [batched.prequential_batch(xs[i : i + 256], ys[i : i + 256]) for i in range(0, n, 256)]
    cls = batched.classes_
    P_batch = np.array([[row[cls.index(c)] if c in cls[: len(row)] else 0.0 for c in (0, 1)]
                        for P in parts for row in P])
    np.testing.assert_allclose(P_batch, np.array(P_loop), rtol=0, atol=1e-9)
    for a in ("count", "mean", "m2"):
        assert np.array_equal(getattr(batched.scaler_, a), getattr(single.scaler_, a)), a
