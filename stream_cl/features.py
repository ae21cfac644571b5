"""Turn river-style feature dicts into dense float64 rows.

Two policies, chosen by ``hash_width``:

* ``None`` (default): a growing index. Columns are added in first-seen order and
  named in :attr:`FeatureIndex.names`; a key missing from an event counts as 0.
* an int: signed feature hashing into that many columns, for unbounded key spaces.
  The hash is ``zlib.crc32`` of ``repr(key)``, stable across processes (Python's
  ``hash`` is salted per process, which would break checkpoints).

Vectorising never mutates the index: new keys are returned and committed by the
caller only once the whole batch has been validated, so a bad event cannot leave
a half-registered column behind.

>>> index = FeatureIndex()
>>> X, new = index.vectorize([{"a": 1.0, "b": 2}, {"b": 3.0, "c": True}])
>>> new
['a', 'b', 'c']
>>> index.commit(new)
>>> X.tolist()
[[1.0, 2.0, 0.0], [0.0, 3.0, 1.0]]
"""

from __future__ import annotations

import math
import numbers
import zlib
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

__all__ = ["FeatureIndex", "InvalidFeatureError", "check_feature_value"]


class InvalidFeatureError(ValueError):
    """A feature value that the model must not learn from (non-numeric, NaN, inf)."""

    def __init__(self, key: Hashable, value: object, reason: str):
        self.key, self.value, self.reason = key, value, reason
        super().__init__(f"feature {key!r}: {reason} (got {value!r:.80})")


