"""Whether a Cholesky factor kept its digits, and the equilibrated solves used where it did not.

A ridge head's ``A + g I`` whose factor's pivots are rounding noise (collinear raw inputs of 1e5
and more) is singular to working precision: :func:`lost_digits` tells it, :class:`LostDigits` is
the error the factorising calls raise, and :func:`equilibrate` is the factor solved with instead.
"""

from __future__ import annotations

import sys

import numpy as np

from ..numba_jit import LazyJit

__all__ = ["LOST_DIGITS", "PIVOTS_LOST", "LostDigits", "equilibrate", "equilibrated_inverse", "equilibrated_solve",
           "factor_lost", "lost_digits"]


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


# The compiled :func:`_pivots_lost` (numba imported at the first ``get``), for :func:`factor_lost`
# and for ``_linalg.warm``, which loads it.
PIVOTS_LOST = LazyJit(_pivots_lost)


def factor_lost(M, scale: float, shift: float, U) -> bool:
    """:func:`lost_digits` for :meth:`~stream_cl.heads._linalg.NumpyLinalg.spd_factor`: compiled where
    numba is imported already (a learning process: its row loops import it), else by numpy (a process
    that only predicts does not import numba for it)."""
    compiled = PIVOTS_LOST.get() if "numba" in sys.modules else None
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
