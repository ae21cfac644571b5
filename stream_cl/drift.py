"""Concept-shift detection with River's detectors, and the responses to an alarm.

:class:`DriftMonitor` feeds one River detector the learner's prequential loss or 0/1
error, turns its detections into *alarms* (dicts with the time, the detector, the
signal and the response) and keeps the bookkeeping of the responses:

* ``"record"`` -- only record the alarm;
* ``"need"`` -- raise the homeostatic need (:mod:`stream_cl.homeostasis`);
* ``"forget"`` -- use ``forget_value`` as the forgetting factor of the adaptive heads
  for ``forget_events`` labelled events from the learner's first control point after
  the alarm on (:meth:`DriftMonitor.control_forgetting`);
* ``"restart"`` -- train shadow heads from the control point after the alarm on and,
  after ``restart_after`` labelled events, warm-restart each adaptive head from its
  shadow if the shadow predicted better since it started (the schedule and the shadows are
  :class:`~stream_cl.shadows.ShadowRestarter`'s; the monitor only raises the alarm);
* ``"reset"`` -- the same for every head, the exact memory heads (forgetting 1)
  included: after an abrupt change the memory heads hold a concept that no longer
  holds, and a fresh start beats waiting for the new data to outweigh it;
* ``"remix"`` -- forget the mixture's record of which head was recently accurate, so
  the heads that adapt fastest to the new concept take over at once instead of after
  the record's time constant (``OnlineContinualLearner``'s ``mix_decay``).

Detectors (``detector=``): ``"adwin"``, ``"kswin"``, ``"page_hinkley"`` on the loss or
the error stream; ``"ddm"``, ``"eddm"``, ``"hddm_a"``, ``"hddm_w"``, ``"fhddm"`` on the
0/1 error only (``"fhddm"`` is fed the 0/1 *correctness*: River's FHDDM alarms when the
mean of its input falls, as in its paper, whatever its docstring says of errors; fed
errors it fired once the learner had recovered, not when it got worse). With
``direction="up"`` (the default) a detection where the signal went
*down* (the learner got better, e.g. after recovering from a drift) is counted in
``n_ignored_`` and not raised. It is ignored only when a ~50-event average of the signal is
at or below the mean since the last detection *and* the last :data:`DIRECTION_WINDOW` signals
are not clearly above the mean since the last detection without them (by more than
:data:`DIRECTION_Z` standard deviations of a mean of that many): the average lags the abrupt
rise that a fast detector such as HDDM_A fires on a few events in, and the short window alone
would turn a lucky run of 0/1 errors into an alarm. The mean since the last detection is the
monitor's own: a KSWIN ``window`` given in ``params`` (data the detector starts from) is not part of it.

The detector's whole state -- including River's Rust-backed parts -- goes into
:meth:`DriftMonitor.state_dict` as plain values (bytes as uint8 arrays), and a restore
continues the exact sequence of detections.

>>> monitor = DriftMonitor("adwin", response=("record",))
>>> errors = [int(i % 20 == 0) for i in range(1000)] + [i % 2 for i in range(1000)]  # 5% wrong, then 50%
>>> alarms = [a for i, e in enumerate(errors) if (a := monitor.update(e, float(e), t=i))]
>>> [(a["detector"], a["response"]) for a in alarms][:1], 1000 <= alarms[0]["t"] < 1200
([('adwin', 'record')], True)
"""

from __future__ import annotations

import collections
import inspect
import math
import numbers
import random
from collections.abc import Mapping

import numpy as np
from river import base
from river import drift as river_drift

from .checks import MIN_FORGETTING, check_int, check_seed, check_signal, is_forgetting, is_real
from .state_checks import CORRUPT, MAX_COUNT, saved_array, saved_count, saved_real

__all__ = ["DETECTORS", "DIRECTION_WINDOW", "DIRECTION_Z", "DriftMonitor", "PARAM_RULES", "RESPONSES",
           "WATCH_CORRECT", "check_detector_params", "detector_state", "load_detector_state", "make_detector"]

