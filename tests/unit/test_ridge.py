"""The ridge head's algebra: exactness, prequential scores, forgetting, state."""

import numpy as np
import pytest

from stream_cl.heads.ridge import ANCHOR_DECAY, REFRESH_ROWS, RecursiveRidge


def _sequential(ridge, X, Y, w=None):
    priors = []
    for i in range(len(X)):
        priors.append(ridge.update_one(X[i], Y[i], 1.0 if w is None else w[i]))
    return np.array(priors)


def _random_splits(rng, n):
    cuts = np.sort(rng.choice(np.arange(1, n), size=rng.integers(1, 12), replace=False))
    return np.split(np.arange(n), cuts)


@pytest.mark.parametrize("forgetting", [1.0, 0.97])
def test_batched_updates_equal_the_rank_one_loop(forgetting):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(300, 6)), rng.normal(size=(300, 3))
    w = rng.uniform(0.2, 3.0, size=300)
    one, many = RecursiveRidge(0.3, forgetting), RecursiveRidge(0.3, forgetting)
    for r in (one, many):
        r.grow(6, 3)
    expected = _sequential(one, X, Y, w)
    got = np.concatenate([many.update(X[s], Y[s], w[s])[0] for s in _random_splits(rng, 300)])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(many.weights(), one.weights(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(many.A, one.A, rtol=1e-12, atol=1e-12)


def test_forgetting_matches_exponentially_weighted_ridge_at_anchor_points():
    # Right after a re-anchor the model is exactly (A + gamma I)^-1 B with weighted A, B.
    rng = np.random.default_rng(2)
    lam, gamma = 0.9, 0.7
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(40, 2))
    ridge = RecursiveRidge(gamma, lam)
    ridge.grow(3, 2)
    ridge.update(X, Y)
    ridge.refresh()
    wts = lam ** np.arange(39, -1, -1)
    A = (X.T * wts) @ X
    B = (X.T * wts) @ Y
    np.testing.assert_allclose(ridge.weights(), np.linalg.solve(A + gamma * np.eye(3), B), rtol=1e-10)
    # and the ridge term never decays below ANCHOR_DECAY * gamma between anchors
    assert ANCHOR_DECAY <= ridge.decay <= 1.0


def test_queries_are_scored_by_the_model_at_their_position():
    rng = np.random.default_rng(3)
    X, Y, Xq = rng.normal(size=(20, 4)), rng.normal(size=(20, 2)), rng.normal(size=(5, 4))
    pos = np.array([0, 3, 3, 19, 20])
    batch = RecursiveRidge(1.0, 0.95)
    batch.grow(4, 2)
    _, q = batch.update(X, Y, X_query=Xq, query_pos=pos)
    loop = RecursiveRidge(1.0, 0.95)
    loop.grow(4, 2)
    expected = np.zeros((5, 2))
    for i in range(21):
        for k in np.flatnonzero(pos == i):
            expected[k] = loop.predict(Xq[k : k + 1])[0]
        if i < 20:
            loop.update_one(X[i], Y[i])
    np.testing.assert_allclose(q, expected, rtol=1e-9, atol=1e-12)


def test_growing_inputs_and_outputs_leaves_the_model_unchanged():
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(30, 3)), rng.normal(size=(30, 2))
    ridge = RecursiveRidge(0.5)
    ridge.grow(3, 2)
    ridge.update(X, Y)
    before = ridge.predict(X)
    ridge.grow(5, 4)
    X5 = np.hstack([X, np.zeros((30, 2))])
    np.testing.assert_allclose(ridge.predict(X5)[:, :2], before, rtol=1e-12)
    assert np.all(ridge.predict(X5)[:, 2:] == 0)


def test_periodic_refresh_happens_at_the_same_rows_whatever_the_batching():
    rng = np.random.default_rng(5)
    n = REFRESH_ROWS + 50
    X = rng.normal(size=(n, 2))
    Y = X @ np.array([[1.0], [-2.0]])
    a, b = RecursiveRidge(1.0), RecursiveRidge(1.0)
    a.grow(2, 1)
    b.grow(2, 1)
    a.update(X, Y)
    for s in np.array_split(np.arange(n), 7):
        b.update(X[s], Y[s])
    assert a.rows_since_anchor == b.rows_since_anchor == 50
    np.testing.assert_allclose(a.weights(), b.weights(), rtol=1e-10)


def test_state_round_trip_is_exact():
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(25, 3)), rng.normal(size=(25, 2))
    ridge = RecursiveRidge(0.2, 0.99)
    ridge.grow(3, 2)
    ridge.update(X[:10], Y[:10])
    clone = RecursiveRidge(1.0)
    clone.load_state_dict(ridge.state_dict())
    ridge.update(X[10:], Y[10:])
    clone.update(X[10:], Y[10:])
    assert np.array_equal(ridge.weights(), clone.weights())


