"""A partition's part of a learner with ridge heads, and heads set to the sum of parts.

:class:`PartStats` holds one partition's additive statistics for one head, :class:`Part` a
partition's part (its statistics per head and its local state), and :func:`install` sets a
head to the sum of parts (:func:`sum_parts`). :mod:`stream_cl.parts` routes events to the
parts; :mod:`stream_cl.part_exchange` moves parts between learners.
"""

from __future__ import annotations

import numpy as np

from .checks import holds_missing
from .contribution import ContributionError

__all__ = ["PartStats", "Part", "check_partition", "sum_parts", "install"]


class PartStats:
    """One partition's additive statistics for one ridge head, in the learner's column layout."""

    def __init__(self, la, A=None, B=None, counts=None, n_rows: int = 0, anchor: tuple | None = None):
        self.la = la
        self.A = la.zeros(0, 0) if A is None else A  # (d, d)
        self.B = la.zeros(0, 0) if B is None else B  # (d, c)
        self.counts = np.zeros(0) if counts is None else np.asarray(counts, dtype=np.float64)  # (c,)
        self.n_rows = n_rows
        # (decay, rows_since_anchor) of the head it was copied from, when it is a learner's only part:
        # installed alone, the head goes on with them (a forgetting head's ridge term and anchor
        # schedule), so a restart from the changelog gives the model an uninterrupted run has
        self.anchor = anchor

    @classmethod
    def from_head(cls, head) -> "PartStats":
        """A copy of a head's statistics (a learner's only part so far)."""
        la, ridge = head.la, head.ridge
        B = la.pad(ridge.B, 0, len(head.counts) - ridge.B.shape[1])  # classes added since it last learned
        return cls(la, la.own(ridge.A.clone() if hasattr(ridge.A, "clone") else ridge.A.copy()), la.own(B),
                   np.array(head.counts, dtype=np.float64), ridge.n_rows, (ridge.decay, ridge.rows_since_anchor))

    def _grow(self, d: int, c: int) -> None:
        la = self.la
        dd, dc = d - self.A.shape[0], c - self.B.shape[1]
        if dd > 0:
            self.A = la.pad(self.A, dd, dd)
            self.B = la.pad(self.B, dd, 0)
        if dc > 0:
            self.B = la.pad(self.B, 0, dc)
            self.counts = np.pad(self.counts, (0, dc))

    def absorb(self, X, Y, w, forgetting: float) -> None:
        """Learn rows ``X`` (b, d) with one-hot targets ``Y`` (b, c) and weights ``w`` (b,) or None,
        in order: ``A = l^b A + X' diag(w_i l^(b-1-i)) X`` (the ridge's own update)."""
        la = self.la
        b = X.shape[0]
        self._grow(X.shape[1], Y.shape[1])
        w = np.ones(b) if w is None else np.asarray(w, dtype=np.float64)
        scale = forgetting**b
        dw = w * forgetting ** np.arange(b - 1, -1, -1, dtype=np.float64)  # (b,)
        dwt = la.asarray(dw)
        if scale != 1.0:
            self.A *= scale
            self.B *= scale
        if b == 1:
            # one row (the per-event path): rank-1 updates in place; the product below makes a (d, d)
            # temporary per row, which was 40% of learning one event with several partitions
            la.ger_(self.A, dw[0], X[0], X[0])  # A += w x x'
            la.ger_(self.B, dw[0], X[0], Y[0])  # B += w x y'
        else:
            self.A += (X.T * dwt) @ X
            self.B += (X.T * dwt) @ Y
        self.counts += la.to_numpy((Y.T * la.asarray(w)).sum(axis=1))
        self.n_rows += b

    def aligned(self, rows: np.ndarray, d: int, cols: np.ndarray, c: int) -> "PartStats":
        """These statistics moved to another layout: input ``i`` goes to ``rows[i]`` of ``d``, class ``k``
        to ``cols[k]`` of ``c``. An input with ``rows[i] < 0`` has no column there and is left out: the
        rest are the statistics of the design without it, exactly (the Gram matrix of fewer columns)."""
        la = self.la
        A_in, B_in = la.to_numpy(self.A), la.to_numpy(self.B)
        keep = rows >= 0
        if not keep.all():
            A_in, B_in, rows = A_in[np.ix_(keep, keep)], B_in[keep], rows[keep]
        A, B = np.zeros((d, d)), np.zeros((d, c))
        A[np.ix_(rows, rows)] = A_in
        B[np.ix_(rows, cols)] = B_in
        counts = np.zeros(c)
        counts[cols] = self.counts
        return PartStats(la, la.own(la.asarray(A)), la.own(la.asarray(B)), counts, self.n_rows, self.anchor)

    def state_dict(self) -> dict:
        """Numpy copies of ``A`` (d, d), ``B`` (d, c) and the class counts (c,), the rows learned, and the
        anchor where there is one."""
        la = self.la
        state = {"A": la.to_numpy(self.A).copy(), "B": la.to_numpy(self.B).copy(), "counts": self.counts.copy(),
                 "n_rows": self.n_rows}
        if self.anchor is not None:
            state["anchor"] = [float(self.anchor[0]), int(self.anchor[1])]
        return state

    @classmethod
    def from_state(cls, la, state) -> "PartStats":
        """Statistics on the path ``la`` from a :meth:`state_dict`, checked first: a
        :class:`~stream_cl.contribution.ContributionError` for shapes that disagree, values that are not
        finite or past :data:`MAX_STATISTIC`, negative counts or an invalid anchor."""
        A, B = (np.asarray(state[k], dtype=np.float64) for k in ("A", "B"))
        counts = np.asarray(state["counts"], dtype=np.float64).reshape(-1)  # (c,)
        d, c = B.shape
        if A.shape != (d, d) or counts.shape != (c,):
            raise ContributionError(f"inconsistent part statistics: A {A.shape}, B {B.shape}, counts {counts.shape}")
        if not (np.isfinite(A).all() and np.isfinite(B).all() and np.isfinite(counts).all()):
            raise ContributionError("part statistics hold NaN or infinite values")
        # a learner's own statistics stay within it (values within 1e100, weights within base_learner.MAX_WEIGHT,
        # 1e50: w x x' within 1e250 a row), and a part past it, summed with others and solved, made every
        # prediction NaN or 0.5 (review r74 F2)
        if A.size and np.abs(A).max() > MAX_STATISTIC or B.size and np.abs(B).max() > MAX_STATISTIC:
            raise ContributionError(f"part statistics hold values past ±{MAX_STATISTIC:g}, which no learner makes")
        n_rows = int(state["n_rows"])
        if n_rows < 0 or (counts < 0).any():
            raise ContributionError("part statistics hold a negative count")
        anchor = state.get("anchor")  # absent in older parts, and in parts of a learner of several
        if anchor is not None:
            anchor = (float(anchor[0]), int(anchor[1]))
            if not (0.0 < anchor[0] <= 1.0 and anchor[1] >= 0):
                raise ContributionError(f"part statistics hold an invalid anchor {anchor!r}")
        return cls(la, la.own(la.asarray(A.copy())), la.own(la.asarray(B.copy())), counts.copy(), n_rows, anchor)


