"""The wide ridge heads' triangular solves and Cholesky factors through torch's MKL
(stream_cl.heads.mkl_solves), tested both ways on any CPU: the chooser picks one per process
(Intel: MKL), and ``mkl_solves.choose`` forces either."""

import warnings

import numpy as np
import pytest
import torch

from stream_cl import OnlineContinualLearner, runtime
from stream_cl.blas_kernels import kernels_setting, mkl_solves_preferred
from stream_cl.heads import mkl_solves
from stream_cl.heads import ridge as ridge_module
from stream_cl.heads._linalg import NumpyLinalg
from stream_cl.heads.conditioning import LostDigits
from stream_cl.heads.ridge import RecursiveRidge


@pytest.fixture(params=[True, False], ids=["mkl", "openblas"])
def mkl(request):
    mkl_solves.choose(request.param)
    yield request.param
    mkl_solves.choose(None)


@pytest.fixture
def factor_way(monkeypatch):
    """Every chunk learned from the factor of A + g I, the way that whitens and factors wide heads."""
    monkeypatch.setattr(ridge_module, "factor_is_cheaper", lambda b, d: True)
    monkeypatch.setattr(ridge_module, "rows_are_cheaper", lambda b, d, c: False)


class _Calls:
    """Counts torch's solves and factors, and the torch threads each ran with."""

    def __init__(self, monkeypatch):
        self.threads = []
        for name in ("solve_triangular", "cholesky_ex"):
            real = getattr(torch.linalg, name)

            def spy(*args, _real=real, **kwargs):
                self.threads.append(torch.get_num_threads())
                return _real(*args, **kwargs)

            monkeypatch.setattr(torch.linalg, name, spy)


def _chunks(ridge, X, Y, sizes):
    out, start = [], 0
    for b in sizes:
        out.append(ridge.update(X[start:start + b], Y[start:start + b])[0])  # (b, c) priors
        start += b
    return np.concatenate(out)


def _wide_rows(seed=3, n=640, d=150, c=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, c))


def test_a_wide_head_takes_its_solves_and_factor_from_the_way_chosen(mkl, factor_way, monkeypatch):
    calls = _Calls(monkeypatch)
    X, Y = _wide_rows()
    ridge = RecursiveRidge(0.5)
    ridge.grow(X.shape[1], Y.shape[1])
    ridge.update(X[:200], Y[:200])
    ridge.update(X[200:400], Y[200:400])
    # each chunk after the first: the factor of A + g I (d = 150) and the whitened rows (150 x 200) at least
    assert (len(calls.threads) >= 4) if mkl else not calls.threads


def test_a_wide_head_learned_in_chunks_is_exact_either_way(mkl, factor_way):
    X, Y = _wide_rows()
    ridge = RecursiveRidge(0.5)
    ridge.grow(X.shape[1], Y.shape[1])
    prior = _chunks(ridge, X, Y, [256, 256, 128])
    closed = np.linalg.solve(X.T @ X + 0.5 * np.eye(X.shape[1]), X.T @ Y)
    np.testing.assert_allclose(ridge.weights(), closed, rtol=1e-9, atol=1e-12)
    for i in (300, 639):  # a row's prior: the closed form on the rows before it, across chunk borders
        before = np.linalg.solve(X[:i].T @ X[:i] + 0.5 * np.eye(X.shape[1]), X[:i].T @ Y[:i])
        np.testing.assert_allclose(prior[i], X[i] @ before, rtol=1e-8, atol=1e-10)


