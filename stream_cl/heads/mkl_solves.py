"""The wide ridge heads' triangular solves and Cholesky factors through torch's MKL, where
:func:`stream_cl.blas_kernels.mkl_solves_preferred` says so (Intel CPUs: there OpenBLAS's
``dtrsm`` and ``dpotrf`` ran at a fifth and a quarter of its ``dgemm``'s rate, RESULTS.md 9zi).

The arrays stay numpy's: torch views their memory (``torch.from_numpy``, no copy), a factor is
written in place over its input, and a solve's result comes back as a numpy array. A call pays
torch's ~5 µs of dispatch, so small ones stay with OpenBLAS (:func:`solves`, :func:`factors`):
MKL's solve was faster from 2,048 right-hand-side entries up (a (256, 8) block), its factor
from a width of 128 (measured at 8-473 wide, 1-256 right-hand sides; RESULTS.md 9zi). The
choice depends on the shapes only, so the same call gives the same bits every time. A vector
(1-D) stays with OpenBLAS; an array torch cannot view as it is (read-only, negative strides,
another byte order or type) is copied first.

MKL runs on torch's intra-op threads: unless :func:`stream_cl.runtime.set_threads` chose the
process's threads, a call here runs with one, as every BLAS call of the learners does
(:func:`stream_cl.runtime.one_blas_thread`), and gives torch its count back. Like those BLAS
limits, the count is the process's while it is set: a thread that another part of the program
starts during the call inherits one thread (a program that runs torch on threads of its own
calls ``set_threads``, and the learners then leave the counts alone).

An unknown ``STREAM_CL_BLAS_KERNELS`` is a warning here, and ``auto`` is taken: the command line and
the daemon refuse it before they start (``connectors.check_environment``), but a learner must not
fail half way through a batch for it.

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

import warnings

import numpy as np
import torch

from .. import runtime
from ..blas_kernels import kernels_setting, mkl_solves_preferred

__all__ = ["MIN_FACTOR", "MIN_SOLVE", "choose", "enabled", "factor_upper_", "factors", "solve", "solves"]

MIN_SOLVE = 2048  # right-hand-side entries (rows x columns) from which MKL's solve was faster
MIN_FACTOR = 128  # the width from which MKL's Cholesky factor was faster

_enabled: bool | None = None


def enabled() -> bool:
    """:func:`~stream_cl.blas_kernels.mkl_solves_preferred`, decided at the first call of the process
    (an unknown setting, or ``mkl`` without MKL: a warning, module docstring)."""
    global _enabled
    if _enabled is None:
        _enabled = _decide()
    return _enabled


def _decide() -> bool:
    try:
        setting = kernels_setting()
    except ValueError as e:
        warnings.warn(f"{e}. The learners take auto.", RuntimeWarning, stacklevel=4)
        setting = "auto"
    chosen = mkl_solves_preferred(setting)
    if setting == "mkl" and not chosen:
        warnings.warn("STREAM_CL_BLAS_KERNELS=mkl: this torch was built without MKL; the learners' solves and "
                      "factors stay with OpenBLAS", RuntimeWarning, stacklevel=4)
    return chosen


def choose(flag: bool | None) -> None:
    """Take these calls from MKL (True) or OpenBLAS (False) from now on in this process, or decide
    again at the next call (None). For tests and benchmarks that compare the two: a head that
    changes ways between reading its weights and its next chunk gets them in other last bits."""
    global _enabled
    _enabled = None if flag is None else bool(flag)


def solves(B: np.ndarray) -> bool:
    """Whether a triangular solve with right-hand sides ``B`` (n, k) goes to MKL (a vector does not)."""
    return B.ndim == 2 and B.shape[0] * B.shape[1] >= MIN_SOLVE and enabled()


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
    A = _view(T)
    if transpose:
        A, upper = A.mT, not upper  # a view: the transpose of an upper triangle is a lower one
    with _OneThread():
        return torch.linalg.solve_triangular(A, _view(B), upper=upper).numpy()


def _view(a: np.ndarray) -> torch.Tensor:
    """``a`` as a float64 tensor: a view of its memory, or of a copy where torch cannot view it (negative
    strides, another byte order or type) or would warn that it may write to it (read-only: it does not)."""
    if a.flags.writeable and a.dtype == np.float64 and a.dtype.isnative and min(a.strides, default=0) >= 0:
        return torch.from_numpy(a)
    return torch.from_numpy(np.array(a, dtype=np.float64, order="F"))


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
