"""Mixing several heads by their recent prequential accuracy.

Each head's accuracy is an exponential moving average of its test-then-train hits;
the mixture weights are ``softmax(sharpness * accuracy)``. Over a batch, the weights
each row sees (those before its own hit is counted) follow a linear recurrence, so
they are computed in closed form rather than row by row.

>>> import numpy as np
>>> mixer = AccuracyMixer(2, decay=0.5, sharpness=10.0)
>>> hits = np.array([[True, False], [True, False]])
>>> w = mixer.prequential(hits, np.array([True, True]))
>>> w.round(3).tolist()  # equal at first, then the first head leads
[[0.5, 0.5], [0.993, 0.007]]
>>> mixer.accuracy.tolist()
[0.75, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .bounds import OPEN_UNIT
from .checks import check_nonnegative, is_open_unit


class AccuracyMixer:
    """``decay`` and ``sharpness`` are the learner's ``mix_decay`` and ``mix_sharpness``, refused
    here under those names: a NaN or infinite sharpness made every weight NaN (every probability
    0), a negative one followed the least accurate head."""

    def __init__(self, n_heads: int, decay: float = 0.99, sharpness: float = 100.0):
        if not is_open_unit(decay):
            raise ValueError(f"mix_decay {OPEN_UNIT}, got {decay!r}; use e.g. 0.995")
        check_nonnegative(sharpness, "mix_sharpness", 100.0)
        self.decay = decay
        self.sharpness = sharpness
        self.accuracy = np.zeros(n_heads)

    def weights(self, accuracy: np.ndarray | None = None) -> np.ndarray:
        """``softmax(sharpness * accuracy)`` over the last axis: (h,) for the current accuracy (the default),
        or the same shape as ``accuracy`` given, e.g. (b, h)."""
        a = self.sharpness * (self.accuracy if accuracy is None else accuracy)
        e = np.exp(a - a.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def prequential(self, hits: np.ndarray, labelled: np.ndarray) -> np.ndarray:
        """Weights (b, h) each row saw; then absorb the labelled rows' ``hits`` (b, h).

        The closed form raises ``q`` to powers up to the number of labelled rows, so a batch
        with more than :meth:`chunk_rows` labelled rows is taken in consecutive chunks of that
        many (the accuracy carried from one to the next); shorter batches are one chunk."""
        hits, labelled = np.asarray(hits), np.asarray(labelled, dtype=bool)
        m = self.chunk_rows()
        if int(labelled.sum()) <= m:
            return self._prequential_chunk(hits, labelled)
        k = np.cumsum(labelled) - labelled
        starts = [0, *(np.flatnonzero(np.diff(k // m)) + 1).tolist(), len(labelled)]
        return np.concatenate([self._prequential_chunk(hits[a:z], labelled[a:z]) for a, z in zip(starts[:-1], starts[1:])])

    def chunk_rows(self) -> int:
        """The most labelled rows one closed-form step takes: ``q ** -n`` stays below ``e ** 700``
        (float64 overflows past ``e ** 709``)."""
        return max(1, int(700.0 / -np.log(self.decay)))

    def _prequential_chunk(self, hits: np.ndarray, labelled: np.ndarray) -> np.ndarray:
        q = self.decay
        k = np.cumsum(labelled) - labelled  # labelled rows before each row
        # acc_before[i] = q^k_i (acc0 + (1 - q) sum_{j<i labelled} hit_j q^-(k_j + 1))
        # written relative to the last row's exponent to stay in range for long batches
        n = int(labelled.sum())
        contrib = np.where(labelled[:, None], hits, 0.0) * (q ** (n - k - 1))[:, None]  # (b, h)
        # exclusive sums by a shift: each row's term is 1/q times the last's, so subtracting it from the
        # inclusive sum lost its digits (mix_decay 1e-8: batch and loop 1e-7 apart; review r92)
        csum = np.zeros_like(contrib)  # (b, h)
        np.cumsum(contrib[:-1], axis=0, out=csum[1:])
        before = (q ** k)[:, None] * self.accuracy + (1 - q) * csum * (q ** (k - n).astype(float))[:, None]  # (b, h)
        self.accuracy = (q**n) * self.accuracy + (1 - q) * contrib.sum(axis=0)
        return self.weights(before)

    def absorb(self, hits) -> None:
        """Absorb one labelled row's ``hits`` (h bools): :meth:`prequential` of one row, the same
        arithmetic (``q a + (1 - q) h`` per head, in Python floats: a few numbers, no array calls)."""
        q = self.decay
        self.accuracy = np.array([q * a + (1 - q) * (1.0 if h else 0.0) for a, h in zip(self.accuracy.tolist(), hits, strict=True)])

    def reset(self) -> None:
        """Forget the accuracy record: equal weights until new hits tell the heads apart."""
        self.accuracy = np.zeros_like(self.accuracy)

    def state_dict(self) -> dict:
        """The settings and a copy of each head's accuracy (h,)."""
        return {"decay": self.decay, "sharpness": self.sharpness, "accuracy": self.accuracy.copy()}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore the accuracies of :meth:`state_dict`; this mixer's ``decay`` and ``sharpness`` stay."""
        self.accuracy = np.asarray(state["accuracy"], dtype=np.float64).copy()
