"""Frozen random-feature layers (the "buffer layer" of analytic continual learning).

``RandomFeatures`` projects standardised inputs through fixed random weights and a
nonlinearity: ``relu(Z W / sqrt(n) + b)`` with ``n`` the number of inputs present in the
event, or random Fourier features ``sqrt(2/width) cos(Z W / bandwidth + b)`` of a
Gaussian kernel.

The weights of an input come from a generator seeded with ``seed`` and a stable hash
of the input's *key*, not its position: an input that appears later gets weights
without disturbing the others, the order in which keys arrive does not matter, and
the same seed gives the same layer on any machine. Nothing depends on which events
came first, so a batch gives exactly what a loop over its events gives.

>>> import torch
>>> layer = RandomFeatures(width=8, seed=0)
>>> layer.forward(torch.zeros(3, 4, dtype=torch.float64), keys=["a", "b", "c", "d"]).shape
torch.Size([3, 8])
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

import numpy as np
import torch

from ..bounds import POSITIVE, is_positive
from ..checks import check_int
from .base import Backbone

__all__ = ["RandomFeatures", "key_seed"]


def key_seed(key) -> int:
    """A stable 32-bit seed for a feature key (``repr`` hashed with CRC-32)."""
    return zlib.crc32(repr(key).encode("utf-8"))


class RandomFeatures(Backbone):
    """Random ReLU (or Fourier) features of width ``width``.

    Parameters
    ----------
    width
        Number of output features.
    kind
        ``"relu"`` or ``"fourier"``.
    bandwidth
        Input scale of the Fourier kernel (ignored by ``relu``).
    seed
        Seed of the random weights.
    """

    light_forward = True  # one product and a ReLU: the heads decide the device (Backbone.light_forward)
    keyed_inputs = True  # each key draws its own weights (Backbone.keyed_inputs)
    may_refuse = False  # finite weights of clipped inputs: finite features (Backbone.may_refuse)

    def __init__(self, width: int = 512, kind: str = "relu", bandwidth: float = 1.0, seed: int = 0):
        check_int(width, "width", 0, "512 (0: no random features)")  # numpy's ints taken, True refused (r117)
        if kind not in ("relu", "fourier"):
            raise ValueError(f"kind must be 'relu' or 'fourier', got {kind!r}")
        if not is_positive(bandwidth):  # a subnormal one made the features NaN (z / 1e-310 is inf; r96)
            raise ValueError(f"bandwidth must be {POSITIVE}, got {bandwidth!r}; use e.g. 1.0")
        self.width = width
        self.kind = kind
        self.bandwidth = bandwidth
        self.seed = seed
        self.device_ = "cpu"
        self.weight_ = np.zeros((0, width))  # (d_in, width), rows in input-column order
        rng = np.random.default_rng([seed, 1 << 30])
        self.bias_ = rng.uniform(0, 2 * math.pi, width) if kind == "fourier" else rng.uniform(-1, 1, width)
        self._cache: tuple | None = None  # (rows, W, b) as tensors on the device

    @property
    def out_features(self) -> int:
        """``width``."""
        return self.width

    def _add_rows(self, keys: list) -> None:
        if not keys:
            return
        rows = np.stack([np.random.default_rng([self.seed, key_seed(k)]).normal(size=self.width) for k in keys])
        self.weight_ = np.vstack([self.weight_, rows])

    def to(self, device: str) -> "RandomFeatures":
        """Compute on the torch ``device`` from now on (the weights are copied there at the next forward);
        returns ``self``."""
        self.device_ = device
        self._cache = None
        return self

    def forward(self, Z: torch.Tensor, keys: list | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`Backbone.forward`: float64 features (b, width) of ``Z`` (b, d), drawing the weights of inputs
        not met before from their ``keys`` (default: their positions); ``mask`` (b, d) counts each row's inputs
        present for the ReLU's scale (default: all ``d``)."""
        d = Z.shape[1]
        keys = list(range(d)) if keys is None else list(keys[:d])
        if d > self.weight_.shape[0]:
            self._add_rows(keys[self.weight_.shape[0] :])
        if self._cache is None or self._cache[0] != self.weight_.shape[0]:
            W = torch.as_tensor(self.weight_, dtype=torch.float64, device=self.device_)
            b = torch.as_tensor(self.bias_, dtype=torch.float64, device=self.device_)
            self._cache = (self.weight_.shape[0], W, b)
        _, W, b = self._cache
        pre = Z @ W[:d]  # (b, width)
        if self.kind == "fourier":
            return torch.cos_(pre.div_(self.bandwidth).add_(b)).mul_(self._fourier_scale())
        # Dividing by sqrt(inputs present) keeps unit variance whatever the event's width.
        present = (mask.sum(dim=1, keepdim=True) if mask is not None else torch.full((Z.shape[0], 1), d, device=Z.device))
        return torch.relu_(pre.div_(present.clamp_(min=1).to(pre.dtype).sqrt_()).add_(b))

    def forward_row(self, z: np.ndarray, keys: list | None, present: np.ndarray) -> np.ndarray:
        """:meth:`forward` of one row in numpy (width,), the same arithmetic: the product is summed
        over the inputs in order (``einsum``, as the torch CPU kernel sums), then scaled and shifted."""
        d = z.shape[0]
        if d > self.weight_.shape[0]:
            self._add_rows(list(range(d) if keys is None else keys[:d])[self.weight_.shape[0] :])
        pre = np.einsum("i,ij->j", z, self.weight_[:d])  # (width,)
        if self.kind == "fourier":
            pre /= self.bandwidth
            pre += self.bias_
            return np.cos(pre, out=pre) * self._fourier_scale()
        pre /= math.sqrt(max(float(np.count_nonzero(present)), 1.0))
        pre += self.bias_
        return np.maximum(pre, 0.0, out=pre)

    def _fourier_scale(self) -> float:
        """``sqrt(2 / width)``: unit variance of the features together (width 0: none to scale)."""
        return math.sqrt(2.0 / self.width) if self.width else 0.0

    def state_dict(self) -> dict:
        """Copies of the weights (inputs, width) and the bias (width,)."""
        return {"weight": self.weight_.copy(), "bias": self.bias_.copy()}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict`, refusing weights that do not fit ``width`` or are not finite (a
        short bias had the compiled row read past its end; a NaN weight made every head NaN; r93)."""
        weight = np.asarray(state["weight"], dtype=np.float64)
        bias = np.asarray(state["bias"], dtype=np.float64)
        if (weight.ndim != 2 or weight.shape[1] != self.width or bias.shape != (self.width,)
                or not (np.isfinite(weight).all() and np.isfinite(bias).all())):
            raise ValueError(f"the random features' state holds weights of shape {weight.shape} and a bias of shape "
                             f"{bias.shape}, not (inputs, {self.width}) and ({self.width},) of finite numbers: it is "
                             "not a state of this backbone (width={self.width})")
        self.weight_, self.bias_ = weight.copy(), bias.copy()
        self._cache = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = None  # tensors on a device are rebuilt, not pickled
        return state