def test_the_two_ways_give_the_same_priors_and_weights_to_rounding(factor_way):
    X, Y = _wide_rows(seed=4)
    results = []
    for flag in (True, False):
        mkl_solves.choose(flag)
        try:
            ridge = RecursiveRidge(0.5, 0.995)
            ridge.grow(X.shape[1], Y.shape[1])
            results.append((_chunks(ridge, X, Y, [256, 100, 156, 128]), ridge.weights()))
        finally:
            mkl_solves.choose(None)
    (p1, w1), (p2, w2) = results
    np.testing.assert_allclose(p1, p2, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(w1, w2, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("d,c", [(200, 5), (200, 12), (40, 60)])
def test_the_weights_solved_in_two_halves_are_those_of_one_solve_either_way(mkl, d, c):
    """A chunk reads its start weights in two halves (unwhiten after whiten), ``weights()`` in one
    (factor_solve): the same bits, as a prediction before a batch must change none of them."""
    la = NumpyLinalg()
    rng = np.random.default_rng(d + c)
    X, B = rng.normal(size=(2 * d, d)), rng.normal(size=(d, c))
    F = la.spd_factor(X.T @ X, 1.0, 0.5)
    assert np.array_equal(la.unwhiten(F, la.whiten(F, B)), la.factor_solve(F, B))


def test_a_factor_reads_one_triangle_and_refuses_a_matrix_not_positive_definite():
    F = np.asfortranarray([[4.0, 2.0], [-1e300, 10.0]])  # below the diagonal: not read
    assert mkl_solves.factor_upper_(F).tolist() == [[2.0, 1.0], [0.0, 3.0]]
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        mkl_solves.factor_upper_(np.asfortranarray([[1.0, 2.0], [2.0, 1.0]]))


def test_a_wide_matrix_that_lost_its_digits_is_told_apart_either_way(mkl):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, 150))
    X[:, 0] *= 1e6  # a feature in microseconds ...
    X[:, 1] = X[:, 0] * 1e9  # ... and the same in femtoseconds: collinear, and squares ~1e35 times the ridge term
    with pytest.raises(LostDigits):
        NumpyLinalg().spd_factor(X.T @ X, 1.0, 1.0)


def test_mkl_runs_on_one_thread_and_gives_torch_its_count_back(factor_way, monkeypatch):
    mkl_solves.choose(True)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr(runtime, "threads_chosen", lambda: False)  # as in a program that never called set_threads
        calls = _Calls(monkeypatch)
        X, Y = _wide_rows()
        ridge = RecursiveRidge(0.5)
        ridge.grow(X.shape[1], Y.shape[1])
        _chunks(ridge, X, Y, [256, 256])
        assert calls.threads and set(calls.threads) == {1}
        assert torch.get_num_threads() == 2
        monkeypatch.setattr(runtime, "threads_chosen", lambda: True)  # set_threads chose: left as it is
        calls.threads.clear()
        _chunks(ridge, X, Y, [128])
        assert calls.threads and set(calls.threads) == {2}
    finally:
        torch.set_num_threads(before)
        mkl_solves.choose(None)


def test_the_default_learner_predicts_the_same_either_way():
    rng = np.random.default_rng(9)
    xs = [{f"f{j}": float(v) for j, v in enumerate(row)} for row in rng.normal(size=(900, 20))]
    ys = [int(x["f0"] + x["f1"] * x["f2"] > 0) + (x["f3"] > 1) for x in xs]
    probas = []
    for flag in (True, False):
        mkl_solves.choose(flag)
        try:
            model = OnlineContinualLearner()
            probas.append(np.concatenate([np.asarray(model.prequential_batch(xs[i:i + 256], ys[i:i + 256]))
                                          for i in range(0, len(xs), 256)]))  # (900, 3)
        finally:
            mkl_solves.choose(None)
    np.testing.assert_allclose(probas[0], probas[1], rtol=0, atol=1e-9)
    assert np.array_equal(probas[0].argmax(axis=1), probas[1].argmax(axis=1))


def test_the_setting_is_read_and_checked_in_one_place():
    assert kernels_setting({}) == "auto" and kernels_setting({"STREAM_CL_BLAS_KERNELS": " MKL "}) == "mkl"
    with pytest.raises(ValueError, match="STREAM_CL_BLAS_KERNELS='fast' is not one of auto, default, mkl"):
        kernels_setting({"STREAM_CL_BLAS_KERNELS": "fast"})
    assert not mkl_solves_preferred("default", vendor="GenuineIntel", has_mkl=True)
    assert not mkl_solves_preferred("auto", vendor="GenuineIntel", has_mkl=False)  # a torch without MKL
    assert mkl_solves_preferred("auto", vendor="GenuineIntel", has_mkl=True)
    assert mkl_solves_preferred(None, vendor="GenuineIntel", has_mkl=True) == (kernels_setting() != "default")


