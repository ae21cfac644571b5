"""The trainable learner's checkpoint state: everything to resume, and a refusal of another learner's.

A state holds the network with its Adam moments, the feature index and the standardiser, the
classes, the fresh rows still waiting for their micro-batch, the continual parts' own states,
and the learner's identity: its settings, as the other learners keep theirs
(:func:`~stream_cl.part_exchange.learner_identity`). A state of a learner built otherwise
(any ``__init__`` setting but ``device`` and ``max_columns``, the continual parts' parameters
included) is refused by name before anything is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from .model_state import load_all_or_nothing
from .part_exchange import check_identity, learner_identity
from .state_checks import CORRUPT

if TYPE_CHECKING:
    from .trainable import TrainableLearner

__all__ = ["TrainableState"]


class TrainableState:
    """:meth:`state_dict` and :meth:`load_state_dict` of :class:`~stream_cl.trainable.TrainableLearner`."""

    def state_dict(self) -> dict:
        """Settings and learned state, everything a restore needs (:meth:`load_state_dict`)."""
        return {
            "identity": learner_identity(self, canonical=True),  # what _load refuses to differ from
            "index": self.index_.state_dict(), "scaler": self.scaler_.state_dict(), "classes": list(self._classes),
            **self.net_.state_dict(),  # params, m, v, t, fan_in, skipped_steps
            "n_labelled": self.n_labelled_, "n_events": self.n_events_, "n_updates": self.n_updates_,
            "pending": {"X": [r[0] for r in self._pending], "M": [r[1] for r in self._pending],
                        "y": [r[2] for r in self._pending], "task": [r[3] for r in self._pending]},
            "replay": self.replay_.state_dict() if self.replay_ is not None else None,
            "drift": self.drift_.state_dict() if self.drift_ is not None else None,
            "homeostasis": self.homeostasis_.state_dict() if self.homeostasis_ is not None else None,
            "seed": int(self.seed),  # of the weights of inputs still to come: compared at load
        }

    def load_state_dict(self, state: Mapping) -> "TrainableLearner":
        """Restore a :meth:`state_dict`, all or nothing (:func:`~stream_cl.model_state.load_all_or_nothing`):
        a state of another kind, of a learner built otherwise (:meth:`_check_settings`: the network's
        settings, read from the state itself; its ``identity``: every setting, in states written since
        it was kept), or one the learner's parts refuse, is a ``ValueError`` that changes nothing."""
        load_all_or_nothing(self, state, type(self)._load)
        return self

    def _load(self, state: Mapping) -> None:
        """Load ``state`` into this learner, in place (:meth:`load_state_dict` loads its own state back if this raises)."""
        self._check_settings(state)  # first: it names the network's settings with their values
        # every other setting, as the other learners check theirs: loaded anyway, a state of another lr,
        # micro_batch, replay or homeostasis went on under this learner's, and one of other drift params
        # ran the checkpoint's detector while _get_params() and clone() reported this one's
        check_identity(self, state.get("identity"))
        self.index_.load_state_dict(state["index"])
        self.scaler_.load_state_dict(state["scaler"])
        self._classes = list(state["classes"])
        self._pos = {y: k for k, y in enumerate(self._classes)}
        self.net_.load_state_dict(state)
        if self.net_.params and self.net_.params[-1].shape[0] != len(self._classes):  # a logit per class
            raise ValueError(f"saved state: the network has {self.net_.params[-1].shape[0]} outputs for "
                             f"{len(self._classes)} classes {CORRUPT}")
        self.n_labelled_, self.n_events_ = int(state["n_labelled"]), int(state["n_events"])
        self.n_updates_ = int(state["n_updates"])
        p = state["pending"]
        self._pending = [(np.asarray(x, dtype=np.float64).copy(), np.asarray(m, dtype=bool).copy(), y, t)
                         for x, m, y, t in zip(p["X"], p["M"], p["y"], p["task"])]
        self._load_part_states(state, ("replay", "drift", "homeostasis"))

    def _check_settings(self, state: Mapping) -> None:
        """Refuse the state of a learner built otherwise, naming the setting: a network of other
        ``hidden`` widths or ``dtype`` (read from its parameters, so older states are compared too),
        an index of another ``hash_width``, another ``seed`` (the weights of inputs still to come;
        states written before it was kept are not compared). Loaded anyway, a network of other widths
        failed at the next micro-batch, after that batch's events had been counted and dropped."""
        params = state["params"]
        theirs = {"hash_width": state["index"]["hash_width"], "seed": state.get("seed", int(self.seed))}
        if len(params):  # a network is built at the first event with inputs
            theirs["hidden"] = tuple(int(np.shape(W)[0]) for W in params[:-2:2]) or None  # each hidden layer's width
            theirs["dtype"] = str(np.asarray(params[0]).dtype)
        mine = {"hash_width": self.hash_width, "seed": int(self.seed), "hidden": self.widths_ or None, "dtype": self.dtype}
        for name, value in theirs.items():
            if value != mine[name]:
                raise ValueError(f"checkpoint and learner differ in {name}: the checkpoint's learner has {name}={value!r}, "
                                 f"this one {name}={mine[name]!r}; build the learner with the checkpoint's settings")
