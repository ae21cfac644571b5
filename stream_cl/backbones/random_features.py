"""Frozen random-feature layers (the "buffer layer" of analytic continual learning).

``RandomFeatures`` projects standardised inputs through fixed random weights and a
nonlinearity. Units come in groups by fan-in: dense units see every input (smooth,
rotation-invariant structure, like a random-features kernel machine), while units of
fan-in 1 or 2 see one or two inputs (axis-aligned thresholds and pairwise
interactions, the structure decision trees are good at). ``kind="fourier"`` gives
random Fourier features of a Gaussian kernel instead.

The weights of input column ``j`` come from a generator seeded with ``(seed, j)``,
so an input that appears later gets weights without disturbing the others, and the
same seed gives the same layer on any machine.

>>> import torch
>>> layer = RandomFeatures(width=8, fan_in=(0, 1), seed=0)
>>> layer.forward(torch.zeros(3, 4, dtype=torch.float64)).shape
torch.Size([3, 8])
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from .base import Backbone

__all__ = ["RandomFeatures"]


class RandomFeatures(Backbone):
    """Random ReLU (or Fourier) features of width ``width``.

    Parameters
    ----------
    width
        Number of output features.
    fan_in
        Fan-in of each unit group (0 = dense); units are split evenly between groups.
    kind
        ``"relu"`` or ``"fourier"`` (``cos``, a Gaussian-kernel approximation).
    bandwidth
        Input scale of the Fourier kernel (ignored by ``relu``).
    seed
        Seed of the random weights.
    """

    def __init__(self, width: int = 512, fan_in: tuple = (0, 1, 2), kind: str = "relu", bandwidth: float = 1.0, seed: int = 0):
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width!r}")
        if kind not in ("relu", "fourier"):
            raise ValueError(f"kind must be 'relu' or 'fourier', got {kind!r}")
        if not fan_in or any(int(k) != k or k < 0 for k in fan_in):
            raise ValueError(f"fan_in must be a non-empty tuple of ints >= 0, got {fan_in!r}")
        self.width = width
        self.fan_in = tuple(fan_in)
        self.kind = kind
        self.bandwidth = bandwidth
        self.seed = seed
        self.device_ = "cpu"
        self.d_built_ = 0  # inputs present when the layer was built (sets scale and sparse wiring)
        self.weight_ = np.zeros((0, width))  # (d_in, width)
        self.bias_ = np.zeros(width)
        self._cache: tuple | None = None  # (rows, tensor W, tensor b) on device

    @property
    def out_features(self) -> int:
        return self.width

    def _groups(self) -> list[tuple[int, slice]]:
        k, n = len(self.fan_in), self.width
        bounds = [round(i * n / k) for i in range(k + 1)]
        return [(f, slice(bounds[i], bounds[i + 1])) for i, f in enumerate(self.fan_in)]

    def _build(self, d: int) -> None:
        rng = np.random.default_rng([self.seed, 1 << 30])
        W = np.zeros((d, self.width))
        b = np.zeros(self.width)
        for fan, units in self._groups():
            n = units.stop - units.start
            if fan == 0 or self.kind == "fourier":
                continue  # dense weights come per input column, below
            k = min(fan, d)
            for u in range(units.start, units.stop):
                cols = rng.choice(d, size=k, replace=False)
                W[cols, u] = rng.normal(size=k) / math.sqrt(k)
            b[units] = rng.normal(size=n)
        self.d_built_ = d
        self.weight_, self.bias_ = W, b
        dense = self._dense_units()
        if self.kind == "fourier":
            b[:] = rng.uniform(0, 2 * math.pi, size=self.width)
        else:
            b[dense] = rng.uniform(-1, 1, size=dense.sum())
        self._add_dense_rows(0, d)

    def _dense_units(self) -> np.ndarray:
        mask = np.zeros(self.width, dtype=bool)
        for fan, units in self._groups():
            if fan == 0 or self.kind == "fourier":
                mask[units] = True
        return mask

    def _add_dense_rows(self, start: int, stop: int) -> None:
        dense = self._dense_units()
        scale = 1.0 / math.sqrt(max(self.d_built_, 1))
        if self.kind == "fourier":
            scale = 1.0 / self.bandwidth
        for j in range(start, stop):
            rng = np.random.default_rng([self.seed, j])
            self.weight_[j, dense] = rng.normal(size=dense.sum()) * scale

    def _ensure_inputs(self, d: int) -> None:
        if self.d_built_ == 0:
            self._build(d)
        elif d > self.weight_.shape[0]:
            old = self.weight_.shape[0]
            self.weight_ = np.vstack([self.weight_, np.zeros((d - old, self.width))])
            self._add_dense_rows(old, d)

    def to(self, device: str) -> "RandomFeatures":
        self.device_ = device
        self._cache = None
        return self

    def forward(self, Z: torch.Tensor) -> torch.Tensor:
        d = Z.shape[1]
        self._ensure_inputs(d)
        if self._cache is None or self._cache[0] != self.weight_.shape[0]:
            W = torch.as_tensor(self.weight_, dtype=torch.float64, device=self.device_)
            b = torch.as_tensor(self.bias_, dtype=torch.float64, device=self.device_)
            self._cache = (self.weight_.shape[0], W, b)
        _, W, b = self._cache
        pre = torch.addmm(b, Z, W[:d])  # (b, width)
        if self.kind == "relu":
            return torch.relu_(pre)
        return torch.cos_(pre).mul_(math.sqrt(2.0 / self.width))

    def state_dict(self) -> dict:
        return {"d_built": self.d_built_, "weight": self.weight_.copy(), "bias": self.bias_.copy()}

    def load_state_dict(self, state: Mapping) -> None:
        self.d_built_ = int(state["d_built"])
        self.weight_ = np.asarray(state["weight"], dtype=np.float64).copy()
        self.bias_ = np.asarray(state["bias"], dtype=np.float64).copy()
        self._cache = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = None  # tensors on a device are rebuilt, not pickled
        return state