# name -> (factory, binary-only, default parameters)
DETECTORS = {
    "adwin": (river_drift.ADWIN, False, {}),
    "kswin": (river_drift.KSWIN, False, {}),
    "page_hinkley": (river_drift.PageHinkley, False, {"mode": "up"}),
    "ddm": (river_drift.binary.DDM, True, {}),
    "eddm": (river_drift.binary.EDDM, True, {}),
    "hddm_a": (river_drift.binary.HDDMA, True, {}),
    "hddm_w": (river_drift.binary.HDDMW, True, {}),
    "fhddm": (river_drift.binary.FHDDM, True, {}),
}
# detectors that alarm when the mean of their input falls (a rate of correct predictions falling):
# fed 1 for a correct prediction, where the others are fed 1 for an error
WATCH_CORRECT = ("fhddm",)
RESPONSES = ("record", "need", "forget", "restart", "reset", "remix")
SIGNALS = ("auto", "error", "loss")
# The last signals whose mean judges a detection's direction. About the delay of the fastest
# detectors (HDDM_A fires ~5 events after an abrupt change, so half the window is already the new
# level); a ~50-event average alone still sits near the old level then and hid such rises. Longer
# windows dilute that; a shorter one is a handful of 0/1 errors.
DIRECTION_WINDOW = 10
# How far above the earlier mean the window's mean must be, in standard deviations of a mean of
# DIRECTION_WINDOW signals at that level (the z of Homeostasis's noise band): at 0, chance runs of
# errors after an improvement turned ADWIN's, EDDM's and KSWIN's ignored detections into false
# alarms on benchmarks/continual.py's drift streams; at 2 they stay ignored and HDDM_A's rises
# are kept.
DIRECTION_Z = 2.0


def make_detector(name: str, params: Mapping | None = None, seed: int = 0):
    """A fresh River detector by name; ``kswin`` gets ``seed`` unless one is given."""
    try:
        factory, _, defaults = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown drift detector {name!r}; use one of {', '.join(DETECTORS)}") from None
    kwargs = {**defaults, **(dict(params) if params else {})}
    for key, v in kwargs.items():  # a whole float for a count (30.0) as the int River's detectors index with
        if isinstance(v, float) and v.is_integer() and _is_count(name, key):
            kwargs[key] = int(v)
    if "seed" in inspect.signature(factory).parameters and kwargs.get("seed") is None:
        kwargs["seed"] = int(seed)  # random.Random refuses numpy ints
    try:
        return factory(**kwargs)
    except TypeError as e:
        raise ValueError(f"bad params for drift detector {name!r}: {e}") from None


# -- the detectors' parameters ---------------------------------------------------------------
# River checks few of its detectors' parameters: a value outside the range its docstring gives
# fails at a learned event (a Rust panic, a math domain error, a division by zero: after the
# heads learned the event) or makes the detector never, or always, alarm. Each rule is
# (test, what is allowed, an example); parameters without a rule are left to River and the probe.
def _unit(v) -> bool:  # a probability, a confidence, a fading factor: 0 and 1 never or always alarm
    return is_real(v) and 0.0 < v < 1.0


def _count(minimum: int, or_none: bool = False):
    """The test of a count: a whole number, as River takes it, 30 or 30.0 (which River ran with before these
    checks), not True or 2.5; ``or_none``: None too. Marked ``count``: make_detector hands 30.0 on as 30."""
    def test(v) -> bool:
        if v is None:
            return or_none
        return (not isinstance(v, (bool, np.bool_)) and is_real(v) and math.isfinite(v) and float(v).is_integer()
                and v >= minimum)
    test.count = True
    return test


