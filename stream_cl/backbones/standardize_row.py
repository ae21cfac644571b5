"""The standardiser's loops, compiled: the per-event path's ``transform_row`` and ``learn_row``,
and the batch path's ``prequential_rows``.

:class:`~stream_cl.backbones.standardize.OnlineStandardizer` standardises and absorbs one
event's row of up to ``ROW_LOOP_MAX`` inputs with a loop over its values: the array code's
IEEE operations, one number at a time. In Python floats that loop and the list conversions
around it took ~5 µs per call, twice per event; compiled, ~1 µs. A batch runs the same two
steps row after row in one loop (:func:`prequential_rows`), so its statistics are those of a
loop of ``learn_row`` calls, bit for bit. (Cumulative sums of deviations from the batch-start
mean had cancelled catastrophically for a feature far from 0 relative to its spread, such as
epoch seconds: a variance of 0 where the per-event path had 409.5.) The loops here are the
Python ones, on arrays, compiled without ``fastmath`` (no reassociation, no fused
multiply-adds), so they give the same bits (tested against the batch methods); without numba
the same functions run as Python.

>>> import numpy as np
>>> count, mean, m2 = np.zeros(1), np.zeros(1), np.zeros(1)
>>> for v in (1.0, 3.0):
...     learn_row(np.array([v]), np.array([True]), count, mean, m2)
>>> count.tolist(), mean.tolist(), m2.tolist()
([2.0], [2.0], [2.0])
>>> z, known = transform_row(np.array([4.0]), np.array([True]), count, mean, m2, None, 10.0, 0.5)
>>> z.tolist(), known.tolist()  # (4 - 2) / sqrt(2 / 2)
([2.0], [True])
"""

from __future__ import annotations

import math

import numpy as np

from ..numba_jit import LazyJit

__all__ = ["learn_row", "prequential_rows", "transform_row", "warm"]

_NO_RAW = np.zeros(0, dtype=bool)

# A feature whose standard deviation is at most this fraction of its mean's magnitude is
# constant (only centred): ``var > (CONSTANT_REL * mean) ** 2`` scales it. Relative, so a feature
# measured on a tiny scale (sd 1e-13) is scaled like any other, while an exactly constant one
# (variance 0) stays constant at any scale. The array code (standardize.py) uses this value.
CONSTANT_REL = 1e-12


def _transform_row(x, present, count, mean, m2, raw, clip, indicator_scale):
    """``(z, known)`` (d,) each for row ``x`` (d,) with the statistics ``count``, ``mean``, ``m2``
    (>= d,): a present value in a column learned from at least twice is standardised and
    clipped, an indicator (``raw[j]``, where ``raw`` reaches) reads ``indicator_scale`` times its
    value (clipped too) once learned from once, anything else 0; ``known``: present in a learned column."""
    d = x.shape[0]
    z = np.zeros(d)
    known = np.zeros(d, dtype=np.bool_)
    for j in range(d):
        n = count[j]
        if not present[j]:
            continue
        known[j] = n >= 1
        if j < raw.shape[0] and raw[j]:
            if n >= 1:  # clipped as the array code clips it
                v = indicator_scale * x[j]
                z[j] = -clip if v < -clip else (clip if v > clip else v)
        elif n >= 2:
            var = m2[j] / n  # n >= 2: the array code's max(n, 1) is n
            tiny = CONSTANT_REL * mean[j]  # constant: sd at most CONSTANT_REL of |mean| (the array code's test)
            v = (x[j] - mean[j]) / (math.sqrt(var) if var > tiny * tiny else 1.0)
            z[j] = -clip if v < -clip else (clip if v > clip else v)
    return z, known


