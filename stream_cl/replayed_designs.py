"""The rows one continual step learns: the batch's own (fresh) rows and the rows replayed among
them, standardised in stream order, and their designs; a part of
:class:`~stream_cl.continual_steps.ContinualSteps` (a mixin).

Replayed rows were absorbed by the standardiser when they were fresh, so they learn nothing
from it now: a fresh row's standardised value is the same whether replayed rows come between
the fresh ones or not.

A backbone that may refuse rows (:attr:`~stream_cl.backbones.base.Backbone.may_refuse`) is
given the fresh rows first, before the buffer is offered them: a fresh row refused raises, and
the caller puts the standardiser and the index back (:class:`~stream_cl.refusal.Undo`), so the
batch changes nothing. The replayed rows go through it next. A replayed row it refuses (a row
accepted when it was fresh, standardised anew as the statistics moved) is removed from the buffer
and not learned, and the batch is learned with the other rows: restored with the buffer, the same
row came back at the next draw and every later event was refused (review r96).
"""

from __future__ import annotations

import numpy as np

from .ensemble import cat_rows
from .row_plan import RowKind, RowPlan

__all__ = ["ReplayedDesigns"]


class ReplayedDesigns:
    """The continual step's rows and designs (module docstring)."""

    def _standardised_designs(self, X, M, ys, tasks, labelled, w) -> tuple:
        """The rows of the batch ``X``, ``M`` (b, d) and those replayed among them: (designs by view,
        rows in stacking order: the fresh ones, then the replayed; the :class:`RowPlan`; labels; weights)."""
        if self.backbone_.may_refuse:
            return self._refusable_designs(X, M, ys, tasks, labelled, w)
        b = len(ys)
        plan, row_y, row_w = RowPlan(b), list(ys), list(w)
        if self.replay_ is not None:
            draw = self.replay_.interleave(X, M, ys, tasks, labelled, w)
            if len(draw.y):
                X, M = np.vstack([X, draw.X]), np.vstack([M, draw.M])
                plan.add(RowKind.REPLAYED, draw.pos)
                row_y += draw.y
                row_w += draw.w  # each at its event's weight (review r71)
        Z, K = self._in_stream_order(X, M, plan, labelled)
        views = self._views()
        return {v: D for v, D in self._designs(Z, K).items() if v in views}, plan, row_y, row_w

    def _in_stream_order(self, X, M, plan: RowPlan, labelled) -> tuple:
        """Rows ``X``, ``M`` (stacking order) standardised in the plan's order, the fresh ``labelled``
        ones learned: ``(Z, K)`` in stacking order."""
        order = plan.order()
        learn = np.zeros(plan.n_rows, dtype=bool)
        learn[: len(labelled)] = labelled  # replayed rows were absorbed by the standardiser when they were fresh
        Z, K = np.empty_like(X), np.empty_like(M)
        Z[order], K[order] = self.scaler_.prequential(X[order], M[order], learn[order], self.index_.indicator_mask,
                                                      known=True)
        return Z, K

    def _refusable_designs(self, X, M, ys, tasks, labelled, w) -> tuple:
        """:meth:`_standardised_designs` with a backbone that may refuse rows (module docstring)."""
        b, views = len(ys), self._views()
        before = self.scaler_.statistics()
        Z, K = self.scaler_.prequential(X, M, labelled, self.index_.indicator_mask, known=True)  # (b, d) each
        fresh = {v: D for v, D in self._designs(Z, K).items() if v in views}  # a refusal: the caller undoes
        plan, row_y, row_w = RowPlan(b), list(ys), list(w)
        draw = self.replay_.interleave(X, M, ys, tasks, labelled, w) if self.replay_ is not None else None
        if draw is None or not len(draw.y):
            return fresh, plan, row_y, row_w
        plan.add(RowKind.REPLAYED, draw.pos)
        self.scaler_.restore(before)  # again, the replayed rows among them: the same fresh rows, the same statistics
        Z, K = self._in_stream_order(np.vstack([X, draw.X]), np.vstack([M, draw.M]), plan, labelled)
        taken, replayed = self._replays_taken(Z[b:], K[b:], draw)
        if not taken.all():
            plan = RowPlan(b)
            plan.add(RowKind.REPLAYED, draw.pos[taken])
        kept = taken.tolist()
        row_y += [y for y, k in zip(draw.y, kept) if k]
        row_w += [v for v, k in zip(draw.w, kept) if k]  # each at its event's weight (review r71)
        if replayed is None:
            return fresh, plan, row_y, row_w
        return {v: cat_rows(fresh[v], replayed[v]) for v in views}, plan, row_y, row_w

    def _replays_taken(self, Z, K, draw) -> tuple:
        """Which replayed rows (standardised ``Z``, ``K``) the backbone takes, and their designs by
        view (``None``: none taken). Those it refuses are removed from the buffer."""
        views = self._views()
        try:
            return np.ones(len(Z), dtype=bool), {v: D for v, D in self._designs(Z, K).items() if v in views}
        except ValueError:
            pass
        taken = np.array([self._takes_row(Z[j : j + 1], K[j : j + 1]) for j in range(len(Z))], dtype=bool)
        self.replay_.forget_rows(draw.X[~taken], draw.M[~taken])
        if not taken.any():
            return taken, None
        return taken, {v: D for v, D in self._designs(Z[taken], K[taken]).items() if v in views}

    def _takes_row(self, Z, K) -> bool:
        """Whether the backbone takes the standardised row ``Z``, ``K`` (1, d)."""
        try:
            self._designs(Z, K)
        except ValueError:
            return False
        return True
