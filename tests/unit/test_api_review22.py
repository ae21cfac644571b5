"""Review 22 of the library API (helper r5): drift-detector parameters are checked when the monitor
is built, the imbalance report keeps the labels 1 and "1" apart, and learn_many checks the shape of
y and the type of X."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from stream_cl import AnalyticClassifier, OnlineContinualLearner, detectors
from stream_cl.backbones import RandomFeatures
from stream_cl.config import ConfigError, load_config_dict
from stream_cl.detectors import DETECTORS
from stream_cl.drift import DriftMonitor
from stream_cl.factory import build_learner
from stream_cl.imbalance import ImbalanceCompensator
from stream_cl.prequential import Prequential
from stream_cl.trainable import TrainableLearner


# -- 1. drift-detector parameters ------------------------------------------------------------
@pytest.mark.parametrize("detector, params, key", [
    ("adwin", {"clock": 0}, "clock"),  # was a Rust PanicException (not an Exception) at the first learned event
    ("hddm_a", {"drift_confidence": -1}, "drift_confidence"),  # was "math domain error" at the first learned event
    ("adwin", {"delta": -1}, "delta"),  # never alarmed
    ("adwin", {"delta": 5}, "delta"),
    ("adwin", {"max_buckets": 0}, "max_buckets"),  # a Rust panic
    ("ddm", {"drift_threshold": -1}, "drift_threshold"),
    ("page_hinkley", {"threshold": -1}, "threshold"),
    ("page_hinkley", {"alpha": float("nan")}, "alpha"),
    ("page_hinkley", {"delta": -1}, "delta"),
    ("kswin", {"window_size": 50}, "window_size"),  # fails at the 50th event: it samples 30 of 20
    ("kswin", {"alpha": 0.0}, "alpha"),
    ("eddm", {"alpha": 0.5, "beta": 0.9}, "alpha"),
    ("hddm_a", {"warning_confidence": 0}, "warning_confidence"),  # a division by zero, 35 events in
    ("hddm_w", {"lambda_val": 1}, "lambda_val"),  # never alarms
    ("hddm_w", {"two_sided_test": "no"}, "two_sided_test"),
    ("fhddm", {"confidence_level": 0}, "confidence_level"),
    ("fhddm", {"sliding_window_size": 0}, "sliding_window_size"),
    ("adwin", {"clock": "32"}, "clock"),
])
def test_a_bad_detector_parameter_is_refused_when_the_monitor_is_built(detector, params, key):
    with pytest.raises(ValueError, match=rf"drift detector '{detector}'.*params\['{key}'\].*use e\.g\."):
        DriftMonitor(detector, params=params, response=("record",))


def test_the_repro_learner_is_never_built_so_never_half_learns():
    for detector, params in (("adwin", {"clock": 0}), ("hddm_a", {"drift_confidence": -1})):
        with pytest.raises(ValueError, match=detector):
            OnlineContinualLearner(device="cpu", backbone=RandomFeatures(width=8),
                                   drift=DriftMonitor(detector, params=params, response=("record",)))


def test_a_river_panic_at_the_probe_is_a_value_error_naming_the_detector(monkeypatch):
    # without the range rule, ADWIN's max_buckets=0 reaches River: its Rust part panics with
    # pyo3's PanicException, a BaseException only, at the first update
    monkeypatch.delitem(detectors.PARAM_RULES["adwin"], "max_buckets")
    with pytest.raises(ValueError, match=r"drift detector 'adwin' fails with params \{'max_buckets': 0\}: PanicException"):
        DriftMonitor("adwin", params={"max_buckets": 0})


def test_an_interrupt_during_the_probe_is_not_turned_into_a_value_error(monkeypatch):
    class Interrupted:
        def update(self, x):
            raise KeyboardInterrupt

    monkeypatch.setitem(DETECTORS, "adwin", (Interrupted, False, {}))
    with pytest.raises(KeyboardInterrupt):
        DriftMonitor("adwin")


def test_unknown_detector_params_are_named():
    with pytest.raises(ValueError, match=r"bad params for drift detector 'ddm': unknown \['delta'\]"):
        DriftMonitor("ddm", params={"delta": 0.1})


@pytest.mark.parametrize("detector, params", [
    ("adwin", None), ("adwin", {"delta": 0.01, "clock": 16}), ("adwin", {"grace_period": 0, "clock": 1}),
    ("kswin", None), ("kswin", {"alpha": 0.001, "window_size": 60, "stat_size": 30, "seed": 3}),
    ("kswin", {"window": [0.0, 1.0, 0.0]}),
    ("page_hinkley", None), ("page_hinkley", {"mode": "both", "alpha": 1.0, "delta": 0.0, "threshold": 5}),
    ("ddm", None), ("ddm", {"warm_start": 5}), ("eddm", {"alpha": 0.9, "beta": 0.9, "warm_start": 0}),
    ("hddm_a", {"drift_confidence": 0.01, "two_sided_test": True}), ("hddm_w", {"lambda_val": 0.1}),
    ("fhddm", {"short_window_size": 20, "sliding_window_size": 50}), ("fhddm", {"short_window_size": None}),
])
def test_valid_detector_params_still_build_learn_and_restore(detector, params):
    mon = DriftMonitor(detector, params=params, response=("record",))
    rng = np.random.default_rng(0)
    errors = (rng.random(600) < np.r_[np.full(300, 0.05), np.full(300, 0.6)]).astype(int)
    for i, e in enumerate(errors[:400]):
        mon.update(int(e), float(e), t=i)
    again = DriftMonitor(detector, params=params, response=("record",)).load_state_dict(pickle.loads(pickle.dumps(mon.state_dict())))
    for i, e in enumerate(errors[400:], start=400):
        assert mon.update(int(e), float(e), t=i) == again.update(int(e), float(e), t=i)
    assert mon.n_alarms_ == again.n_alarms_


@pytest.mark.parametrize("detector", list(DETECTORS))
def test_every_detector_from_a_drift_config_section_still_builds(detector):
    m = build_learner(load_config_dict({"drift": {"detector": detector, "response": ["record"]}}))
    assert m.drift_.detector == detector
    with pytest.raises(ConfigError, match=r"drift\.seed"):  # the loader still names the key
        build_learner(load_config_dict({"drift": {"detector": detector, "seed": -1}}))


# -- 2. the imbalance report's class names --------------------------------------------------------
def test_the_imbalance_report_keeps_labels_1_and_str_1_apart_as_the_run_report_does():
    m = OnlineContinualLearner(device="cpu", backbone=RandomFeatures(width=8), imbalance=ImbalanceCompensator())
    for i in range(30):
        m.learn_one({"a": float(i % 3)}, [1, "1", "x"][i % 3])
    assert m.classes_ == [1, "1", "x"]
    section = m.report()["imbalance"]
    names = Prequential(m).stats.class_names()
    assert section["classes"] == [names[c] for c in m.classes_] == ["1", "'1'", "x"]
    assert section["counts"] == [10.0, 10.0, 10.0]


# -- 3. learn_many's y and X ---------------------------------------------------------------------
LEARNERS = {
    "analytic": AnalyticClassifier,
    "continual": lambda: OnlineContinualLearner(device="cpu", backbone=RandomFeatures(width=4)),
    "trainable": lambda: TrainableLearner(hidden=(4,), device="cpu"),
}
FRAME = pd.DataFrame({"a": [1.0, 2.0], "label": ["spam", "ham"]})


@pytest.mark.parametrize("make", LEARNERS.values(), ids=LEARNERS)
@pytest.mark.parametrize("X, y, error, message", [
    (FRAME[["a"]].iloc[:1], FRAME[["label"]].iloc[:1], ValueError, "one-column frame: pass its column"),  # learned 'label'
    (FRAME[["a"]], FRAME[["label"]], ValueError, r"shape \(2, 1\)"),  # was "2 events and 1 labels"
    (FRAME[["a"]], "xy", TypeError, "got str 'xy'"),  # learned 'x' and 'y'
    (FRAME[["a"]], b"xy", TypeError, "got bytes"),
    (FRAME[["a"]], {"r0": "spam", "r1": "ham"}, TypeError, "got dict"),
    (FRAME[["a"]], {"spam", "ham"}, TypeError, "got set"),
    (FRAME[["a"]], np.array([["spam"], ["ham"]]), ValueError, r"shape \(2, 1\)"),
    (FRAME[["a"]].iloc[:1], 5, TypeError, "got int 5"),
])
def test_learn_many_refuses_labels_that_are_not_one_per_row_in_one_dimension(make, X, y, error, message):
    m = make()
    before = m.status()
    with pytest.raises(error, match=rf"labels must be a pandas Series or a 1-D sequence of labels, one per row.*{message}"):
        m.learn_many(X, y)
    assert m.classes_ == [] and m.status() == before  # nothing learned, not even the column 'a'


@pytest.mark.parametrize("make", LEARNERS.values(), ids=LEARNERS)
def test_learn_many_takes_labels_as_a_series_list_tuple_or_1d_array(make):
    X, series = FRAME[["a"]], FRAME["label"]
    probas = []
    for y in (series, list(series), tuple(series), series.to_numpy(), pd.Index(series)):
        m = make()
        m.learn_many(X, y)
        assert m.classes_ == ["spam", "ham"]
        probas.append(m.predict_proba_many(X).to_numpy())
    assert all(np.array_equal(p, probas[0]) for p in probas)


@pytest.mark.parametrize("make", LEARNERS.values(), ids=LEARNERS)
@pytest.mark.parametrize("X", [{"a": [1.0, 2.0]}, [{"a": 1.0}, {"a": 2.0}], np.array([[1.0], [2.0]]),
                               pd.Series([1.0, 2.0], name="a")], ids=["dict", "list", "array", "series"])
@pytest.mark.parametrize("trained", [False, True])
def test_the_many_methods_refuse_an_x_that_is_not_a_dataframe(make, X, trained):
    m = make()
    if trained:
        m.learn_many(FRAME[["a"]], FRAME["label"])
    before = m.status()
    for call in (lambda: m.learn_many(X, FRAME["label"]), lambda: m.predict_many(X), lambda: m.predict_proba_many(X)):
        with pytest.raises(TypeError, match=r"X must be a pandas\.DataFrame .*got " + type(X).__name__):
            call()
    assert m.status() == before


@pytest.mark.parametrize("detector, params", [("ddm", {"warm_start": 30.0}), ("eddm", {"warm_start": 30.0}),
                                              ("page_hinkley", {"min_instances": 30.0}),
                                              ("hddm_a", {"two_sided_test": 1}), ("hddm_w", {"two_sided_test": 0})])
def test_whole_floats_and_one_or_zero_that_river_runs_with_are_still_taken(detector, params):
    """Found by the session's regression review: the range checks refused 30.0 for a count and 1 for a flag,
    which River had run with before they existed (a count River cannot take, 100.0 for KSWIN's window, is
    still refused: by the probe, with River's own error)."""
    DriftMonitor(detector, params=params)


def test_a_whole_float_count_reaches_river_as_an_int():
    """Found by the second regression review: KSWIN took stat_size=30.0 past the range check and the probe's few
    events, then raised at every event once its window was full (the 100th), after the heads had learned it.
    A whole float for a count is handed to River as the int it indexes with."""
    monitor = DriftMonitor("kswin", params={"window_size": 100.0, "stat_size": 30.0})
    for i in range(300):
        monitor.update(float(i % 7 == 0), 0.0)
    from stream_cl.detectors import make_detector

    detector = make_detector("adwin", {"grace_period": 10.0, "clock": 32.0})
    assert type(detector.grace_period) is int and type(detector.clock) is int
