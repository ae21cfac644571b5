"""The handful of dense linear-algebra calls the ridge head needs, for numpy and torch.

numpy (with LAPACK through scipy) is the CPU path: per-event updates are small and
numpy's per-call overhead is a few times lower than torch's; on Intel CPUs its wide triangular
solves and Cholesky factors are MKL's, through torch views of the same arrays
(:mod:`~stream_cl.heads.mkl_solves`). torch is the CUDA path. Both hold float64 state.
"""

from __future__ import annotations

import sys

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas

from ..numba_jit import LazyJit
from . import mkl_solves


# Rows learned in one chunk of a ridge update. A chunk's (rows x rows) terms (X R X', its
# Cholesky, the triangular solves) grow with its length while the (d x d) terms do not, so
# on a CPU chunks beyond ~256 rows only add arithmetic: a batch of 1,024 events of the
# default learner ran 2x faster in chunks of 256 than in one (RESULTS.md 9d). A GPU is
# given longer chunks (its efficiency still rises with them; not measured here).
CPU_CHUNK = 256
GPU_CHUNK = 1024


class NumpyLinalg:
    name = "cpu"
    max_chunk = CPU_CHUNK

    def asarray(self, a):
        """``a`` as a float64 array (no copy where it is one already)."""
        return np.asarray(a, dtype=np.float64)

    def to_numpy(self, a) -> np.ndarray:
        """``a`` as a numpy array: the same array, not a copy (a caller that keeps it copies it)."""
        return np.asarray(a)

    def index(self, idx):
        """Integer positions ``idx`` as this path indexes its arrays with: as they are."""
        return idx

    def own(self, M):
        """C order throughout: products such as ``R -= K'K`` then stream through memory."""
        return np.ascontiguousarray(M)

    def syrk_(self, M, V, alpha: float, beta: float, mirror: bool = True) -> None:
        """``M = beta M + alpha V V'`` in place for symmetric ``M`` (d, d) and ``V`` (d, k).

        BLAS ``dsyrk`` computes one triangle (half the flops of a product); the other is
        mirrored, unless ``mirror=False`` (the caller reads the lower triangle only until it
        mirrors). ``M.T`` is the Fortran-ordered view BLAS updates without a copy; a C-ordered
        ``V`` is read as ``(V')'`` (``trans=1``, the same sums as ``trans=0`` on a copy).
        """
        if V.flags.f_contiguous:
            blas.dsyrk(alpha, V, beta=beta, c=M.T, trans=0, lower=0, overwrite_c=1)
        else:
            blas.dsyrk(alpha, np.ascontiguousarray(V).T, beta=beta, c=M.T, trans=1, lower=0, overwrite_c=1)
        if mirror:
            mirror_lower(M)  # the lower triangle (of C-ordered M) was computed

    def ger_(self, M, alpha: float, x, y) -> None:
        """``M += alpha x y'`` in place for ``M`` (d, c): BLAS ``dger`` through the Fortran-ordered
        view ``M.T``, without the (d, c) temporary of an outer product."""
        if not M.size:
            return
        if M.dtype == np.float64 and M.flags.c_contiguous:
            blas.dger(alpha, y, x, a=M.T, overwrite_a=1)
        else:
            M += (x * alpha)[:, None] @ y[None, :]  # (d, 1) @ (1, c) -> (d, c)

    def zeros(self, *shape):
        """A float64 array of zeros of ``shape``."""
        return np.zeros(shape)

    def eye(self, n):
        """The (n, n) float64 identity."""
        return np.eye(n)

    def powers(self, base: float, n: int):
        """``[base**1, ..., base**n]``."""
        return base ** np.arange(1, n + 1, dtype=np.float64)

    def cholesky_lower(self, S):
        """Lower Cholesky factor of ``S``'s lower triangle; what is above the diagonal is left
        unspecified (every caller solves with the lower triangle only). LAPACK ``dpotrf`` on a
        Fortran copy: the same factor bit for bit as ``scipy.linalg.cholesky``, whose wrapper and
        zeroing of the upper triangle cost twice the factorisation at b = 256 (0.44 -> 0.22 ms)."""
        return _potrf(np.asfortranarray(S), lower=1)

    def solve_lower(self, C, M):
        """``C^-1 M`` (b, k) for lower-triangular ``C`` (a Cholesky factor: no zero on its diagonal) and
        ``M`` (b, k). BLAS ``dtrsm``, which ``scipy.linalg.solve_triangular`` reaches through LAPACK
        ``dtrtrs`` after ~100 µs of argument checks (a chunk makes two or three of these calls); MKL's
        where :mod:`~stream_cl.heads.mkl_solves` takes the size."""
        if mkl_solves.solves(M):
            return mkl_solves.solve(C, M, upper=False)
        return blas.dtrsm(1.0, C, M, side=0, lower=1)

    def spd_inverse(self, M):
        """Inverse of a symmetric positive definite matrix: LAPACK potrf + potri (about d^3 flops).
        A ``LinAlgError`` where it does not factor, :class:`LostDigits` where its factor's pivots are
        rounding noise (:func:`lost_digits`): the caller solves with :meth:`equilibrate` instead (an
        eigendecomposition of ``M`` unscaled, as before, is wrong in every direction there)."""
        F = np.array(M, order="F")  # a copy: M is the caller's
        diagonal = F.diagonal().copy()  # (d,) before potrf writes its pivots over it
        L = _potrf(F, lower=1)
        if lost_digits(diagonal, L.diagonal()):
            raise LostDigits.of(diagonal, L.diagonal())
        # exactly symmetric once mirrored: the transpose of the Fortran-ordered inverse is it, C-ordered (no copy)
        return _potri(L, lower=1, overwrite=True).T

    def equilibrate(self, M, shift: float):
        """:func:`equilibrate` of ``M + shift I`` (``M`` whole): the opaque factor of :meth:`equilibrated_solve`
        and :meth:`equilibrated_inverse`, for a matrix whose Cholesky factor lost its digits."""
        return equilibrate(M, shift)

    def equilibrated_solve(self, E, B):
        """``M^+ B`` (d, c) for the factor ``E`` of :meth:`equilibrate`, C-ordered."""
        return np.ascontiguousarray(equilibrated_solve(E, B))

    def equilibrated_inverse(self, E):
        """``M^+`` (d, d), whole and C-ordered, for the factor ``E`` of :meth:`equilibrate`."""
        return np.ascontiguousarray(equilibrated_inverse(E))

    def spd_factor(self, M, scale: float, shift: float, reuse=None):
        """The Cholesky factor of ``scale M + shift I``, reading ``M``'s lower triangle only (all a
        :class:`ScaledTriangle` keeps current). The factor is an opaque value for :meth:`whiten` and
        :meth:`factor_solve`: LAPACK ``dpotrf`` of the Fortran view ``M.T``, whose upper triangle is
        ``M``'s lower one (a straight copy, no transpose, no mirroring), or MKL's where
        :mod:`~stream_cl.heads.mkl_solves` takes the width (then zeros below). ``reuse``: a factor no
        longer needed, overwritten when it has the size: a fresh (d, d) array is memory the kernel
        maps and zeroes page by page, ~3% of a wide head's batch (RESULTS.md 9w). :class:`LostDigits`
        where a pivot is rounding noise (:func:`lost_digits`): nothing solved with it would hold."""
        d = M.shape[0]
        F = reuse if _is_square_f(reuse, d) else np.empty((d, d), order="F")
        np.multiply(M.T, scale, out=F)  # (d, d) Fortran-ordered; its upper triangle is the current one
        self.add_to_diag(F, shift)
        U = mkl_solves.factor_upper_(F) if mkl_solves.factors(d) else _potrf(F, lower=0)  # scale M + shift I = U'U
        if _factor_lost(M, scale, shift, U):
            diagonal = M.diagonal() * scale + shift  # (d,) the diagonal potrf wrote its pivots over
            raise LostDigits.of(diagonal, U.diagonal())
        return U

    def whiten(self, U, Xt):
        """``L^-1 Xt`` for the factor ``L = U'`` of :meth:`spd_factor` and ``Xt`` (d, b): then
        ``Xt' (LL')^-1 Xt`` is the Gram matrix of the result. MKL's solve where
        :mod:`~stream_cl.heads.mkl_solves` takes the size: then a Fortran-ordered result, as BLAS's."""
        if mkl_solves.solves(Xt):
            return mkl_solves.solve(U, Xt, upper=True, transpose=True)
        return blas.dtrsm(1.0, U, Xt, side=0, lower=0, trans_a=1)  # solves U' V = Xt

    def unwhiten(self, U, Z):
        """``L'^-1 Z`` for the factor of :meth:`spd_factor`: with ``Z = L^-1 B`` (:meth:`whiten`),
        ``(LL')^-1 B``, the solve of :meth:`factor_solve` in two halves (bit for bit)."""
        if mkl_solves.solves(Z):
            return mkl_solves.solve(U, Z, upper=True)
        return blas.dtrsm(1.0, U, Z, side=0, lower=0, trans_a=0)  # solves U W = Z

    def factor_inverse(self, U):
        """``(U'U)^-1`` (d, d), C-ordered and whole, for the factor of :meth:`spd_factor`: LAPACK
        ``dpotri`` (2 d^3 / 3) gives one triangle, then mirrored."""
        return _potri(U, lower=0)  # a copy: the factor is kept for the next chunk

    def factor_solve(self, U, B):
        """``(U'U)^-1 B`` (d, c) for ``B`` (d, c), C-ordered: ``unwhiten(U, whiten(U, B))`` bit for bit,
        as a chunk's weights read the one way and :meth:`~stream_cl.heads.ridge.RecursiveRidge.weights`
        the other. LAPACK ``dpotrs`` is those two ``dtrsm`` calls, in one; MKL's two solves where
        :mod:`~stream_cl.heads.mkl_solves` takes the size."""
        if mkl_solves.solves(B):
            return np.ascontiguousarray(self.unwhiten(U, self.whiten(U, B)))
        X, info = sla.lapack.dpotrs(U, B, lower=0)
        if info != 0:
            raise ValueError(f"dpotrs: illegal argument {-info}")
        return np.ascontiguousarray(X)

    def gram_plus_diag(self, V, v):
        """``V'V + diag(v)`` for ``V`` (d, b), its lower triangle only (what :meth:`cholesky_lower`
        reads): BLAS ``dsyrk``, half the flops of the product."""
        S = blas.dsyrk(1.0, V, trans=1, lower=1)  # (b, b), Fortran-ordered
        self.add_to_diag(S, v)
        return S

    def diag(self, M):
        """The diagonal of ``M`` (d,): a read-only view."""
        return np.diagonal(M)

    def add_to_diag(self, M, v) -> None:
        """``M += diag(v)`` in place, through a writable view of the diagonal (``np.diagonal`` is
        read-only; indexing with ``diag_indices_from`` took ~20 µs, this ~2)."""
        np.einsum("ii->i", M)[...] += v

    def pad(self, M, rows: int, cols: int):
        """``M`` with ``rows`` zero rows and ``cols`` zero columns added. Zeros from calloc and one copy:
        ``np.pad`` wrote every new entry's zero itself, 0.3 s a (8,192, 8,192) statistic (review r116)."""
        P = np.zeros((M.shape[0] + rows, M.shape[1] + cols), dtype=M.dtype)
        P[: M.shape[0], : M.shape[1]] = M
        return P


