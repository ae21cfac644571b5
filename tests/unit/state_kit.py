"""Helpers for the unit tests' state round trips.

:func:`same` compares two states (the plain values of ``state_dict`` / ``detector_state``)
exactly: the same types, arrays by dtype, shape and value, NaN equal to NaN.

>>> same({"a": [np.arange(3.0), float("nan")]}, {"a": [np.arange(3.0), float("nan")]})
True
>>> same({"a": np.zeros(2)}, {"a": np.zeros(2, dtype=np.float32)}), same([1], [1.0])
(False, False)
"""

from __future__ import annotations

import math

import numpy as np


def same(a, b) -> bool:
    """Equal values of exactly the same types, recursively (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b
