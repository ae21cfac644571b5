"""River's drift detectors by name: made (:func:`make_detector`), their parameters checked before a
learner runs them (:func:`check_detector_params`), and their whole state, River's Rust-backed parts
included, saved as plain values and restored (:func:`detector_state`, :func:`load_detector_state`), so
that a restore continues the exact sequence of detections. :class:`stream_cl.drift.DriftMonitor`
runs one of them on a learner's error or loss.

>>> a = make_detector("adwin")
>>> for x in [0.0] * 300:
...     _ = a.update(x)
>>> b = make_detector("adwin")
>>> load_detector_state(b, detector_state(a))
>>> def detections(d, xs):
...     return [i for i, x in enumerate(xs) if d.update(x) is None and d.drift_detected]
>>> rest = [1.0] * 300  # the same detections after the restore as without it
>>> detections(a, rest) == detections(b, rest) != []
True
"""

from __future__ import annotations

import collections
import inspect
import math
import numbers
import random
from collections.abc import Mapping

import numpy as np
from river import drift as river_drift

from .checks import is_real
from .state_checks import CORRUPT

__all__ = ["DETECTORS", "PARAM_RULES", "WATCH_CORRECT", "check_detector_params", "check_detector_runs",
           "check_saved_params", "detector_state", "load_detector_state", "make_detector"]

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


def make_detector(name: str, params: Mapping | None = None, seed: int = 0):
    """A fresh River detector by name; ``kswin`` gets ``seed`` unless one is given."""
    try:
        factory, _, defaults = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown drift detector {name!r}; use one of {', '.join(DETECTORS)}") from None
    kwargs = {**defaults, **(dict(params) if params else {})}
    for key, v in kwargs.items():  # a whole float (30.0) or numpy int for a count as the int River's detectors
        # index with: its deques refuse np.int64 as a maxlen ("an integer is required"), which the probe reported
        # as a value out of River's ranges
        if _is_count(name, key) and is_real(v) and math.isfinite(v) and float(v).is_integer():
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
# ADWIN's max_buckets: at 1, River's Rust ADWIN panicked (slice index starts at 1 but ends at 0, a BaseException)
# at its first detection, when it drops its oldest buckets: after the probe, after the heads learned the event
PARAM_RULES = {
    "adwin": {"delta": (*_UNIT, 0.002), "clock": (*_AT_LEAST_1, 32), "max_buckets": (_count(2), "an int >= 2", 5),
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
    if name == "fhddm" and p["short_window_size"] is not None and p["short_window_size"] > p["sliding_window_size"]:
        # the short window is the sliding window's last values: a longer one failed (an islice of a negative
        # start) at every event once the sliding window was full, after the heads had learned it; past the probe
        raise ValueError(f"drift detector 'fhddm': params['short_window_size'] ({p['short_window_size']}) must be at "
                         f"most params['sliding_window_size'] ({p['sliding_window_size']}); use e.g. "
                         f"sliding_window_size=100, short_window_size=20")
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
    check_saved_params(detector, state, compare)
    _restore(detector, state)


def check_detector_runs(restore) -> None:
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


def check_saved_params(detector, state: Mapping, compare=None) -> None:
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
