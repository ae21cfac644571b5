"""The ``max_columns`` rule: a ridge head's design width is bounded before anything is learned.

A ridge head keeps a few (columns x columns) float64 matrices, so its width is its memory:
one odd event with a thousand new keys could otherwise take a daemon's memory. An event
whose new inputs would pass the bound is refused with a ``ValueError`` before any state
changes (the daemon's ``rejected_by_model`` dead letter), and a ``hash_width`` past it when
the learner is made. Every learner with ridge heads applies this one rule.

>>> check_columns(293, 293, "4 inputs would give")
>>> check_columns(302, 293, "5 inputs would give", "the 'all' head")
Traceback (most recent call last):
...
ValueError: 5 inputs would give the 'all' head 302 design columns, over max_columns (293): its matrices would take 0.0 GiB each. Use a smaller hash_width, fewer inputs or key_units, or a larger max_columns if the memory is there
>>> check_columns(10**6, None, "anything")  # None: no bound
>>> check_bound("10")
Traceback (most recent call last):
...
ValueError: max_columns must be an int >= 1 or None, got '10'; use e.g. 8192
"""

from __future__ import annotations

from .checks import check_int

__all__ = ["check_bound", "check_columns"]


def check_bound(bound) -> None:
    """Refuse a ``max_columns`` that is neither an int >= 1 nor ``None`` (no bound), naming it: the
    learners take it in ``__init__``, and a string would fail only at the first event."""
    check_int(bound, "max_columns", 1, 8192, optional=True)


def check_columns(width: int, bound: int | None, what: str, head: str = "the head") -> None:
    """A ``ValueError`` if a head ``width`` columns wide passes ``bound`` (``None``: no bound);
    ``what`` says what gives that width ("5 inputs would give", "hash_width=4096 gives")."""
    if bound is None or width <= bound:
        return
    raise ValueError(
        f"{what} {head} {width:,} design columns, over max_columns ({bound:,}): its matrices would take "
        f"{8 * width**2 / 2**30:.1f} GiB each. Use a smaller hash_width, fewer inputs or key_units, or a larger "
        "max_columns if the memory is there")


def check_network_inputs(hash_width, bound: int | None) -> None:
    """A ``ValueError`` if a network whose first layer takes ``hash_width`` hashed inputs passes ``bound``
    (``None``: no bound): every event would be refused at learn time (its inputs over ``max_columns``),
    so it is refused where the learner is made. A ``hash_width`` that is not an int is left to the
    feature index, which names it."""
    if bound is None or type(hash_width) is not int or hash_width <= bound:
        return
    raise ValueError(f"hash_width={hash_width:,} gives the network's first layer {hash_width:,} inputs, over "
                     f"max_columns ({bound:,}), and every event would be refused; use a smaller hash_width or a "
                     "larger max_columns")
