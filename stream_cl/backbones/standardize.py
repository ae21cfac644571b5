"""Online standardisation with per-feature counts, exact in batches.

Each feature keeps its count, mean and sum of squared deviations (Welford), updated
only by the rows where it is present; a missing feature standardises to 0 (the
mean). :meth:`OnlineStandardizer.prequential` standardises every row with the
statistics *before* that row and then absorbs it, in one compiled loop over the batch
with the per-event path's arithmetic, so a batch gives the same numbers as a row-by-row
loop (the statistics bit for bit, at any offset of the features).

Indicator columns (``raw``, see :attr:`stream_cl.features.FeatureIndex.indicator_mask`)
are not standardised: a rare category would otherwise read ``1/sqrt(p)``, a huge
value. They read ``INDICATOR_SCALE`` times their own value (0.5 when the event has the
category) once the column has been learned from at least once, and 0 before (so a
category seen for the first time cannot move a prediction that a loop over events
would make without it).

With ``known=True`` both methods also return which values are *known*: present, in a
column learned from before the row. A prediction made before a column was learned
from does not have the column at all, so what reads the inputs beyond their values
(the backbone counts the inputs present) must use this mask for a batch to give
exactly what a loop over its events gives.

>>> import numpy as np
>>> s = OnlineStandardizer()
>>> X = np.array([[1.0], [3.0], [5.0]])
>>> s.prequential(X, np.ones_like(X, dtype=bool)).ravel().tolist()
[0.0, 0.0, 3.0]
>>> s.mean.tolist(), s.transform(np.array([[3.0]])).ravel().tolist()
([3.0], [0.0])
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import standardize_row

# What a present category reads as. Measured on benchmarks/vs_river.py's nominal streams
# (n=20,000, the default learner): 0.25 / 0.35 / 0.5 / 0.7 / 1 / 1.5 / 2 / 3 gave
# 0.787 / 0.798 / 0.803 / 0.801 / 0.795 / 0.784 / 0.777 / 0.763 on AgrawalNominal, and
# 0.5 / 0.7 / 1 gave 0.816 / 0.816 / 0.815 on Payments. Smaller than a standardised
# number's unit scale: the ridge heads then shrink a category's own weight more (rare
# categories are noisy), and a category shifts the backbone's ReLU thresholds gently.
INDICATOR_SCALE = 0.5

# One row of at most this many inputs is standardised and absorbed by a compiled loop
# (:mod:`~stream_cl.backbones.standardize_row`): the same IEEE operations as the array code,
# one number at a time, and several times faster than a dozen numpy calls on tiny arrays
# (9 inputs: ~1 against 14 us; in Python floats it took 3-5). Wider rows use numpy.
ROW_LOOP_MAX = 32

# A feature whose standard deviation is at most this fraction of its mean's magnitude is
# constant (only centred); :mod:`~stream_cl.backbones.standardize_row` defines it, for both paths.
CONSTANT_REL = standardize_row.CONSTANT_REL


class OnlineStandardizer:
    def __init__(self, clip: float = 10.0):
        self.clip = clip  # |z| is capped so one outlier cannot dominate the random features
        self.count = np.zeros(0)
        self.mean = np.zeros(0)
        self.m2 = np.zeros(0)

    @property
    def n_features(self) -> int:
        """Inputs with statistics (columns met so far)."""
        return self.count.shape[0]

    def grow(self, d: int) -> None:
        """Make room for ``d`` inputs: new ones start with no count (they read 0); never shrinks."""
        extra = d - self.n_features
        if extra > 0:
            self.count, self.mean, self.m2 = (np.concatenate([a, np.zeros(extra)]) for a in (self.count, self.mean, self.m2))

    def _z(self, X, M, count, mean, m2, raw=None) -> np.ndarray:
        safe = np.maximum(count, 1.0)
        var = m2 / safe
        # A feature seen fewer than twice has no scale yet: it reads as 0 (its mean).
        # A constant one is only centred: one whose spread is below 1e-12 of its mean (relative,
        # so a feature on a tiny scale is still scaled; var == 0 is always constant).
        std = np.sqrt(np.where(var > np.square(CONSTANT_REL * mean), var, 1.0))
        Z = np.where(M & (count >= 2), (X - mean) / std, 0.0)
        Z = np.clip(Z, -self.clip, self.clip, out=Z)
        if raw is not None:
            raw = raw[: X.shape[1]] if raw.shape[0] >= X.shape[1] else np.pad(raw, (0, X.shape[1] - raw.shape[0]))
            # clipped too: a hashed bucket claimed by a category may also receive a number (hash_width)
            ind = np.clip(INDICATOR_SCALE * X[:, raw], -self.clip, self.clip)
            Z[:, raw] = np.where(M[:, raw] & (count[..., raw] >= 1), ind, 0.0)
        return Z

    def transform(self, X: np.ndarray, M: np.ndarray | None = None, raw: np.ndarray | None = None,
                  known: bool = False):
        """Standardise rows ``X`` (b, d) with the current statistics; ``M`` marks present values,
        ``raw`` the indicator columns. ``known=True``: ``(Z, known mask)``."""
        self.grow(X.shape[1])
        d = X.shape[1]
        M = np.ones(X.shape, dtype=bool) if M is None else M
        Z = self._z(X, M, self.count[:d], self.mean[:d], self.m2[:d], raw)
        return (Z, M & (self.count[:d] >= 1)) if known else Z

    def transform_row(self, x: np.ndarray, m: np.ndarray, raw: np.ndarray | None = None):
        """:meth:`transform` of one row ``x`` (d,) with ``known=True``: ``(z (d,), known (d,))``,
        the same numbers (by the compiled loop up to ``ROW_LOOP_MAX`` inputs)."""
        d = x.shape[0]
        if d > ROW_LOOP_MAX:
            Z, K = self.transform(x[None, :], m[None, :], raw, known=True)  # (d,) -> (1, d): one row as a batch
            return Z[0], K[0]
        self.grow(d)
        return standardize_row.transform_row(x, m, self.count, self.mean, self.m2, raw, self.clip, INDICATOR_SCALE)

    def learn_row(self, x: np.ndarray, m: np.ndarray) -> None:
        """Absorb one row ``x`` (d,) whose present values ``m`` marks: :meth:`prequential` of one
        learned row without standardising it (the per-event path has its standardised row
        already), with the same arithmetic, so the statistics are bit-identical."""
        self.grow(x.shape[0])
        d = x.shape[0]
        if d <= ROW_LOOP_MAX:
            standardize_row.learn_row(x, m, self.count, self.mean, self.m2)  # in place, the first d
            if self.n_features > d:  # as the array code leaves them: the row's d statistics
                self.count, self.mean, self.m2 = self.count[:d].copy(), self.mean[:d].copy(), self.m2[:d].copy()
            return
        w = m.astype(np.float64)  # (d,)
        mu0, n0, m20 = self.mean[:d], self.count[:d], self.m2[:d]
        D = np.where(m, x - mu0, 0.0)
        s1 = w * D
        s2 = s1 * D
        n_after = n0 + w
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(n_after > 0, s1 / n_after, 0.0)
            m2_after = m20 + s2 - np.where(n_after > 0, s1 * shift, 0.0)
        self.count, self.mean, self.m2 = n_after, mu0 + shift, np.maximum(m2_after, 0.0)

    def prequential(self, X: np.ndarray, M: np.ndarray, learn: np.ndarray | None = None,
                    raw: np.ndarray | None = None, known: bool = False):
        """Standardise each row with the statistics before it, absorbing rows where ``learn``.

        Row by row in a compiled loop (:func:`~stream_cl.backbones.standardize_row.prequential_rows`)
        with :meth:`transform_row`'s and :meth:`learn_row`'s arithmetic: the statistics equal a loop
        of :meth:`learn_row` calls bit for bit, at any offset (sums of deviations from the
        batch-start mean had lost the variance of a feature far from 0, such as epoch seconds)."""
        self.grow(X.shape[1])
        b, d = X.shape
        learn = np.ones(b, dtype=bool) if learn is None else np.ascontiguousarray(learn, dtype=bool)
        if raw is not None:
            raw = np.ascontiguousarray(raw, dtype=bool)
        # copies: the statistics afterwards are the row's d columns, as a loop of learn_row leaves them
        count, mean, m2 = self.count[:d].copy(), self.mean[:d].copy(), self.m2[:d].copy()
        Z, K = standardize_row.prequential_rows(np.ascontiguousarray(X, dtype=np.float64),
                                                np.ascontiguousarray(M, dtype=bool), learn,
                                                count, mean, m2, raw, self.clip, INDICATOR_SCALE)
        self.count, self.mean, self.m2 = count, mean, m2
        return (Z, K) if known else Z

    def statistics(self) -> tuple:
        """The statistics as they are, for :meth:`restore` when a learning step is refused: the arrays
        themselves, not copies. :meth:`grow` and :meth:`prequential` replace them rather than write
        into them; :meth:`learn_row` writes into them, so no statistics taken before it restore after it."""
        return self.count, self.mean, self.m2

    def restore(self, statistics: tuple) -> None:
        """Put back what :meth:`statistics` returned (a refused learning step: :mod:`stream_cl.refusal`)."""
        self.count, self.mean, self.m2 = statistics

    def state_dict(self) -> dict:
        """The clip and copies of each input's count, mean and sum of squared deviations (d,)."""
        return {"clip": self.clip, "count": self.count.copy(), "mean": self.mean.copy(), "m2": self.m2.copy()}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict`, refusing statistics that are not one finite value per input, with
        counts and squared deviations >= 0, or a clip that is not a positive number (a NaN mean had made
        every head NaN; r93)."""
        clip = float(state["clip"])
        count, mean, m2 = (np.asarray(state[k], dtype=np.float64) for k in ("count", "mean", "m2"))
        if (count.ndim != 1 or mean.shape != count.shape or m2.shape != count.shape or not clip > 0
                or not all(np.isfinite(a).all() for a in (count, mean, m2, clip)) or (count < 0).any() or (m2 < 0).any()):
            raise ValueError(f"the standardiser's state holds counts {count.shape}, means {mean.shape}, squared "
                             f"deviations {m2.shape} and clip {clip!r}: not one finite value per input (counts and "
                             "squared deviations >= 0) and a positive clip")
        self.clip = clip
        self.count, self.mean, self.m2 = count.copy(), mean.copy(), m2.copy()