_UNIT = (_unit, "a number in (0, 1)")
_POSITIVE = (lambda v: is_real(v) and 0.0 < v < math.inf, "a finite number > 0")
_NONNEGATIVE = (lambda v: is_real(v) and 0.0 <= v < math.inf, "a finite number >= 0")
_AT_LEAST_1 = (_count(1), "an int >= 1")
_WARM_UP = (_count(0), "an int >= 0")  # events before detection starts: 0 is none
# True/False, or 1/0 (River ran with them before these checks); a string such as "no" would read as true
_BOOL = (lambda v: isinstance(v, (bool, np.bool_)) or (isinstance(v, numbers.Integral) and v in (0, 1)), "True or False")
PARAM_RULES = {
    "adwin": {"delta": (*_UNIT, 0.002), "clock": (*_AT_LEAST_1, 32), "max_buckets": (*_AT_LEAST_1, 5),
              "min_window_length": (*_AT_LEAST_1, 5), "grace_period": (*_WARM_UP, 10)},
    "kswin": {"alpha": (*_UNIT, 0.005), "window_size": (_count(2), "an int >= 2", 100),
              "stat_size": (*_AT_LEAST_1, 30), "seed": (_count(0, or_none=True), "an int >= 0 or None", 0),
              # values seen before: compared only once the window is full, window_size events in
              "window": (lambda v: v is None or (isinstance(v, (list, tuple)) and all(map(is_real, v))),
                         "a list of numbers or None", [0.0, 1.0])},
    "page_hinkley": {"min_instances": (*_WARM_UP, 30), "delta": (*_NONNEGATIVE, 0.005),
                     "threshold": (*_POSITIVE, 50.0), "mode": (lambda v: v in ("up", "down", "both"),
                                                               "'up', 'down' or 'both'", "'up'"),
                     "alpha": (lambda v: is_real(v) and 0.0 < v <= 1.0, "a number in (0, 1]", 0.9999)},
    "ddm": {"warm_start": (*_WARM_UP, 30), "warning_threshold": (*_POSITIVE, 2.0), "drift_threshold": (*_POSITIVE, 3.0)},
    "eddm": {"warm_start": (*_WARM_UP, 30), "alpha": (*_UNIT, 0.95), "beta": (*_UNIT, 0.9)},
    "hddm_a": {"drift_confidence": (*_UNIT, 0.001), "warning_confidence": (*_UNIT, 0.005),
               "two_sided_test": (*_BOOL, False)},
    "hddm_w": {"drift_confidence": (*_UNIT, 0.001), "warning_confidence": (*_UNIT, 0.005),
               "lambda_val": (*_UNIT, 0.05), "two_sided_test": (*_BOOL, False)},
    "fhddm": {"sliding_window_size": (*_AT_LEAST_1, 100), "confidence_level": (*_UNIT, 0.000001),
              "short_window_size": (_count(1, or_none=True), "an int >= 1 or None", 20)},
}


def _is_count(name: str, key: str) -> bool:
    """Whether ``PARAM_RULES`` takes ``key`` of detector ``name`` as a count (a whole number)."""
    rule = PARAM_RULES.get(name, {}).get(key)
    return rule is not None and getattr(rule[0], "count", False)


def check_detector_params(name: str, params: Mapping | None, seed: int = 0) -> None:
    """Refuse ``params`` that River's detector ``name`` would take and then fail on, or never (or
    always) alarm with, at a learned event: a ``ValueError`` naming the detector, the parameter and
    what to use. Beyond the documented ranges (:data:`PARAM_RULES`), a throw-away detector is built
    and fed a few events, so that whatever else fails there is refused now rather than after the
    heads learned an event (River's Rust parts panic with a ``BaseException`` that ``except
    Exception`` misses).

    >>> check_detector_params("adwin", {"clock": 0})
    Traceback (most recent call last):
    ...
    ValueError: drift detector 'adwin': params['clock'] must be an int >= 1, got 0; use e.g. 32
    """
    params = dict(params or {})
    known = inspect.signature(DETECTORS[name][0]).parameters
    unknown = [k for k in params if k not in known]
    if unknown:
        raise ValueError(f"bad params for drift detector {name!r}: unknown {unknown!r}; use some of {list(known)}")
    for key, v in params.items():
        rule = PARAM_RULES[name].get(key)
        if rule is not None and not rule[0](v):
            raise ValueError(f"drift detector {name!r}: params[{key!r}] must be {rule[1]}, got {v!r}; use e.g. {rule[2]}")
    _check_pairs(name, params)
    _probe(name, params, seed)


def _check_pairs(name: str, params: dict) -> None:
    """The rules between two parameters (each one already in its range), on the values the detector
    gets: River's defaults, then ours (:data:`DETECTORS`), then ``params``."""
    factory, _, ours = DETECTORS[name]
    p = {k: q.default for k, q in inspect.signature(factory).parameters.items()} | ours | params
    if name == "kswin" and p["window_size"] < 2 * p["stat_size"]:  # stat_size draws from the window's first part
        raise ValueError(f"drift detector 'kswin': params['window_size'] ({p['window_size']}) must be at least twice "
                         f"params['stat_size'] ({p['stat_size']}); use e.g. window_size=100, stat_size=30")
    if name == "eddm" and p["alpha"] < p["beta"]:
        raise ValueError(f"drift detector 'eddm': params['alpha'] (the warning level, {p['alpha']}) "
                         f"must be >= params['beta'] (the drift level, {p['beta']}); use e.g. 0.95 and 0.9")


