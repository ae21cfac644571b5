"""The default learner's checkpoint state (:class:`LearnerState`, a part of
:class:`~stream_cl.learner.OnlineContinualLearner`): its identity (the settings a state must share),
the feature index, the standardiser, the backbone and key units, each ridge head's served sums and
design, the SGD head, the mixer, the continual parts' states and each partition's own.

The learner provides those parts (``index_``, ``scaler_``, ``backbone_``, ``key_units_``, ``heads_``,
``heads``, ``sgd_``, ``mixer_``, ``_continual``, ``_memo``) and, through its other parts, ``_identity``,
``_check_identity``, ``_summed_heads_state``, ``_parts_state``, ``_load_parts_state``,
``_continual_state`` and ``_load_continual_state``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from .model_state import load_all_or_nothing

__all__ = ["LearnerState"]


class LearnerState:
    """:meth:`state_dict` and :meth:`load_state_dict`, all or nothing (module docstring)."""

    def state_dict(self) -> dict:
        """Settings and learned state, everything a restore needs (:meth:`load_state_dict`)."""
        # the memo's prior scores were computed from the heads' cached W, which their state_dict drops
        # (here too): a learn_one after the checkpoint recomputes them as the restored learner does,
        # bit for bit (the memo's scores differed from a fresh W's in the last bits)
        self._memo = None
        return {
            "identity": self._identity(canonical=True),  # what load_state_dict refuses to differ from
            "index": self.index_.state_dict(),
            "scaler": self.scaler_.state_dict(),
            "backbone": self.backbone_.state_dict(),
            "key_units": self.key_units_.state_dict(),
            "heads": self._summed_heads_state([h.state_dict() for h in self.heads_]),  # sums over partitions
            "views": [view for _, view in self.heads],  # each head's design (what sufficient_statistics labels)
            **({"sgd": self.sgd_.state_dict()} if self.sgd_ is not None else {}),
            "mixer": self.mixer_.state_dict(),
            **({"continual": self._continual_state()} if self._continual else {}),
            "parts": self._parts_state(),
        }

    def load_state_dict(self, state: Mapping) -> Self:
        """Restore a :meth:`state_dict`, all or nothing (:func:`~stream_cl.model_state.load_all_or_nothing`).

        Raises ``ValueError``, changing nothing, for the state of a learner of other settings (its
        ``identity``: states written before it was kept are not compared), of another kind, or one
        the learner's parts refuse.
        """
        self._check_identity(state.get("identity"))
        load_all_or_nothing(self, state, type(self)._load)
        return self

    def _load(self, state: Mapping) -> None:
        """Load ``state`` into this learner, in place (:meth:`load_state_dict` loads its own state back if this raises)."""
        if len(state["heads"]) != len(self.heads_):
            raise ValueError(f"checkpoint has {len(state['heads'])} heads, this learner {len(self.heads_)}")
        if self._continual != ("continual" in state):  # else dropped silently, or a bare KeyError
            raise ValueError("checkpoint and learner disagree on the continual-learning parts (replay, drift, "
                             "homeostasis, imbalance): restore with the same settings")
        self._memo = None  # designs of the model before (state_dict drops it too, but this must not lean on that)
        self.index_.load_state_dict(state["index"])
        self.scaler_.load_state_dict(state["scaler"])
        self.backbone_.load_state_dict(state["backbone"])
        self.key_units_.load_state_dict(state["key_units"])
        for head, s in zip(self.heads_, state["heads"]):
            head.load_state_dict(s)
        if (self.sgd_ is not None) != ("sgd" in state):
            raise ValueError("checkpoint and learner disagree on the SGD head (sgd_lr): restore with the same settings")
        if self.sgd_ is not None:
            self.sgd_.load_state_dict(state["sgd"])
        self.mixer_.load_state_dict(state["mixer"])
        if self._continual:
            self._load_continual_state(state["continual"])
        self._load_parts_state(state.get("parts"))  # absent before partitions: one part, the first learned
