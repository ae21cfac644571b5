"""The analytic classifier's checkpoint state and its partitions' layout (:class:`AnalyticState`, a part
of :class:`~stream_cl.heads.analytic.AnalyticClassifier`): one ridge head, whose design columns are the
bias and one per input, and no state of its own beside the heads' (:mod:`stream_cl.parts`).

The classifier provides ``head_``, ``index_``, ``hash_width`` and ``_memo``; :class:`~stream_cl.parts.
PartitionedLearner` provides the partitions' sums and states.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from ..model_state import load_all_or_nothing

__all__ = ["AnalyticState"]


class AnalyticState:
    """:meth:`state_dict`, :meth:`load_state_dict` and the partition hooks (module docstring)."""

    def state_dict(self) -> dict:
        """Hyperparameters and learned state; arrays are numpy float64. ``head`` holds the
        served statistics (the sums over partitions), ``parts`` each partition's."""
        head = self._summed_heads_state([self.head_.state_dict()])[0]
        return {"params": self._get_params(), "identity": self._identity(canonical=True), "index": self.index_.state_dict(),
                "head": head, "parts": self._parts_state()}

    def load_state_dict(self, state: Mapping) -> Self:
        """Restore a :meth:`state_dict`, all or nothing; the state of a classifier of other settings
        (``gamma``, ``forgetting``, ...: its ``identity``; older states are not compared) is a
        ``ValueError`` that changes nothing."""
        self._check_identity(state.get("identity"))
        load_all_or_nothing(self, state, type(self)._load)
        return self

    def _load(self, state: Mapping) -> None:
        """Load ``state`` into this classifier, in place (:meth:`load_state_dict` loads its own state back if this raises)."""
        self.index_.load_state_dict(state["index"])
        self.head_.load_state_dict(state["head"])
        self._memo = None
        self._load_parts_state(state.get("parts"))  # absent before partitions: one part, the first learned

    # -- partitions (stream_cl.parts) --------------------------------------------------------
    def _ridge_heads(self) -> list:
        return [self.head_]

    def _layout(self, i: int, names: list, kinds: list) -> list:
        """Design columns: the bias, then one per input."""
        return ["$bias", *(names if self.hash_width is None else range(self.hash_width))]

    def _get_local(self) -> dict:
        return {}

    def _set_local(self, local) -> None:
        self._memo = None

    def _fresh_local(self) -> dict:
        return {}

    def _local_state(self, local) -> None:
        return None

    def _local_from_state(self, state, rows, width) -> dict:
        return {}