def _probe(name: str, params: dict, seed: int) -> None:
    """Build the detector and feed it a few errors and successes; any failure is a ``ValueError``."""
    try:
        detector = make_detector(name, params, seed)
        for x in (0, 1, 0, 1):
            detector.update(bool(x) if DETECTORS[name][1] else float(x))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 -- pyo3's PanicException is a BaseException only
        raise ValueError(f"drift detector {name!r} fails with params {params!r}: {type(e).__name__}: {e}; "
                         f"use values in the ranges that River's {DETECTORS[name][0].__name__} documents") from None


# -- detector state as plain values ------------------------------------------------------
def _encode(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, collections.deque):
        return {"__deque__": [_encode(x) for x in v], "maxlen": v.maxlen}
    if isinstance(v, random.Random):
        version, internal, gauss = v.getstate()
        return {"__random__": [version, np.asarray(internal, dtype=np.int64), gauss]}
    if isinstance(v, (list, tuple)):
        return {"__list__" if isinstance(v, list) else "__tuple__": [_encode(x) for x in v]}
    if inspect.ismethod(v) or inspect.isfunction(v):
        return {"__rebuilt__": True}  # bound by the detector's constructor
    if hasattr(v, "__dict__"):
        return {"__object__": {k: _encode(x) for k, x in vars(v).items()}}
    getstate = getattr(v, "__getstate__", None)
    if getstate is not None:
        raw = getstate()
        if isinstance(raw, bytes):
            return {"__bytes__": np.frombuffer(raw, dtype=np.uint8).copy()}
    raise TypeError(f"cannot save drift-detector state of type {type(v).__name__}")


def _decode(enc, current):
    if not isinstance(enc, Mapping):
        return enc
    if "__deque__" in enc:
        return collections.deque((_decode(x, None) for x in enc["__deque__"]), maxlen=enc["maxlen"])
    if "__random__" in enc:
        version, internal, gauss = enc["__random__"]
        r = random.Random()
        r.setstate((int(version), tuple(int(i) for i in np.asarray(internal).tolist()), gauss))
        return r
    if "__list__" in enc:
        return [_decode(x, None) for x in enc["__list__"]]
    if "__tuple__" in enc:
        return tuple(_decode(x, None) for x in enc["__tuple__"])
    if "__rebuilt__" in enc:
        return current
    if "__bytes__" in enc:
        if current is None:
            raise ValueError("drift-detector state does not match the detector (bytes for a missing part)")
        try:
            current.__setstate__(np.asarray(enc["__bytes__"], dtype=np.uint8).tobytes())
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 -- pyo3's PanicException is a BaseException only
            raise ValueError(f"saved state: drift-detector bytes of {type(current).__name__} do not decode "
                             f"({type(e).__name__}: {e}) {CORRUPT}") from None
        return current
    if "__object__" in enc:
        if current is None or not hasattr(current, "__dict__"):
            raise ValueError("drift-detector state does not match the detector (an object for a missing part)")
        _restore(current, enc["__object__"])
        return current
    raise ValueError(f"unrecognised drift-detector state {sorted(enc)!r}")


def _restore(obj, attrs: Mapping) -> None:
    for k, enc in attrs.items():
        setattr(obj, k, _decode(enc, getattr(obj, k, None)))


def detector_state(detector) -> dict:
    """Everything a River detector knows, as nested plain values."""
    return {k: _encode(v) for k, v in vars(detector).items()}


def load_detector_state(detector, state: Mapping, compare=None) -> None:
    """Restore :func:`detector_state` into a detector built with the same parameters; a state of
    other parameters (those named in ``compare``; all where it is None) is a ``ValueError`` naming
    the first one, before anything changes (restored, the state's parameters replaced the
    detector's own: it ran with the checkpoint's while its owner reported its own)."""
    _check_params(detector, state, compare)
    _restore(detector, state)


