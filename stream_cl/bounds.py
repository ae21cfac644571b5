"""The hyperparameters' bounds, one rule each, shared by the engine classes that refuse a bad
value in ``__init__`` (naming the parameter) and by :mod:`stream_cl.config` (naming the key).

Standard library only: the config, which the CLI and the publisher child read before anything
else, loads no numpy for them. The checks that need numpy (an int or a bool of numpy's) are
:mod:`stream_cl.checks`'.

>>> is_real(0.5), is_real(True), is_real("1")
(True, False, False)
>>> is_ratio(100), is_ratio(1000.0), is_max_weight(1e6), is_forgetting(0.4)
(True, False, True, False)
"""

from __future__ import annotations

import math
import numbers

__all__ = ["MAX_IMBALANCE_WEIGHT", "MAX_REPLAY_RATIO", "MIN_COUNT", "MIN_FORGETTING", "MIN_POSITIVE", "OPEN_UNIT", "POSITIVE",
           "is_forgetting", "is_lr_high", "is_lr_low", "is_max_weight", "is_nonnegative", "is_off_or_positive",
           "is_open_unit", "is_positive", "is_ratio", "is_real"]

# The smallest forgetting factor: a head's, a drift response's (forget_value) and homeostasis's floor
# (min_forgetting); a head forgetting faster keeps about two rows. It lives here, not in stream_cl.heads,
# so that the config checks its keys by this rule without importing torch.
MIN_FORGETTING = 0.5


def is_real(v) -> bool:
    """A real number: not a bool (``True`` compares as 1 but is never meant as a rate), not a string."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


# The smallest positive value taken (a regularisation, a temperature, a learning rate, a period). A subnormal
# gamma such as 1e-310 made every weight NaN (review r76): the reciprocals the heads take (1 / (gamma * decay)
# in the ridge's inverse, decay down to 0.1; scores / temperature) passed float64's largest number. Values
# down to ~1e-307 still worked; 1e-300 keeps those reciprocals, and their sums over rows, well inside it.
MIN_POSITIVE = 1e-300
POSITIVE = f"a finite number >= {MIN_POSITIVE:g}"  # the rule, as the errors say it


def is_positive(v) -> bool:
    """A finite number >= ``MIN_POSITIVE``. NaN fails every comparison, so it is refused too."""
    return is_real(v) and MIN_POSITIVE <= v < math.inf


def is_off_or_positive(v) -> bool:
    """0 (a part switched off, such as ``sgd_lr``), or what :func:`is_positive` takes."""
    return is_real(v) and (v == 0 or is_positive(v))


def is_nonnegative(v) -> bool:
    """A finite number >= 0."""
    return is_real(v) and 0.0 <= v < math.inf


OPEN_UNIT = f"must be in (0, 1), at least {MIN_POSITIVE:g}"  # is_open_unit's rule, as the errors say it


def is_open_unit(v) -> bool:
    """A number in (0, 1): the step or decay of an exponential average (0 never moves, 1 keeps only the last),
    at least :data:`MIN_POSITIVE` (the mixer's closed form takes ``1 / decay``: a subnormal decay made it inf,
    and every probability NaN; review r92).

    >>> is_open_unit(0.99), is_open_unit(1.0), is_open_unit("0.5"), is_open_unit(1e-310)
    (True, False, False, False)
    """
    return is_real(v) and MIN_POSITIVE <= v < 1.0


def is_forgetting(v) -> bool:
    """A forgetting factor: a number in [:data:`MIN_FORGETTING`, 1]. The type is tested first, because
    ``"0.9" <= 1`` raises a TypeError that names nothing.

    >>> is_forgetting(0.999), is_forgetting(0.2), is_forgetting("0.9")
    (True, False, False)
    """
    return is_real(v) and MIN_FORGETTING <= v <= 1.0


# -- homeostasis ---------------------------------------------------------------------------
def is_lr_low(v) -> bool:
    """A lower bound ``lr_low`` of the learning-rate multipliers: in (0, 1] (1: the need never slows learning).
    For :class:`~stream_cl.homeostasis.Homeostasis` and the config's ``homeostasis.lr_low``."""
    return is_real(v) and 0.0 < v <= 1.0


def is_lr_high(v) -> bool:
    """An upper bound ``lr_high``: a number >= 1 (1: the need never speeds learning up)."""
    return is_real(v) and v >= 1.0


# -- imbalance -----------------------------------------------------------------------------
# the largest max_weight: a rare class's row a million times a frequent one's is past any use, and a
# bound keeps the weight times a sample weight (at most base_learner.MAX_WEIGHT) finite
MAX_IMBALANCE_WEIGHT = 1e6
MIN_COUNT = 2  # the least min_count: a class's variance needs two rows


def is_max_weight(v) -> bool:
    """A ``max_weight`` the compensator takes: a number in [1, :data:`MAX_IMBALANCE_WEIGHT`] (it bounds
    the weights and their inverses). For :class:`~stream_cl.imbalance.ImbalanceCompensator` and the config's
    ``imbalance.max_weight``."""
    return is_real(v) and 1.0 <= v <= MAX_IMBALANCE_WEIGHT


# -- replay --------------------------------------------------------------------------------
# the largest ratio (replayed rows per fresh one): each replayed row costs a row's learning, and far past
# this the fresh rows are a sliver of what is learned; the config's replay.ratio is checked by is_ratio too
MAX_REPLAY_RATIO = 100.0


def is_ratio(v) -> bool:
    """A ``ratio`` a buffer takes: a number in [0, :data:`MAX_REPLAY_RATIO`] (NaN and infinity are refused).

    >>> is_ratio(0.5), is_ratio(100), is_ratio(1000.0), is_ratio("1")
    (True, True, False, False)
    """
    return is_real(v) and 0.0 <= v <= MAX_REPLAY_RATIO
