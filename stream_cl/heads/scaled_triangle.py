"""A symmetric matrix kept as one current triangle, a scale and deferred rank-1 terms, and the
mirroring of a lower triangle onto the upper one."""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

__all__ = ["MIRROR_BLOCK", "ScaledTriangle", "mirror_lower"]


# Rows of M mirrored at a time: a block row's copy reads a (d, MIRROR_BLOCK) column block, whose
# lines stay in cache while they are written out (a whole-matrix copy from M.T missed the cache
# and the TLB at every element past d ~ 2,000: 1.1-2.9 s at d = 8,192 against 0.3 s blocked, review r116).
MIRROR_BLOCK = 128
_MASKS: dict = {}  # strictly upper (n, n) masks of the diagonal blocks, n <= MIRROR_BLOCK


def mirror_lower(M: np.ndarray) -> None:
    """Copy the lower triangle of ``M`` (d, d) onto its upper one, in place, block row by block row:
    each off-diagonal block is a plain transposing copy (it does not overlap its source, so numpy
    makes no temporary; the whole-matrix ``copyto(M, M.T)`` copied M first, d^2 more bytes), and
    each diagonal block a masked copy. The same bits as copying element by element; fancy indexing
    with ``triu_indices`` cost as much as a rank-256 syrk."""
    d = M.shape[0]
    if d <= MIRROR_BLOCK:  # one block: the narrow heads' case, a microsecond counts there
        np.copyto(M, M.T, where=_upper_mask(d))
        return
    for i in range(0, d, MIRROR_BLOCK):
        e = min(i + MIRROR_BLOCK, d)
        if e < d:
            M[i:e, e:] = M[e:, i:e].T  # (block rows, d - e) from the (d - e, block rows) column block below
        D = M[i:e, i:e]  # (n, n) diagonal block, n <= MIRROR_BLOCK
        np.copyto(D, D.T, where=_upper_mask(e - i))


def _upper_mask(n: int) -> np.ndarray:
    """The strictly upper (n, n) mask, n <= MIRROR_BLOCK (kept: at most 128 of at most 16 KiB)."""
    mask = _MASKS.get(n)
    if mask is None:
        mask = _MASKS[n] = np.triu(np.ones((n, n), dtype=bool), 1)
    return mask


