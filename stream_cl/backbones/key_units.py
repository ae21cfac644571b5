"""Per-feature threshold units: the axis-aligned structure decision trees find.

For every input key ``j`` and each of ``m`` units: ``relu(s_jk (z_j - t_jk))`` with a
random threshold ``t_jk ~ N(0, 1)`` (on the standardised scale) and a random sign, both
seeded by the key. Outputs are masked to 0 where the feature is absent, so a key that
appears later adds columns that were exactly 0 for every earlier event: the ridge
head grows exactly. Each key's block is ``[z_j, unit_1, ..., unit_m]``, so a new key
appends ``1 + m`` columns at the end. An indicator column (``raw``: a category's 0/1)
gets no units, only ``[z_j]``: on a two-valued input every unit is an affine function
of the indicator itself, so units would add ``m`` useless columns per category.

>>> import torch
>>> units = KeyUnits(per_key=2, seed=0)
>>> Z = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
>>> units.forward(Z, ["a", "b"], torch.tensor([[True, False]])).shape  # 2 keys x (1 + 2)
torch.Size([1, 6])
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from .random_features import key_seed


class KeyUnits:
    def __init__(self, per_key: int = 4, seed: int = 0, device: str = "cpu"):
        self.per_key = per_key
        self.seed = seed
        self.device = device
        self.thresholds = np.zeros((0, per_key))  # (d_in, per_key)
        self.signs = np.zeros((0, per_key))
        self._cache: tuple | None = None

    def _grow(self, keys: list) -> None:
        t, s = [], []
        for k in keys:
            rng = np.random.default_rng([self.seed, key_seed(k), 7])
            t.append(rng.normal(size=self.per_key))
            s.append(rng.choice([-1.0, 1.0], size=self.per_key))
        self.thresholds = np.vstack([self.thresholds, t])
        self.signs = np.vstack([self.signs, s])

    def forward(self, Z: torch.Tensor, keys: list, mask: torch.Tensor, raw=None, skip=None) -> torch.Tensor:
        """Blocks ``[z_j, units_j]`` for every input: (b, d_in * (1 + per_key)); ``[z_j]`` alone for
        the inputs that ``raw`` (a numpy bool array over the inputs, or None) marks, nothing
        for those ``skip`` marks."""
        b, d = Z.shape
        if d > self.thresholds.shape[0]:
            self._grow(list(keys[self.thresholds.shape[0] : d]))
        if self._cache is None or self._cache[0] != self.thresholds.shape[0]:
            as_t = lambda a: torch.as_tensor(a, dtype=torch.float64, device=self.device)  # noqa: E731
            self._cache = (self.thresholds.shape[0], as_t(self.thresholds), as_t(self.signs))
        _, T, S = self._cache
        units = torch.relu_((Z[:, :, None] - T[:d]) * S[:d])  # (b, d, per_key)
        units.mul_(mask[:, :, None].to(units.dtype))
        out = torch.cat([Z[:, :, None], units], dim=2).reshape(b, d * (1 + self.per_key))  # (b, d*(1+m))
        if raw is None or not raw[:d].any():
            return out
        skip = np.zeros(d, dtype=bool) if skip is None else skip[:d]
        return out[:, self._kept(raw[:d], skip)]  # (b, d_numeric * (1 + m) + d_indicators kept)

    def forward_row(self, z: np.ndarray, keys: list, present: np.ndarray, raw=None, skip=None) -> np.ndarray:
        """:meth:`forward` of one CPU row in numpy: (d_in * (1 + per_key),) before dropping units."""
        d = z.shape[0]
        if d > self.thresholds.shape[0]:
            self._grow(list(keys[self.thresholds.shape[0] : d]))
        units = (z[:, None] - self.thresholds[:d]) * self.signs[:d]  # (d, per_key)
        np.maximum(units, 0.0, out=units)
        units *= present[:, None]  # (d, per_key) *= (d, 1): a missing input's units are 0
        out = np.concatenate([z[:, None], units], axis=1).reshape(d * (1 + self.per_key))  # (d * (1 + m),)
        if raw is None or not raw[:d].any():
            return out
        skip = np.zeros(d, dtype=bool) if skip is None else skip[:d]
        return out[self._kept(raw[:d], skip).numpy()]

    def _kept(self, raw: np.ndarray, skip: np.ndarray) -> torch.Tensor:
        """Output positions kept when the inputs ``raw`` marks lose their units and those ``skip``
        marks lose their block (cached: the kinds of the inputs never change, new ones append)."""
        cached = getattr(self, "_kept_cache", None)
        if (cached is not None and cached[0] == raw.shape[0] and np.array_equal(cached[1], raw)
                and np.array_equal(cached[2], skip)):
            return cached[3]
        m = 1 + self.per_key
        keep = np.ones((raw.shape[0], m), dtype=bool)
        keep[raw, 1:] = False
        keep[skip, :] = False
        idx = torch.as_tensor(np.flatnonzero(keep.ravel()), device=self.device)  # (d, m) -> (d * m,): block by block
        self._kept_cache = (raw.shape[0], raw.copy(), skip.copy(), idx)
        return idx

    def state_dict(self) -> dict:
        """Copies of the units' thresholds and signs, (inputs, per_key) each."""
        return {"thresholds": self.thresholds.copy(), "signs": self.signs.copy()}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict`, refusing units that do not fit ``per_key`` or are not finite (r93)."""
        thresholds = np.asarray(state["thresholds"], dtype=np.float64)
        signs = np.asarray(state["signs"], dtype=np.float64)
        if (thresholds.ndim != 2 or thresholds.shape[1] != self.per_key or signs.shape != thresholds.shape
                or not (np.isfinite(thresholds).all() and np.isfinite(signs).all())):
            raise ValueError(f"the key units' state holds thresholds of shape {thresholds.shape} and signs of shape "
                             f"{signs.shape}, not two (inputs, {self.per_key}) arrays of finite numbers: it is not a "
                             f"state of these units (per_key={self.per_key})")
        self.thresholds, self.signs = thresholds.copy(), signs.copy()
        self._cache = None

    def __getstate__(self):
        return {**self.__dict__, "_cache": None, "_kept_cache": None}