def test_rank_one_updates_between_anchors_equal_the_closed_form_with_the_decayed_ridge_term():
    # update_one keeps one triangle of R and A and folds the forgetting factor into a scalar;
    # whatever it holds, it is (A + gamma decay I)^-1 and sum_i l^(t-i) w_i x_i x_i'.
    rng = np.random.default_rng(8)
    lam, gamma = 0.98, 0.4
    X, Y, w = rng.normal(size=(60, 5)), rng.normal(size=(60, 2)), rng.uniform(0.5, 2.0, size=60)
    ridge = RecursiveRidge(gamma, lam)
    ridge.grow(5, 2)
    _sequential(ridge, X, Y, w)
    assert ridge.rows_since_anchor == 60 and ridge.decay < 1.0  # no re-anchor in between
    wts = w * lam ** np.arange(59, -1, -1)
    A, B = (X.T * wts) @ X, (X.T * wts) @ Y
    np.testing.assert_allclose(ridge.A, A, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ridge.A, ridge.A.T)  # the triangle was mirrored for the reader
    R = np.linalg.inv(A + gamma * ridge.decay * np.eye(5))
    np.testing.assert_allclose(ridge.R, R, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ridge.weights(), R @ B, rtol=1e-10, atol=1e-12)


def test_a_checkpoint_between_rank_one_updates_resumes_bit_for_bit():
    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(40, 4)), rng.normal(size=(40, 2))
    live = RecursiveRidge(0.5, 0.97)
    live.grow(4, 2)
    _sequential(live, X[:15], Y[:15])
    resumed = RecursiveRidge(1.0)
    resumed.load_state_dict(live.state_dict())
    a, b = _sequential(live, X[15:], Y[15:]), _sequential(resumed, X[15:], Y[15:])
    assert np.array_equal(a, b)
    assert all(np.array_equal(live.state_dict()[k], resumed.state_dict()[k]) for k in ("A", "B", "R"))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_gamma_must_be_positive_and_finite(bad):
    with pytest.raises(ValueError, match="gamma"):
        RecursiveRidge(gamma=bad)


@pytest.mark.parametrize("bad", [0.2, 1.01, float("nan")])
def test_forgetting_is_bounded(bad):
    with pytest.raises(ValueError, match="forgetting"):
        RecursiveRidge(forgetting=bad)


def test_the_torch_path_matches_the_numpy_path():
    """The CUDA code path, run on the CPU through torch: same algebra, same numbers."""
    rng = np.random.default_rng(7)
    X, Y, Xq = rng.normal(size=(90, 5)), rng.normal(size=(90, 2)), rng.normal(size=(4, 5))
    pos = [0, 10, 50, 90]
    results = []
    for device in ("cpu", "torch:cpu"):
        ridge = RecursiveRidge(0.4, 0.9, device=device)
        ridge.grow(5, 2)
        la = ridge.la
        prior, query = ridge.update(la.asarray(X[:60]), la.asarray(Y[:60]), X_query=la.asarray(Xq), query_pos=pos)
        ridge.update(la.asarray(X[60:]), la.asarray(Y[60:]))
        one = ridge.update_one(la.asarray(X[0]), la.asarray(Y[0]))
        results.append([la.to_numpy(a) for a in (prior, query, one, ridge.weights(), ridge.A)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_a_long_batch_is_learned_in_chunks_of_the_backends_length_and_stays_exact():
    from stream_cl.heads._linalg import CPU_CHUNK

    rng = np.random.default_rng(5)
    n = 2 * CPU_CHUNK + 88
    X, Y = rng.normal(size=(n, 5)), rng.normal(size=(n, 2))
    ridge = RecursiveRidge(0.4)
    ridge.grow(5, 2)
    sizes = []
    chunk = ridge._chunk

    def spy(Xc, *args, **kwargs):
        sizes.append(Xc.shape[0])
        return chunk(Xc, *args, **kwargs)

    ridge._chunk = spy
    prior, _ = ridge.update(X, Y)
    assert sizes == [CPU_CHUNK, CPU_CHUNK, 88]
    closed = np.linalg.solve(X.T @ X + 0.4 * np.eye(5), X.T @ Y)
    np.testing.assert_allclose(ridge.weights(), closed, rtol=1e-10)
    # the prior score of row i is the closed form on the rows before it, across chunk borders
    i = CPU_CHUNK + 3
    before = np.linalg.solve(X[:i].T @ X[:i] + 0.4 * np.eye(5), X[:i].T @ Y[:i])
    np.testing.assert_allclose(prior[i], X[i] @ before, rtol=1e-9)
