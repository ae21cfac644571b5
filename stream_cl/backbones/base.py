"""What a backbone is: a map from standardised inputs to features, on a torch device."""

from __future__ import annotations

from collections.abc import Mapping

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

    def forward(self, Z: torch.Tensor, keys: list | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Features (b, out_features) of ``Z``; ``keys[j]`` names input column ``j``,
        ``mask`` (b, d_in) marks the inputs present in each event."""
        raise NotImplementedError

    @property
    def out_features(self) -> int:
        raise NotImplementedError

    def to(self, device: str) -> "Backbone":
        return self

    def identity(self) -> str:
        """What makes two backbones compute the same features (partitions of one model must
        share it): the hyperparameters, for a layer they determine (seeded random features)."""
        return repr(self)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: Mapping) -> None:
        pass
