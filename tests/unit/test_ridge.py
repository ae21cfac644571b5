"""The ridge head's algebra: exactness, prequential scores, forgetting, state."""

import numpy as np
import pytest

from stream_cl.heads import ridge as ridge_module
from stream_cl.heads.ridge import ANCHOR_DECAY, REFRESH_ROWS, RecursiveRidge
from stream_cl.heads._linalg import NumpyLinalg


@pytest.fixture(params=["factor", "updating R", "row by row"])
def way(request, monkeypatch):
    """Every batched chunk learned one way: from the factor of A, by updating R, or row by row."""
    monkeypatch.setattr(ridge_module, "factor_is_cheaper", lambda b, d: request.param == "factor")
    monkeypatch.setattr(ridge_module, "rows_are_cheaper", lambda b, d, c: request.param == "row by row")
    return request.param


def _sequential(ridge, X, Y, w=None):
    priors = []
    for i in range(len(X)):
        priors.append(ridge.update_one(X[i], Y[i], 1.0 if w is None else w[i]))
    return np.array(priors)


def _random_splits(rng, n):
    cuts = np.sort(rng.choice(np.arange(1, n), size=rng.integers(1, 12), replace=False))
    return np.split(np.arange(n), cuts)


@pytest.mark.parametrize("forgetting", [1.0, 0.97])
def test_batched_updates_equal_the_rank_one_loop(forgetting, way):
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


def test_queries_are_scored_by_the_model_at_their_position(way):
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


def test_the_torch_path_matches_the_numpy_path(way):
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