def _learn_row(x, present, count, mean, m2):
    """Absorb row ``x`` (d,) into the first ``d`` statistics in place (Welford, present values only)."""
    for j in range(x.shape[0]):
        w = 1.0 if present[j] else 0.0
        dev = x[j] - mean[j] if present[j] else 0.0
        s1 = w * dev
        s2 = s1 * dev
        n_after = count[j] + w
        shift = s1 / n_after if n_after > 0 else 0.0
        m2_after = m2[j] + s2 - (s1 * shift if n_after > 0 else 0.0)
        count[j] = n_after
        mean[j] = mean[j] + shift
        m2[j] = m2_after if m2_after > 0.0 else 0.0


def _prequential_rows(X, present, learn, count, mean, m2, raw, clip, indicator_scale):
    """``(Z, K)`` (b, d) each for rows ``X`` (b, d), each row read with the statistics before it
    (:func:`_transform_row`'s arithmetic), then absorbed into ``count``, ``mean``, ``m2`` (d,) in
    place where ``learn[i]`` (:func:`_learn_row`'s arithmetic for a present value; an absent one
    leaves its statistics as they are). Rows outer, columns inner: the columns' updates are
    independent, so their divisions and square roots overlap in the pipeline."""
    b, d = X.shape
    Z = np.zeros((b, d))
    K = np.zeros((b, d), dtype=np.bool_)
    n_raw = raw.shape[0]
    for i in range(b):
        absorb = learn[i]
        for j in range(d):
            if not present[i, j]:
                continue
            n = count[j]
            x = X[i, j]
            K[i, j] = n >= 1
            if j < n_raw and raw[j]:
                if n >= 1:
                    v = indicator_scale * x
                    Z[i, j] = -clip if v < -clip else (clip if v > clip else v)
            elif n >= 2:
                var = m2[j] / n
                tiny = CONSTANT_REL * mean[j]
                v = (x - mean[j]) / (math.sqrt(var) if var > tiny * tiny else 1.0)
                Z[i, j] = -clip if v < -clip else (clip if v > clip else v)
            if absorb:  # _learn_row with w = 1 (1.0 * dev is dev, bit for bit)
                dev = x - mean[j]
                n_after = n + 1.0
                shift = dev / n_after
                m2_after = m2[j] + dev * dev - dev * shift
                count[j] = n_after
                mean[j] = mean[j] + shift
                m2[j] = m2_after if m2_after > 0.0 else 0.0
    return Z, K


_transform = LazyJit(_transform_row)  # no fastmath: the array code's bits
_learn = LazyJit(_learn_row)
_prequential = LazyJit(_prequential_rows)


def transform_row(x, present, count, mean, m2, raw, clip: float, indicator_scale: float):
    """:func:`_transform_row`, compiled (``raw`` ``None``: no indicator columns)."""
    return (_transform.get() or _transform_row)(x, present, count, mean, m2, _NO_RAW if raw is None else raw,
                                                float(clip), float(indicator_scale))


def learn_row(x, present, count, mean, m2) -> None:
    """:func:`_learn_row`, compiled."""
    (_learn.get() or _learn_row)(x, present, count, mean, m2)


def prequential_rows(X, present, learn, count, mean, m2, raw, clip: float, indicator_scale: float):
    """:func:`_prequential_rows`, compiled: ``X`` (b, d) float64, ``present`` (b, d) and ``learn``
    (b,) bool, all C-contiguous; ``raw`` ``None``: no indicator columns."""
    raw = _NO_RAW if raw is None else raw
    return (_prequential.get() or _prequential_rows)(X, present, learn, count, mean, m2, raw,
                                                     float(clip), float(indicator_scale))


def warm() -> None:
    """Import numba and load (or compile) the loops for the argument types the standardiser passes."""
    x, present, stats = np.zeros(1), np.ones(1, dtype=bool), np.zeros((3, 1))
    transform_row(x, present, *stats, np.zeros(1, dtype=bool), 10.0, 0.5)
    learn_row(x, present, *stats)
    # (1,) -> (1, 1): X and present (b, d) of one row
    prequential_rows(x[None, :], present[None, :], present, *stats, np.zeros(1, dtype=bool), 10.0, 0.5)
