"""One event's row, without the general machinery: the paths a stream's steady state takes.

:class:`OneEventRows` is a part of :class:`~stream_cl.features.FeatureIndex` (a mixin): it reads the
index's ``names``, ``_pos`` (key -> column), ``_kinds``, ``hash_width`` and ``indicator_mask``, and
falls back to its ``vectorize_masked`` for anything but finite numbers under known keys. Streams
usually repeat the same keys in the same order, so the last event's key sequence and its columns
are cached; the index empties the cache (:meth:`OneEventRows._forget_rows`) whenever its columns change.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .column_bound import RoomFactory
from .columns import NewColumns, values_array
from .encoding import NUMERIC, check_event

__all__ = ["OneEventRows"]


class OneEventRows:
    """One event's row from a feature index, with the last event's columns cached (module docstring)."""

    def _forget_rows(self) -> None:
        """Empty the caches of the last event's columns. Streams usually repeat the same keys in
        the same order: the last key sequence and its columns skip the per-key lookups. ``None``,
        not ``()``, means "nothing cached": the keys ``()`` of an empty event must not match."""
        self._last_keys: tuple | None = None
        self._last_cols = np.zeros(0, dtype=np.int64)
        self._last_in_order = False
        self._row_keys: tuple | None = None  # vectorize_row: the last event's keys, when they were the index's

    def vectorize_row(self, x: Mapping, room: RoomFactory | None = None) -> tuple[np.ndarray, np.ndarray, NewColumns]:
        """:meth:`vectorize_masked` of one event: ``(X (1, d), M (1, d), new)``, without the general
        machinery when the event holds every indexed key, in index order, with finite numbers
        (a stream's steady state)."""
        check_event(x)
        keys = tuple(x)
        if self.hash_width is None and keys != self._row_keys:
            pos = self._pos
            if (len(keys) == len(self.names) and all(pos.get(k) == i for i, k in enumerate(keys))
                    and self.indicator_mask is None):  # numbers named like indicators: the general path refuses them
                self._row_keys = keys  # every indexed key, in index order
        if keys == self._row_keys:
            values = values_array(x)
            if values is not None and values.shape[0] == len(self.names):
                return values[None, :], np.ones((1, values.shape[0]), dtype=bool), NewColumns()  # (d,) -> (1, d)
        return self.vectorize_masked((x,), room=room)

    def vectorize_one(self, x: Mapping, bias: bool = False, room: RoomFactory | None = None) -> tuple[np.ndarray, list]:
        """Fast path of :meth:`vectorize` for one event: a 1-D row, led by 1.0 if ``bias``."""
        check_event(x)
        values = values_array(x, bias) if self.hash_width is None else None
        if values is None:  # hashing, or not all finite numbers: the general path
            X, _, new = self.vectorize_masked((x,), room=room)
            return (np.concatenate([[1.0], X[0]]) if bias else X[0]), new
        off = int(bias)
        n = len(self.names)
        keys = tuple(x)
        if keys == self._last_keys:
            cols = self._last_cols
        else:
            pos = self._pos
            cols = [pos.get(key, -1) for key in keys]
            kinds = self._kinds
            # a number named like an indicator (refused there), or new keys within a bound (it counts the room)
            if any(kinds[j] > 0 for j in cols if j >= 0) or (room is not None and -1 in cols):
                X, _, new = self.vectorize_masked((x,), room=room)
                return (np.concatenate([[1.0], X[0]]) if bias else X[0]), new
            if -1 in cols:  # new keys: columns after the known ones, not remembered yet
                new = NewColumns()
                for i, key in enumerate(keys):
                    if cols[i] == -1:
                        cols[i] = n + new.add(key, NUMERIC, None)
                return self._scatter(values, np.array(cols) + off, off + n + len(new), off), new
            cols = self._last_cols = np.array(cols, dtype=np.int64) + off
            self._last_keys = keys
            self._last_in_order = len(cols) == n and bool((cols == np.arange(off, n + off)).all())
        if self._last_in_order:  # every known feature, in index order: no scatter needed
            return values, NewColumns()
        return self._scatter(values, cols, off + n, off), NewColumns()

    @staticmethod
    def _scatter(values: np.ndarray, cols: np.ndarray, width: int, off: int) -> np.ndarray:
        row = np.zeros(width)
        if off:
            row[0] = 1.0
        row[cols] = values[off:]
        return row
