"""One row's ridge update, compiled: the per-event path of :class:`~stream_cl.heads.ridge.RecursiveRidge`.

One event's update of a ridge head is ``R x``, ``s = l / w + x' R x``, ``R -= (R x)(R x)' / s``
on one triangle of ``R``, ``B += w x y'`` and ``W += (R x)(y - x' W)' / s``. Through numpy
and BLAS that is six or seven calls of a microsecond or more each: for the default learner's
narrow heads (a few dozen inputs) the calls cost three times the arithmetic. Compiled, it is
one call.

For a wide head (the default learner's are ~340 inputs wide) the two passes over ``R``'s
triangle are the cost: ``R x`` reads it, the downdate reads and writes it, and at that size
the triangle (~0.5 MB) streams from the cache each time. So the downdate is left *pending*
(``R = scale (M + a u u')``) and added in the next row's pass, the one that computes ``R x``:
one read and one write of the triangle per row instead of two reads and a write. Whoever
else reads ``R`` adds the pending term first (:class:`~stream_cl.heads.scaled_triangle.ScaledTriangle`
calls :func:`apply_pending`), with the same expression, so a model whose ``R`` was read
between two rows (a checkpoint) is the same bit for bit as one whose was not.

The loops read and write the lower triangle of a C-ordered ``M``, as BLAS ``dsymv`` and
``dsyr`` do on its Fortran-ordered view. They sum in another order than BLAS (``reassoc``
lets the compiler vectorise the dot products; multiply-adds may fuse), so ``R`` and ``W``
differ from the BLAS calls' in the last bits; no other assumption about the numbers is made
(infinities and NaN keep their meaning). The per-event path and the batch path's one-row
chunks both come here, so they stay the same model bit for bit.

>>> import numpy as np
>>> M, u, a, B, W = np.eye(2), np.zeros(2), np.zeros(1), np.zeros((2, 1)), np.zeros((2, 1))
>>> s = update_one(M, 1.0, u, a, np.array([1.0, 0.0]), 1.0, 1.0, B, 0, np.array([1.0]), W, np.zeros(1), np.empty(2))
>>> s, W.ravel().tolist()  # ridge (gamma 1) on one row: weight 1 / (1 + 1)
(2.0, [0.5, 0.0])
>>> apply_pending(M, u, a); float(M[0, 0])  # R = (1 + 1)^-1 once the pending term is added
0.5
"""

from __future__ import annotations

import numpy as np

from ..numba_jit import LazyJit

__all__ = ["apply_pending", "compiled", "update_one", "warm"]


