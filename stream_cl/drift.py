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
:meth:`DriftMonitor.state_dict` as plain values (bytes as uint8 arrays; :mod:`stream_cl.detectors`),
and a restore continues the exact sequence of detections.

>>> monitor = DriftMonitor("adwin", response=("record",))
>>> errors = [int(i % 20 == 0) for i in range(1000)] + [i % 2 for i in range(1000)]  # 5% wrong, then 50%
>>> alarms = [a for i, e in enumerate(errors) if (a := monitor.update(e, float(e), t=i))]
>>> [(a["detector"], a["response"]) for a in alarms][:1], 1000 <= alarms[0]["t"] < 1200
([('adwin', 'record')], True)
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping

from river import base

from .checks import MIN_FORGETTING, check_int, check_seed, check_signal, is_forgetting
from .detectors import (DETECTORS, WATCH_CORRECT, check_detector_params, check_detector_runs, check_saved_params,
                        detector_state, load_detector_state, make_detector)
from .state_checks import MAX_COUNT, saved_array, saved_count, saved_real

# The names that moved to modules of their own when this one was split stay importable from here, the same
# objects (__all__ lists them too): those this module does not use itself are imported for that alone.
from .detectors import PARAM_RULES

__all__ = ["DIRECTION_WINDOW", "DIRECTION_Z", "RESPONSES", "SIGNALS", "DriftMonitor",
           # (moved, as above)
           "DETECTORS", "PARAM_RULES", "WATCH_CORRECT", "check_detector_params", "detector_state",
           "load_detector_state", "make_detector"]

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


def _checked_monitor_args(detector, params, signal, response, direction, forget_value, forget_events, restart_after,
                          max_alarms, seed) -> tuple:
    """:class:`DriftMonitor`'s arguments checked, each refusal naming the argument and the fix; the
    ``response`` as a tuple (a single name is taken for a tuple of one)."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown drift detector {detector!r}; use one of {', '.join(DETECTORS)}")
    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
    if DETECTORS[detector][1] and signal == "loss":
        raise ValueError(f"signal 'loss': {detector} watches the 0/1 error only; use signal='error' or 'auto'")
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
                check_saved_params(detector, state["detector"], given)
            return detector

        detector = restore()
        check_detector_runs(restore)
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
