"""Ridge heads on raw inputs that are collinear at large magnitudes (numerics review r12, finding 1).

An epoch time in seconds and the same time in milliseconds, or one field under two names at 1e5 and
more: ``A + gamma I`` has entries up to ~1e27 where the ridge term is 1, and its Cholesky factor keeps
no digit in the collinear direction. The statistics ``A``, ``B`` still hold the answer; the head must
notice (``conditioning.lost_digits``, and per event a row ``R`` cannot resolve) and solve from the
equilibrated eigendecomposition instead, one event at a time and in batches alike.

The reference is closed-form ridge ``(Z'Z + gamma I)^-1 Z'Y`` in exact rational arithmetic
(``fractions``: every float is a fraction), applied to the rows learned.
"""

from __future__ import annotations

import pickle
from fractions import Fraction

import numpy as np
import pytest

from stream_cl import AnalyticClassifier
from stream_cl.heads.ridge import RecursiveRidge

N = 600


def _events(kind: str, scale: float = 0.0, n: int = N, seed: int = 0):
    """The review's streams: ``f0 - 0.5 f1 > 0`` as the label, beside an epoch time in seconds and in
    milliseconds (``"seconds_ms"``) or one uniform field at ``scale`` under two names (``"twice"``)."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 2))
    labels = (f[:, 0] - 0.5 * f[:, 1] > 0).tolist()
    if kind == "seconds_ms":
        ts = 1.7e9 + np.cumsum(rng.integers(1, 20, n)).astype(float)
        big = {"ts_s": ts, "ts_ms": ts * 1000.0}
    else:
        u = rng.uniform(1, 2, n) * scale
        big = {"a": u, "b": u}
    events = [{**{k: float(v[i]) for k, v in big.items()}, "f0": float(f[i, 0]), "f1": float(f[i, 1])}
              for i in range(n)]
    return events, labels


def _design(events, labels, names=None, classes=(False, True)):
    """Design rows ``[1, x...]`` (n, d) (columns in the events' key order, or ``names``) and one-hot
    targets (n, c) (``classes`` order)."""
    names = list(events[0]) if names is None else list(names)
    Z = np.array([[1.0] + [e[k] for k in names] for e in events])
    Y = np.array([[t == c for c in classes] for t in labels], dtype=float)
    return Z, Y


def _model_design(model: AnalyticClassifier, events, labels):
    """:func:`_design` in the model's column and class order."""
    return _design(events, labels, model.feature_names_in_, model.classes_)


def _solve(M: list, B: list) -> list:
    """``M^-1 B`` for square ``M`` (lists of Fractions) by Gauss-Jordan elimination, exactly (``M`` is
    positive definite: no pivot is 0)."""
    d, c = len(M), len(B[0])
    rows = [M[i][:] + B[i][:] for i in range(d)]
    for k in range(d):
        pivot = rows[k][k]
        rows[k] = [v / pivot for v in rows[k]]
        for i in range(d):
            if i != k and rows[i][k]:
                factor = rows[i][k]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[k])]
    return [row[d:d + c] for row in rows]


