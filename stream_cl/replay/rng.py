"""Counter-based random numbers whose whole state is two integers.

A checkpoint of the engine is a nested dict of arrays and scalars (no pickle), and a
restore must resume the exact random sequence. :class:`CounterRandom` draws from
fixed blocks, block ``k`` of stream ``s`` coming from ``default_rng([seed, s, k])``,
so its state is the seed and one position per stream.

>>> r = CounterRandom(seed=7)
>>> a = r.uniform(3)
>>> s = r.state_dict()
>>> b = r.uniform(5)
>>> r2 = CounterRandom.from_state(s)
>>> bool((r2.uniform(5) == b).all())
True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..state_checks import saved_count, saved_counts

__all__ = ["CounterRandom"]

BLOCK = 1024
UNIFORM, NORMAL = 0, 1


class CounterRandom:
    """Uniform and standard-normal streams addressed by position."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self.pos = [0, 0]  # next position in the uniform and normal streams
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def _block(self, stream: int, k: int) -> np.ndarray:
        key = (stream, k)
        block = self._cache.get(key)
        if block is None:
            rng = np.random.default_rng([self.seed, stream, k])
            block = rng.random(BLOCK) if stream == UNIFORM else rng.standard_normal(BLOCK)
            self._cache = {key: block, **{kk: v for kk, v in self._cache.items() if kk[0] != stream}}
        return block

    def _take(self, stream: int, n: int) -> np.ndarray:
        out = np.empty(n)
        got = 0
        p = self.pos[stream]
        while got < n:
            k, off = divmod(p, BLOCK)
            m = min(n - got, BLOCK - off)
            out[got : got + m] = self._block(stream, k)[off : off + m]
            got += m
            p += m
        self.pos[stream] = p
        return out

    def uniform(self, n: int = 1) -> np.ndarray:
        """``n`` numbers uniform on [0, 1)."""
        return self._take(UNIFORM, n)

    def normal(self, n: int = 1) -> np.ndarray:
        """``n`` standard normal numbers."""
        return self._take(NORMAL, n)

    def integers(self, high: int, n: int = 1) -> np.ndarray:
        """``n`` integers uniform on ``[0, high)``."""
        return np.minimum((self.uniform(n) * high).astype(np.int64), high - 1)

    def state_dict(self) -> dict:
        """The seed and the positions of the uniform and normal streams: all a restore needs."""
        return {"seed": self.seed, "pos": list(self.pos)}

    @classmethod
    def from_state(cls, state: Mapping) -> "CounterRandom":
        """The generator of a :meth:`state_dict`, going on from its positions; ``ValueError`` for a seed or
        positions that are not counts >= 0, or not two positions."""
        pos = saved_counts(state["pos"], "random stream positions").reshape(-1).tolist()  # (2,) flat: uniform, normal
        if len(pos) != 2:
            raise ValueError(f"saved state: random stream positions must be two (uniform, normal), got {len(pos)}")
        r = cls(saved_count(state["seed"], "random seed", maximum=None))  # default_rng refused a negative seed at the next draw
        r.pos = pos
        return r