def _check_detector_runs(restore) -> None:
    """Refuse a restored detector that fails on its next values: River's detectors keep running
    statistics (a count, a mean) that a corrupt state can put out of range, where ``math.sqrt`` of a
    negative variance raised at the next event, after the event's row had been learned (review
    r105). ``restore()`` makes a second detector from the state, which takes a correct and a wrong
    value; the one restored for use is untouched."""
    try:
        # a second restore, not copy.deepcopy: River's Rust ADWIN rebuilds itself on a copy with capacity for
        # its saved settings (damaged ones: a 2.5 TB allocation, SIGABRT), which its __setstate__ does not
        trial = restore()
        for x in (0.0, 1.0, 0.0):
            trial.update(x)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 -- pyo3's PanicException is a BaseException only
        raise ValueError(f"saved state: the drift detector fails on its next value ({type(e).__name__}: {e}) "
                         f"{CORRUPT}") from None


def _check_params(detector, state: Mapping, compare=None) -> None:
    """The ``ValueError`` of :func:`load_detector_state` naming the first of ``detector``'s parameters
    (those in ``compare``, all where it is None) whose value in ``state`` (:func:`detector_state`)
    differs. A parameter that holds data rather than a setting (KSWIN's ``window``, the values seen)
    or that the state lacks is not compared."""
    for key, mine in detector._get_params().items():
        if compare is not None and key not in compare:
            continue
        theirs = state.get(key)
        if not _plain(mine) or key not in state or not _plain(theirs):
            continue
        if isinstance(theirs, np.generic):  # as a checkpoint may read a number back
            theirs = theirs.item()
        if theirs != mine:
            raise ValueError(f"the checkpoint's drift detector {type(detector).__name__} has {key}={theirs!r}, this "
                             f"one {key}={mine!r}: restore into a monitor built with the checkpoint's detector params "
                             f"(params[{key!r}] = {theirs!r}), or start afresh")


def _plain(v) -> bool:
    """A parameter's value that is a setting: None, a bool, a number or a string."""
    return v is None or isinstance(v, (bool, numbers.Number, str, np.generic))


