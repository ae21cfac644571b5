"""The SGD head's compiled batch loop against the Python loop it replaced."""

import numpy as np
import pytest

from stream_cl.heads import sgd_rows


def _batch(seed: int, b: int = 200, d: int = 6, C: int = 4):
    """A batch with unlabelled rows and classes first seen inside it, as the head builds it."""
    rng = np.random.default_rng(seed)
    Z = np.hstack([np.ones((b, 1)), rng.normal(size=(b, d - 1))])
    W0 = rng.normal(scale=0.3, size=(d, C))  # some start weights
    labels = rng.integers(0, C, size=b)
    labels[rng.random(b) < 0.15] = -1  # no label
    labels[:40] = np.minimum(labels[:40], 1)  # classes 2 and 3 are first seen later in the batch
    lrs = rng.uniform(0.005, 0.05, size=b)
    return Z, W0, labels, lrs


def _textbook(Z, W, labels, lrs, k):
    """Softmax SGD row by row in plain numpy: show softmax(z W) over the known classes, then
    W -= lr z (p - e_y)' (a first sighting makes its class known first)."""
    P = np.zeros((Z.shape[0], W.shape[1]))
    for i, y in enumerate(labels):
        s = Z[i] @ W
        if k:
            P[i, :k] = np.exp(s[:k] - s[:k].max()) / np.exp(s[:k] - s[:k].max()).sum()
        if y < 0:
            continue
        k = max(k, y + 1)
        g = np.exp(s[:k] - s[:k].max()) / np.exp(s[:k] - s[:k].max()).sum()
        g[y] -= 1.0
        W[:, :k] -= lrs[i] * np.outer(Z[i], g)
    return P


def test_numba_compiles_the_loop():
    # CI installs numba (a dependency): the batch path must not silently fall back to Python
    assert sgd_rows.compiled()


@pytest.mark.parametrize("k", [0, 2])
def test_the_compiled_loop_gives_the_python_loops_probabilities_and_weights(k):
    Z, W0, labels, lrs = _batch(seed=3 + k)
    W0[:, k:] = 0.0  # classes not known yet have no weights
    W, W_np, W_py, W_ref = W0.copy(), W0.copy(), W0.copy(), W0.copy()
    P = sgd_rows.learn_rows(Z, W, labels, lrs, k)
    P_np = sgd_rows._learn_rows_numpy(Z, W_np, labels, lrs, k)
    # only a row's scores z W are rounded differently (numpy's product against a plain loop)
    np.testing.assert_allclose(P, P_np, rtol=0, atol=1e-13)
    np.testing.assert_allclose(W, W_np, rtol=0, atol=1e-13)
    assert (P > 0).sum() == (P_np > 0).sum()  # the same classes shown at every row
    # the compiled code does the interpreted source's arithmetic, bit for bit
    P_py = sgd_rows._learn_rows(Z, W_py, labels, lrs, k)
    assert np.array_equal(P, P_py) and np.array_equal(W, W_py)
    # and both are softmax SGD as a textbook writes it
    P_ref = _textbook(Z, W_ref, labels, lrs, k)
    np.testing.assert_allclose(P, P_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(W, W_ref, rtol=0, atol=1e-12)
    assert not np.array_equal(W, W0)  # it learned


def test_a_first_sighting_shows_only_the_classes_known_before_it():
    Z, W = np.eye(3), np.zeros((3, 3))  # orthogonal rows: no row's step moves another's scores
    P = sgd_rows.learn_rows(Z, W, np.array([0, 2, -1]), np.full(3, 0.1), 0)
    assert P[0].tolist() == [0.0, 0.0, 0.0]  # nothing known before the first label
    assert P[1].tolist() == [1.0, 0.0, 0.0]  # class 2 (and 1) first seen here: only class 0 shown
    assert P[2].tolist() == pytest.approx([1 / 3] * 3)  # orthogonal rows: the start scores
    assert W[2].tolist() == [0.0, 0.0, 0.0]  # an unlabelled row learns nothing
    assert W[1].tolist() == pytest.approx([-0.1 / 3, -0.1 / 3, 0.1 - 0.1 / 3])  # W -= lr z (p - e_2)'
    assert W[0].tolist() == [0.0, 0.0, 0.0]  # the first label: one class known, p = e_0, no step


def test_without_a_writable_cache_the_loop_is_compiled_per_process():
    """A read-only image without NUMBA_CACHE_DIR: numba finds no cache folder and refuses to
    cache; the loop must still compile (here numba is told to use a locator that cannot load)."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np; from stream_cl.heads import sgd_rows as s; "
            "P = s.learn_rows(np.eye(2), np.zeros((2, 2)), np.array([0, 1]), np.ones(2), 0); "
            "print(s.compiled(), P.tolist())")
    env = dict(os.environ, NUMBA_CACHE_LOCATOR_CLASSES="stream_cl.no_such_module.Locator")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "[[0.0,", "0.0],", "[1.0,", "0.0]]"]


def test_one_row_at_a_time_and_one_batch_give_the_same_numbers_bit_for_bit():
    """The per-event path (learn_row) runs the batch path's compiled loop on one row: an event
    learned alone or inside a batch leaves the same weights, to the last bit."""
    from stream_cl.heads.sgd import SGDSoftmaxHead

    Z, _, labels, lrs = _batch(seed=11, b=90)
    ys = ["abcd"[y] for y in labels]  # every row labelled (learn_row learns labelled rows)
    weights = lrs * 20  # (b,) row weights in 0.1-1
    rows, batch = SGDSoftmaxHead(0.05), SGDSoftmaxHead(0.05)
    shown = [rows.learn_row(Z[i:i + 1], y, float(w)) for i, (y, w) in enumerate(zip(ys, weights))]
    P = batch.prequential_proba(Z, ys, weights)
    assert rows.classes == batch.classes and np.array_equal(rows.W, batch.W)
    assert np.array_equal(np.array([s + [0.0] * (4 - len(s)) for s in shown]), P)


def test_threads_meeting_the_first_call_choose_the_loop_once(monkeypatch):
    # found by review: two threads at the first call both compiled, and the second met numba's
    # "A jit decorator was called on an already jitted function" (the module's softmax was compiled)
    import threading

    from stream_cl.heads import sgd_rows

    calls, entered, arrived = [], threading.Event(), threading.Semaphore(0)

    def choose():
        calls.append(1)
        entered.set()
        for _ in range(7):  # every other thread is at the call while the first is still choosing (review r102:
            arrived.acquire(timeout=5)  # release was set at once, before the others had got there)
        return sgd_rows._learn_rows_numpy

    def load():
        if entered.is_set():
            arrived.release()
        got.append(sgd_rows._loaded())

    monkeypatch.setattr(sgd_rows, "_compiled_or_numpy", choose)
    monkeypatch.setattr(sgd_rows, "_impl", None)
    got = []
    threads = [threading.Thread(target=load) for _ in range(8)]
    threads[0].start()
    entered.wait(5)
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(5)
    assert len(calls) == 1 and got == [sgd_rows._learn_rows_numpy] * 8
