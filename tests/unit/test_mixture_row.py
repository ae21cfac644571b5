"""One event's compiled mixture (stream_cl/mixture_row.py) gives the list version's bits."""

import math

import numpy as np
import pytest

from stream_cl import mixture_row
from stream_cl.mixture_row import mix_row


def mix_row_lists(S, tempered: int, temperature: float, accuracy, sharpness: float, probabilities: bool = False) -> list:
    """The same mixture in Python lists, as the per-event path computed it before (ea7f91b's
    ``one_event._mixture_row``): the reference the compiled loop is tested against. Its sums
    run left to right, one addition at a time, as the compiled loop's do: Python 3.12's
    ``sum`` of floats is compensated (Neumaier) and can differ from that in the last bit."""
    def softmax(s: list) -> list:
        top = max(s)
        if not math.isfinite(top):
            return [0.0] * len(s)
        e = [math.exp(v - top) for v in s]
        total = plain_sum(e)
        return [v / total for v in e]

    rows = np.asarray(S).tolist()
    probas = [softmax([a / temperature for a in row]) if i < tempered else (row if probabilities else softmax(row))
              for i, row in enumerate(rows)]
    weights = softmax([sharpness * a for a in np.asarray(accuracy).tolist()])
    return [plain_sum(w * p[j] for w, p in zip(weights, probas)) for j in range(len(rows[0]))]


def plain_sum(values) -> float:
    total = 0
    for v in values:
        total += v
    return total


def _cases(seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        m, c = int(rng.integers(1, 6)), int(rng.integers(1, 8))
        S = rng.normal(scale=float(rng.choice([0.01, 1.0, 30.0])), size=(m, c))
        if rng.uniform() < 0.3:  # classes a member does not know yet
            S[:, int(rng.integers(0, c))] = -math.inf
        if rng.uniform() < 0.1:  # a member that knows no class
            S[0] = -math.inf
        accuracy = rng.uniform(size=m)
        yield S, int(rng.integers(0, m + 1)), float(rng.choice([0.1, 1.0])), accuracy, float(rng.choice([1.0, 100.0]))


@pytest.mark.parametrize("probabilities", [False, True])
def test_the_compiled_mixture_has_the_list_versions_bits(probabilities):
    for S, tempered, t, accuracy, sharpness in _cases():
        if probabilities:
            S = np.where(np.isfinite(S), np.abs(S), 0.0)  # the rows after the tempered ones are probabilities
        got = mix_row(S, tempered, t, accuracy, sharpness, probabilities)
        expected = mix_row_lists(S, tempered, t, accuracy, sharpness, probabilities)
        assert got.tolist() == expected


def test_a_member_without_a_finite_score_adds_nothing():
    S = np.array([[-math.inf, -math.inf], [2.0, 0.0]])
    p = mix_row(S, 2, 1.0, np.array([0.0, 0.0]), 1.0)  # equal weights, the first member all zeros
    assert p.tolist() == pytest.approx([0.5 * math.exp(2) / (math.exp(2) + 1), 0.5 / (math.exp(2) + 1)], rel=1e-15)


def test_without_numba_the_same_loop_runs_in_python(monkeypatch):
    S, tempered, t, accuracy, sharpness = next(_cases(1))
    compiled = mix_row(S, tempered, t, accuracy, sharpness)
    monkeypatch.setattr(mixture_row._kernel, "get", lambda: None)
    assert mix_row(S, tempered, t, accuracy, sharpness).tolist() == compiled.tolist()


def test_members_and_accuracies_must_match():
    with pytest.raises(ValueError, match="one accuracy per member"):
        mix_row(np.zeros((3, 2)), 3, 1.0, np.zeros(2), 1.0)
    assert mix_row(np.zeros((2, 0)), 2, 1.0, np.zeros(2), 1.0).shape == (0,)
