"""The wide ridge heads' triangular solves and Cholesky factors through torch's MKL, where
:func:`stream_cl.blas_kernels.mkl_solves_preferred` says so (Intel CPUs: there OpenBLAS's
``dtrsm`` and ``dpotrf`` ran at a fifth and a quarter of its ``dgemm``'s rate, RESULTS.md 9zi).

The arrays stay numpy's: torch views their memory (``torch.from_numpy``, no copy), a factor is
written in place over its input, and a solve's result comes back as a numpy array. A call pays
torch's ~5 µs of dispatch, so small ones stay with OpenBLAS (:func:`solves`, :func:`factors`):
MKL's solve was faster from 2,048 right-hand-side entries up (a (256, 8) block), its factor
from a width of 128 (measured at 8-473 wide, 1-256 right-hand sides; RESULTS.md 9zi). The
choice depends on the shapes only, so the same call gives the same bits every time.

MKL runs on torch's intra-op threads: unless :func:`stream_cl.runtime.set_threads` chose the
process's threads, a call here runs with one, as every BLAS call of the learners does
(:func:`stream_cl.runtime.one_blas_thread`), and gives torch its count back.

>>> import numpy as np
>>> U = np.asfortranarray([[2.0, 1.0], [0.0, 3.0]])  # upper: U'U = [[4, 2], [2, 10]]
>>> solve(U, np.array([[2.0], [7.0]]), upper=True, transpose=True).tolist()  # U' v = b
[[1.0], [2.0]]
>>> solve(U, np.array([[4.0], [6.0]]), upper=True).tolist()  # U w = b
[[1.0], [2.0]]
>>> F = np.asfortranarray([[4.0, 2.0], [2.0, 10.0]])
>>> factor_upper_(F).tolist()  # in place: the upper factor, zeros below
[[2.0, 1.0], [0.0, 3.0]]
"""

from __future__ import annotations

import numpy as np
import torch

from .. import runtime
from ..blas_kernels import mkl_solves_preferred

__all__ = ["MIN_FACTOR", "MIN_SOLVE", "choose", "enabled", "factor_upper_", "factors", "solve", "solves"]

MIN_SOLVE = 2048  # right-hand-side entries (rows x columns) from which MKL's solve was faster
MIN_FACTOR = 128  # the width from which MKL's Cholesky factor was faster

_enabled: bool | None = None


def enabled() -> bool:
    """:func:`~stream_cl.blas_kernels.mkl_solves_preferred`, decided at the first call of the process."""
    global _enabled
    if _enabled is None:
        _enabled = mkl_solves_preferred()
    return _enabled


def choose(flag: bool | None) -> None:
    """Take these calls from MKL (True) or OpenBLAS (False) from now on in this process, or decide
    again at the next call (None). For tests and benchmarks that compare the two: a head that
    changes ways between reading its weights and its next chunk gets them in other last bits."""
    global _enabled
    _enabled = None if flag is None else bool(flag)


def solves(n: int, k: int) -> bool:
    """Whether a triangular solve of width ``n`` with ``k`` right-hand sides goes to MKL."""
    return n * k >= MIN_SOLVE and enabled()


def factors(n: int) -> bool:
    """Whether the Cholesky factor of a matrix of width ``n`` goes to MKL."""
    return n >= MIN_FACTOR and enabled()


class _OneThread:
    """torch (so MKL) on one thread for the ``with`` block, unless the process chose its threads."""

    __slots__ = ("n",)

    def __enter__(self):
        self.n = 1 if runtime.threads_chosen() else torch.get_num_threads()
        if self.n != 1:
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.n != 1:
            torch.set_num_threads(self.n)


def solve(T: np.ndarray, B: np.ndarray, upper: bool, transpose: bool = False) -> np.ndarray:
    """``T^-1 B`` for triangular ``T`` (n, n) read from its ``upper`` or lower triangle (the other is
    not read), or ``T'^-1 B`` with ``transpose``; ``B`` (n, k). A new array (Fortran-ordered)."""
    A = torch.from_numpy(T)
    if transpose:
        A, upper = A.mT, not upper  # a view: the transpose of an upper triangle is a lower one
    with _OneThread():
        return torch.linalg.solve_triangular(A, torch.from_numpy(B), upper=upper).numpy()


def factor_upper_(F: np.ndarray) -> np.ndarray:
    """The upper Cholesky factor ``U`` (``U'U = F``) of Fortran-ordered ``F`` (n, n), read from its
    upper triangle and written over it (zeros below); ``F`` itself is returned. An error if ``F`` is
    not positive definite, as LAPACK ``dpotrf``'s wrapper gives."""
    Ft = torch.from_numpy(F)
    info = torch.empty((), dtype=torch.int32)
    with _OneThread():
        torch.linalg.cholesky_ex(Ft, upper=True, out=(Ft, info))
    if int(info) > 0:
        raise np.linalg.LinAlgError(f"matrix is not positive definite (leading minor {int(info)})")
    return F
