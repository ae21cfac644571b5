"""What a partition's part of :class:`~stream_cl.learner.OnlineContinualLearner` holds beside its statistics.

The ridge heads' statistics are summed over partitions (:mod:`stream_cl.parts`). The rest
depends on the order of one partition's events and is *local*: swapped in while that
partition's events are learned or predicted. Its merge rule is "each partition its own":

* the standardiser (count, mean, M2 per input): an event is standardised with its own
  partition's statistics, so its design rows do not depend on other partitions;
* the SGD head and the mixer's accuracy records: they follow the served model's own
  predictions on the partition's events;
* the continual-learning parts (replay buffer, drift detector, homeostatic need, imbalance
  records, shadow heads) and the forgetting factors they drive.

An event of a partition the learner holds no part of, or whose part has learned no event
yet, is predicted with the part that has learned the most events: a part is made by learning
(predict-only events make none), so its standardiser and SGD head have seen its events.
"""

from __future__ import annotations

import numpy as np

from .backbones import OnlineStandardizer
from .column_bound import ColumnRoom, check_columns, check_held_back
from .contribution import ContributionError
from .encoding import NUMERIC
from .features import LATE
from .part_exchange import layout_positions
from .parts import PartitionedLearner

__all__ = ["OnlineParts", "LOCAL_ATTRS"]

# the learner's attributes that make up a partition's local state
LOCAL_ATTRS = ("scaler_", "sgd_", "mixer_", "replay_", "drift_", "homeostasis_", "imbalance_", "restarter_",
               "n_labelled_", "n_events_", "remixes_")


