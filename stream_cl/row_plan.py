"""The order in which a batch's rows are learned: fresh events, replayed rows, pseudo rows.

A batch of ``b`` events becomes more rows than events when replay or imbalance
compensation is on. The heads must learn them as a stream would have: event ``i``'s own
(fresh) row, then the rows replayed when event ``i`` arrived, then the pseudo rows generated
after it. :class:`RowPlan` records for every row the event it belongs to, its
:class:`RowKind` and its rank among rows of that kind at that event, and sorts them.

>>> plan = RowPlan(3)
>>> plan.add(RowKind.REPLAYED, at=np.array([0, 0, 2]))
>>> order = plan.order()
>>> [RowKind(k).name for k in plan.kinds[order]]
['FRESH', 'REPLAYED', 'REPLAYED', 'FRESH', 'FRESH', 'REPLAYED']
>>> plan.fresh_positions(order).tolist()  # where each event's own row sits
[0, 3, 4]
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

__all__ = ["RowKind", "RowPlan"]


class RowKind(IntEnum):
    """What a row is; at one event, rows are learned in this order."""

    FRESH = 0  # the event itself (the only kind that is scored)
    REPLAYED = 1  # drawn from the replay buffer when the event arrived
    PSEUDO = 2  # generated for a rare class after the event


class RowPlan:
    """Rows of a batch of ``b`` events; rows ``0..b-1`` are the events' own, in order."""

    def __init__(self, b: int):
        self.at = np.arange(b)  # (rows,) the event each row belongs to
        self.kinds = np.zeros(b, dtype=np.int64)  # (rows,) RowKind
        self.rank = np.arange(b)  # (rows,) order among the rows of its kind at its event

    @property
    def n_rows(self) -> int:
        """Rows in the plan (the events' own first)."""
        return len(self.at)

    def add(self, kind: RowKind, at: np.ndarray) -> None:
        """Append ``len(at)`` rows of ``kind``, the ``j``-th belonging to event ``at[j]``
        (rows of one kind at one event keep the order they were added in)."""
        n = len(at)
        self.at = np.concatenate([self.at, np.asarray(at, dtype=np.int64)])
        self.kinds = np.concatenate([self.kinds, np.full(n, int(kind), dtype=np.int64)])
        self.rank = np.concatenate([self.rank, np.arange(n)])

    def order(self) -> np.ndarray:
        """Row indices in learning order: by event, then kind, then rank."""
        return np.lexsort((self.rank, self.kinds, self.at))

    def fresh_positions(self, order: np.ndarray) -> np.ndarray:
        """Position in ``order`` of each event's own row (event ``i`` at ``[i]``)."""
        return np.flatnonzero(self.kinds[order] == RowKind.FRESH)

    def event_of(self, order: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """The events whose own rows sit at ``positions`` of ``order``."""
        return self.at[order][positions]
