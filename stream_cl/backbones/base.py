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
        raise NotImplementedError

    def to(self, device: str) -> "Backbone":
        return self

    def identity(self) -> str:
        """What makes two backbones compute the same features (partitions of one model must
        share it): the kind and the hyperparameters, for a layer they determine (seeded random
        features), each by its exact ``repr``. River's display ``repr``, the identity before,
        rounds floats (six decimals, one digit below 1e-4 and above 1e5): a learner of
        ``bandwidth=5.4e-5`` took the checkpoints and parts of one of ``5e-5``. The identity still
        equals that older form, so that what older releases wrote loads and merges
        (:class:`BackboneIdentity`).

        >>> from stream_cl.backbones import RandomFeatures
        >>> RandomFeatures(width=8, kind="fourier", bandwidth=5.4e-5).identity()
        "RandomFeatures(width=8, kind='fourier', bandwidth=5.4e-05, seed=0)"
        """
        params = ", ".join(f"{k}={_exact(v)}" for k, v in self._get_params().items())
        return BackboneIdentity(f"{type(self).__name__}({params})", legacy=repr(self))

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: Mapping) -> None:
        pass


class BackboneIdentity(str):
    """A backbone's :meth:`~Backbone.identity`, a ``str`` that also equals ``legacy``: the form
    that releases before this one kept (River's display ``repr``). Their checkpoints and changelog
    parts hold that form, and a backbone of the same hyperparameters must still load and merge
    them; where it rounded a float, such a state cannot tell 5e-5 from 5.4e-5 and is taken as
    before. The two forms never meet otherwise (River's has a space before its parenthesis), so
    a state written from now on is compared exactly. Kept in a state, it is written as a plain
    ``str`` (the exact form); its hash is the exact form's (not a key to look the older one up by).

    >>> ident = BackboneIdentity("B(x=5.4e-05)", legacy="B (\\n  x=5e-05\\n)")
    >>> ident == "B(x=5.4e-05)", ident == "B (\\n  x=5e-05\\n)", ident == "B(x=5e-05)", ident != "B(x=5e-05)"
    (True, True, False, True)
    """

    legacy: str | None = None

    def __new__(cls, exact: str, legacy: str | None = None):
        self = super().__new__(cls, exact)
        self.legacy = legacy
        return self

    def __eq__(self, other):
        if not isinstance(other, str):
            return NotImplemented
        return str.__eq__(self, other) or (self.legacy is not None and str.__eq__(self.legacy, str(other)))

    def __ne__(self, other):
        same = self.__eq__(other)
        return same if same is NotImplemented else not same

    __hash__ = str.__hash__


def _exact(value) -> str:
    """A hyperparameter as :meth:`Backbone.identity` spells it: its ``repr``, a numpy number's as
    Python's (``0.5``, whatever type holds it)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)
