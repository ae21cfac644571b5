"""The analytic classifier's design rows ``[1, x_1, ..., x_d]``: from dict events, one remembered
event, and straight from a pandas frame when every cell is a plain finite number.

Only a learned event may create columns (a prediction drops the keys it has not seen), and
none that would make the head wider than ``max_columns``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..column_bound import ColumnRoom, check_columns, check_held_back, single_design_room
from ..encoding import check_frame_columns, frame_rows, frame_values, memo_values

__all__ = ["AnalyticDesign"]


class AnalyticDesign:
    """Design rows of :class:`~stream_cl.heads.analytic.AnalyticClassifier` (module docstring)."""

    def _check_new(self, new) -> None:
        """A ``ValueError`` if indexing the new inputs ``new`` would pass ``max_columns``; nothing
        changes (with hashing the width was checked at construction)."""
        if len(new) and self.hash_width is None:
            n = self.index_.width + len(new)
            check_columns(1 + n, self.max_columns, f"{n} inputs would give")
            check_held_back(new, self.max_columns)

    def _room(self) -> ColumnRoom | None:
        """The columns the head may still take (a category whose own would not fit goes to ``k=<other>``)."""
        return single_design_room(self.max_columns if self.hash_width is None else None, lambda: 1 + self.index_.width)

    def _commit(self, new) -> None:
        """Index the new inputs ``new``, unless the head would pass ``max_columns`` (:meth:`_check_new`)."""
        self._check_new(new)
        self.index_.commit(new)

    def _design(self, xs: Sequence[Mapping], learn=None) -> np.ndarray:
        X, new = self.index_.vectorize(xs, learn, self._room)  # learn[i] false: no new columns for event i
        self._commit(new)
        return np.hstack([np.ones((len(xs), 1)), X])  # (b, 1 + width)

    def _design_frame(self, X: pd.DataFrame, learn: np.ndarray | None = None) -> np.ndarray:
        """Design rows (b, 1 + width) straight from a frame. ``learn`` (b,) marks the rows to be
        learned: only they create columns and use up category slots, as in a ``learn_one`` loop;
        ``None`` (prediction) drops unseen columns."""
        check_frame_columns(X)
        values = frame_values(X)
        # categories, nulls, hashing, or indicator columns a number could be named like: through the dict rows
        if values is None or self.hash_width is not None or self.index_.indicator_mask is not None:
            xs = frame_rows(X)
            if learn is not None:
                return self._design(xs, learn.tolist())
            return np.hstack([np.ones((len(xs), 1)), self.index_.vectorize(xs, [False] * len(xs), self._room)[0]])
        pos = self.index_.positions  # read-only view of the index's key -> column map
        names = X.columns.tolist()  # plain Python: indexing a pandas Index per element is slow
        if learn is not None and learn.any():  # every row has every column: a learned row creates them all
            self._commit([c for c in names if c not in pos])
        keep = [i for i, c in enumerate(names) if c in pos]
        cols = [1 + pos[names[i]] for i in keep]
        Z = np.empty((len(X), 1 + self.index_.width))  # (b, 1 + width)
        Z[:, 0] = 1.0
        if len(keep) == self.index_.width and cols == list(range(1, len(cols) + 1)):
            Z[:, 1:] = values if len(keep) == values.shape[1] else values[:, keep]  # columns in index order
        else:
            Z[:, 1:] = 0.0
            Z[:, cols] = values[:, keep]
        return Z

    def _row(self, x: Mapping) -> tuple[np.ndarray, list]:
        """The design row of ``x`` and its unseen keys.

        A prequential loop asks for the same event twice (``predict_one``, then
        ``learn_one``): the last row is remembered with the event's keys and values, and
        reused only when both are equal and it had no unseen keys.
        """
        values = memo_values(x)  # None: not to remember (a TypeError for an event that is not a mapping)
        keys, width = tuple(x), self.index_.width
        memo = self._memo
        if memo is not None and values is not None and memo[3] == width and memo[0] == keys and memo[1] == values:
            return memo[2], []
        z, new = self.index_.vectorize_one(x, bias=True, room=self._room)
        self._memo = None if new or values is None else (keys, values, z, width)  # (new: also values over the category bound)
        return z, new
