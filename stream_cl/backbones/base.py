"""What a backbone is: a map from standardised inputs to features, on a torch device."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from river import base


class Backbone(base.Base):
    """Maps standardised inputs ``Z`` (b, d_in) to features (b, d_out).

    Hyperparameters are the ``__init__`` signature (river style); built state ends in
    ``_``. ``d_in`` may grow over time (new feature keys); a backbone either handles
    that (the random-feature layers give new inputs their own weights) or raises.
    Frozen backbones are pure functions of their state: the same stream gives the
    same features on a restart.
    """

    # Whether the forward pass costs little next to the ridge heads (seeded random features):
    # device="auto" then goes by the heads' width alone. A module of unknown cost (a network)
    # goes to a visible GPU, where its forward may be most of the time.
    light_forward = False

    # The most inputs the backbone takes (None: it grows with them). A learner refuses an event
    # whose new inputs would pass it before anything changes, as it refuses one past max_columns.
    max_inputs: int | None = None

    # Whether an input's weights follow its key (``keys``), not its column: then two learners that
    # met the inputs in other orders compute the same features, and their partitions' parts merge.
    # A module with fixed input slots (and any backbone that does not say so) is positional.
    keyed_inputs = False

    # Whether ``forward`` may refuse rows it is given (a ValueError: a module's non-finite features, a
    # module that fails). A learner then undoes what a learning step changed before the backbone
    # ran (:mod:`~stream_cl.refusal`), so a refused event changes nothing. True unless a backbone
    # says otherwise: the seeded random features are finite for every standardised input.
    may_refuse = True

    def forward(self, Z: torch.Tensor, keys: list | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Features (b, out_features) of ``Z``; ``keys[j]`` names input column ``j``,
        ``mask`` (b, d_in) marks the inputs present in each event."""
        raise NotImplementedError

    def forward_row(self, z: np.ndarray, keys: list | None, present: np.ndarray) -> np.ndarray:
        """Features (out_features,) of one CPU row ``z`` (d_in,) with ``present`` (d_in,) marking
        its inputs: the per-event path, where torch's per-call overhead outweighs the arithmetic.
        This default goes through :meth:`forward`; a layer with a numpy form overrides it."""
        out = self.forward(torch.as_tensor(z[None, :]), keys, torch.as_tensor(present[None, :]))  # (1, out)
        return out[0].numpy()

    @property
    def out_features(self) -> int:
        """Features per row that :meth:`forward` returns (the heads' width comes from it)."""
        raise NotImplementedError

    def to(self, device: str) -> "Backbone":
        """Move the backbone's tensors to the torch ``device``; returns the backbone (this default: as it is)."""
        return self

    def identity(self) -> str:
        """What makes two backbones compute the same features (partitions of one model must
        share it): the hyperparameters, for a layer they determine (seeded random features), as
        River displays them. That display rounds floats (six decimals, one digit below 1e-4 and
        above 1e5), so a learner also compares its backbone by exact values
        (:func:`~stream_cl.part_exchange.learner_identity`); this form is kept as it was, as
        every release compares it. A backbone whose hyperparameters do not determine it (a
        torch module's weights) overrides this with what does, exactly."""
        return repr(self)

    def state_dict(self) -> dict:
        """The built state a restore needs (this default: none); saved in the learner's checkpoint."""
        return {}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict`; ``ValueError`` for a state this backbone cannot take (this default takes any)."""
        pass
