"""Homeostatic learning rates: a need that rises with surprise and decays with stability.

After "Need is all you need: homeostatic neural networks adapt to concept shift" (Man,
Damasio and Neven, 2022): the learner keeps a *set point* for its recent loss and error
(what is normal for it), and an internal *need* that rises when it is surprised
(recent loss or error above the set point, a drift alarm) and decays while it is stable.
The need scales its plasticity within bounds: the per-layer learning rates of the
trainable path and the forgetting factor of the analytic heads (less memory, faster
adaptation).

Every rule is a pure function of observable state, unit-tested on its own:

* :func:`ema_rate` -- running mean at first, then an exponential average;
* :func:`track` -- one exponential-average step;
* :func:`lag_correlation` -- how strongly one event's signal follows the last one's;
* :func:`noise_band` -- how far a recent average may stray from its set point by chance;
* :func:`surprise` -- loss and error of the recent past above their set points (beyond the
  noise band), plus alarms;
* :func:`next_need` -- decay, add surprise, clip to ``[0, max_need]``;
* :func:`forgetting_for_need` -- interpolate from the base forgetting factor to a floor;
* :func:`learning_rate_scales` -- ``1 + sensitivity * need`` per layer, within bounds.

:class:`Homeostasis` holds the state (trackers and need) and applies the rules per event.

>>> h = Homeostasis()
>>> for i in range(500):  # a stable learner, wrong one time in ten: no need
...     _ = h.observe(error=float(i % 10 == 0), loss=0.1 + 0.5 * (i % 10 == 0))
>>> round(h.need_, 1)  # small fluctuations only
0.0
>>> for _ in range(100):  # the world changes: every prediction wrong
...     _ = h.observe(error=1.0, loss=0.9)
>>> h.need_ > 1.0, h.forgetting(0.995) < 0.995, h.learning_rate_scales(2)[1] > 1.0
(True, True, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from river import base

from .bounds import MIN_FORGETTING, OPEN_UNIT, POSITIVE, is_forgetting, is_lr_high, is_lr_low, is_nonnegative, is_open_unit, is_positive, is_real
from .checks import check_signal
from .state_checks import saved_count, saved_real

__all__ = [
    "Homeostasis",
    "ema_rate",
    "forgetting_for_need",
    "is_lr_high",
    "is_lr_low",
    "lag_correlation",
    "learning_rate_scales",
    "next_need",
    "noise_band",
    "surprise",
    "track",
]


# -- the rules ---------------------------------------------------------------------------
def ema_rate(n: int, rate: float) -> float:
    """Step size of a tracker after ``n`` earlier observations: ``max(rate, 1 / (n + 1))``.

    The first observations give their running mean (no bias towards the initial 0),
    then the average forgets at ``rate``.

    >>> ema_rate(0, 0.01), ema_rate(3, 0.01), ema_rate(1000, 0.01)
    (1.0, 0.25, 0.01)
    """
    return max(rate, 1.0 / (n + 1))


def track(value: float, observed: float, rate: float) -> float:
    """One exponential-average step: ``value + rate * (observed - value)``.

    >>> track(0.25, 1.0, 0.5)
    0.625
    """
    return value + rate * (observed - value)


# The most lag-one correlation a noise band credits: a band 4.0 times the independent one's at
# rate 0.02 (a stream whose errors all came in one run would otherwise never surprise).
MAX_LAG_CORRELATION = 0.9


def lag_correlation(lag: float, var: float) -> float:
    """The signal's lag-one autocorrelation from its running second moments about its recent average
    (``lag``: of one event's deviation times the last one's; ``var``: of the deviation squared),
    within ``[0, MAX_LAG_CORRELATION]``: errors that come in runs (inputs that stay in one region
    of the feature space for a while) swing a recent average further than independent ones do.

    >>> lag_correlation(0.09, 0.16), lag_correlation(-0.02, 0.16), lag_correlation(0.0, 0.0)
    (0.5625, 0.0, 0.0)
    """
    if not var > 0.0:
        return 0.0
    return min(max(lag / var, 0.0), MAX_LAG_CORRELATION)


def noise_band(set_point: float, rate: float, z: float, tolerance: float, rho: float = 0.0) -> float:
    """Half-width of the band a recent average stays in by chance: ``tolerance + z * sigma``.

    A signal in [0, 1] with mean ``p`` has variance at most ``p (1 - p)``, and an
    exponential average of step ``rate`` has ``rate / (2 - rate)`` of the signal's
    variance when its values are independent; when each follows the last with
    correlation ``rho`` (correlations ``rho^k`` at lag ``k``, as errors in runs of
    geometric length have), ``(1 + a rho) / (1 - a rho)`` times that, ``a = 1 - rate``.
    So ``sigma = sqrt(p (1 - p) rate / (2 - rate) (1 + a rho) / (1 - a rho))``.

    >>> round(noise_band(0.1, 0.02, 2.0, 0.01), 4)  # 10% error, a 50-event average
    0.0703
    >>> round(noise_band(0.1, 0.02, 2.0, 0.01, rho=0.75), 4)  # errors in runs of four on average
    0.1643
    """
    p = min(max(set_point, 0.0), 1.0)
    a = (1.0 - rate) * rho
    return tolerance + z * (p * (1.0 - p) * rate / (2.0 - rate) * (1.0 + a) / (1.0 - a)) ** 0.5


def surprise(loss_recent: float, loss_set_point: float, error_recent: float, error_set_point: float, alarm: bool,
             loss_gain: float = 1.0, error_gain: float = 0.5, alarm_gain: float = 1.0, loss_band: float = 0.02,
             error_band: float = 0.02) -> float:
    """How surprised the learner is: recent loss and error above their set points (beyond
    their noise bands), plus a jump for a drift alarm. Never negative: doing better than
    usual is no surprise.

    >>> surprise(0.30, 0.10, 0.2, 0.2, False, loss_band=0.0)
    0.19999999999999998
    >>> surprise(0.05, 0.10, 0.1, 0.2, False), surprise(0.05, 0.10, 0.1, 0.2, True)
    (0.0, 1.0)
    """
    s = loss_gain * max(0.0, loss_recent - loss_set_point - loss_band)
    s += error_gain * max(0.0, error_recent - error_set_point - error_band)
    if alarm:
        s += alarm_gain
    return s


def next_need(need: float, surprise_now: float, decay: float, max_need: float) -> float:
    """The need after one event: ``clip(decay * need + surprise, 0, max_need)``.

    >>> next_need(1.0, 0.0, 0.9, 4.0), next_need(1.0, 0.5, 0.9, 4.0), next_need(3.9, 2.0, 0.9, 4.0)
    (0.9, 1.4, 4.0)
    """
    return float(min(max_need, max(0.0, decay * need + surprise_now)))


def forgetting_for_need(need: float, base_forgetting: float, floor: float, half_need: float) -> float:
    """Forgetting factor for a need: from ``base_forgetting`` (need 0) towards ``floor``,
    half way at ``need == half_need``: ``base - (base - floor) * need / (need + half_need)``.
    Never above the base, never below the floor; a base below the floor stays as it is (the
    need only ever shortens a memory).

    >>> forgetting_for_need(0.0, 0.995, 0.95, 1.0), round(forgetting_for_need(1.0, 0.995, 0.95, 1.0), 6)
    (0.995, 0.9725)
    """
    floor = min(floor, base_forgetting)
    g = need / (need + half_need) if need > 0 else 0.0
    return float(base_forgetting - (base_forgetting - floor) * g)


def learning_rate_scales(need: float, sensitivities, low: float, high: float) -> list[float]:
    """Per-layer learning-rate multipliers ``clip(1 + s_l * need, low, high)``.

    >>> learning_rate_scales(2.0, (0.25, 1.0), 0.5, 2.5)
    [1.5, 2.5]
    """
    return [float(min(high, max(low, 1.0 + s * need))) for s in sensitivities]


# -- the controller ----------------------------------------------------------------------
class Homeostasis(base.Base):
    """Set points, need and the plasticity they ask for (see the module docstring).

    Parameters
    ----------
    recent_rate
        Step of the recent-loss/error trackers (about ``1 / recent_rate`` events).
    set_point_rate
        Step of the set points (slower: the new normal is learned over about
        ``1 / set_point_rate`` events).
    tolerance, z
        Recent loss/error may exceed the set point by ``tolerance`` plus ``z`` standard
        deviations of the recent average (:func:`noise_band`, widened as far as the signal's
        lag-one correlation, tracked at ``set_point_rate`` from ``1 / set_point_rate`` events on,
        says errors come in runs) without surprise.
    loss_gain, error_gain, alarm_gain
        Weights of the loss excess, the error excess and a drift alarm in the surprise.
    need_decay
        Per-event decay of the need while nothing surprises.
    max_need
        Ceiling of the need.
    half_need
        Need at which the forgetting factor is half way from its base to ``min_forgetting``.
    min_forgetting
        Floor of the forgetting factor (the shortest memory the need can ask for).
    lr_sensitivity
        Per-layer sensitivity of the learning rate to the need, first layer first
        (the last value is reused for deeper layers).
    lr_low, lr_high
        Bounds of the learning-rate multipliers.

    Attributes
    ----------
    need_
        The current need (exported for monitoring).
    loss_recent_, loss_set_point_, error_recent_, error_set_point_
        The trackers.
    loss_lag_, loss_var_, error_lag_, error_var_, loss_dev_, error_dev_
        The second moments of each signal's deviation from its recent average (one event's
        times the last one's; squared) and the last deviations: their :func:`lag_correlation`.
    moments_from_
        The event the moments started at (0; a state from before them: the event it was loaded at).
    """

    def __init__(self, recent_rate: float = 0.02, set_point_rate: float = 0.002, tolerance: float = 0.01, z: float = 2.0,
                 loss_gain: float = 1.0, error_gain: float = 0.5, alarm_gain: float = 1.0, need_decay: float = 0.99,
                 max_need: float = 4.0, half_need: float = 1.0, min_forgetting: float = 0.98,
                 lr_sensitivity: tuple = (0.25, 0.5), lr_low: float = 0.5, lr_high: float = 4.0):
        for name, v, example in (("recent_rate", recent_rate, 0.02), ("set_point_rate", set_point_rate, 0.002),
                                 ("need_decay", need_decay, 0.99)):
            if not is_open_unit(v):
                raise ValueError(f"{name} {OPEN_UNIT}, got {v!r}; use a value such as {example}")
        if not set_point_rate < recent_rate:
            raise ValueError(f"set_point_rate ({set_point_rate}) must be below recent_rate ({recent_rate}): "
                             "the set point is the slow, long-run normal")
        if not is_forgetting(min_forgetting):  # the heads' rule: the floor is a factor set on them
            raise ValueError(f"min_forgetting must be in [{MIN_FORGETTING:g}, 1], got {min_forgetting!r}")
        if not (is_lr_low(lr_low) and is_lr_high(lr_high)):
            raise ValueError(f"lr_low and lr_high must make 0 < lr_low <= 1 <= lr_high, got {lr_low!r}, {lr_high!r}")
        for name, v, example in (("tolerance", tolerance, 0.01), ("z", z, 2.0), ("loss_gain", loss_gain, 1.0),
                                 ("error_gain", error_gain, 0.5), ("alarm_gain", alarm_gain, 1.0)):
            if not is_nonnegative(v):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}; use a value such as {example}")
        for name, v, example in (("max_need", max_need, 4.0), ("half_need", half_need, 1.0)):
            if not is_positive(v):
                raise ValueError(f"{name} must be {POSITIVE}, got {v!r}; use a value such as {example}")
        if isinstance(lr_sensitivity, str) or not hasattr(lr_sensitivity, "__iter__"):
            raise ValueError(f"lr_sensitivity must be a sequence of numbers (one per layer), got {lr_sensitivity!r}; "
                             "use e.g. (0.25, 0.5)")
        lr_sensitivity = tuple(lr_sensitivity)
        if not lr_sensitivity:
            raise ValueError("lr_sensitivity needs at least one value; use e.g. (0.25, 0.5)")
        bad = [(i, s) for i, s in enumerate(lr_sensitivity) if not (is_real(s) and math.isfinite(s))]
        if bad:
            i, s = bad[0]
            raise ValueError(f"lr_sensitivity[{i}] must be a finite number, got {s!r}; use a per-layer sensitivity "
                             "such as 0.25 (the learning rate is scaled by 1 + sensitivity * need)")
        self.recent_rate = recent_rate
        self.set_point_rate = set_point_rate
        self.tolerance = tolerance
        self.z = z
        self.loss_gain = loss_gain
        self.error_gain = error_gain
        self.alarm_gain = alarm_gain
        self.need_decay = need_decay
        self.max_need = max_need
        self.half_need = half_need
        self.min_forgetting = min_forgetting
        self.lr_sensitivity = tuple(lr_sensitivity)
        self.lr_low = lr_low
        self.lr_high = lr_high
        self.n_ = 0
        self.loss_recent_ = 0.0
        self.loss_set_point_ = 0.0
        self.error_recent_ = 0.0
        self.error_set_point_ = 0.0
        self.need_ = 0.0
        self.loss_lag_ = self.loss_var_ = self.error_lag_ = self.error_var_ = 0.0
        self.loss_dev_ = self.error_dev_ = 0.0
        self.moments_from_ = 0  # the event the moments started at (a state from before them: its load)

    def observe(self, error: float, loss: float, alarm: bool = False) -> float:
        """Absorb one labelled event's error (0/1) and loss (in [0, 1], such as ``1 - p(true class)``);
        returns the new need. A value outside [0, 1] is refused: a NaN kept in the trackers for good
        reads as no surprise (``max(0, nan)`` is 0), so the need would never rise again, and finite
        values of opposite signs near float64's largest made one (review r92); the noise bands assume
        the unit interval."""
        check_signal("Homeostasis.observe", "error", error)
        check_signal("Homeostasis.observe", "loss", loss)
        if not (0.0 <= error <= 1.0 and 0.0 <= loss <= 1.0):
            raise ValueError(f"Homeostasis.observe: error and loss must be in [0, 1], got error={error!r}, "
                             f"loss={loss!r}; pass the 0/1 error and a loss such as 1 - p(true class)")
        n = self.n_
        if n == 0:  # the first observation sets the norm: nothing to be surprised against yet
            self.loss_set_point_, self.error_set_point_ = float(loss), float(error)
        fast, slow = ema_rate(n, self.recent_rate), ema_rate(n, self.set_point_rate)
        self.loss_recent_ = track(self.loss_recent_, loss, fast)
        self.error_recent_ = track(self.error_recent_, error, fast)
        rho_loss, rho_error = self._lag_correlations()
        s = surprise(self.loss_recent_, self.loss_set_point_, self.error_recent_, self.error_set_point_, alarm,
                     self.loss_gain, self.error_gain, self.alarm_gain,
                     noise_band(self.loss_set_point_, fast, self.z, self.tolerance, rho_loss),
                     noise_band(self.error_set_point_, fast, self.z, self.tolerance, rho_error))
        self.need_ = next_need(self.need_, s, self.need_decay, self.max_need)
        # second moments of the deviations from the recent averages (from the set point, a change of level
        # read as correlation until the set point caught up); one deviation times the last one's
        dl, de = loss - self.loss_recent_, error - self.error_recent_
        if n:
            pair = ema_rate(n - 1, self.set_point_rate)  # n - 1 pairs before this one
            self.loss_lag_ = track(self.loss_lag_, dl * self.loss_dev_, pair)
            self.error_lag_ = track(self.error_lag_, de * self.error_dev_, pair)
        self.loss_var_ = track(self.loss_var_, dl * dl, slow)
        self.error_var_ = track(self.error_var_, de * de, slow)
        self.loss_dev_, self.error_dev_ = dl, de
        self.loss_set_point_ = track(self.loss_set_point_, loss, slow)
        self.error_set_point_ = track(self.error_set_point_, error, slow)
        self.n_ = n + 1
        return self.need_

    def _lag_correlations(self) -> tuple[float, float]:
        """The loss's and the error's :func:`lag_correlation`, credited once the moments have
        ``1 / set_point_rate`` events behind them (the set points have left their running means too):
        a change of level in the first events, while every average moves fast, had read as correlation
        and widened the bands at once; so had the first events after loading an older state (r96)."""
        if (self.n_ - self.moments_from_) * self.set_point_rate < 1.0:
            return 0.0, 0.0
        return lag_correlation(self.loss_lag_, self.loss_var_), lag_correlation(self.error_lag_, self.error_var_)

    def alarm(self) -> float:
        """A drift alarm outside :meth:`observe` (a response): the need jumps by ``alarm_gain``."""
        self.need_ = next_need(self.need_, self.alarm_gain, 1.0, self.max_need)
        return self.need_

    def forgetting(self, base_forgetting: float) -> float:
        """Forgetting factor a head of base ``base_forgetting`` should use now."""
        return forgetting_for_need(self.need_, base_forgetting, self.min_forgetting, self.half_need)

    def learning_rate_scales(self, n_layers: int) -> list[float]:
        """Multipliers of the ``n_layers`` layers' learning rates now (first layer first)."""
        sens = [self.lr_sensitivity[min(i, len(self.lr_sensitivity) - 1)] for i in range(n_layers)]
        return learning_rate_scales(self.need_, sens, self.lr_low, self.lr_high)

    def report(self) -> dict:
        """The need, each signal's recent average and set point, the events observed, and each signal's lag
        correlation (0 until the moments have enough events behind them)."""
        return {"need": self.need_, "loss_recent": self.loss_recent_, "loss_set_point": self.loss_set_point_,
                "error_recent": self.error_recent_, "error_set_point": self.error_set_point_, "events": self.n_,
                **dict(zip(("loss_lag_correlation", "error_lag_correlation"), self._lag_correlations()))}

    def state_dict(self) -> dict:
        """The events observed, the trackers, the need and the second moments (:meth:`load_state_dict`)."""
        return {"n": self.n_, "loss_recent": self.loss_recent_, "loss_set_point": self.loss_set_point_,
                "error_recent": self.error_recent_, "error_set_point": self.error_set_point_, "need": self.need_,
                **{k: getattr(self, k + "_") for k in _MOMENTS}, "moments_from": self.moments_from_}

    def load_state_dict(self, state: Mapping) -> "Homeostasis":
        """Restore :meth:`state_dict`. A state written before the second moments were kept starts
        them afresh from here (credited ``1 / set_point_rate`` events on: :meth:`_lag_correlations`)."""
        # each saved value's range, before anything changes (review r105: a negative n divided by zero)
        n = saved_count(state["n"], "homeostasis n")
        values = {k: saved_real(state[k], f"homeostasis {k}") for k in _TRACKERS}
        values.update({k: saved_real(state.get(k, 0.0), f"homeostasis {k}") for k in _MOMENTS})
        moments_from = saved_count(state.get("moments_from", n), "homeostasis moments_from")
        self.n_, self.moments_from_ = n, moments_from
        for k, v in values.items():
            setattr(self, k + "_", v)
        return self


# the second moments' state keys (attributes: each with "_")
_MOMENTS = ("loss_lag", "loss_var", "error_lag", "error_var", "loss_dev", "error_dev")
# the trackers' and the need's state keys (attributes: each with "_")
_TRACKERS = ("loss_recent", "loss_set_point", "error_recent", "error_set_point", "need")
