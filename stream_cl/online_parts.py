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
from .contribution import ContributionError
from .head_widths import HeadWidths
from .part_exchange import layout_positions
from .parts import PartitionedLearner

__all__ = ["OnlineParts", "LOCAL_ATTRS"]

# the learner's attributes that make up a partition's local state
LOCAL_ATTRS = ("scaler_", "sgd_", "mixer_", "replay_", "drift_", "homeostasis_", "imbalance_", "restarter_",
               "n_labelled_", "n_events_", "remixes_")


class OnlineParts(HeadWidths, PartitionedLearner):
    """The online learner's side of :class:`~stream_cl.parts.PartitionedLearner` (module docstring)."""

    def _ridge_heads(self) -> list:
        return self.heads_

    def _may_forget(self) -> bool:
        """Forgetting heads, or a drift monitor or homeostasis that may make any head forget."""
        return self.drift is not None or self.homeostasis is not None or super()._may_forget()

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
        """``attr`` of every partition's local state that has one, the active partition's last; read from
        another thread (a metrics scrape), with no swap of partitions under way (:meth:`_read_settled`)."""
        def read() -> list:
            held = [p.local[attr] for p in list(self._parts.values()) if p.local is not None]  # (one C-level copy)
            return [v for v in (*held, getattr(self, attr)) if v is not None]

        return self._read_settled(read)

    @property
    def alarms_(self) -> list:
        """Recent drift alarms of every partition, the active partition's last (oldest first in each)."""
        return [a for d in self._every_local("drift_") for a in d.alarms_]

    @property
    def n_alarms_(self) -> int:
        """Drift alarms, over every partition."""
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
        """Events held in the replay buffers, over every partition."""
        return sum(r.size_ for r in self._every_local("replay_"))

    @property
    def replay_bytes_(self) -> int:
        """The replay buffers' bytes, over every partition."""
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
        self._swap_begin()  # ``local`` swapped in for a moment: the active partition's is nowhere else (LocalSwaps)
        try:
            self._set_local(local)
            return {"scaler": self.scaler_.state_dict(), "sgd": self.sgd_.state_dict() if self.sgd_ is not None else None,
                    "mixer": self.mixer_.state_dict(), "forgetting": list(local["forgetting"]),
                    "continual": self._continual_state() if self._continual else None}
        finally:
            self._set_local(saved)
            self._swap_end()

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
        self._swap_begin()  # (as in _local_state)
        try:
            self._set_local(local)
            self._load_continual_state(state)
            local.update({a: getattr(self, a) for a in LOCAL_ATTRS})
        finally:
            self._set_local(saved)
            self._swap_end()
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
