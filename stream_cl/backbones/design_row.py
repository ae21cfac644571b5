"""The wide design rows, compiled: the random ReLU features and the threshold units.

The row ``[1, relu(z W / sqrt(n) + b), [z_j, units_j] per input]`` of the default backbone
(:meth:`RandomFeatures.forward`, :meth:`KeyUnits.forward`), one compiled call for a batch of
rows (:func:`relu_units_rows`, the CPU batch path) or for one (:func:`relu_units_row`, the
per-event path). In numpy one row is a dozen calls of a microsecond or two each for a few
thousand flops, ~11 µs of the default learner's ~160 µs per event; compiled, ~1 µs. A batch of
256 through torch took ~0.8 ms of a ~12 ms batch; compiled, ~0.2 ms. It does each numpy call's
arithmetic in the same order (the product summed over the inputs in order, then divided,
shifted and clipped at 0 as ``np.maximum`` does, the units masked by multiplying), so a row is
the same bit for bit whichever path builds it (tested against the numpy row); torch's batched
product rounds differently in the last bit, and builds the rows only where the compiled loop
cannot (another backbone, keys the layers have not seen yet, no numba).

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

__all__ = ["relu_units_row", "relu_units_rows"]


def _rows(Z, P, W, bias, T, S, raw, skip):
    """``[1, relu(z W / sqrt(n) + b), [z_j, units_j]...]`` for each row ``z`` of ``Z`` (b, d), its
    inputs present ``P`` (b, d) bool, ``W`` (>= d, width), ``bias`` (width,), ``T`` and ``S``
    (>= d, m); an input ``raw`` marks (an indicator) keeps ``[z_j]`` only, one ``skip`` marks
    nothing (:meth:`KeyUnits.forward`). Returns (b, columns); every row by the same arithmetic."""
    b, d = Z.shape
    width = W.shape[1]
    m = T.shape[1]
    columns = 1 + width
    for i in range(d):
        if not skip[i]:
            columns += 1 if raw[i] else 1 + m
    out = np.empty((b, columns))
    for r in range(b):
        z, present, row = Z[r], P[r], out[r]
        row[0] = 1.0
        n = 0
        for i in range(d):
            if present[i]:
                n += 1
        root = math.sqrt(max(float(n), 1.0))
        for j in range(width):
            row[1 + j] = 0.0
        for i in range(d):  # summed over the inputs in order, as einsum and the torch kernel sum
            zi = z[i]
            for j in range(width):
                row[1 + j] += zi * W[i, j]
        for j in range(width):
            v = row[1 + j] / root + bias[j]
            row[1 + j] = v if (v >= 0.0 or v != v) else 0.0  # np.maximum(v, 0.0): keeps -0.0 and NaN
        pos = 1 + width
        for i in range(d):
            if skip[i]:
                continue
            row[pos] = z[i]
            pos += 1
            if raw[i]:
                continue
            mask = 1.0 if present[i] else 0.0
            for k in range(m):
                u = (z[i] - T[i, k]) * S[i, k]
                u = u if (u >= 0.0 or u != u) else 0.0
                row[pos] = u * mask
                pos += 1
    return out


def relu_units_row(backbone, key_units, z: np.ndarray, present: np.ndarray, raw=None, late=None):
    """The design row of ``z`` (d,) through a ReLU :class:`RandomFeatures` and :class:`KeyUnits`
    (``raw``: indicator inputs, no units; ``late``: inputs without a block), compiled; ``None``
    where the numpy path must build it: another backbone, keys not seen by the layers yet (they
    grow on that path), or no numba."""
    rows = relu_units_rows(backbone, key_units, z[None, :], present[None, :], raw, late)  # (1, columns)
    return None if rows is None else rows[0]


def relu_units_rows(backbone, key_units, Z: np.ndarray, present: np.ndarray, raw=None, late=None):
    """:func:`relu_units_row` of every row of ``Z`` (b, d), ``present`` (b, d) bool: (b, columns),
    each row the same bits as its own :func:`relu_units_row`; ``None`` where it is."""
    d = Z.shape[1]
    if (type(backbone) is not RandomFeatures or backbone.kind != "relu" or type(key_units) is not KeyUnits
            or d > backbone.weight_.shape[0] or d > key_units.thresholds.shape[0]):
        return None
    loop = _loop.get()
    if loop is None:  # pragma: no cover -- numba is a dependency
        return None
    none = np.zeros(d, dtype=bool)
    raw = none if raw is None else np.ascontiguousarray(raw[:d])
    late = none if late is None else np.ascontiguousarray(late[:d])
    return loop(np.ascontiguousarray(Z, dtype=np.float64), np.ascontiguousarray(present, dtype=bool),
                backbone.weight_, backbone.bias_, key_units.thresholds, key_units.signs, raw, late)


_loop = LazyJit(_rows)  # compiled at the first call


def warm() -> None:
    """Load (or compile) the row's machine code for the argument types the per-event path passes."""
    loop = _loop.get()
    if loop is not None:
        flags = np.zeros(1, dtype=bool)
        loop(np.zeros((1, 1)), np.ones((1, 1), dtype=bool), np.zeros((1, 2)), np.zeros(2), np.zeros((1, 1)), np.ones((1, 1)),
             flags, flags)
