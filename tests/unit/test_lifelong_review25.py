"""Sample efficiency counts hits exactly (review r23 finding 2): its 'within tol of the
saturation' test no longer depends on how numpy rounds a moving average (OpenBLAS kernel,
memory alignment), so the SE figures of RESULTS_continual.md are the same on every machine."""

import numpy as np
import pytest

from stream_cl.metrics import sample_efficiency

W = 100


def _exact_se(hits, window=W, slack_hits=1):
    """SE against an expert that is right from the first event (S = 1, E = window), by integer
    counting: S = best window's hits / window, E = end of the first window at most
    ``slack_hits`` below the best."""
    h = [int(x) for x in hits]
    counts = [sum(h[i:i + window]) for i in range(len(h) - window + 1)]
    best = max(counts)
    first = next(i for i, k in enumerate(counts) if k >= best - slack_hits)
    return (best / window) * (window / (first + window))


def _aligned_copies(h):
    """The same values at four 8-byte offsets of a buffer (numpy's kernels round by alignment)."""
    out = []
    for off in range(4):
        buf = np.empty(h.size + off)
        v = buf[off:]
        v[:] = h
        out.append(v)
    return out


def test_sample_efficiency_equals_exact_hit_counting_on_random_sequences():
    rng = np.random.default_rng(0)
    expert = {0: np.ones(300)}
    wrong = []
    for trial in range(2000):
        h = (rng.random(300) < 0.8).astype(np.float64)
        want = _exact_se(h)
        for v in _aligned_copies(h):
            got = sample_efficiency({0: v}, expert, window=W, tol=0.01)
            if got != pytest.approx(want, rel=1e-12):
                wrong.append((trial, got, want))
    assert not wrong, f"{len(wrong)} sequences/alignments differ from exact counting, e.g. {wrong[:3]}"


def test_a_tol_that_is_a_whole_number_of_hits_but_for_float_error_admits_that_window():
    # 0.29 * 100 == 28.999999999999996: the window 29 hits below the best is within tol as meant
    h = np.r_[np.ones(71), np.zeros(29), np.ones(100)]  # first window: 71 hits, best: 100
    assert sample_efficiency({0: h}, {0: np.ones(200)}, window=W, tol=0.29) == pytest.approx(1.0)
    assert sample_efficiency({0: h}, {0: np.ones(200)}, window=W, tol=0.28) < 1.0
