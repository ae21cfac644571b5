"""One event's wide design row, compiled: the random ReLU features and the threshold units.

The per-event path builds the row ``[1, relu(z W / sqrt(n) + b), [z_j, units_j] per input]``
that the batch path builds with torch (:meth:`RandomFeatures.forward`, :meth:`KeyUnits.forward`).
In numpy that is a dozen calls of a microsecond or two each for a few thousand flops, ~11 µs
of the default learner's ~160 µs per event; one compiled call does it in ~1 µs. It does each
numpy call's arithmetic in the same order (the product summed over the inputs in order, then
divided, shifted and clipped at 0 as ``np.maximum`` does, the units masked by multiplying),
so the row is the same bit for bit (tested against the numpy row and through the per-event
path's bit-identity with the batch path).

>>> import numpy as np
>>> from stream_cl.backbones import KeyUnits, RandomFeatures
>>> layer, units = RandomFeatures(width=4, seed=0), KeyUnits(per_key=2, seed=0)
>>> z, present = np.array([0.5, -1.0]), np.array([True, True])
>>> numpy_row = np.concatenate(([1.0], layer.forward_row(z, ["a", "b"], present), units.forward_row(z, ["a", "b"], present)))
>>> bool(np.array_equal(relu_units_row(layer, units, z, present), numpy_row))
True
"""

from __future__ import annotations

import math

import numpy as np

from ..numba_jit import LazyJit
from .key_units import KeyUnits
from .random_features import RandomFeatures

__all__ = ["relu_units_row"]


def _row(z, present, W, bias, T, S, raw, skip):
    """``[1, relu(z W / sqrt(n) + b), [z_j, units_j]...]`` for ``z`` (d,), ``present`` (d,) bool,
    ``W`` (>= d, width), ``bias`` (width,), ``T`` and ``S`` (>= d, m); an input ``raw`` marks
    (an indicator) keeps ``[z_j]`` only, one ``skip`` marks nothing (:meth:`KeyUnits.forward`)."""
    d = z.shape[0]
    width = W.shape[1]
    m = T.shape[1]
    columns = 1 + width
    for i in range(d):
        if not skip[i]:
            columns += 1 if raw[i] else 1 + m
    out = np.empty(columns)
    out[0] = 1.0
    n = 0
    for i in range(d):
        if present[i]:
            n += 1
    root = math.sqrt(max(float(n), 1.0))
    for j in range(width):
        out[1 + j] = 0.0
    for i in range(d):  # summed over the inputs in order, as einsum and the torch kernel sum
        zi = z[i]
        for j in range(width):
            out[1 + j] += zi * W[i, j]
    for j in range(width):
        v = out[1 + j] / root + bias[j]
        out[1 + j] = v if (v >= 0.0 or v != v) else 0.0  # np.maximum(v, 0.0): keeps -0.0 and NaN
    pos = 1 + width
    for i in range(d):
        if skip[i]:
            continue
        out[pos] = z[i]
        pos += 1
        if raw[i]:
            continue
        mask = 1.0 if present[i] else 0.0
        for k in range(m):
            u = (z[i] - T[i, k]) * S[i, k]
            u = u if (u >= 0.0 or u != u) else 0.0
            out[pos] = u * mask
            pos += 1
    return out


def relu_units_row(backbone, key_units, z: np.ndarray, present: np.ndarray, raw=None, late=None):
    """The design row of ``z`` (d,) through a ReLU :class:`RandomFeatures` and :class:`KeyUnits`
    (``raw``: indicator inputs, no units; ``late``: inputs without a block), compiled; ``None``
    where the numpy path must build it: another backbone, keys not seen by the layers yet (they
    grow on that path), or no numba."""
    d = z.shape[0]
    if (type(backbone) is not RandomFeatures or backbone.kind != "relu" or type(key_units) is not KeyUnits
            or d > backbone.weight_.shape[0] or d > key_units.thresholds.shape[0]):
        return None
    loop = _loop.get()
    if loop is None:  # pragma: no cover -- numba is a dependency
        return None
    none = np.zeros(d, dtype=bool)
    raw = none if raw is None else np.ascontiguousarray(raw[:d])
    late = none if late is None else np.ascontiguousarray(late[:d])
    return loop(np.ascontiguousarray(z), np.ascontiguousarray(present), backbone.weight_, backbone.bias_,
                key_units.thresholds, key_units.signs, raw, late)


_loop = LazyJit(_row)  # compiled at the first call


def warm() -> None:
    """Load (or compile) the row's machine code for the argument types the per-event path passes."""
    loop = _loop.get()
    if loop is not None:
        flags = np.zeros(1, dtype=bool)
        loop(np.zeros(1), np.ones(1, dtype=bool), np.zeros((1, 2)), np.zeros(2), np.zeros((1, 1)), np.ones((1, 1)), flags, flags)