class OnlineParts(PartitionedLearner):
    """The online learner's side of :class:`~stream_cl.parts.PartitionedLearner` (module docstring)."""

    def _ridge_heads(self) -> list:
        return self.heads_

    def _may_forget(self) -> bool:
        """Forgetting heads, or a drift monitor or homeostasis that may make any head forget."""
        return self.drift is not None or self.homeostasis is not None or super()._may_forget()

    # -- the heads' width -------------------------------------------------------------------
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

    def _sgd_in_head_order(self, P: np.ndarray) -> np.ndarray:
        """SGD probabilities (b, c_sgd) in the SGD head's class order, as (b, c) in the ridge heads'
        order: a partition's SGD head knows only the classes that partition has seen, in the order it met
        them, and the heads may have met them in another (a merged part: the heads take the order the
        other partitions' statistics keep)."""
        classes, head = list(self.sgd_.classes[: P.shape[1]]), self.heads_[0].classes
        if classes == list(head[: len(classes)]):  # its classes in the heads' order: padded with the others
            c = len(head)
            return P if P.shape[1] == c else np.pad(P, ((0, 0), (0, c - P.shape[1])))
        out = np.zeros((P.shape[0], len(head)))
        pos = {y: k for k, y in enumerate(head)}
        out[:, [pos[y] for y in classes]] = P
        return out

    # -- monitoring over every partition ------------------------------------------------------
    # A partition keeps its own drift monitor, restarter, mixer and replay buffer: the learner's
    # monitoring counts (alarms, restarts, remixes, stored rows) and report()["drift"] are over all
    # of them (ContinualMonitoring reads the active partition's only; ContinualSteps sums over
    # _every_local).
    def _every_local(self, attr: str) -> list:
        """``attr`` of every partition's local state that has one, the active partition's last."""
        held = [p.local[attr] for p in self._parts.values() if p.local is not None]
        mine = getattr(self, attr)
        return [v for v in (*held, mine) if v is not None]

    @property
    def alarms_(self) -> list:
        """Recent drift alarms of every partition, the active partition's last (oldest first in each)."""
        return [a for d in self._every_local("drift_") for a in d.alarms_]

    @property
    def n_alarms_(self) -> int:
        return sum(d.n_alarms_ for d in self._every_local("drift_"))

    @property
    def alarm_counts_(self) -> dict:
        """``{detector: {response: count}}`` over every partition."""
        total: dict = {}
        for d in self._every_local("drift_"):
            for detector, by_response in d.counts_.items():
                mine = total.setdefault(detector, {})
                for response, n in by_response.items():
                    mine[response] = mine.get(response, 0) + n
        return total

    @property
    def replay_size_(self) -> int:
        return sum(r.size_ for r in self._every_local("replay_"))

    @property
    def replay_bytes_(self) -> int:
        return sum(r.nbytes_ for r in self._every_local("replay_"))

    # -- local state ----------------------------------------------------------------------
    def _get_local(self) -> dict:
        return {**{a: getattr(self, a) for a in LOCAL_ATTRS}, "forgetting": [h.ridge.forgetting for h in self.heads_]}

    def _set_local(self, local: dict) -> None:
        for a in LOCAL_ATTRS:
            setattr(self, a, local[a])
        for head, lam in zip(self.heads_, local["forgetting"]):
            head.ridge.set_forgetting(lam)
        self._memo = None  # designs made with another partition's standardiser

    def _fresh_local(self) -> dict:
        fresh = self.clone()
        return {**{a: getattr(fresh, a) for a in LOCAL_ATTRS}, "forgetting": [float(lam) for lam, _ in self.heads]}

    def _local_state(self, local: dict) -> dict:
        saved = self._get_local()
        try:
            self._set_local(local)
            return {"scaler": self.scaler_.state_dict(), "sgd": self.sgd_.state_dict() if self.sgd_ is not None else None,
                    "mixer": self.mixer_.state_dict(), "forgetting": list(local["forgetting"]),
                    "continual": self._continual_state() if self._continual else None}
        finally:
            self._set_local(saved)

    def _local_from_state(self, state: dict, rows: np.ndarray, width: int) -> dict:
        """A local state from a contribution's, its inputs moved to ``rows`` of ``width``."""
        local = self._fresh_local()
        try:
            scaler = OnlineStandardizer()
            scaler.load_state_dict(state["scaler"])
            n = scaler.n_features
            if n > len(rows):
                raise ContributionError(f"standardiser has {n} inputs for {len(rows)} names")
            moved = {"clip": scaler.clip}
            for key in ("count", "mean", "m2"):
                a = np.zeros(width)
                a[rows[:n]] = getattr(scaler, key)
                moved[key] = a
            scaler.load_state_dict(moved)
            local["scaler_"] = scaler
            if (state["sgd"] is None) != (self.sgd_ is None):
                raise ContributionError("contribution and learner disagree on the SGD head")
            if self.sgd_ is not None:
                sgd = local["sgd_"]
                sgd.load_state_dict(state["sgd"])
                W = sgd.W  # (1 + inputs, classes): the bias row, then one per input
                moved_W = np.zeros((1 + width, W.shape[1]))
                moved_W[0] = W[0] if W.shape[0] else 0.0
                moved_W[1 + rows[: max(W.shape[0] - 1, 0)]] = W[1:]
                sgd.W = moved_W
            local["mixer_"].load_state_dict(state["mixer"])
            local["forgetting"] = [float(v) for v in state["forgetting"]]
            if (state["continual"] is None) != (not self._continual):
                raise ContributionError("contribution and learner disagree on the continual-learning parts")
            if state["continual"] is not None:
                self._load_local_continual(local, state["continual"], rows)
        except ContributionError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ContributionError(f"contribution's local state is malformed ({type(e).__name__}: {e})") from None
        return local

    def _load_local_continual(self, local: dict, state: dict, rows: np.ndarray) -> None:
        """Continual-learning state into ``local``, the replay buffer's stored inputs moved to ``rows``
        (its rows are raw inputs). Imbalance statistics and shadow heads are indexed by design
        columns: :meth:`_align_local` moves them."""
        saved = self._get_local()
        try:
            self._set_local(local)
            self._load_continual_state(state)
            local.update({a: getattr(self, a) for a in LOCAL_ATTRS})
        finally:
            self._set_local(saved)
        if local["replay_"] is not None and not np.array_equal(rows, np.arange(len(rows))):
            local["replay_"].move_inputs(rows)

    def _align_local(self, local: dict, theirs: tuple, mine: tuple) -> None:
        """Shadow heads and imbalance statistics of a contribution's ``local`` state, moved from the
        exporter's design layouts (inputs ``theirs``: names and kinds) to this learner's (``mine``),
        column by column by name, as a merge moves the heads' statistics."""
        n = len(theirs[0])
        same = list(theirs[0]) == list(mine[0][:n]) and list(theirs[1]) == list(mine[1][:n])
        if self.hash_width is not None or same:
            return  # hashed inputs, or the exporter's are this learner's first ones: layouts start with the exporter's
        restarter, imbalance = local["restarter_"], local["imbalance_"]
        try:
            if restarter is not None and restarter.shadows_:
                restarter.move_columns({i: layout_positions(self._layout(i, *theirs), self._layout(i, *mine))
                                        for i in restarter.shadows_})
            if imbalance is not None:
                imbalance.move_columns([layout_positions(self._view_layout(v, *theirs), self._view_layout(v, *mine))
                                        for v in self._views()])
        except ValueError as e:
            raise ContributionError(f"contribution's continual-learning state does not fit its inputs ({e})") from None
