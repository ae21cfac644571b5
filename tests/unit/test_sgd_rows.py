"""The SGD head's compiled batch loop against the Python loop it replaced."""

import numpy as np
import pytest

from stream_cl.heads import sgd_rows


def _batch(seed: int, b: int = 200, d: int = 6, C: int = 4):
    """A batch with unlabelled rows and classes first seen inside it, as the head builds it."""
    rng = np.random.default_rng(seed)
    Z = np.hstack([np.ones((b, 1)), rng.normal(size=(b, d - 1))])
    base = Z @ rng.normal(scale=0.3, size=(d, C))  # (b, C) scores under some start weights
    labels = rng.integers(0, C, size=b)
    labels[rng.random(b) < 0.15] = -1  # no label
    labels[:40] = np.minimum(labels[:40], 1)  # classes 2 and 3 are first seen later in the batch
    lrs = rng.uniform(0.005, 0.05, size=b)
    return base, Z @ Z.T, labels, lrs


def test_numba_compiles_the_loop():
    # CI installs numba (a dependency): the batch path must not silently fall back to Python
    assert sgd_rows.compiled()


@pytest.mark.parametrize("k", [0, 2])
def test_the_compiled_loop_gives_the_python_loops_probabilities_and_steps(k):
    base, gram, labels, lrs = _batch(seed=3 + k)
    P, steps = sgd_rows.loop_rows(base, gram, labels, lrs, k)
    P_np, steps_np = sgd_rows._loop_rows_numpy(base, gram, labels, lrs, k)
    # only the sum over earlier rows is rounded differently (BLAS's order against a plain loop)
    np.testing.assert_allclose(P, P_np, rtol=0, atol=1e-13)
    np.testing.assert_allclose(steps, steps_np, rtol=0, atol=1e-15)
    assert (P > 0).sum() == (P_np > 0).sum()  # the same classes shown at every row
    # the compiled code does the interpreted source's arithmetic, bit for bit
    P_py, steps_py = sgd_rows._loop_rows(base, gram, labels, lrs, k)
    assert np.array_equal(P, P_py) and np.array_equal(steps, steps_py)


def test_a_first_sighting_shows_only_the_classes_known_before_it():
    base, gram = np.zeros((3, 3)), np.eye(3)
    P, steps = sgd_rows.loop_rows(base, gram, np.array([0, 2, -1]), np.full(3, 0.1), 0)
    assert P[0].tolist() == [0.0, 0.0, 0.0]  # nothing known before the first label
    assert P[1].tolist() == [1.0, 0.0, 0.0]  # class 2 (and 1) first seen here: only class 0 shown
    assert P[2].tolist() == pytest.approx([1 / 3] * 3)  # orthogonal rows: the start scores
    assert steps[2].tolist() == [0.0, 0.0, 0.0]  # an unlabelled row learns nothing
    assert steps[1].tolist() == pytest.approx([0.1 / 3, 0.1 / 3, 0.1 / 3 - 0.1])


def test_without_a_writable_cache_the_loop_is_compiled_per_process():
    """A read-only image without NUMBA_CACHE_DIR: numba finds no cache folder and refuses to
    cache; the loop must still compile (here numba is told to use a locator that cannot load)."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np; from stream_cl.heads import sgd_rows as s; "
            "P, _ = s.loop_rows(np.zeros((2, 2)), np.eye(2), np.array([0, 1]), np.ones(2), 0); "
            "print(s.compiled(), P.tolist())")
    env = dict(os.environ, NUMBA_CACHE_LOCATOR_CLASSES="stream_cl.no_such_module.Locator")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "[[0.0,", "0.0],", "[1.0,", "0.0]]"]