def _is_square_f(F, d: int) -> bool:
    return isinstance(F, np.ndarray) and F.shape == (d, d) and F.dtype == np.float64 and F.flags.f_contiguous


def _potrf(F: np.ndarray, lower: int) -> np.ndarray:
    """LAPACK ``dpotrf`` in place on Fortran-ordered ``F``, reading one triangle and leaving the
    other as it was; an error if ``F`` is not positive definite."""
    C, info = sla.lapack.dpotrf(F, lower=lower, clean=0, overwrite_a=1)
    if info > 0:
        raise np.linalg.LinAlgError(f"matrix is not positive definite (leading minor {info})")
    if info < 0:
        raise ValueError(f"dpotrf: illegal argument {-info}")
    return C


def _potri(F: np.ndarray, lower: int, overwrite: bool = False) -> np.ndarray:
    """The whole inverse of ``F F'`` (``lower``) or ``F'F`` for a Cholesky factor ``F`` (Fortran-
    ordered): LAPACK ``dpotri`` fills one triangle, mirrored here. C-ordered for ``lower=0``
    (the transpose of ``dpotri``'s Fortran result), Fortran-ordered for ``lower=1``."""
    inv, info = sla.lapack.dpotri(F, lower=lower, overwrite_c=int(overwrite))
    if info != 0:
        raise np.linalg.LinAlgError(f"potri failed (info {info})")
    R = inv if lower else inv.T  # either way the lower triangle (by index) is current
    mirror_lower(R)
    return R