MAX_STATISTIC = 1e300  # the largest value a part's statistics may hold (PartStats.from_state)


class Part:
    """A partition's part: its statistics per head (``None`` while the heads are its only copy),
    its local state (``None`` while it is the one swapped in), its event count, and the classes its
    own learned events brought, in the order they came. The classes are kept apart from the
    statistics, which a drift reset starts anew."""

    def __init__(self, stats=None, local=None, events: int = 0, classes: list = ()):
        self.stats = stats
        self.local = local
        self.events = events
        self.set_classes(classes)

    def set_classes(self, classes: list) -> None:
        """The classes its own events brought are ``classes``."""
        self.classes = list(classes)
        self._known = set(classes)

    def met(self, labels) -> None:
        """Add the classes of ``labels`` (learned events' labels) not met before."""
        for y in labels:
            if y not in self._known:
                self._known.add(y)
                self.classes.append(y)


def classes_with_rows(classes: list, counts) -> list:
    """The ``classes`` whose weight of rows in ``counts`` (a prefix of them) is positive: what statistics
    show a part has met (a part from before its classes were kept).

    >>> classes_with_rows(["a", "b", "c"], [2.0, 0.0])
    ['a']
    """
    return [k for k, n in zip(classes, list(counts)) if n > 0]


def sum_parts(head, parts: list[PartStats]) -> PartStats:
    """The sum of ``parts``' statistics, in ``head``'s layout widened to the widest of them."""
    la = head.la
    d = max([head.ridge.n_features] + [p.A.shape[0] for p in parts])
    c = max([len(head.classes)] + [p.B.shape[1] for p in parts])
    A, B, counts, n = la.zeros(d, d), la.zeros(d, c), np.zeros(c), 0
    for p in parts:
        dp, cp = p.B.shape
        A[:dp, :dp] += p.A
        B[:dp, :cp] += p.B
        counts[: p.counts.shape[0]] += p.counts
        n += p.n_rows
    return PartStats(la, A, B, counts, n)


def install(head, parts: list[PartStats]) -> None:
    """Set ``head`` to the sum of ``parts``, re-anchored (unless the one part installed carries its
    head's anchor: then the head goes on from it, as if never interrupted). The inverse is dropped,
    not rebuilt: ``R`` is computed from the installed ``A`` when next read (one d^3 inverse), and a
    batch works from the factor of ``A`` instead."""
    total = sum_parts(head, parts)
    ridge = head.ridge
    d, c = total.B.shape
    ridge.grow(d, c)
    ridge.A, ridge.B = ridge.la.own(total.A), ridge.la.own(total.B)
    ridge.n_rows = total.n_rows
    ridge.refresh()
    if len(parts) == 1 and parts[0].anchor is not None:
        ridge.decay, ridge.rows_since_anchor = parts[0].anchor
    head.counts = np.pad(total.counts, (0, max(len(head.classes) - c, 0)))[: len(head.classes)].tolist()
    head.approximate = False


def check_partition(partition) -> None:
    """Refuse a partition key that cannot name a part: an unhashable one (it failed half way, after
    the learner had gone over to several parts), or a missing value (NaN, ``pd.NA``, ``NaT``): a NaN
    is unequal to itself, so each event's NaN made a part of its own.

    >>> check_partition("events/0"), check_partition(None)
    (None, None)
    >>> check_partition(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: partition is missing (nan): name the source partition with an int or a string, or None for one partition
    """
    try:
        hash(partition)
    except TypeError:
        raise TypeError(f"partition must be hashable, got {type(partition).__name__} {partition!r}: name the "
                        "source partition with an int or a string, or None for one partition") from None
    if holds_missing(partition):  # alone or in a tuple (r101)
        raise ValueError(f"partition is missing ({partition!r}): name the source partition with an int or a "
                         "string, or None for one partition")