def _closed_form_scores(Z: np.ndarray, Y: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """``Z (Z'Z + gamma I)^-1 Z'Y`` (n, c), computed exactly and rounded once."""
    rows = [[Fraction(v) for v in r] for r in Z.tolist()]
    d, c = Z.shape[1], Y.shape[1]
    M = [[Fraction(0)] * d for _ in range(d)]
    for i in range(d):
        for j in range(i + 1):
            M[i][j] = M[j][i] = sum(r[i] * r[j] for r in rows)
        M[i][i] += Fraction(gamma)
    targets = Y.astype(bool).T.tolist()
    B = [[sum(r[i] for r, t in zip(rows, targets[k]) if t) for k in range(c)] for i in range(d)]
    W = _solve(M, B)
    return np.array([[float(sum(r[i] * W[i][k] for i in range(d))) for k in range(c)] for r in rows])


def _learned(events, labels, **params):
    """The same events learned one at a time (``predict_proba_one``, then ``learn_one``) and in one
    ``prequential_batch``: ``(per_event, batched, priors one at a time (n, c), priors batched (n, c))``."""
    one, batch = AnalyticClassifier(**params), AnalyticClassifier(**params)
    priors = []
    for x, y in zip(events, labels):
        priors.append(one.predict_proba_one(x))
        one.learn_one(x, y)
    P = batch.prequential_batch(events, labels)
    assert list(one.classes_) == list(batch.classes_) and list(one.feature_names_in_) == list(batch.feature_names_in_)
    P_one = np.array([[p.get(c, 0.0) for c in one.classes_] for p in priors])
    return one, batch, P_one, P


def _scores(model: AnalyticClassifier, Z: np.ndarray) -> np.ndarray:
    return Z @ np.vstack([model.intercept_, model.coef_.T])


def test_seconds_and_milliseconds_give_the_closed_form_one_event_at_a_time_and_batched():
    """The review's repro: chance-level models (scores off by up to 2.7e5) before; the closed form after."""
    events, labels = _events("seconds_ms")
    one, batch, P_one, P = _learned(events, labels)
    Z, Y = _model_design(one, events, labels)
    exact = _closed_form_scores(Z, Y)
    for model in (one, batch):
        assert np.abs(_scores(model, Z) - exact).max() < 1e-9
    assert np.mean(exact.argmax(1) == Y.argmax(1)) > 0.98  # the closed form is a good model here
    # one event at a time and batched: the same model, the same prequential probabilities
    np.testing.assert_allclose(one.coef_, batch.coef_, rtol=1e-12, atol=0)
    np.testing.assert_allclose(P_one, P, rtol=0, atol=1e-12)
    x = {"ts_s": 1.7e9 + 20000.0, "ts_ms": (1.7e9 + 20000.0) * 1000.0, "f0": 0.3, "f1": -0.2}
    assert one.predict_proba_one(x) == pytest.approx(batch.predict_proba_one(x), abs=1e-12)


@pytest.mark.parametrize("scale", [1e5, 1e6, 1e7, 1e9])
def test_one_field_under_two_names_gives_the_closed_form(scale):
    """At 1e5 the factor still holds early on: one event at a time, ``R`` updated row by row loses the
    rows' digits first (a row whose ``x'Rx`` cancels to its rounding), and is rebuilt from the statistics."""
    events, labels = _events("twice", scale)
    one, batch, _, P = _learned(events, labels)
    Z, Y = _model_design(one, events, labels)
    exact = _closed_form_scores(Z, Y)
    for model in (one, batch):
        assert np.abs(_scores(model, Z) - exact).max() < 1e-9
    np.testing.assert_allclose(_scores(one, Z), _scores(batch, Z), rtol=0, atol=1e-12)
    # once the head is past the first rows, the probabilities of the batch are the loop's
    P_late = np.array([[one.predict_proba_one(x).get(c, 0.0) for c in one.classes_] for x in events[-5:]])
    np.testing.assert_allclose(P_late, batch.predict_proba_batch(events[-5:]), rtol=0, atol=1e-12)


def test_the_factor_reports_lost_digits_and_the_equilibrated_solve_holds():
    """``spd_factor`` refuses a factor whose pivot is rounding noise; ``equilibrate`` solves the same
    statistics to the closed form (the review's last line)."""
    from stream_cl.heads._linalg import NumpyLinalg
    from stream_cl.heads.conditioning import LostDigits

    events, labels = _events("seconds_ms")
    Z, Y = _design(events, labels)
    A, B = Z.T @ Z, Z.T @ Y
    la = NumpyLinalg()
    with pytest.raises(LostDigits):
        la.spd_factor(A, 1.0, 1.0)
    with pytest.raises(np.linalg.LinAlgError):  # (LostDigits is one)
        la.spd_inverse(A + np.eye(A.shape[0]))
    E = la.equilibrate(A, 1.0)
    exact = _closed_form_scores(Z, Y)
    assert np.abs(Z @ la.equilibrated_solve(E, B) - exact).max() < 1e-9
    R = la.equilibrated_inverse(E)
    np.testing.assert_array_equal(R, R.T)


def test_a_well_conditioned_factor_is_the_same_as_before():
    """The test costs nothing but a look at the pivots: the factor is LAPACK's, bit for bit."""
    import scipy.linalg as sla

    from stream_cl.heads._linalg import NumpyLinalg

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 20)) * np.logspace(0, 4, 20)  # raw inputs of several magnitudes
    A = X.T @ X
    U = NumpyLinalg().spd_factor(A, 0.5, 2.0)
    np.testing.assert_array_equal(np.triu(U), sla.cholesky(0.5 * A + 2.0 * np.eye(20), lower=False))


