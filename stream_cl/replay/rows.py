"""A replay buffer's stored rows and their budgets: the arrays, the width they follow, eviction
down to the capacity, and laying the rows out in another input order.

:class:`RowStore` is a part of :class:`~stream_cl.replay.ReplayBuffer` (a mixin, as
:class:`~stream_cl.replay.groups.RowGroups` is): it reads the buffer's ``max_samples`` and
``max_bytes``, evicts by the policy's ``_evict_slot`` and tells the groups of a row removed
(``_forget_if_empty``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ROW_OVERHEAD", "RowStore"]

# Bytes one stored row costs besides its inputs: time (8), group id (8), label and task references (16).
# (Its weight's reference, added later, is left out: a budget keeps the rows it kept before.) The label,
# task and weight objects are shared by the rows holding equal values (RowStore.share): a label decoded
# from each event's JSON had been an object of its own per row, unbudgeted (1 KB labels: 30 times the
# budget; review r91).
ROW_OVERHEAD = 32


class RowStore:
    """The stored rows of a replay buffer and their sample and byte budgets (module docstring)."""

    def _reset_rows(self) -> None:
        self.X_ = np.zeros((0, 0))  # (capacity, d) raw inputs; rows [:size_] are live
        self.M_ = np.zeros((0, 0), dtype=bool)  # (capacity, d) present inputs
        self.time_ = np.zeros(0, dtype=np.int64)  # (capacity,) time each row was seen
        self.gid_ = np.zeros(0, dtype=np.int64)  # (capacity,) group id (-1: the row is its own group)
        self.y_: list = []  # labels of the live rows
        self.task_: list = []  # tasks of the live rows
        self.w_: list = []  # sample weights of the live rows (a replayed row is learned at its event's)
        self.size_ = 0
        self._shared_values: dict = {}  # (type, value) -> the one object the rows holding that value share

    def share(self, value):
        """The object every stored row holding ``value`` (a label, task or weight) refers to: equal values of
        one type are one object, so a row's reference is all it costs. The table forgets values no row
        holds when it has grown past three entries a row (a new value per event: a task that is a timestamp).

        >>> store = RowStore(); store._reset_rows()
        >>> a, b = "".join(["cl", "ass"]), "".join(["cla", "ss"])  # equal, two objects
        >>> store.share(a) is store.share(b), store.share(1) is store.share(True)
        (True, False)
        """
        table = self._shared_values
        if len(table) > 3 * self.size_ + 64:
            table.clear()
            for v in (*self.y_, *self.task_, *self.w_):
                table.setdefault((type(v), v), v)
        return table.setdefault((type(value), value), value)

    # -- budgets -----------------------------------------------------------------------
    @staticmethod
    def row_bytes(d: int) -> int:
        """Bytes one stored row of ``d`` inputs counts against ``max_bytes``: 8 a value, 1 a presence flag, and
        :data:`ROW_OVERHEAD`."""
        return 9 * d + ROW_OVERHEAD

    @property
    def width_(self) -> int:
        """Inputs each stored row holds (``X_``'s columns); a narrower row offered is padded, absent and 0."""
        return self.X_.shape[1]

    @property
    def nbytes_(self) -> int:
        """Bytes the stored rows take under the budget's accounting."""
        return self.size_ * self.row_bytes(self.width_)

    def capacity(self, d: int | None = None) -> int:
        """Rows the budgets allow at ``d`` inputs (default: the current width)."""
        d = self.width_ if d is None else d
        cap = self.max_samples
        if self.max_bytes is not None:
            cap = min(cap, self.max_bytes // self.row_bytes(d))
        return max(int(cap), 0)

    def _fit_width(self, d: int) -> None:
        """Make room for rows of ``d`` inputs: evict down to the capacity at that width, then
        widen. Rows past the ones still needed are cut before the new columns are added, so
        the arrays allocated stay within the budget at the new width (not the old capacity's
        rows at the new width)."""
        cap = self.capacity(max(d, self.width_))
        keep = self._evict_to(cap)
        if d > self.width_:
            extra = d - self.width_
            self.X_ = np.pad(self.X_[:keep], ((0, 0), (0, extra)))
            self.M_ = np.pad(self.M_[:keep], ((0, 0), (0, extra)))
            self.time_, self.gid_ = self.time_[:keep], self.gid_[:keep]
        if self.size_ >= self.X_.shape[0] and self.X_.shape[0] < cap:  # full: double (not at every offer)
            grow = min(cap, max(16, 2 * self.X_.shape[0])) - self.X_.shape[0]
            self.X_ = np.pad(self.X_, ((0, grow), (0, 0)))
            self.M_ = np.pad(self.M_, ((0, grow), (0, 0)))
            self.time_ = np.pad(self.time_, (0, grow))
            self.gid_ = np.pad(self.gid_, (0, grow))

    def _evict_to(self, cap: int) -> int:
        """Evict down to ``cap`` rows; the rows the arrays keep at a new width: those in use, and
        room up to ``cap`` where it was allocated already (no more, so they stay within the budget)."""
        while self.size_ > cap:
            self._remove(self._evict_slot())
        return max(self.size_, min(cap, self.X_.shape[0]))

    def forget_rows(self, X: np.ndarray, M: np.ndarray) -> int:
        """Remove every stored row equal to a row of ``X`` (k, d), present where ``M`` says: rows the
        learner can no longer learn (its backbone refuses them as the statistics have moved), which
        would otherwise come back at every draw. Returns how many were removed.

        >>> from stream_cl.replay import ReservoirReplay
        >>> buf = ReservoirReplay(max_samples=4)
        >>> for v in (1.0, 2.0, 1.0):
        ...     buf.offer(np.array([v]), np.array([True]), "y")
        >>> buf.forget_rows(np.array([[1.0, 0.0]]), np.array([[True, False]])), buf.X_[: buf.size_].ravel().tolist()
        (2, [2.0])
        """
        d, gone = self.width_, 0
        for x, m in zip(X, M):
            if x[d:].any() or m[d:].any():  # a value past the stored columns: no stored row holds it
                continue
            live_x, live_m = self.X_[: self.size_], self.M_[: self.size_]
            for slot in np.flatnonzero((live_m == m[:d]).all(axis=1) & (live_x == x[:d]).all(axis=1))[::-1]:
                self._remove(int(slot))  # the highest first: a removal moves the last row into its slot
                gone += 1
        return gone

    # -- storage -----------------------------------------------------------------------
    def _remove(self, slot: int) -> None:
        last, gone = self.size_ - 1, int(self.gid_[slot])
        if slot != last:
            self.X_[slot], self.M_[slot] = self.X_[last], self.M_[last]
            self.time_[slot], self.gid_[slot] = self.time_[last], self.gid_[last]
            self.y_[slot], self.task_[slot], self.w_[slot] = self.y_[last], self.task_[last], self.w_[last]
        self.X_[last] = 0.0
        self.M_[last] = False
        self.y_.pop()
        self.task_.pop()
        self.w_.pop()
        self.size_ = last
        self._forget_if_empty(gone)

    def move_inputs(self, rows: np.ndarray) -> None:
        """Lay the stored rows out in another learner's input order (a partition's part merged into a
        learner that met the inputs in another order): stored input ``i`` moves to column ``rows[i]``.
        Labels, groups, times and random numbers stay as they are, so the buffer stores and draws what
        it would have; the width becomes one past the last column an input moved to. With ``max_bytes``
        the budget counts that width, as it counts the holder's inputs for every buffer."""
        d = self.width_
        rows = np.asarray(rows, dtype=np.int64)[:d]
        if len(rows) < d or (d and rows.min() < 0):
            raise ValueError(f"the replay buffer's {d} inputs need as many columns to move to, got {rows.tolist()}")
        width = int(rows.max()) + 1 if d else 0
        # wider rows cost more bytes: evict down to the capacity at the new width now, as the partition's next
        # labelled row would (the same evictions, from the same random numbers), so that no report or checkpoint
        # holds more than max_bytes; then lay out only the rows that capacity allows, as _fit_width does (all the
        # rows allocated at the old width, laid out at the new one, held 64-71x max_bytes while the gauge read
        # the rows in use)
        keep = self._evict_to(self.capacity(width))
        X, M = np.zeros((keep, width)), np.zeros((keep, width), dtype=bool)
        X[:, rows], M[:, rows] = self.X_[:keep], self.M_[:keep]  # (keep, d) into (keep, width) at columns rows
        self.X_, self.M_ = X, M
        self.time_, self.gid_ = self.time_[:keep], self.gid_[:keep]
