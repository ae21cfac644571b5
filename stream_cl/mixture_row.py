"""One event's mixture of the members' predictions, compiled: the per-event path's last step.

The online learner's probabilities for one event are its members' (each ridge head's scores
over the temperature, softmaxed; the SGD head's scores softmaxed, or its probabilities)
weighted by ``softmax(sharpness * accuracy)`` (:class:`~stream_cl.mixing.AccuracyMixer`).
In Python lists that was ~10 µs of comprehensions per event for a dozen numbers; compiled,
one call of ~1-2 µs. The loop does the list version's arithmetic in its order, without
``fastmath`` (no reassociation, no fused multiply-adds) and with the C library's ``exp``
(``math.exp``'s), so it gives the same bits (tested against the list version, kept in
``tests/unit/test_mixture_row.py``).

>>> import numpy as np
>>> S = np.array([[1.0, 0.0], [0.2, 0.8]])  # one head's scores; then a member's probabilities
>>> p = mix_row(S, 1, 1.0, np.array([0.5, 0.5]), 100.0, probabilities=True)
>>> np.round(p, 4).tolist()  # equal weights: the mean of softmax([1, 0]) and [0.2, 0.8]
[0.4655, 0.5345]
"""

from __future__ import annotations

import math

import numpy as np

from .numba_jit import LazyJit

__all__ = ["mix_row", "warm"]


def _mix_row(S, tempered, probabilities, temperature, accuracy, sharpness):
    """The mixture (c,) of the members' rows ``S`` (m, c): rows ``[0, tempered)`` are scores to
    divide by ``temperature`` and softmax; the rest are scores to softmax, or (``probabilities``)
    probabilities as they are. A member whose largest score is not finite gives zeros, as does
    the weighting when the largest ``sharpness * accuracy`` is not."""
    m, c = S.shape
    P = np.empty((m, c))  # (m, c) the members' probabilities

    def softmax(v, out):  # the list version's _softmax: max from the first, exp, sum in order
        top = v[0]
        for j in range(1, v.shape[0]):
            if v[j] > top:
                top = v[j]
        if not math.isfinite(top):
            for j in range(v.shape[0]):
                out[j] = 0.0
            return
        total = 0.0
        for j in range(v.shape[0]):
            out[j] = math.exp(v[j] - top)
            total += out[j]
        for j in range(v.shape[0]):
            out[j] = out[j] / total

    v = np.empty(c)
    for i in range(m):
        if i >= tempered and probabilities:
            for j in range(c):
                P[i, j] = S[i, j]
            continue
        for j in range(c):
            v[j] = S[i, j] / temperature if i < tempered else S[i, j]
        softmax(v, P[i])
    a = np.empty(m)
    for i in range(m):
        a[i] = sharpness * accuracy[i]
    weights = np.empty(m)
    softmax(a, weights)
    out = np.zeros(c)
    for j in range(c):
        for i in range(m):
            out[j] += weights[i] * P[i, j]
    return out


_kernel = LazyJit(_mix_row)  # no fastmath: the list version's bits


def mix_row(S: np.ndarray, tempered: int, temperature: float, accuracy: np.ndarray, sharpness: float,
            probabilities: bool = False) -> np.ndarray:
    """:func:`_mix_row`, compiled (the Python loop without numba). ``S`` (m, c) float64 and
    C-ordered, ``accuracy`` (m,) float64; returns the mixture (c,)."""
    m, c = S.shape
    if m == 0 or accuracy.shape != (m,):  # the compiled loop does not check its indices
        raise ValueError(f"mix_row needs one accuracy per member: {m} members, accuracy of shape {accuracy.shape}")
    if c == 0:
        return np.zeros(0)
    kernel = _kernel.get() or _mix_row
    return kernel(S, int(tempered), bool(probabilities), float(temperature), accuracy, float(sharpness))


def warm() -> None:
    """Import numba and load (or compile) the loop's machine code for the per-event path's types."""
    mix_row(np.zeros((2, 2)), 1, 1.0, np.zeros(2), 1.0)