def _update_one(M, scale, u, a, x, weight, lam, B, k, y, W, prior, Rx, lost):
    """Learn row ``x`` (d,) with target ``y`` (c,) and weight ``weight`` in place: ``M`` (d, d)
    (lower triangle, with the pending term: ``R = scale (M + a[0] u u')``), ``B`` and ``W`` (d, c);
    ``B`` is first scaled by ``lam`` when it is below 1. ``k >= 0`` with ``weight == 1``: ``y`` is
    the one-hot target of output ``k`` (``B``'s column ``k`` gains ``x``, the same sums). ``prior``
    (c,) is ``x' W`` before the row. The pending term is added to ``M`` in the pass that
    computes ``R x`` (into ``Rx`` (d,)); this row's ``R -= (R x)(R x)' / s`` is left pending in
    ``u`` and ``a``. Returns ``s = lam / weight + x' R x``, or ``inf`` where ``x' R x`` is below
    ``lost d sum_p x_p^2 R_pp``: ``R`` cannot resolve the row (its terms cancel to their rounding:
    inputs of 1e5 and more that are collinear), and the caller rebuilds it from the statistics as
    after a row of high leverage."""
    d = x.shape[0]
    c = W.shape[1]
    # M += a0 u u' and Rx = M x, from the lower triangle, in one pass over it, two rows at a
    # time: each element of M is read, updated and written once, as one row at a time would,
    # but Rx[j] (the upper triangle's share, by symmetry) is read and written once per pair of
    # rows, and u[j], x[j] are loaded once for both. The pass is bound by loads and stores, not
    # by the arithmetic: at ~340 inputs it took ~14 µs instead of ~18 (RESULTS.md 9o). M gets
    # the same bits as row by row; Rx is summed in another order (its last bits differ).
    a0 = a[0]
    for p in range(d):
        Rx[p] = 0.0
    spread = 0.0  # sum_p x_p^2 M_pp: x'Mx without cancellation (M's diagonal, read in the pass)
    i = 0
    while i + 1 < d:
        row0, row1 = M[i], M[i + 1]  # (d,) views: the loop below vectorises over them
        a_0, a_1 = a0 * u[i], a0 * u[i + 1]
        x0, x1 = x[i], x[i + 1]
        acc0 = 0.0
        acc1 = 0.0
        for j in range(i):
            r0 = row0[j] + a_0 * u[j]  # the same expression as _apply_pending's: the same bits
            r1 = row1[j] + a_1 * u[j]
            row0[j] = r0
            row1[j] = r1
            acc0 += r0 * x[j]
            acc1 += r1 * x[j]
            Rx[j] += r0 * x0 + r1 * x1
        r00 = row0[i] + a_0 * u[i]  # the pair's own 2 x 2 block of the lower triangle
        r10 = row1[i] + a_1 * u[i]
        r11 = row1[i + 1] + a_1 * u[i + 1]
        row0[i] = r00
        row1[i] = r10
        row1[i + 1] = r11
        spread += x0 * x0 * r00 + x1 * x1 * r11
        Rx[i] += acc0 + r00 * x0 + r10 * x1
        Rx[i + 1] += acc1 + r10 * x0 + r11 * x1
        i += 2
    if i < d:  # an odd d: the last row alone
        row = M[i]
        ai, xi = a0 * u[i], x[i]
        acc = 0.0
        for j in range(i):
            r = row[j] + ai * u[j]
            row[j] = r
            acc += r * x[j]
            Rx[j] += r * xi
        r = row[i] + ai * u[i]
        row[i] = r
        spread += xi * xi * r
        Rx[i] += acc + r * xi
    s = lam / weight
    for p in range(d):
        Rx[p] *= scale
        s += x[p] * Rx[p]
    quad = 0.0  # x'Rx, apart from s: for a large lam / weight, s - lam / weight keeps none of it
    for p in range(d):
        quad += x[p] * Rx[p]
    for p in range(d):
        u[p] = Rx[p]
    a[0] = -1.0 / s / scale  # R -= Rx Rx' / s, on M = R / scale: added by the next pass
    if lam != 1.0:
        for p in range(d):
            for q in range(c):
                B[p, q] *= lam
    if k >= 0 and weight == 1.0:
        for p in range(d):
            B[p, k] += x[p]
    else:
        for q in range(c):
            t = weight * y[q]
            for p in range(d):
                B[p, q] += x[p] * t
    inv_s = 1.0 / s
    for p in range(d):
        t = inv_s * Rx[p]
        for q in range(c):
            W[p, q] += (y[q] - prior[q]) * t
    if quad < lost * d * scale * spread:  # (not for NaN)
        return np.inf
    return s


def _apply_pending(M, u, a):
    """``M += a[0] u u'`` on the lower triangle, as :func:`_update_one`'s pass adds it; ``a[0] = 0``."""
    d = u.shape[0]
    a0 = a[0]
    for i in range(d):
        row = M[i]
        ai = a0 * u[i]
        for j in range(i + 1):
            r = row[j] + ai * u[j]
            row[j] = r
    a[0] = 0.0


# reassoc: the dot products vectorise; contract: multiply-adds fuse (the pass ran at 1.5x-1.9x
# without it); arcp: reciprocals. No assumption that the numbers are finite.
_FASTMATH = {"reassoc", "contract", "arcp"}
_kernel = LazyJit(_update_one, fastmath=_FASTMATH)  # compiled at the first call
_pending = LazyJit(_apply_pending, fastmath=_FASTMATH)


def compiled() -> bool:
    """Whether the compiled update is available (numba imports)."""
    return _kernel.get() is not None


def update_one(M, scale, u, a, x, weight, lam, B, k, y, W, prior, Rx, lost: float = -np.inf) -> float:
    """:func:`_update_one`, compiled (a ``RuntimeError`` without numba: callers check :func:`compiled`).
    Every array is float64; ``k`` is ``-1`` for a target that is not one-hot. ``lost``: the bound below
    which ``x' R x`` is rounding (``inf`` returned; the ridge head passes ``LOST_DIGITS``), none by default."""
    kernel = _kernel.get()
    if kernel is None:  # pragma: no cover -- numba is a dependency; the ridge head checks first
        raise RuntimeError("the compiled one-row ridge update needs numba")
    return kernel(M, float(scale), u, a, x, float(weight), float(lam), B, int(k), y, W, prior, Rx, lost)


def apply_pending(M, u, a) -> None:
    """:func:`_apply_pending`, compiled: adds the term :func:`update_one` left pending."""
    _pending.get()(M, u, a)


def warm() -> None:
    """Import numba and load (or compile) the update's machine code for the argument types the
    ridge head passes (numba compiles at the first call with each set of types)."""
    if compiled():
        M, u, a = np.eye(2), np.zeros(2), np.zeros(1)
        update_one(M, 1.0, u, a, np.ones(2), 1.0, 1.0, np.zeros((2, 1)), 0, np.ones(1), np.zeros((2, 1)),
                   np.zeros(1), np.empty(2))
        apply_pending(M, u, a)
