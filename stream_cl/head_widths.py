"""How wide each of :class:`~stream_cl.learner.OnlineContinualLearner`'s ridge heads is, and ``max_columns``.

A head's design (``view``) is ``"inputs"`` (a bias and one column per input) or ``"all"`` (a bias,
the backbone's outputs, then a block per input: the input and its ``key_units`` key columns; a raw
category one column, a late category none). The learner's paths give the feature index
:meth:`HeadWidths._room` (a category whose column would not fit goes to ``k=<other>``) and take new
inputs through :meth:`HeadWidths._commit_inputs` (past ``max_columns``: a ``ValueError``, nothing
changed); a merge of partitions' parts lays their columns out by :meth:`HeadWidths._layout`'s
labels. :meth:`HeadWidths._view_width` counts a head's width as :meth:`HeadWidths._view_layout`
lays it out, without a label per column.
"""

from __future__ import annotations

import numpy as np

from .column_bound import ColumnRoom, check_columns, check_held_back
from .encoding import NUMERIC
from .features import LATE

__all__ = ["HeadWidths"]


class HeadWidths:
    """The learner's head widths and column labels (module docstring); a mixin of
    :class:`~stream_cl.online_parts.OnlineParts`, reading ``heads``, ``index_``, ``backbone_``,
    ``hash_width``, ``key_units`` and ``max_columns``."""

    def _commit_inputs(self, new) -> None:
        """Index the new inputs ``new`` (a :class:`~stream_cl.features.NewColumns`), unless they would
        make a ridge head wider than ``max_columns``: then a ``ValueError``, and nothing changes."""
        self._check_new(new)
        self.index_.commit(new)

    def _check_new(self, new) -> None:
        """A ``ValueError`` if indexing the new inputs ``new`` would pass ``max_columns``; nothing changes."""
        if len(new):
            self._check_columns(list(self.index_.names) + list(new), list(self.index_.kinds) + list(new.kinds))
            check_held_back(new, self.max_columns)

    def _check_columns(self, names=None, kinds=None) -> None:
        """Every head's design width for inputs ``names`` of ``kinds`` (the index's, by default; with
        hashing the width is fixed at construction) within ``max_columns``, and the inputs within what
        a backbone of fixed width takes (``Backbone.max_inputs``)."""
        if names is None:  # hashed: the width is hash_width's, and kinds holds one entry per slot (no copy)
            names, kinds = ([], []) if self.hash_width is not None else (list(self.index_.names), list(self.index_.kinds))
        cap = getattr(self.backbone_, "max_inputs", None)
        n_inputs = self.hash_width if self.hash_width is not None else len(names)
        if cap is not None and n_inputs > cap and any(view == "all" for _, view in self.heads):
            raise ValueError(f"{n_inputs} inputs, more than the backbone takes (input_dim={cap}): raise input_dim, "
                             "or drop features in the mapping")
        bound = self.max_columns
        if bound is None:
            return
        what = f"hash_width={self.hash_width} gives" if self.hash_width is not None else f"{len(names)} inputs would give"
        for _, view in self.heads:
            check_columns(self._view_width(view, names, kinds), bound, what, f"the {view!r} head")

    def _positional_inputs(self) -> bool:
        """A backbone head's columns of a backbone with fixed input slots (``Backbone.keyed_inputs``)."""
        return not self.backbone_.keyed_inputs and any(view == "all" for _, view in self.heads)

    def _layout(self, i: int, names: list, kinds: list) -> list:
        """Labels of head ``i``'s design columns for an index with inputs ``names`` of ``kinds``."""
        return self._view_layout(self.heads[i][1], names, kinds)

    def _room(self) -> ColumnRoom | None:
        """The columns every head may still take within ``max_columns`` (the feature index sends a category
        whose own column would not fit to ``k=<other>``); ``None`` without a bound or with hashing, whose
        width is fixed. Each head's width grows as :meth:`_view_width` counts it."""
        if self.max_columns is None or self.hash_width is not None:
            return None
        views = sorted({view for _, view in self.heads})
        costs: dict = {}

        def left() -> list[int]:
            # remembered for the index as it is (its version and width): with many new categories each
            # event asks (~0.2 ms at 800 inputs)
            index, cached = self.index_, self.__dict__.get("_left_cache")
            if cached is None or cached[0] != (index.version, index.width):
                names, kinds = list(index.names), list(index.kinds)
                cached = self._left_cache = ((index.version, index.width),
                                             [self.max_columns - self._view_width(view, names, kinds) for view in views])
            return cached[1]

        def cost(kind: int) -> tuple:
            # what one input of this kind adds to each head, as _view_width counts a head (one rule)
            if kind not in costs:
                costs[kind] = tuple(self._view_width(view, [None], [kind]) - self._view_width(view, [], [])
                                    for view in views)
            return costs[kind]

        return ColumnRoom(left, cost)

    def _view_width(self, view: str, names: list, kinds: list) -> int:
        """``len(self._view_layout(view, names, kinds))`` for an index's own ``names`` and ``kinds``
        (hashed: one kind per slot, or none), counted without a label per column: the ``max_columns``
        check runs on a ``hash_width`` that may be far too large (2**28 labels took 20 GB before the
        error), so it must cost nothing in proportion to the width it refuses."""
        if self.hash_width is not None:
            n_blocks, n_raw, n_late = self.hash_width, 0, 0  # hashed slots: every one a full block
        else:
            k_arr = np.asarray(kinds, dtype=np.int64)
            n_blocks = len(names)
            raw = k_arr > NUMERIC if self.key_units else np.zeros(len(k_arr), dtype=bool)
            n_raw, n_late = int(raw.sum()), int((raw & (k_arr == LATE)).sum())
        if view == "inputs":
            return 1 + n_blocks
        m = self.key_units if self.key_units else 0
        # a raw (non-numeric) input: one column; a late category: none; any other: 1 + key_units
        return 1 + self.backbone_.out_features + (n_blocks - n_raw) * (1 + m) + (n_raw - n_late)

    def _view_layout(self, view: str, names: list, kinds: list) -> list:
        """Labels of the columns of design ``view`` for an index with inputs ``names`` of ``kinds``:
        ``[1, inputs]`` or ``[1, backbone outputs, per-input blocks]`` (see ``_designs``)."""
        keys = list(names) if self.hash_width is None else list(range(self.hash_width))
        bias = ["$bias"]
        if view == "inputs":
            return bias + [("in", k) for k in keys]
        out = bias + [("h", j) for j in range(self.backbone_.out_features)]
        m = self.key_units if self.key_units else 0
        k_arr = np.asarray(kinds, dtype=np.int64)
        raw = k_arr > NUMERIC if self.hash_width is None and m else np.zeros(len(keys), dtype=bool)
        for k, is_raw, kind in zip(keys, raw, k_arr.tolist() if len(k_arr) else [NUMERIC] * len(keys)):
            if is_raw and kind == LATE:
                continue  # a late category: no block at all
            out += [(k, u) for u in range(1 if is_raw else 1 + m)]
        return out
