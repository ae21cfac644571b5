"""What a feature index's vectorisation hands back: the kinds of columns beyond
:mod:`stream_cl.encoding`'s (``LATE``), the keys it found unindexed (:class:`NewColumns`), and an
event's values as one array when they are all numbers (:func:`values_array`, the fast paths' test).

>>> values_array({"a": 1, "b": 2.5}).tolist(), values_array({"a": "red"})
([1.0, 2.5], None)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .encoding import CATEGORY, MAX_ABS_VALUE, NUMERIC

__all__ = ["LATE", "NewColumns", "values_array"]

# Column kinds (NUMERIC, CATEGORY, SHARED from stream_cl.encoding), and a category's own
# indicator beyond the first KEYED_CATEGORIES of its feature.
LATE = 3

_MAX_SQUARES = MAX_ABS_VALUE**2  # values_array's one test: a sum of squares this small has no value over the bound


def values_array(x: Mapping, bias: bool = False) -> np.ndarray | None:
    """The values of ``x`` as a float64 array (after a leading 1.0 if ``bias``), or
    ``None`` unless every value is a number (bool, int, float) within ``MAX_ABS_VALUE``
    (the exact path, :func:`~stream_cl.encoding.flatten`, then says what is wrong)."""
    try:
        arr = np.array([1.0, *x.values()] if bias else list(x.values()))
    except (ValueError, TypeError):  # ragged values such as lists
        return None
    # numpy infers a numeric dtype only when every value is a number (bool, int, float)
    if arr.dtype.kind in "fiub" and arr.ndim == 1:
        arr = arr.astype(np.float64, copy=False)
        # one dot product instead of a test per value: NaN and inf propagate into it, and a
        # sum of squares within the bound's square puts every value within the bound (a sum
        # over it only sends us to the test per value)
        if arr @ arr <= _MAX_SQUARES or (np.abs(arr) <= MAX_ABS_VALUE).all():
            return arr
    return None


class NewColumns(list):
    """The keys a vectorisation found unindexed (a list), with what :meth:`FeatureIndex.commit` needs:
    each key's kind and feature, the values sent to ``k=<other>`` and, when hashing, the
    kinds of buckets used for the first time."""

    def __init__(self):
        super().__init__()
        self.kinds: list[int] = []
        self.bases: list = []
        self.overflow: dict = {}  # feature -> values sent to k=<other>
        self.own: dict = {}  # feature -> new columns of its own categories
        self.buckets: dict[int, int] = {}
        # inputs that would take a column held back for a feature's k=<other> (ColumnRoom): the learner refuses them
        self.crowding: list = []

    def __bool__(self) -> bool:  # something to commit, even without a new column
        return len(self) > 0 or bool(self.overflow) or bool(self.buckets)

    def add(self, key, kind: int, base) -> int:
        """Append new input ``key`` of ``kind`` (``stream_cl.encoding``) and feature ``base``; returns its
        position among the new inputs."""
        self.append(key)
        self.kinds.append(kind)
        self.bases.append(base)
        if kind == CATEGORY or kind == LATE:
            self.own[base] = self.own.get(base, 0) + 1
        return len(self) - 1

    def add_numbers(self, keys: list) -> None:
        """:meth:`add` of each of ``keys`` as a number's input (no feature), in one step."""
        self.extend(keys)
        self.kinds.extend([NUMERIC] * len(keys))
        self.bases.extend([None] * len(keys))