def check_feature_value(key: Hashable, value: object) -> float:
    """Return ``value`` as a finite float or raise :class:`InvalidFeatureError`."""
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return float(value)
    if not isinstance(value, numbers.Real):
        raise InvalidFeatureError(key, value, f"expected a number, not {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise InvalidFeatureError(key, value, "not finite")
    return v


def values_array(x: Mapping, bias: bool = False) -> np.ndarray:
    """The values of ``x`` as a finite float64 array (after a leading 1.0 if ``bias``).

    Raises :class:`InvalidFeatureError` naming the first bad value.
    """
    try:
        arr = np.array([1.0, *x.values()] if bias else list(x.values()))
    except (ValueError, TypeError):  # ragged values such as lists: named by the slow path
        arr = np.zeros((0, 0))
    # numpy infers a numeric dtype only when every value is a number (bool, int, float)
    if arr.dtype.kind in "fiub" and arr.ndim == 1:
        arr = arr.astype(np.float64, copy=False)
        # one dot product instead of isfinite().all(): NaN/inf propagate (overflow of a
        # huge but finite value only sends us to the exact check below)
        if math.isfinite(arr @ arr):
            return arr
    values = [check_feature_value(k, v) for k, v in x.items()]
    return np.array([1.0, *values] if bias else values, dtype=np.float64)


def _stable_hash(key: Hashable) -> int:
    return zlib.crc32(repr(key).encode("utf-8"))


class FeatureIndex:
    """Maps feature keys to column positions (growing index or hashing)."""

    def __init__(self, hash_width: int | None = None):
        if hash_width is not None and (not isinstance(hash_width, int) or hash_width < 1):
            raise ValueError(f"hash_width must be a positive int or None, got {hash_width!r}")
        self.hash_width = hash_width
        self.names: list[Hashable] = []
        self._pos: dict[Hashable, int] = {}
        # Streams usually repeat the same keys in the same order: remember the last
        # key sequence and its columns to skip the per-key lookups.
        self._last_keys: tuple = ()
        self._last_cols = np.zeros(0, dtype=np.int64)
        self._last_in_order = False

    @property
    def width(self) -> int:
        return self.hash_width if self.hash_width is not None else len(self.names)

    def vectorize(self, xs: Sequence[Mapping]) -> tuple[np.ndarray, list]:
        """Rows for ``xs`` (shape ``(len(xs), width + len(new))``) and the keys not yet indexed.

        Raises :class:`InvalidFeatureError` for the first bad value; nothing is changed then.
        """
        X, _, new = self.vectorize_masked(xs)
        return X, new

    def vectorize_masked(self, xs: Sequence[Mapping]) -> tuple[np.ndarray, np.ndarray, list]:
        """Like :meth:`vectorize`, plus a boolean mask of the values present in each event."""
        if self.hash_width is not None:
            return self._hashed(xs)
        pos, new = self._pos, {}
        n_known = len(self.names)
        groups: dict[tuple, list[int]] = {}  # key sequence -> rows (streams repeat one sequence)
        for i, x in enumerate(xs):
            groups.setdefault(tuple(x), []).append(i)
        placed = []
        for keys, rows in groups.items():
            cols = []
            for key in keys:
                j = pos.get(key)
                if j is None:
                    j = new.get(key)
                    if j is None:
                        j = new[key] = n_known + len(new)
                cols.append(j)
            placed.append((rows, cols, self._group_values([xs[i] for i in rows], len(keys))))
        X = np.zeros((len(xs), n_known + len(new)))  # (batch, features)
        M = np.zeros(X.shape, dtype=bool)
        for rows, cols, V in placed:
            if len(rows) == len(xs) and cols == list(range(len(cols))):
                X[:, : len(cols)] = V  # the common case: every row, known columns in order
                M[:, : len(cols)] = True
            else:
                X[np.ix_(rows, cols)] = V
                M[np.ix_(rows, cols)] = True
        return X, M, list(new)

    @staticmethod
    def _group_values(xs: Sequence[Mapping], k: int) -> np.ndarray:
        """Values (len(xs), k) of events sharing one key sequence, checked all at once."""
        try:
            V = np.array([list(x.values()) for x in xs])
        except (ValueError, TypeError):
            V = np.zeros((0, 0))
        if V.dtype.kind in "fiub" and V.shape == (len(xs), k):
            V = V.astype(np.float64, copy=False)
            if np.isfinite(V).all():
                return V
        return np.stack([values_array(x) for x in xs]) if xs else np.zeros((0, k))  # names the bad value

    def vectorize_one(self, x: Mapping, bias: bool = False) -> tuple[np.ndarray, list]:
        """Fast path of :meth:`vectorize` for one event: a 1-D row, led by 1.0 if ``bias``."""
        if self.hash_width is not None:
            row = self._hashed((x,))[0][0]
            return (np.concatenate([[1.0], row]) if bias else row), []
        values = values_array(x, bias)
        off = int(bias)
        n = len(self.names)
        keys = tuple(x)
        if keys == self._last_keys:
            cols = self._last_cols
        else:
            pos = self._pos
            cols = [pos.get(key, -1) for key in keys]
            if -1 in cols:  # new keys: columns after the known ones, not remembered yet
                new = []
                for i, key in enumerate(keys):
                    if cols[i] == -1:
                        cols[i] = n + len(new)
                        new.append(key)
                return self._scatter(values, np.array(cols) + off, off + n + len(new), off), new
            cols = self._last_cols = np.array(cols, dtype=np.int64) + off
            self._last_keys = keys
            self._last_in_order = len(cols) == n and bool((cols == np.arange(off, n + off)).all())
        if self._last_in_order:  # every known feature, in index order: no scatter needed
            return values, []
        return self._scatter(values, cols, off + n, off), []

    @staticmethod
    def _scatter(values: np.ndarray, cols: np.ndarray, width: int, off: int) -> np.ndarray:
        row = np.zeros(width)
        if off:
            row[0] = 1.0
        row[cols] = values[off:]
        return row

    def _hashed(self, xs: Sequence[Mapping]) -> tuple[np.ndarray, np.ndarray, list]:
        X = np.zeros((len(xs), self.hash_width))  # (batch, hash_width)
        M = np.zeros(X.shape, dtype=bool)
        for i, x in enumerate(xs):
            for key, value in x.items():
                h = _stable_hash(key)
                # The sign bit comes from the high bits so collisions cancel in expectation.
                sign = 1.0 if (h >> 31) & 1 == 0 else -1.0
                X[i, h % self.hash_width] += sign * check_feature_value(key, value)
                M[i, h % self.hash_width] = True
        return X, M, []

    def commit(self, new_keys: Sequence[Hashable]) -> None:
        if new_keys:
            self._last_keys = ()  # cached columns may now be stale (a key became known)
        for key in new_keys:
            self._pos[key] = len(self.names)
            self.names.append(key)

    # -- state ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"hash_width": self.hash_width, "names": list(self.names)}

    @classmethod
    def from_state(cls, state: Mapping) -> "FeatureIndex":
        index = cls(state["hash_width"])
        index.commit(state["names"])
        return index