def test_well_conditioned_rows_never_lose_digits(monkeypatch):
    """Neither the pivot test nor the per-event row test touches a well-conditioned stream (raw inputs
    from 1 to 1e4, whose first rows are of high leverage: rebuilt as before): no row that ``R`` cannot
    resolve one event at a time, no equilibrated solve."""
    from stream_cl.heads import _linalg, ridge_one

    def refuse(*args, **kwargs):
        raise AssertionError("equilibrated a well-conditioned head")

    monkeypatch.setattr(_linalg.NumpyLinalg, "equilibrate", refuse, raising=False)
    returned = []
    original = ridge_one.update_one
    monkeypatch.setattr(ridge_one, "update_one", lambda *args: returned.append(original(*args)) or returned[-1])
    rng = np.random.default_rng(2)
    X = np.hstack([np.ones((3000, 1)), rng.normal(size=(3000, 11)) * np.logspace(0, 4, 11)])
    Y = np.eye(4)[rng.integers(4, size=3000)]
    one = RecursiveRidge(gamma=1.0)
    one.grow(12, 4)
    for i in range(3000):
        one.update_one(X[i], Y[i], 1.0, int(Y[i].argmax()))
    assert len(returned) == 3000 and np.isfinite(returned).all()  # (inf: a row R could not resolve)
    batched = RecursiveRidge(gamma=1.0)
    batched.grow(12, 4)
    batched.update(X, Y)
    np.testing.assert_allclose(X @ one.weights(), X @ batched.weights(), rtol=0, atol=1e-9)


def test_an_equilibrated_head_keeps_no_inverse_in_its_state_and_resumes_bit_for_bit():
    """The equilibrated factor is not state: a head resumed from a checkpoint solves the same statistics
    to the same bits, one event at a time and in batches."""
    events, labels = _events("seconds_ms", n=200)
    Z, Y = _design(events, labels)
    ridge = RecursiveRidge(gamma=1.0)
    ridge.grow(Z.shape[1], Y.shape[1])
    for i in range(100):
        ridge.update_one(Z[i], Y[i], 1.0, int(Y[i].argmax()))
    ridge.weights()
    assert ridge.equilibrated
    state = ridge.state_dict()
    assert "R" not in state
    resumed = RecursiveRidge()
    resumed.load_state_dict(state)
    copied = pickle.loads(pickle.dumps(ridge))
    for head in (ridge, resumed, copied):
        for i in range(100, 150):
            head.update_one(Z[i], Y[i], 1.0, int(Y[i].argmax()))
        head.update(Z[150:], Y[150:])
    np.testing.assert_array_equal(resumed.weights(), ridge.weights())
    np.testing.assert_array_equal(copied.weights(), ridge.weights())
    assert np.abs(Z @ ridge.weights() - _closed_form_scores(Z, Y)).max() < 1e-9


@pytest.mark.parametrize("forgetting", [0.99, 0.9])
def test_forgetting_heads_learn_the_same_model_one_event_at_a_time_and_batched(forgetting):
    """With forgetting the rows' weights and the ridge term decay on the same schedule either way."""
    events, labels = _events("seconds_ms", n=400)
    one, batch, P_one, P = _learned(events, labels, forgetting=forgetting)
    Z, _ = _model_design(one, events, labels)
    np.testing.assert_allclose(_scores(one, Z), _scores(batch, Z), rtol=0, atol=1e-12)
    np.testing.assert_allclose(P_one, P, rtol=0, atol=1e-12)


def test_a_torch_device_solves_the_same():
    """The torch backend's factor test and equilibrated solve (``device="torch:cpu"``, the CUDA code)."""
    events, labels = _events("seconds_ms", n=200)
    Z, Y = _design(events, labels)
    exact = _closed_form_scores(Z, Y)
    batched = RecursiveRidge(gamma=1.0, device="torch:cpu")
    batched.grow(Z.shape[1], Y.shape[1])
    batched.update(batched.la.asarray(Z), batched.la.asarray(Y))
    assert np.abs(Z @ batched.la.to_numpy(batched.weights()) - exact).max() < 1e-9
    one = RecursiveRidge(gamma=1.0, device="torch:cpu")
    one.grow(Z.shape[1], Y.shape[1])
    for i in range(len(Z)):
        one.update_one(one.la.asarray(Z[i]), one.la.asarray(Y[i]))
    assert np.abs(Z @ one.la.to_numpy(one.weights()) - exact).max() < 1e-9
