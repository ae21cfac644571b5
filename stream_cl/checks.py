"""Hyperparameter checks shared by the continual-learning parts.

River's convention: a bad hyperparameter is refused in ``__init__`` with an error that names
it and says what is allowed, never later in the middle of a batch (after some state changed).
A comparison such as ``0 < v < 1`` on a string raises a ``TypeError`` that names nothing, so
the parts test the type first with :func:`is_real`. The checks below, and the bounds of
:mod:`stream_cl.bounds` they use, are each rule's one place; every message names the parameter,
the value got and what to use.

>>> is_real(0.5), is_real(True), is_real("1")
(True, False, False)
>>> check_seed(-1)
Traceback (most recent call last):
...
ValueError: seed must be an int >= 0, got -1; use a non-negative integer such as 0
>>> check_positive(float("inf"), "temperature", 0.1)
Traceback (most recent call last):
...
ValueError: temperature must be a finite number >= 1e-300, got inf; use e.g. 0.1
>>> check_nonnegative(0.0, "mix_sharpness", 100.0)  # 0 is taken
>>> check_int("10", "max_columns", 1, 8192, optional=True)
Traceback (most recent call last):
...
ValueError: max_columns must be an int >= 1 or None, got '10'; use e.g. 8192
>>> check_bool("no", "time_features")
Traceback (most recent call last):
...
ValueError: time_features must be True or False, got 'no'
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .bounds import MIN_FORGETTING, POSITIVE, is_forgetting, is_nonnegative, is_open_unit, is_positive, is_real

__all__ = ["MIN_FORGETTING", "check_bool", "check_dtype", "check_int", "check_nonnegative", "check_positive", "check_seed",
           "check_signal", "holds_missing", "is_forgetting", "is_nonnegative", "is_open_unit", "is_positive", "is_real"]


def holds_missing(value) -> bool:
    """Whether ``value`` (a label, a partition key) is, or holds, a missing value (NaN, ``NaT``,
    ``pd.NA``): a tuple compares its items by identity first, so ``("sensor-7", nan)`` equals itself,
    while each event's new NaN hashes apart: a class, or a part, for every event (reviews r78, r101).

    >>> holds_missing(("t", float("nan"))), holds_missing(("t", 1)), holds_missing(float("nan"))
    (True, False, True)
    """
    if isinstance(value, (tuple, frozenset)):
        return any(holds_missing(v) for v in value)
    try:
        return bool(value != value)  # only a missing value is unequal to itself
    except (TypeError, ValueError):  # pd.NA: its comparisons are NA, whose truth is ambiguous
        return True

def check_seed(seed, name: str = "seed") -> None:
    """Refuse a seed that is not an int >= 0: the counter-based random streams
    (:class:`~stream_cl.replay.rng.CounterRandom`) take non-negative integers only, and would
    otherwise fail at the first random number, mid-batch; a float would be truncated silently."""
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"{name} must be an int >= 0, got {seed!r}; use a non-negative integer such as 0")


def check_positive(v, name: str, example) -> None:
    """Refuse what is not a finite number >= ``MIN_POSITIVE`` (a regularisation, a temperature, a learning
    rate): NaN passes every ``<`` test as false and infinity turns the arithmetic into NaN."""
    if not is_positive(v):
        raise ValueError(f"{name} must be {POSITIVE}, got {v!r}; use e.g. {example}")


def check_nonnegative(v, name: str, example) -> None:
    """Refuse what is not a finite number >= 0 (:func:`check_positive`, with 0 taken)."""
    if not is_nonnegative(v):
        raise ValueError(f"{name} must be a finite number >= 0, got {v!r}; use e.g. {example}")


def check_int(v, name: str, minimum: int, example, optional: bool = False) -> None:
    """Refuse what is not an int >= ``minimum`` (``optional``: or ``None``). A bool is refused: it is
    an int to Python but never meant as a count; a string or a float would fail at the first event."""
    if optional and v is None:
        return
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < minimum:  # numpy ints are taken
        raise ValueError(f"{name} must be an int >= {minimum}{' or None' if optional else ''}, got {v!r}; "
                         f"use e.g. {example}")


def check_dtype(dtype) -> None:
    """Refuse a float type other than torch's two the models compute in (a backbone's, a network's)."""
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def check_bool(v, name: str) -> None:
    """Refuse what is not a bool (numpy's taken): a string such as ``"no"`` would read as true."""
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {v!r}")


def check_signal(where: str, name: str, v: float) -> None:
    """Refuse a non-finite error or loss fed to a monitor (``where``: who is fed): its running
    averages, and River's detectors, would keep a NaN for good and never react again."""
    if not math.isfinite(v):
        raise ValueError(f"{where}: {name} must be a finite number, got {v!r}; pass the 0/1 error and a bounded "
                         "loss such as 1 - p(true class), in [0, 1] (a log loss is inf at p = 0)")
