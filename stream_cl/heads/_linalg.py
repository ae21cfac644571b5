"""The numpy path of the dense linear-algebra calls the ridge head needs, and the choice of path.

numpy (with LAPACK through scipy) is the CPU path: per-event updates are small and
numpy's per-call overhead is a few times lower than torch's; on Intel CPUs its wide triangular
solves and Cholesky factors are MKL's, through torch views of the same arrays
(:mod:`~stream_cl.heads.mkl_solves`). torch is the CUDA path (:mod:`~stream_cl.heads.torch_linalg`).
Both hold float64 state.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas

from . import mkl_solves
from .conditioning import (PIVOTS_LOST, LostDigits, equilibrate, equilibrated_inverse, equilibrated_solve,
                           factor_lost, lost_digits)
from .scaled_triangle import mirror_lower


# Rows learned in one chunk of a ridge update. A chunk's (rows x rows) terms (X R X', its
# Cholesky, the triangular solves) grow with its length while the (d x d) terms do not, so
# on a CPU chunks beyond ~256 rows only add arithmetic: a batch of 1,024 events of the
# default learner ran 2x faster in chunks of 256 than in one (RESULTS.md 9d). A GPU is
# given longer chunks (its efficiency still rises with them; not measured here).
CPU_CHUNK = 256
GPU_CHUNK = 1024


class NumpyLinalg:
    """The CPU path: numpy arrays, BLAS and LAPACK through scipy, MKL's solves where
    :mod:`~stream_cl.heads.mkl_solves` takes the size."""

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
        :class:`~stream_cl.heads.scaled_triangle.ScaledTriangle` keeps current). The factor is an
        opaque value for :meth:`whiten` and :meth:`factor_solve`: LAPACK ``dpotrf`` of the Fortran
        view ``M.T``, whose upper triangle is ``M``'s lower one (a straight copy, no transpose, no
        mirroring), or MKL's where :mod:`~stream_cl.heads.mkl_solves` takes the width (then zeros
        below). ``reuse``: a factor no longer needed, overwritten when it has the size: a fresh (d, d)
        array is memory the kernel maps and zeroes page by page, ~3% of a wide head's batch
        (RESULTS.md 9w). :class:`LostDigits` where a pivot is rounding noise (:func:`lost_digits`):
        nothing solved with it would hold."""
        d = M.shape[0]
        F = reuse if _is_square_f(reuse, d) else np.empty((d, d), order="F")
        np.multiply(M.T, scale, out=F)  # (d, d) Fortran-ordered; its upper triangle is the current one
        self.add_to_diag(F, shift)
        U = mkl_solves.factor_upper_(F) if mkl_solves.factors(d) else _potrf(F, lower=0)  # scale M + shift I = U'U
        if factor_lost(M, scale, shift, U):
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


def warm() -> None:
    """Import numba and load (or compile) the pivot check of :meth:`NumpyLinalg.spd_factor` for the argument
    types a ridge head passes (a C-ordered ``M``, a Fortran-ordered factor): ``runtime.warm_up`` calls this,
    else a learning process's first batch pays for it (~12 ms from the disk cache, ~150 ms compiling)."""
    if PIVOTS_LOST.get() is not None:
        NumpyLinalg().spd_factor(np.eye(2), 1.0, 1.0)


def make_linalg(device: str):
    """``"cpu"`` gives the numpy path; a torch device string (``"cuda"``, ``"cuda:1"``) the
    torch one; ``"torch:cpu"`` the torch path on the CPU (tests cover the CUDA code with it)."""
    if device == "cpu":
        return NumpyLinalg()
    from .torch_linalg import TorchLinalg  # here, not at the top: it reads this module's chunk lengths

    return TorchLinalg(device.removeprefix("torch:"))