def test_the_command_refuses_an_unknown_setting_as_a_config_error(monkeypatch, capsys):
    from connectors import cli

    monkeypatch.setenv("STREAM_CL_BLAS_KERNELS", "fastest")
    assert cli.main(["run", "--max-events", "5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "config error: STREAM_CL_BLAS_KERNELS='fastest' is not one of auto, default, mkl" in err


def test_a_library_learner_warns_of_an_unknown_setting_and_learns(monkeypatch):
    """Review r83: the setting was read at the first wide factor, half way through a batch, and its error
    left the learner unable to learn any later batch. A learner now warns and takes auto."""
    monkeypatch.setenv("STREAM_CL_BLAS_KERNELS", "fast")
    mkl_solves.choose(None)
    try:
        rng = np.random.default_rng(2)
        xs = [{f"f{j}": float(v) for j, v in enumerate(row)} for row in rng.normal(size=(512, 20))]
        ys = [int(x["f0"] > 0) for x in xs]
        model = OnlineContinualLearner()
        with pytest.warns(RuntimeWarning, match="STREAM_CL_BLAS_KERNELS='fast' is not one of .* take auto"):
            model.prequential_batch(xs[:256], ys[:256])
        assert mkl_solves.enabled() == mkl_solves_preferred("auto")
        proba = np.asarray(model.prequential_batch(xs[256:], ys[256:]))  # (256, 2)
        predicted = np.asarray(model.classes_)[proba.argmax(axis=1)]  # rows in classes_ order
        assert np.isfinite(proba).all() and (predicted == ys[256:]).mean() > 0.9
    finally:
        mkl_solves.choose(None)


def test_mkl_asked_for_without_mkl_warns_and_keeps_openblas(monkeypatch):
    monkeypatch.setenv("STREAM_CL_BLAS_KERNELS", "mkl")
    monkeypatch.setattr(torch.backends.mkl, "is_available", lambda: False)
    mkl_solves.choose(None)
    try:
        with pytest.warns(RuntimeWarning, match="built without MKL"):
            assert not mkl_solves.enabled()
    finally:
        mkl_solves.choose(None)


@pytest.mark.parametrize("kind", ["reversed", "big-endian", "read-only"])
def test_rows_torch_cannot_view_are_learned_as_openblas_learns_them(factor_way, kind):
    """Review r83: rows with negative strides or another byte order failed on the MKL way only, and
    read-only ones (pandas' to_numpy) made torch warn that it might write to them."""
    X, Y = _wide_rows(seed=6, n=400)
    odd = {"reversed": lambda a: a[::-1].copy()[::-1], "big-endian": lambda a: a.astype(">f8"),
           "read-only": lambda a: np.array(a)}[kind]
    rows = odd(X)
    if kind == "read-only":
        rows.flags.writeable = False
    priors = []
    for flag in (True, False):
        mkl_solves.choose(flag)
        try:
            ridge = RecursiveRidge(0.5)
            ridge.grow(X.shape[1], Y.shape[1])
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # (torch's warning of a read-only array, among others)
                priors.append(np.concatenate([ridge.update(rows[:256], Y[:256])[0], ridge.update(rows[256:], Y[256:])[0]]))
        finally:
            mkl_solves.choose(None)
    np.testing.assert_allclose(priors[0], priors[1], rtol=1e-11, atol=1e-12)


def test_a_vector_is_solved_either_way(mkl):
    """Review r83: a (d,) right-hand side raised TypeError in every solve (the size test took two numbers)."""
    la = NumpyLinalg()
    rng = np.random.default_rng(8)
    X, b = rng.normal(size=(400, 200)), rng.normal(size=200)
    F = la.spd_factor(X.T @ X, 1.0, 0.5)
    v = la.factor_solve(F, b)
    assert v.shape == (200,) and np.array_equal(v, la.unwhiten(F, la.whiten(F, b)))
    np.testing.assert_allclose((X.T @ X + 0.5 * np.eye(200)) @ v, b, rtol=1e-9, atol=1e-9)
    C = np.linalg.cholesky(X[:, :50].T @ X[:, :50])
    np.testing.assert_allclose(C @ la.solve_lower(C, b[:50]), b[:50], rtol=1e-10, atol=1e-10)