class ScaledTriangle:
    """A symmetric matrix held as ``scale * (M + V' diag(c) V)``, where only ``M``'s lower
    triangle may be current and the rows of ``V`` are rank-1 terms not yet added.

    One event's rank-1 update then writes half of ``M`` (BLAS ``dsyr``, :meth:`add_outer`),
    or, for a matrix that is read only now and then (the ridge head's Gram matrix), is kept
    as a row and added with up to ``DEFER_ROWS`` others as one rank-k ``dsyrk``
    (:meth:`defer_outer`); a forgetting factor multiplies one number instead of d^2 of them.
    :meth:`full` applies all of it and mirrors the triangle for whoever needs the whole
    matrix; until the first update it is ``M`` itself, untouched (so any array type passes
    through). The numbers are those of full-matrix updates up to rounding.

    >>> import numpy as np
    >>> S = ScaledTriangle(np.eye(3))
    >>> x = np.array([1.0, 2.0, 0.0])
    >>> S.add_outer(2.0, x); S.rescale(0.5); S.defer_outer(4.0, x)
    >>> S.first_diagonal()  # 0.5 (1 + 2) + 4, the deferred row not added yet
    5.5
    >>> bool(np.allclose(S.full(), 0.5 * (np.eye(3) + 2.0 * np.outer(x, x)) + 4.0 * np.outer(x, x)))
    True
    >>> np.round(S.symv(x), 12).tolist()  # (0.5 I + 5 x x') x
    [25.5, 51.0, 0.0]
    """

    # Deferred terms are added as one dsyrk of this rank, and the per-event working set loses
    # the matrix: 1-5% more events/s per event than dsyr on Shuttle, Agrawal and LEDDrift
    # (single-threaded BLAS); rank-64 blocks were slower than dsyr.
    DEFER_ROWS = 512

    __slots__ = ("M", "scale", "half", "_V", "_c", "_n", "_u", "_a")

    def __init__(self, M):
        self.M = M
        self.scale = 1.0
        self.half = False
        self._V = self._c = None  # (DEFER_ROWS, d) deferred rows, (DEFER_ROWS,) their coefficients
        self._n = 0
        self._u = self._a = None  # (d,), (1,): the pending term a[0] u u' of :meth:`with_pending`

    def full(self):
        """The whole matrix (d, d), as ``M`` itself: the deferred and pending terms added, the scale applied and
        the triangle mirrored, so that it is held as plain ``M`` from then on."""
        self._flush()
        if self.scale != 1.0:
            self.M *= self.scale
            self.scale = 1.0
        if self.half:
            mirror_lower(self.M)
            self.half = False
        return self.M

    def first_diagonal(self) -> float:
        """The matrix's (0, 0) entry (0 for an empty one), without adding the deferred rows or
        mirroring: what :meth:`full` would give up to the order of the additions."""
        if self.M.shape[0] == 0:
            return 0.0
        value = float(self.M[0, 0])
        if self._n:
            value += float(self._c[: self._n] @ np.square(self._V[: self._n, 0]))
        if self._a is not None and self._a[0] != 0.0:
            value += float(self._a[0]) * float(self._u[0]) ** 2
        return value * self.scale

    def symv(self, x: np.ndarray) -> np.ndarray:
        """The matrix times ``x`` (d,), reading one triangle (``M.T`` is Fortran-ordered: no copy)."""
        self._flush()
        return blas.dsymv(self.scale, self.M.T, x)

    def add_outer(self, alpha: float, x: np.ndarray) -> None:
        """The matrix += ``alpha x x'``, on the lower triangle of ``M``."""
        self._flush()
        blas.dsyr(alpha / self.scale, x, a=self.M.T, overwrite_a=1)
        self.half = True

    def with_pending(self):
        """``(M, scale, u, a)`` for the compiled rank-1 step of :mod:`~stream_cl.heads.ridge_one`,
        which updates the lower triangle of ``M`` in place and leaves its own downdate pending:
        the matrix is then ``scale * (M + a[0] u u')`` (``u`` (d,), ``a`` (1,)). Deferred rows are
        added first; every other reader adds the pending term first (:meth:`_flush`)."""
        self._flush_rows()
        d = self.M.shape[0]
        if self._u is None or self._u.shape[0] != d:
            self._u, self._a = np.zeros(d), np.zeros(1)
        self.half = True
        return self.M, self.scale, self._u, self._a

    def defer_outer(self, alpha: float, x: np.ndarray) -> None:
        """The matrix += ``alpha x x'`` (``alpha >= 0``), added with the next deferred terms."""
        d = x.shape[0]
        if self._V is None or self._V.shape[1] != d:
            self._flush()
            self._V, self._c = np.empty((self.DEFER_ROWS, d)), np.empty(self.DEFER_ROWS)
        self._V[self._n] = x
        self._c[self._n] = alpha / self.scale
        self._n += 1
        if self._n == self.DEFER_ROWS:
            self._flush()

    def current(self):
        """``(M, scale)``: the matrix is ``scale * M``, of which the lower triangle of ``M`` is
        current (the whole of ``M`` for a torch tensor); nothing is left deferred."""
        self._flush()
        return self.M, self.scale

    def rescale(self, factor: float) -> None:
        """The matrix *= ``factor`` (a forgetting factor), one multiplication of ``scale``."""
        self.scale *= factor

    def rank_k(self, la, V, alpha: float, beta: float) -> None:
        """The matrix = ``beta`` times itself + ``alpha V V'`` for ``V`` (d, k), through ``la.syrk_``;
        a numpy matrix keeps only the lower triangle current (mirrored when read in full)."""
        self._flush()
        beta, self.scale = beta * self.scale, 1.0
        if isinstance(self.M, np.ndarray):
            la.syrk_(self.M, V, alpha, beta, mirror=False)
            self.half = True
        else:
            la.syrk_(self.M, V, alpha, beta)

    def _flush(self) -> None:
        if self._a is not None and self._a[0] != 0.0:
            from . import ridge_one  # only a numba process leaves a term pending

            ridge_one.apply_pending(self.M, self._u, self._a)
        self._flush_rows()

    def _flush_rows(self) -> None:
        if not self._n:
            return
        n, self._n = self._n, 0
        V = self._V[:n]  # (n, d), scaled in place: the rows are written anew after the flush
        V *= np.sqrt(self._c[:n])[:, None]
        # C-ordered V (n, d) is V' (d, n) Fortran-ordered: the lower triangle of M += V'V
        blas.dsyrk(1.0, V.T, beta=1.0, c=self.M.T, trans=0, lower=0, overwrite_c=1)
        self.half = True
