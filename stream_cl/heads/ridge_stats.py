"""The sufficient statistics of a streaming ridge head, their growth and their state.

:class:`RidgeStatistics` holds what :class:`~stream_cl.heads.ridge.RecursiveRidge` learns
into (``A``, ``B``, ``R`` and the scalars of the forgetting schedule) and nothing of the
update algebra: adding inputs or outputs without changing the model, and a state dict
that resumes bit for bit. ``A`` and ``R`` are symmetric; one event's update writes one
triangle of each and folds the forgetting factor into a scalar
(:class:`~stream_cl.heads.scaled_triangle.ScaledTriangle`), and reading them gives the whole matrix.

``R`` is derived from ``A``, and a batched update that works from the Cholesky factor of
``A + gamma decay I`` does not keep it: it is then *not materialised* (``has_inverse`` is
false) and is computed from ``A`` when it is next read (one d^3 inverse).

Where ``A + gamma decay I`` is singular to working precision (raw inputs of 1e5 and more that
are collinear: a timestamp in seconds and in milliseconds), its Cholesky factor has lost its
digits (:func:`~stream_cl.heads.conditioning.lost_digits`) and the head is *equilibrated*: it solves
from the equilibrated eigendecomposition of ``A + gamma decay I`` instead
(:func:`~stream_cl.heads.conditioning.equilibrate`), as far as float64 holds the statistics, and
keeps no ``R`` up to date (one rank-1 step after another on it would not stay the inverse: the
head learns the statistics and solves again, :mod:`~stream_cl.heads.ridge`). ``R``, when read,
is that factor's pseudo-inverse; it is not in the state (the factor is computed from ``A`` again,
the same bits).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..bounds import MIN_POSITIVE
from ..checks import MIN_FORGETTING, check_positive, is_forgetting
from ..state_checks import saved_array, saved_count, saved_real
from ._linalg import make_linalg
from .scaled_triangle import ScaledTriangle

__all__ = ["ANCHOR_DECAY", "REBUILD_LEVERAGE", "REFRESH_ROWS", "RidgeStatistics"]

# Re-anchor at least this often, so floating-point drift in R cannot accumulate.
REFRESH_ROWS = 65_536
# With forgetting < 1 the ridge term decays with the data; R is re-anchored to the
# full gamma once it has decayed to this fraction (a refresh costs one d^3 inverse).
ANCHOR_DECAY = 0.1
# A row of leverage h = w x'Rx / l (how far it moves the model: far above 1 for a feature at a
# magnitude the head has not met, 1e9 where the rest are near 1) downdates R by a difference that
# cancels about log10(1 + h) digits: past this one R is rebuilt from the exact statistics (same
# ridge term, so the same model, to rounding). Standardised inputs stay far below it (the default
# learner's heads: at most ~4e3 on benchmarks/vs_river.py's streams).
REBUILD_LEVERAGE = 1e6


class _Symmetric:
    """A symmetric matrix attribute kept as a :class:`ScaledTriangle` in ``_<name>``: reading it
    gives the whole matrix (mirrored and scaled), assigning it starts a new one. ``derive``
    names the owner's method that gives the triangle when the slot is empty (``None``)."""

    def __init__(self, drops_weights: bool = False, derive: str | None = None):
        self.drops_weights = drops_weights
        self.derive = derive

    def __set_name__(self, owner, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        tri = getattr(obj, self.slot)
        if tri is None:
            tri = getattr(obj, self.derive)()
        return tri.full()

    def __set__(self, obj, M) -> None:
        setattr(obj, self.slot, ScaledTriangle(M))
        if self.drops_weights:  # and the equilibrated factor: an R assigned is the one kept up to date
            obj._W = obj._eq = None


class RidgeStatistics:
    """``A`` (d, d), ``B`` (d, c), ``R = (A + gamma decay I)^-1`` (d, d) and their scalars."""

    def __init__(self, gamma: float = 1.0, forgetting: float = 1.0, device: str = "cpu"):
        check_positive(gamma, "gamma", 1.0)
        self._check_forgetting(forgetting)  # before float(): "0.9" would pass as 0.9
        self.gamma = float(gamma)
        self.forgetting = float(forgetting)
        self.la = make_linalg(device)
        self.n_features = 0
        self.n_outputs = 0
        self.A = self.la.zeros(0, 0)  # (d, d)
        self.B = self.la.zeros(0, 0)  # (d, c)
        self.R = self.la.zeros(0, 0)  # (d, d)
        self.decay = 1.0  # g / gamma: how far the ridge term has decayed since the last anchor
        self.rows_since_anchor = 0
        self.n_rows = 0  # rows learned, unweighted
        self._W = None  # cache of R @ B
        self._factor = None  # (W, factor of A + g I): the factor the cached W was solved with, if it was
        self._eq = None  # the equilibrated factor of A + g I, while A's own lost its digits (module docstring)

    A = _Symmetric()  # (d, d) the weighted Gram matrix
    R = _Symmetric(drops_weights=True, derive="inverse")  # (d, d) its regularised inverse: W = R B follows a new R

    def row_mass(self) -> float:
        """``A``'s bias entry, the decayed row mass (its first input is the bias column of 1s), read
        without materialising ``A`` (each control point of several partitions reads it)."""
        return self._A.first_diagonal()

    @property
    def equilibrated(self) -> bool:
        """Whether the head solves from the equilibrated factor of ``A + g I`` (module docstring): its
        Cholesky factor lost its digits. Known once a solve was tried since the statistics last changed."""
        return self._eq is not None

    @property
    def has_inverse(self) -> bool:
        """Whether ``R`` is materialised (kept up to date), rather than computed from ``A`` when read."""
        return self._R is not None

    def inverse(self) -> ScaledTriangle:
        """``R``'s triangle, materialised from the statistics if it is not: ``(A + gamma decay I)^-1``,
        or the pseudo-inverse of the equilibrated factor where ``A + gamma decay I``'s lost its digits."""
        if self._R is None:
            if self._eq is None:
                self._factorise()
            if self._R is None:  # the same model as the equilibrated factor's W: not assigned (which drops both)
                self._R = ScaledTriangle(self.la.equilibrated_inverse(self._eq))
        return self._R

    def _factorise(self) -> None:
        """``R`` from the statistics, or where ``A + gamma decay I`` does not factor in float64 (its factor
        lost its digits: collinear inputs of 1e5 and more) their equilibrated factor instead, no ``R``."""
        la, d = self.la, self.n_features
        M = self.A + (self.gamma * self.decay) * la.eye(d)
        self._factor = None  # the batched path's factor: not kept beside R
        try:
            self.R = la.spd_inverse(M) if d else M  # (assigning drops the cached W and equilibrated factor)
        except np.linalg.LinAlgError:  # singular to working precision (LostDigits), or not even positive
            self._R, self._W = None, None
            self._eq = la.equilibrate(M, 0.0)  # (the same bits as _eq_factor's)

    def _eq_factor(self):
        """The equilibrated factor of ``A + gamma decay I`` (module docstring), computed if it is not."""
        if self._eq is None:
            self._eq = self.la.equilibrate(self.A, self.gamma * self.decay)
        return self._eq

    def drop_inverse(self) -> None:
        """Stop keeping ``R``: it is computed from ``A`` when next read (the cached ``W`` goes too)."""
        self._R = None
        self._W = None
        self._eq = None

    @staticmethod
    def _check_forgetting(value: float) -> None:
        if not is_forgetting(value):
            raise ValueError(f"forgetting must be in [{MIN_FORGETTING}, 1.0], got {value!r}; use e.g. 1.0 (keep all) "
                             "or 0.999")

    def set_forgetting(self, value: float) -> None:
        """Change the forgetting factor from now on (used by drift responses and homeostasis)."""
        self._check_forgetting(value)
        self.forgetting = float(value)

    # -- the forgetting schedule's anchors ------------------------------------------------
    def _decayed(self, rows: int) -> float:
        """The decay once ``rows`` more rows are learned, multiplied row by row as the per-event path
        multiplies it: ``decay * l**rows`` can differ in the last bit, and an anchor that falls on
        ``ANCHOR_DECAY`` would then come a row later in a batch than one event at a time."""
        if rows == 0 or self.forgetting == 1.0:
            return self.decay
        return float(self._decays(rows)[-1])

    def _decays(self, rows: int) -> np.ndarray:
        """The decay after each of the next ``rows`` rows (rows,), row by row (``accumulate`` is sequential)."""
        return np.multiply.accumulate(np.concatenate(([self.decay], np.full(rows, self.forgetting))))[1:]

    def _anchor_due(self, rows: int = 0) -> bool:
        """Whether ``R`` is re-anchored once ``rows`` more rows are learned (now, for 0): the
        ridge term decayed below ``ANCHOR_DECAY``, or ``REFRESH_ROWS`` rows since the last anchor."""
        return self._decayed(rows) < ANCHOR_DECAY or self.rows_since_anchor + rows >= REFRESH_ROWS

    def _rows_until_anchor(self, remaining: int) -> int:
        """How many of the next ``remaining`` rows to learn before the next re-anchor."""
        limit = min(remaining, self.la.max_chunk, REFRESH_ROWS - self.rows_since_anchor)  # see CPU_CHUNK
        if self.forgetting < 1.0 and limit > 0:
            below = np.flatnonzero(self._decays(limit) < ANCHOR_DECAY)  # the smallest k with the decay below it
            if len(below):
                limit = int(below[0]) + 1
        return max(limit, 1) if remaining else 0

    def refresh(self) -> None:
        """Re-anchor ``R = (A + gamma I)^-1`` to the exact statistics (computed when next read)."""
        self.drop_inverse()
        self.decay = 1.0
        self.rows_since_anchor = 0

    # -- shape -----------------------------------------------------------------------
    def grow(self, n_features: int, n_outputs: int) -> None:
        """Grow to at least ``n_features`` inputs and ``n_outputs`` outputs.

        A new input has been 0 on every past row, so its block of ``A`` is zero and its
        block of ``R`` is ``I / g``: the model is unchanged, exactly.
        """
        la = self.la
        df, dc = n_features - self.n_features, n_outputs - self.n_outputs
        if df > 0:
            self.A = la.pad(self.A, df, df)
            self.B = la.pad(self.B, df, 0)
            if self._eq is not None:  # computed from A when next read (module docstring)
                self.drop_inverse()
            if self.has_inverse:
                self.R = la.pad(self.R, df, df)
                tail = self.R[self.n_features :, self.n_features :]
                la.add_to_diag(tail, 1.0 / (self.gamma * self.decay))
            self.n_features = n_features
        if dc > 0:
            self.B = la.pad(self.B, 0, dc)
            self.n_outputs = n_outputs
        if df > 0 or dc > 0:
            self._W = None

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Arrays (numpy float64) and scalars; everything needed to resume exactly.

        Reading ``A`` and ``R`` folds their scalars in, and the cached ``W`` (kept up to date
        by rank-1 updates) is dropped, so the model carries on from here bit for bit as one
        resumed from this state does. ``R`` is there only when it is materialised and kept up to
        date (not ``equilibrated``): one resumed without it computes it from ``A`` when needed, as
        this one does."""
        la = self.la
        self._W = None
        state = {
            "A": la.to_numpy(self.A).copy(),
            "B": la.to_numpy(self.B).copy(),
        }
        if self.has_inverse and self._eq is None:
            state["R"] = la.to_numpy(self.R).copy()
        return {
            **state,
            "gamma": self.gamma,
            "forgetting": self.forgetting,
            "decay": self.decay,
            "rows_since_anchor": self.rows_since_anchor,
            "n_rows": self.n_rows,
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict` into this path's arrays: ``A`` (d, d), ``B`` (d, c), and ``R`` where saved
        (else computed from ``A`` when needed). Shapes that disagree, and values no head holds (a NaN or infinite
        entry, a ridge term or decay out of range, a negative row count), are a ``ValueError`` before anything
        changes: loaded, a NaN in ``B`` made every prediction NaN and one in ``A`` every probability 1/c, for
        good, where a part holding one is refused (:meth:`~stream_cl.part_stats.PartStats.from_state`). A
        forgetting factor out of range is one after (the learner's restore puts its state back)."""
        la = self.la
        A, B = (saved_array(state[k], f"ridge {k}") for k in ("A", "B"))
        R = saved_array(state["R"], "ridge R") if state.get("R") is not None else None
        if B.ndim != 2:
            raise ValueError(f"inconsistent ridge state: B {B.shape}")
        d, c = B.shape
        if A.shape != (d, d) or (R is not None and R.shape != (d, d)):
            raise ValueError(f"inconsistent ridge state: A {A.shape}, B {B.shape}, R {None if R is None else R.shape}")
        gamma = saved_real(state["gamma"], "ridge gamma", MIN_POSITIVE)
        decay = saved_real(state["decay"], "ridge decay", math.ulp(0.0), 1.0)  # gamma * decay: the ridge term, > 0
        rows_since_anchor = saved_count(state["rows_since_anchor"], "ridge rows_since_anchor")
        n_rows = saved_count(state["n_rows"], "ridge n_rows")
        self.A, self.B = (la.own(la.asarray(M.copy())) for M in (A, B))
        if R is not None:
            self.R = la.own(la.asarray(R.copy()))
        else:
            self.drop_inverse()
        self.n_features, self.n_outputs = d, c
        self.gamma = gamma
        self.set_forgetting(float(state["forgetting"]))
        self.decay = decay
        self.rows_since_anchor = rows_since_anchor
        self.n_rows = n_rows  # (assigning R dropped the cached W)

    def __getstate__(self):
        return {"device": self.la.name, **self.state_dict()}

    def __setstate__(self, state):
        self.la = make_linalg(state["device"])
        self._W = self._factor = self._eq = None
        self.load_state_dict(state)