def test_batches_learned_either_way_and_single_rows_mix_and_stay_exact():
    # the per-event path needs R, which a batch learned from the factor of A does not keep:
    # it is rebuilt from A; either way every prior is the closed form of the rows before it
    rng = np.random.default_rng(11)
    n, d = 400, 7
    X, Y, w = rng.normal(size=(n, d)), rng.normal(size=(n, 2)), rng.uniform(0.5, 2.0, size=n)
    loop, mixed = RecursiveRidge(0.3, 0.98), RecursiveRidge(0.3, 0.98)
    for r in (loop, mixed):
        r.grow(d, 2)
    expected = _sequential(loop, X, Y, w)
    got, start = [], 0
    for k, stop in enumerate([1, 60, 61, 62, 130, 131, 250, 251, 252, 400]):
        s = slice(start, stop)
        if stop - start == 1:
            got.append(mixed.update_one(X[start], Y[start], w[start])[None, :])
            assert mixed.has_inverse  # materialised for the rank-1 update, and kept up to date by it
        else:
            got.append(mixed.update(X[s], Y[s], w[s])[0])
            assert not mixed.has_inverse  # at this width a batch is cheaper from the factor of A
        start = stop
    np.testing.assert_allclose(np.concatenate(got), expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(mixed.R, loop.R, rtol=1e-9, atol=1e-12)  # rebuilt when read
    np.testing.assert_allclose(mixed.weights(), loop.weights(), rtol=1e-9, atol=1e-12)


def test_state_round_trip_is_exact():
    rng = np.random.default_rng(12)
    X, Y = rng.normal(size=(120, 5)), rng.normal(size=(120, 2))
    live = RecursiveRidge(0.5, 0.97)
    live.grow(5, 2)
    live.update(X[:50], Y[:50])
    state = live.state_dict()
    assert "R" not in state  # derived from A: a checkpoint does not carry it
    resumed = RecursiveRidge(1.0)
    resumed.load_state_dict(state)
    assert not resumed.has_inverse
    outs = [[r.update(X[50:90], Y[50:90])[0], _sequential(r, X[90:100], Y[90:100]), r.update(X[100:], Y[100:])[0]]
            for r in (live, resumed)]
    assert all(np.array_equal(a, b) for a, b in zip(*outs))
    assert all(np.array_equal(live.state_dict()[k], resumed.state_dict()[k]) for k in ("A", "B"))


def test_a_batch_after_a_prediction_starts_from_the_factor_the_prediction_made(monkeypatch):
    rng = np.random.default_rng(13)
    X, Y = rng.normal(size=(60, 6)), rng.normal(size=(60, 3))
    plain, predicted = RecursiveRidge(0.5), RecursiveRidge(0.5)
    for r in (plain, predicted):
        r.grow(6, 3)
        r.update(X[:20], Y[:20])
    factors = []
    la = predicted.la
    spd_factor = la.spd_factor
    monkeypatch.setattr(la, "spd_factor", lambda *a, **k: factors.append(1) or spd_factor(*a, **k))
    predicted.predict(X[20:40])  # factors A once
    after_predict, _ = predicted.update(X[20:40], Y[20:40])  # ... and the batch uses that factor
    assert len(factors) == 1
    assert np.array_equal(after_predict, plain.update(X[20:40], Y[20:40])[0])
    predicted.update(X[40:], Y[40:])  # the statistics changed: a new factor
    assert len(factors) == 2


def test_a_new_factor_is_written_over_the_spent_one_and_changes_nothing(monkeypatch):
    rng = np.random.default_rng(21)
    X, Y = rng.normal(size=(300, 40)), rng.normal(size=(300, 3))
    reusing, fresh = RecursiveRidge(0.5, forgetting=0.99), RecursiveRidge(0.5, forgetting=0.99)
    spd_factor = fresh.la.spd_factor
    monkeypatch.setattr(fresh.la, "spd_factor", lambda *a, reuse=None: spd_factor(*a))
    factors = []
    for r in (reusing, fresh):
        r.grow(40, 3)
        r.update(X[:10], Y[:10])  # R dropped: later chunks come from the factor
    for start in range(10, 300, 29):
        stop = min(start + 29, 300)
        got = [r.update(X[start:stop], Y[start:stop], X_query=X[:3], query_pos=[0, 5, stop - start])
               for r in (reusing, fresh)]
        np.testing.assert_array_equal(got[0][0], got[1][0])
        np.testing.assert_array_equal(got[0][1], got[1][1])
        np.testing.assert_array_equal(reusing.predict(X[:4]), fresh.predict(X[:4]))
        factors.append(reusing._factor[1])  # (held: a freed array's address could come back)
    assert all(F is factors[0] for F in factors)  # every factor written in the first one's memory
    reusing.inverse()
    assert reusing._factor is None  # R materialised: no (d, d) factor kept beside it


def test_a_head_wide_for_its_chunks_keeps_updating_r_and_a_narrow_one_does_not_rebuild_it():
    narrow = RecursiveRidge(1.0)
    narrow.grow(338, 5)
    assert narrow.has_inverse  # a new head's R is gamma^-1 I: kept until a batch drops it
    assert narrow._use_factor(256) and not narrow._use_factor(16)  # with R at hand a short chunk updates it
    narrow.drop_inverse()
    assert narrow._use_factor(16)  # rebuilding R (d^3) for a short chunk would cost more than the factor
    wide = RecursiveRidge(1.0)
    wide.la.max_chunk = 8  # chunks short for its width, as 256-row chunks are for d > ~1,760
    wide.grow(64, 2)
    rng = np.random.default_rng(14)
    X, Y = rng.normal(size=(40, 64)), rng.normal(size=(40, 2))
    wide.update(X, Y)
    assert wide.has_inverse
    closed = np.linalg.solve(X.T @ X + np.eye(64), X.T @ Y)
    np.testing.assert_allclose(wide.weights(), closed, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("d,c", [(5, 2), (64, 3), (300, 1)])
def test_the_weights_solved_in_two_halves_are_those_of_one_solve(d, c):
    la = NumpyLinalg()
    rng = np.random.default_rng(d)
    X, B = rng.normal(size=(2 * d, d)), rng.normal(size=(d, c))
    F = la.spd_factor(X.T @ X, 1.0, 0.5)
    assert np.array_equal(la.unwhiten(F, la.whiten(F, B)), la.factor_solve(F, B))  # queries use either


def test_a_chunk_whose_innovations_lose_definiteness_is_learned_row_by_row_once():
    """Inputs of ~1e10 make a chunk's (b x b) X R X' + noise indefinite in floating point; the rows
    one at a time still learn. Before, the batch raised LinAlgError after its first chunks were
    learned, and a runner retrying it event by event learned those rows twice."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(256, 3)), rng.normal(size=(64, 3)) * 1e10])
    X[:, 0] = 1.0
    Y = (X[:, 1:2] > 0).astype(float)
    batched = RecursiveRidge(1.0)
    batched.grow(3, 1)
    batched.update(X, Y)
    assert batched.n_rows == 320 and batched.A[0, 0] == 320.0  # each row once
    stacked = np.linalg.lstsq(np.vstack([X, np.eye(3)]), np.vstack([Y, np.zeros((3, 1))]), rcond=None)[0]
    np.testing.assert_allclose(batched.weights(), stacked, rtol=1e-3)  # ridge, solved stably


def test_an_update_of_no_rows_changes_nothing():
    r = RecursiveRidge(1.0)
    r.grow(3, 2)
    prior, query = r.update(np.zeros((0, 3)), np.zeros((0, 2)))
    assert prior.shape == (0, 2) and query is None and r.n_rows == 0


@pytest.mark.parametrize("k", [4, 5, 12, 43])
def test_an_anchor_falling_on_the_threshold_comes_at_the_same_row_in_a_batch(k):
    """For l = 0.1^(1/k) the decay multiplied row by row and l**k differ in the last bit (0.09999999999999999
    against 0.1 at k = 5): the batch re-anchored a row later than the per-event path (weights 1.6x apart)."""
    lam = 0.1 ** (1 / k)
    rng = np.random.default_rng(k)
    X, Y = rng.normal(size=(3 * k + 4, 5)), rng.normal(size=(3 * k + 4, 2))
    one, many = RecursiveRidge(1.0, lam), RecursiveRidge(1.0, lam)
    for r in (one, many):
        r.grow(5, 2)
    for x, y in zip(X, Y):
        one.update_one(x, y)
    many.update(X, Y)
    assert (one.rows_since_anchor, one.decay) == (many.rows_since_anchor, many.decay)
    np.testing.assert_allclose(many.weights(), one.weights(), rtol=1e-9, atol=1e-12)


def test_a_model_whose_gram_matrix_does_not_factor_in_floating_point_keeps_learning_and_predicting():
    """Inputs of ~1e7 with fewer rows than columns: A + g I (entries ~1e14, g = 1) is indefinite in
    floating point. The per-event path learned it; batches raised LinAlgError (a ValueError), so the
    runner dead-lettered every event from then on, and predictions after a batch failed too."""
    from stream_cl import AnalyticClassifier
    from stream_cl.events import Event
    from stream_cl.prequential import Prequential

    rng = np.random.default_rng(0)
    X = rng.normal(size=(420, 50)) * 1e7
    xs = [{f"f{j}": float(v) for j, v in enumerate(x)} for x in X]
    ys = [str(int(x[0] + x[1] > 0)) for x in X]
    step = Prequential(AnalyticClassifier())
    for start, stop in ((0, 20), (20, 120), (120, 420)):
        predictions, dead = step.process([Event(xs[i], ys[i], id=str(i)) for i in range(start, stop)])
        assert len(predictions) == stop - start and not dead
    assert step.learner.head_.ridge.n_rows == 420
    assert len(step.learner.predict_proba_batch(xs[:5])) == 5


@pytest.mark.parametrize("d", [0, 1, 5, 127, 128, 129, 300])
@pytest.mark.parametrize("order", ["C", "F"])
def test_mirroring_copies_the_lower_triangle_by_blocks_without_a_copy_of_the_matrix(d, order):
    """Review r116: mirror_lower went through the whole matrix's transpose, which numpy first copied
    (it overlaps M): d^2 more bytes, 1.1-2.9 s at d = 8,192. By blocks: the same bits, across the
    block's edges, in either memory order (potri's inverse is Fortran-ordered)."""
    import tracemalloc

    from stream_cl.heads.scaled_triangle import MIRROR_BLOCK, mirror_lower

    M = np.asarray(np.random.default_rng(d).normal(size=(d, d)), order=order)
    want = np.tril(M) + np.tril(M, -1).T
    tracemalloc.start()
    try:
        mirror_lower(M)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(M, want)
    assert peak <= 2 * 8 * MIRROR_BLOCK**2 + 4096  # a diagonal block's copy and a mask, not the matrix


def test_padding_a_statistic_keeps_it_and_adds_zeros():
    M = np.random.default_rng(0).normal(size=(3, 4))
    P = NumpyLinalg().pad(M, 2, 1)
    assert P.shape == (5, 5) and P.flags.c_contiguous and P.dtype == np.float64
    assert np.array_equal(P, np.pad(M, ((0, 2), (0, 1))))
