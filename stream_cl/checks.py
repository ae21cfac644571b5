"""Hyperparameter checks shared by the continual-learning parts.

River's convention: a bad hyperparameter is refused in ``__init__`` with an error that names
it and says what is allowed, never later in the middle of a batch (after some state changed).
A comparison such as ``0 < v < 1`` on a string raises a ``TypeError`` that names nothing, so
the parts test the type first with :func:`is_real`.

>>> is_real(0.5), is_real(True), is_real("1")
(True, False, False)
>>> check_seed(-1)
Traceback (most recent call last):
...
ValueError: seed must be an int >= 0, got -1; use a non-negative integer such as 0
"""

from __future__ import annotations

import numbers

__all__ = ["check_seed", "is_real"]


def is_real(v) -> bool:
    """A real number: not a bool (``True`` compares as 1 but is never meant as a rate), not a string."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_seed(seed, name: str = "seed") -> None:
    """Refuse a seed that is not an int >= 0: the counter-based random streams
    (:class:`~stream_cl.replay.rng.CounterRandom`) take non-negative integers only, and would
    otherwise fail at the first random number, mid-batch; a float would be truncated silently."""
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"{name} must be an int >= 0, got {seed!r}; use a non-negative integer such as 0")