# -- the monitor ---------------------------------------------------------------------------
def _checked_monitor_args(detector, params, signal, response, direction, forget_value, forget_events, restart_after,
                          max_alarms, seed) -> tuple:
    """:class:`DriftMonitor`'s arguments checked, each refusal naming the argument and the fix; the
    ``response`` as a tuple (a single name is taken for a tuple of one)."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown drift detector {detector!r}; use one of {', '.join(DETECTORS)}")
    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
    if DETECTORS[detector][1] and signal == "loss":
        raise ValueError(f"{detector} watches the 0/1 error only; use signal='error' or 'auto'")
    response = (response,) if isinstance(response, str) else tuple(response)
    bad = [r for r in response if r not in RESPONSES]
    if bad or not response:
        raise ValueError(f"response must be a non-empty tuple of {RESPONSES}, got {response!r}")
    if len(set(response)) < len(response):  # ("forget", "forget") acted once but was counted as "forget+forget"
        raise ValueError(f"response names a response twice: {response!r}; give each once, e.g. "
                         f"{tuple(dict.fromkeys(response))!r}")
    if direction not in ("up", "both"):
        raise ValueError(f"direction must be 'up' or 'both', got {direction!r}")
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of the River detector's parameters, or None; got {params!r}")
    if not is_forgetting(forget_value):  # the heads' rule: the factor is set on them
        raise ValueError(f"forget_value must be in [{MIN_FORGETTING:g}, 1], got {forget_value!r}")
    check_int(forget_events, "forget_events", 1, "300 (labelled events the 'forget' response lasts)")
    check_int(restart_after, "restart_after", 1, "100 (labelled events shadows learn before a restart)")
    check_int(max_alarms, "max_alarms", 1, "1000 (alarms kept in alarms_)")
    check_seed(seed)  # the project's one seed rule; KSWIN's random.Random would take -1 or "a" silently
    check_detector_params(detector, params, seed)  # here, not at the first learned event (after the heads)
    return response


class DriftMonitor(base.Base):
    """One River detector on the learner's error or loss stream, with alarm responses.

    Parameters
    ----------
    detector
        Detector name (see the module docstring).
    params
        Parameters of the River detector (``None``: River's defaults; ``page_hinkley``
        defaults to ``mode="up"``).
    signal
        ``"error"`` (0/1), ``"loss"`` (``1 - p(true class)``) or ``"auto"``: error for
        every detector but KSWIN, which needs a continuous signal.
    response
        Tuple of responses among ``"record"``, ``"need"``, ``"forget"``, ``"restart"``,
        ``"reset"``, ``"remix"``.
    direction
        ``"up"``: raise alarms only when the signal rose (see the module docstring: a
        ~50-event average or, clearly, the last :data:`DIRECTION_WINDOW` signals above the
        mean since the last detection); ``"both"``: on any change.
    forget_value, forget_events
        The ``"forget"`` response's forgetting factor and how many labelled events it lasts
        (a factor much below 0.98 leaves a head of a few hundred features too few rows).
        In a learner the window opens at the first control point after the alarm and the
        factor is set at control points only, so it holds for ``forget_events`` rounded up
        to whole ``control_every`` periods.
    restart_after
        Labelled events the ``"restart"``/``"reset"`` shadow heads learn before they replace
        the adaptive heads (defaults from ``benchmarks/continual.py``'s drift streams).
    max_alarms
        Alarms kept in ``alarms_`` (the oldest are dropped; ``n_alarms_`` counts all).
    seed
        Seed of detectors that draw random numbers (KSWIN); an int >= 0.

    Attributes (exported for monitoring)
    ------------------------------------
    alarms_
        Recent alarms, dicts ``{"t", "n_labelled", "detector", "signal", "response",
        "recent", "baseline"}``. ``n_labelled`` is the labelled events this monitor watched;
        ``t`` is the caller's stamp (a learner's: events passed to ``prequential_batch`` and
        ``learn_*``, see ``StreamingClassifier._watch``), or ``n_labelled`` when none is given.
    n_alarms_, n_ignored_, counts_
        Alarms raised, detections ignored (signal went down), and alarms by detector
        and response: ``{detector: {response: n}}``.
    """

    def __init__(self, detector: str = "adwin", params: dict | None = None, signal: str = "auto",
                 response: tuple = ("restart",), direction: str = "up", forget_value: float = 0.98,
                 forget_events: int = 300, restart_after: int = 100, max_alarms: int = 1000, seed: int = 0):
        response = _checked_monitor_args(detector, params, signal, response, direction, forget_value, forget_events,
                                         restart_after, max_alarms, seed)
        self.detector = detector
        self.params = params
        self.signal = signal
        self.response = response
        self.direction = direction
        self.forget_value = forget_value
        self.forget_events = forget_events
        self.restart_after = restart_after
        self.max_alarms = max_alarms
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        self.detector_ = make_detector(self.detector, self.params, self.seed)
        self.n_ = 0  # labelled events watched
        self.recent_ = 0.0  # fast average of the signal (about 50 events)
        self.since_sum_ = 0.0  # signal summed since the last alarm
        self.since_n_ = 0
        self.last_ = collections.deque(maxlen=DIRECTION_WINDOW)  # the last signals, for the direction
        self.alarms_: list[dict] = []
        self.n_alarms_ = 0
        self.n_ignored_ = 0
        self.counts_: dict = {}
        self.forget_until_ = -1  # labelled count until which the "forget" response holds
        self.forget_pending_ = False  # an alarm asked for a "forget" window no control point has opened yet
        self.remix_due_ = False  # an alarm asked for the mixture to be reset

    @property
    def signal_name(self) -> str:
        """The signal watched, ``"error"`` or ``"loss"`` (``"auto"`` resolved: loss for KSWIN, else error)."""
        if self.signal != "auto":
            return self.signal
        return "loss" if self.detector == "kswin" else "error"

    @property
    def response_name(self) -> str:
        """The responses joined by ``+`` (``"forget+remix"``), as alarms and ``counts_`` name them."""
        return "+".join(self.response)

    def update(self, error: float, loss: float, t: int | None = None) -> dict | None:
        """Watch one labelled event; returns the alarm dict if this event raised one. A
        non-finite value of the watched signal (``error`` or ``loss``) is refused: River's
        detectors and the averages would keep a NaN for good and never alarm again."""
        name, v = ("error", error) if self.signal_name == "error" else ("loss", loss)
        check_signal("DriftMonitor.update", name, v)
        x = float(v)
        if DETECTORS[self.detector][1]:
            x = bool(error)
        self.detector_.update((not x) if self.detector in WATCH_CORRECT else x)
        xf = float(x)  # the error (or loss) itself: the averages judge the direction on it
        self.n_ += 1
        self.recent_ += max(0.02, 1.0 / self.n_) * (xf - self.recent_)
        self.since_sum_ += xf
        self.since_n_ += 1
        self.last_.append(xf)
        if not self.detector_.drift_detected:
            return None
        baseline = self.since_sum_ / self.since_n_
        if self.direction == "up" and self._went_down(baseline):
            self.n_ignored_ += 1
            self.since_sum_, self.since_n_ = 0.0, 0
            return None
        alarm = {"t": int(self.n_ if t is None else t), "n_labelled": self.n_, "detector": self.detector,
                 "signal": self.signal_name, "response": self.response_name, "recent": self.recent_,
                 "baseline": baseline}
        self.since_sum_, self.since_n_ = 0.0, 0
        self.alarms_.append(alarm)
        if len(self.alarms_) > self.max_alarms:
            del self.alarms_[: len(self.alarms_) - self.max_alarms]
        self.n_alarms_ += 1
        by = self.counts_.setdefault(self.detector, {})
        by[self.response_name] = by.get(self.response_name, 0) + 1
        if "forget" in self.response:
            self.forget_until_ = self.n_ + self.forget_events
            self.forget_pending_ = True
        if "remix" in self.response:
            self.remix_due_ = True
        return alarm

    def _went_down(self, baseline: float) -> bool:
        """Whether a detection saw the signal fall (or stay): the ~50-event average at or below
        ``baseline`` (the mean since the last detection) *and* the mean of the last
        ``DIRECTION_WINDOW`` signals within ``DIRECTION_Z`` standard deviations above the mean
        since the last detection without them. The average alone lags a fast detector's abrupt
        rise; the short window alone is a few 0/1 errors. Until the window is full and as many
        signals came before it (since the last detection, or after loading a checkpoint without
        the window), the average decides alone."""
        if self.recent_ > baseline:
            return False
        k = len(self.last_)
        rest = self.since_n_ - k
        if k < DIRECTION_WINDOW or rest < k:
            return True
        last = sum(self.last_)
        before = (self.since_sum_ - last) / rest
        p = min(max(before, 0.0), 1.0)  # a signal in [0, 1] at mean p varies by at most p (1 - p)
        return last / k <= before + DIRECTION_Z * math.sqrt(p * (1.0 - p) / k)

    # -- responses ----------------------------------------------------------------------
    def forgetting_override(self) -> float | None:
        """The ``"forget"`` response's factor while it holds, else ``None`` (the window counts
        from the alarm until :meth:`control_forgetting` opens it anew)."""
        return self.forget_value if self.n_ < self.forget_until_ else None

    def control_forgetting(self) -> float | None:
        """:meth:`forgetting_override` at a learner's control point, the first one after an alarm
        opening the ``forget_events`` window there: the learner sets factors only at control
        points, so a window counted from the alarm could end before one came and the
        response would never be applied."""
        if self.forget_pending_:
            self.forget_until_ = self.n_ + self.forget_events
            self.forget_pending_ = False
        return self.forgetting_override()

    @property
    def trains_shadows(self) -> bool:
        """Whether alarms start shadow heads ("restart" or "reset")."""
        return "restart" in self.response or "reset" in self.response

    def take_remix(self) -> bool:
        """Whether an alarm asked for a ``"remix"`` since the last call (the caller then resets)."""
        due, self.remix_due_ = self.remix_due_, False
        return due

    def report(self) -> dict:
        """Detector, signal, response, alarms raised and ignored, alarms by detector and response, the last 20."""
        return {"detector": self.detector, "signal": self.signal_name, "response": self.response_name,
                "alarms": self.n_alarms_, "ignored": self.n_ignored_, "counts": {k: dict(v) for k, v in self.counts_.items()},
                "recent_alarms": [dict(a) for a in self.alarms_[-20:]]}

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The detector's state, averages, alarms, counts and pending responses (:meth:`load_state_dict`)."""
        return {
            "detector": detector_state(self.detector_), "n": self.n_, "recent": self.recent_,
            "since_sum": self.since_sum_, "since_n": self.since_n_, "last": list(self.last_),
            "alarms": [dict(a) for a in self.alarms_],
            "n_alarms": self.n_alarms_, "n_ignored": self.n_ignored_,
            "counts": {k: dict(v) for k, v in self.counts_.items()},
            "forget_until": self.forget_until_, "forget_pending": self.forget_pending_, "remix_due": self.remix_due_,
            "detector_name": self.detector,
            **({"fed": "correct"} if self.detector in WATCH_CORRECT else {}),  # absent: fed errors (before r85)
            "params_set": sorted(self.params or {}),  # the parameters given, not River's defaults (load_state_dict)
        }

    def load_state_dict(self, state: Mapping) -> "DriftMonitor":
        """Restore :meth:`state_dict`; a checkpoint of another detector (checkpoints from before
        the detector's name was saved are not compared on it) or of other detector ``params``
        (:func:`load_detector_state`) is refused before anything changes. Compared are the ``params``
        given, here or to the monitor that wrote the state (``params_set``; checkpoints from before it
        was kept: those given here), not River's defaults: a River release that changes a default
        leaves the detectors of older checkpoints running as they were, as the daemon, which sets no
        detector params, must (its config could not name the one the checkpoint has). An FHDDM state
        written while it was fed errors (before :data:`WATCH_CORRECT`; no ``fed`` key) keeps its counts
        and alarms but not its window, which held the inverse of what it watches now: that detector
        starts afresh (a change within its first ``sliding_window_size`` events may go unseen)."""
        saved = state.get("detector_name", self.detector)
        if saved != self.detector:
            raise ValueError(f"the checkpoint's drift detector is {saved!r}, this learner's is {self.detector!r}: "
                             f"restore with detector={saved!r} (config drift.detector), or start afresh")
        given = set(self.params or {}) | set(state.get("params_set", ()))
        restored = self.detector not in WATCH_CORRECT or state.get("fed") == "correct"

        def restore():
            detector = make_detector(self.detector, self.params, self.seed)
            if restored:
                load_detector_state(detector, state["detector"], compare=given)
            else:  # an FHDDM fed errors before r85 (inverted, WATCH_CORRECT): its window starts afresh
                _check_params(detector, state["detector"], given)
            return detector

        detector = restore()
        _check_detector_runs(restore)
        # each saved value's range, before anything changes (review r105: a negative n divided by zero)
        n, since_n = saved_count(state["n"], "drift n"), saved_count(state["since_n"], "drift since_n")
        # averages and sums of signals in [0, 1], finite (their bounds hold within rounding only)
        recent, since_sum = saved_real(state["recent"], "drift recent"), saved_real(state["since_sum"], "drift since_sum")
        # absent in checkpoints before the direction looked at the last signals: an empty window
        # (the ~50-event average decides alone until it fills)
        last = saved_array(list(state.get("last", ())), "drift last").tolist()
        n_alarms, n_ignored = saved_count(state["n_alarms"], "drift n_alarms"), saved_count(state["n_ignored"],
                                                                                            "drift n_ignored")
        counts = {k: {r: saved_count(c, f"drift counts {k} {r}") for r, c in v.items()} for k, v in state["counts"].items()}
        forget_until = saved_count(state["forget_until"], "drift forget_until", -1, MAX_COUNT + self.forget_events)
        self._reset()
        self.detector_ = detector
        self.n_, self.recent_ = n, recent
        self.since_sum_, self.since_n_ = since_sum, since_n
        self.last_.extend(last)
        self.alarms_ = [dict(a) for a in state["alarms"]]
        self.n_alarms_, self.n_ignored_ = n_alarms, n_ignored
        self.counts_ = counts
        self.forget_until_ = forget_until
        # absent in checkpoints before the window opened at a control point: theirs counts from the alarm
        self.forget_pending_ = bool(state.get("forget_pending", False))
        self.remix_due_ = bool(state.get("remix_due", False))  # absent in checkpoints before "remix"
        return self
