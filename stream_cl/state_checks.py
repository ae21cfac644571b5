"""Checks of a saved state as it is loaded: the one place for a saved counter's and a saved array's rules.

A checkpoint, or a partition's part that another daemon wrote (``docs/partitions.md``), carries
counters, clocks and statistics that the parts' ``load_state_dict`` read back. Its digest proves
the bytes are whole, not that a writer put sense in them (anyone can compute a SHA-256). A value
out of its range was taken and failed later, at the next event, after the row had entered the
served heads: a NaN replay row or weight made X'X NaN for good, a negative count divided by zero,
a group id past the groups made ``numpy.bincount`` abort the process (review r105). The loaders
refuse such a state with a ``ValueError`` naming the field, before anything changes; the learner
turns it into the checkpoint's or the contribution's error.

>>> saved_count(3, "replay n_seen")
3
>>> saved_count(-1, "replay n_seen")
Traceback (most recent call last):
...
ValueError: saved state: replay n_seen must be an integer from 0 to 2**53, got -1 (a corrupt checkpoint or part: restore an intact one, or start afresh)
>>> saved_array([1.0, float("nan")], "replay X").tolist()
Traceback (most recent call last):
...
ValueError: saved state: replay X must be finite numbers, got nan at position 1 (a corrupt checkpoint or part: restore an intact one, or start afresh)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["CORRUPT", "MAX_COUNT", "saved_array", "saved_count", "saved_counts", "saved_real"]

MAX_COUNT = 2**53  # events, rows, positions: far past any stream, and exact as a float64
CORRUPT = "(a corrupt checkpoint or part: restore an intact one, or start afresh)"  # what every refusal says to do


def saved_count(v, name: str, minimum: int = 0, maximum: int | None = MAX_COUNT) -> int:
    """``v`` as an int in ``[minimum, maximum]`` (``minimum`` -1 for a clock whose -1 means none; ``maximum``
    None: no ceiling, for a value the constructors take at any size, a seed)."""
    # a whole float is taken: older states kept some counts as floats, which int() read
    whole = isinstance(v, numbers.Integral) or (isinstance(v, numbers.Real) and math.isfinite(v) and float(v).is_integer())
    if isinstance(v, bool) or not whole or v < minimum or (maximum is not None and v > maximum):
        top = "" if maximum is None else " to 2**53" if maximum == MAX_COUNT else f" to {maximum}"
        raise ValueError(f"saved state: {name} must be an integer from {minimum}{top}, got {v!r} {CORRUPT}")
    return int(v)


def saved_real(v, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    """``v`` as a finite float in ``[low, high]``."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isfinite(v) and low <= v <= high):
        raise ValueError(f"saved state: {name} must be a finite number from {low:g} to {high:g}, got {v!r} {CORRUPT}")
    return float(v)


def saved_array(a, name: str, low: float = -math.inf, high: float = math.inf) -> np.ndarray:
    """``a`` as a float64 array of finite numbers in ``[low, high]`` (a copy)."""
    out = np.array(a, dtype=np.float64)
    bad = ~(np.isfinite(out) & (out >= low) & (out <= high))
    if bad.any():
        at = int(np.flatnonzero(bad.reshape(-1))[0])  # (n,) flat, whatever the saved nesting: the first bad one
        rule = "finite numbers" if (low, high) == (-math.inf, math.inf) else f"finite numbers from {low:g} to {high:g}"
        raise ValueError(f"saved state: {name} must be {rule}, got {float(out.reshape(-1)[at])!r} at position {at} {CORRUPT}")
    return out


def saved_counts(a, name: str, minimum: int = 0, maximum: int = MAX_COUNT, size: int | None = None) -> np.ndarray:
    """``a`` as an int64 array of integers in ``[minimum, maximum]`` (a copy; whole floats, as older
    states kept some, are taken), of ``size`` of them where given."""
    raw = np.asarray(a)
    if raw.size and raw.dtype.kind not in "iuf":
        raise ValueError(f"saved state: {name} must be integers, got {raw.dtype} values {CORRUPT}")
    if size is not None and raw.size != size:  # (numpy's own reshape error named no field; review r117)
        raise ValueError(f"saved state: {name} must be {size} integers, got {raw.size} {CORRUPT}")
    f = raw.astype(np.float64)  # exact up to 2**53, the largest taken: a larger int64 or uint64 is refused, not wrapped
    bad = ~(np.isfinite(f) & (f == np.round(f)) & (f >= minimum) & (f <= maximum))
    if bad.any():
        at = int(np.flatnonzero(bad.reshape(-1))[0])  # (n,) flat, whatever the saved nesting: the first bad one
        raise ValueError(f"saved state: {name} must be integers from {minimum} to {maximum}, got "
                         f"{raw.reshape(-1)[at].item()!r} at position {at} {CORRUPT}")
    return f.astype(np.int64)