# A Cholesky pivot L_ii^2 is what is left of the diagonal entry M_ii once the directions of the
# inputs before i are taken out: M_ii - sum_k L_ik^2, a difference rounded at ~i eps M_ii. One below
# LOST_DIGITS * d * M_ii kept at most ~3 digits, and where it is ~eps it is rounding noise: the
# matrix is singular to working precision in that direction (raw inputs that are collinear, whose
# squares summed over the rows pass ~1e12 times the ridge term: 1e5 and more over a few hundred
# rows, epoch seconds and milliseconds from the first: entries of 1e27 where the ridge term is 1),
# and a solve with the factor has no correct digit. The same bound on x'Rx against sum_p x_p^2 R_pp
# tells a row that R cannot resolve (ridge_one.update_one). On benchmarks' streams every head of
# the default learner and of AnalyticClassifier on raw inputs stayed 1.9e4 times above both or more.
LOST_DIGITS = 1e3 * float(np.finfo(np.float64).eps)


class LostDigits(np.linalg.LinAlgError):
    """A Cholesky factor whose smallest pivot is rounding noise (:func:`lost_digits`): the matrix is
    singular to working precision, and its solves are taken from :func:`equilibrate` instead."""

    @classmethod
    def of(cls, diagonal, pivots) -> LostDigits:
        """The error for a factor with ``pivots`` (d,) of a matrix with ``diagonal`` (d,) (numpy arrays)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.square(pivots) / diagonal
        return cls(f"the Cholesky factor lost its digits: a pivot squared is {np.nanmin(ratio):.3g} of its "
                   f"diagonal entry, below {LOST_DIGITS * len(ratio):.3g}")


def lost_digits(diagonal, pivots) -> bool:
    """Whether a Cholesky factor with ``pivots`` (d,) (the factor's diagonal, ``L_ii``) of a matrix with
    ``diagonal`` (d,) lost all its digits in some direction: ``L_ii^2 < LOST_DIGITS d M_ii`` for some
    ``i`` (or not a number). O(d), after the d^3 / 3 of the factor.

    >>> lost_digits(np.array([4.0, 4.0]), np.array([2.0, 1.0]))
    False
    >>> lost_digits(np.array([1e20, 1e20]), np.array([1e10, 1.0]))  # the second pivot: 1 of 1e20
    True
    """
    return not bool(np.all(pivots * pivots >= (LOST_DIGITS * len(diagonal)) * diagonal))


def _pivots_lost(M, scale, shift, U, limit) -> bool:
    """:func:`lost_digits` of the factor ``U`` (d, d) of ``scale M + shift I``, read from ``M``'s diagonal
    (``limit`` is ``LOST_DIGITS d``), as a loop to compile: a chunk makes one, and numpy's half-dozen
    calls on (d,) arrays took ~3 µs (a narrow head's chunk of 256 rows: ~90 µs)."""
    for i in range(U.shape[0]):
        if not U[i, i] * U[i, i] >= limit * (scale * M[i, i] + shift):
            return True
    return False


_PIVOTS_LOST = LazyJit(_pivots_lost)


def warm() -> None:
    """Import numba and load (or compile) the pivot check of :meth:`NumpyLinalg.spd_factor` for the argument
    types a ridge head passes (a C-ordered ``M``, a Fortran-ordered factor): ``runtime.warm_up`` calls this,
    else a learning process's first batch pays for it (~12 ms from the disk cache, ~150 ms compiling)."""
    if _PIVOTS_LOST.get() is not None:
        NumpyLinalg().spd_factor(np.eye(2), 1.0, 1.0)


def _factor_lost(M, scale: float, shift: float, U) -> bool:
    """:func:`lost_digits` for :meth:`NumpyLinalg.spd_factor`: compiled where numba is imported already (a
    learning process: its row loops import it), else by numpy (a process that only predicts does not
    import numba for it)."""
    compiled = _PIVOTS_LOST.get() if "numba" in sys.modules else None
    if compiled is not None:
        return compiled(M, scale, shift, U, LOST_DIGITS * U.shape[0])
    return lost_digits(M.diagonal() * scale + shift, U.diagonal())


def equilibrate(M: np.ndarray, shift: float) -> tuple:
    """The pseudo-inverse of symmetric positive semi-definite ``M + shift I`` (d, d), as far as float64
    holds it, where its Cholesky factor lost its digits: ``(s, Q, v)`` with ``(M + shift I)^+ =
    diag(s) Q diag(v) Q' diag(s)``. ``Q diag(w) Q'`` is the eigendecomposition of the equilibrated
    ``diag(s) (M + shift I) diag(s)``, ``s`` the inverse square roots of its diagonal as powers of 2
    (exact scaling), and ``v = 1 / w`` but for the eigenvalues below ``eps d max(w)``, dropped.

    Scaled, the matrix has a unit diagonal (within a factor of 2) and its eigenvalues are correct to
    ~eps of the largest; unscaled (entries from 1 to 1e27), every eigenvector is mixed with the largest
    ones at their rounding and the inverse is wrong in every direction. A dropped direction is one where
    the matrix's own entries (sums rounded at eps) say nothing: the ridge term there is below their
    rounding, and so is the spread of the rows; scores of rows like the ones learned do not depend on
    it. :func:`equilibrated_solve` keeps the factors apart: ``M^+ B`` from the inverse materialised
    (:func:`equilibrated_inverse`) cancels the large entries of a direction the rows do not reach.

    >>> M = np.array([[1e24, 1e21], [1e21, 1e18]])  # one row x: a feature in milliseconds and in seconds
    >>> x = np.array([[1e12, 1e9]])
    >>> E = equilibrate(M, 1.0)
    >>> float((x @ equilibrated_solve(E, x.T))[0, 0])  # ridge on the row predicts it (1 - 1e-24)
    1.0
    """
    d = M.shape[0]
    S = np.array(M, dtype=np.float64)  # (d, d) a copy: M is the caller's
    np.einsum("ii->i", S)[...] += shift
    s = np.ldexp(1.0, -(np.frexp(np.diagonal(S))[1] // 2))  # (d,) ~ diag^-1/2, powers of 2
    S *= s[:, None]  # rows: (d, d) * (d, 1)
    S *= s[None, :]  # columns: (d, d) * (1, d)
    w, Q = np.linalg.eigh(S)  # ascending
    keep = w > (w[-1] * d * float(np.finfo(np.float64).eps) if d else 0.0)
    v = np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0)  # (d,)
    return s, Q, v


def equilibrated_solve(E: tuple, B: np.ndarray) -> np.ndarray:
    """``(M + shift I)^+ B`` (d, c) for the factor ``E`` of :func:`equilibrate`."""
    s, Q, v = E
    return s[:, None] * (Q @ (v[:, None] * (Q.T @ (s[:, None] * B))))  # s, v: (d,) -> (d, 1) scale the rows of (d, c)


def equilibrated_inverse(E: tuple) -> np.ndarray:
    """``(M + shift I)^+`` (d, d), exactly symmetric, for the factor ``E`` of :func:`equilibrate`."""
    s, Q, v = E
    P = (Q * v) @ Q.T
    P = (P + P.T) * 0.5
    return P * s[:, None] * s[None, :]  # (d, d) * (d, 1) * (1, d)


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


class TorchLinalg:
    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.name = "torch:cpu" if self.device.type == "cpu" else str(self.device)
        self.max_chunk = CPU_CHUNK if self.device.type == "cpu" else GPU_CHUNK

    def asarray(self, a):
        """``a`` as a float64 tensor on the device (no copy where it is one there already)."""
        return self.torch.as_tensor(a, dtype=self.torch.float64, device=self.device)

    def to_numpy(self, a) -> np.ndarray:
        """The tensor ``a`` as a numpy array on the host (shares memory where ``a`` is on the CPU)."""
        return a.detach().cpu().numpy()

    def index(self, idx):
        """Integer positions ``idx`` as a long tensor on the device, to index its tensors with."""
        return self.torch.as_tensor(idx, dtype=self.torch.long, device=self.device)

    def own(self, M):
        """As :meth:`NumpyLinalg.own`: ``M`` itself (a tensor's layout is left to torch)."""
        return M

    def syrk_(self, M, V, alpha: float, beta: float) -> None:
        """``M = beta M + alpha V V'`` in place for symmetric ``M`` (d, d) and ``V`` (d, k), made exactly
        symmetric."""
        M.mul_(beta).addmm_(V, V.T, alpha=alpha)
        M.copy_((M + M.T).mul_(0.5))  # exactly symmetric, like the numpy path

    def ger_(self, M, alpha: float, x, y) -> None:
        """``M += alpha x y'`` in place for ``M`` (d, c)."""
        M.add_((x * alpha)[:, None] @ y[None, :])  # (d, 1) @ (1, c) -> (d, c)

    def zeros(self, *shape):
        """A float64 tensor of zeros of ``shape`` on the device."""
        return self.torch.zeros(shape, dtype=self.torch.float64, device=self.device)

    def eye(self, n):
        """The (n, n) float64 identity on the device."""
        return self.torch.eye(n, dtype=self.torch.float64, device=self.device)

    def powers(self, base: float, n: int):
        """``[base**1, ..., base**n]`` (n,) on the device."""
        exps = self.torch.arange(1, n + 1, dtype=self.torch.float64, device=self.device)
        return base**exps

    def cholesky_lower(self, S):
        """Lower Cholesky factor of ``S`` (b, b); ``LinAlgError`` where it is not positive definite."""
        C, info = self.torch.linalg.cholesky_ex(S)
        if int(info) != 0:
            raise np.linalg.LinAlgError("matrix is not positive definite")
        return C

    def solve_lower(self, C, M):
        """``C^-1 M`` (b, k) for lower-triangular ``C`` (b, b) and ``M`` (b, k)."""
        return self.torch.linalg.solve_triangular(C, M, upper=False)

    def spd_inverse(self, M):
        """As :meth:`NumpyLinalg.spd_inverse`: the inverse from the Cholesky factor, ``LinAlgError`` or
        :class:`LostDigits` where that fails."""
        return self.torch.cholesky_inverse(self._checked_factor(M))

    def equilibrate(self, M, shift: float):
        """:func:`equilibrate` in the device's arrays."""
        torch = self.torch
        d = M.shape[0]
        S = M.clone()
        torch.diagonal(S).add_(shift)
        s = torch.ldexp(torch.ones(d, dtype=S.dtype, device=S.device),
                        -torch.div(torch.frexp(torch.diagonal(S)).exponent, 2, rounding_mode="floor"))
        S *= s[:, None] * s[None, :]  # (d, 1) * (1, d) -> (d, d)
        w, Q = torch.linalg.eigh(S)
        keep = w > (w[-1] * d * float(np.finfo(np.float64).eps) if d else 0.0)
        v = torch.where(keep, 1.0 / torch.where(keep, w, torch.ones_like(w)), torch.zeros_like(w))
        return s, Q, v

    def equilibrated_solve(self, E, B):
        """``M^+ B`` (d, c) for the factor ``E`` of :meth:`equilibrate`."""
        return equilibrated_solve(E, B)  # (array operators only: the device's arrays as they are)

    def equilibrated_inverse(self, E):
        """``M^+`` (d, d) for the factor ``E`` of :meth:`equilibrate`."""
        return equilibrated_inverse(E)

    def spd_factor(self, M, scale: float, shift: float, reuse=None):
        """The lower Cholesky factor ``L`` of ``scale M + shift I`` (``M`` whole), for :meth:`whiten` and
        :meth:`factor_solve`; ``reuse`` is ignored. ``LinAlgError`` or :class:`LostDigits` as
        :meth:`NumpyLinalg.spd_factor`."""
        S = M * scale
        self.torch.diagonal(S).add_(shift)
        return self._checked_factor(S)

    def _checked_factor(self, S):
        """:meth:`cholesky_lower`, and :class:`LostDigits` where its pivots are rounding noise
        (:func:`lost_digits`), with one synchronisation as before."""
        C, info = self.torch.linalg.cholesky_ex(S)
        pivots, diagonal = self.torch.diagonal(C), self.torch.diagonal(S)
        kept = (pivots * pivots >= (LOST_DIGITS * S.shape[0]) * diagonal).all()
        if not bool(kept & (info == 0)):
            if int(info) != 0:
                raise np.linalg.LinAlgError("matrix is not positive definite")
            raise LostDigits.of(self.to_numpy(diagonal), self.to_numpy(pivots))
        return C

    def whiten(self, L, Xt):
        """``L^-1 Xt`` for the factor ``L`` of :meth:`spd_factor` and ``Xt`` (d, b)."""
        return self.torch.linalg.solve_triangular(L, Xt, upper=False)

    def unwhiten(self, L, Z):
        """``L'^-1 Z`` for the factor ``L`` of :meth:`spd_factor`: the second half of :meth:`factor_solve`."""
        return self.torch.linalg.solve_triangular(L.mT, Z, upper=True)

    def factor_solve(self, L, B):
        """``(LL')^-1 B`` (d, c) for the factor ``L`` of :meth:`spd_factor` and ``B`` (d, c)."""
        return self.torch.cholesky_solve(B, L)

    def gram_plus_diag(self, V, v):
        """``V'V + diag(v)`` (b, b), whole, for ``V`` (d, b)."""
        S = V.T @ V
        self.torch.diagonal(S).add_(v)
        return S

    def diag(self, M):
        """The diagonal of ``M`` (d,): a view."""
        return self.torch.diagonal(M)

    def add_to_diag(self, M, v) -> None:
        """``M += diag(v)`` in place."""
        self.torch.diagonal(M).add_(v)

    def pad(self, M, rows: int, cols: int):
        """``M`` with ``rows`` zero rows and ``cols`` zero columns added (a new tensor)."""
        return self.torch.nn.functional.pad(M, (0, cols, 0, rows))


def make_linalg(device: str):
    """``"cpu"`` gives the numpy path; a torch device string (``"cuda"``, ``"cuda:1"``) the
    torch one; ``"torch:cpu"`` the torch path on the CPU (tests cover the CUDA code with it)."""
    if device == "cpu":
        return NumpyLinalg()
    return TorchLinalg(device.removeprefix("torch:"))
