"""Review r85: River's FHDDM alarms when the mean of its input falls, so the monitor fed it the 0/1
error and it fired once the learner had recovered, never when it got worse. It is fed correctness
now (stream_cl.detectors.WATCH_CORRECT); an FHDDM state written while it was fed errors starts afresh."""

import numpy as np

from stream_cl import OnlineContinualLearner
from stream_cl.drift import DriftMonitor, detector_state, make_detector


def _errors(levels, seed=0):
    """0/1 errors at each ``(events, rate)`` segment's rate, in order."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.random(n) < p for n, p in levels]).astype(float)


def _alarm_times(monitor, e):
    return [a["t"] for t, v in enumerate(e) if (a := monitor.update(v, v, t=t))]


def test_fhddm_alarms_when_the_learner_gets_worse_not_when_it_recovers():
    e = _errors([(1000, 0.05), (300, 0.5), (700, 0.05)])  # worse at 1000, recovered at 1300
    times = _alarm_times(DriftMonitor("fhddm", response=("record",)), e)
    assert times and 1000 <= times[0] < 1150, times  # before the fix: [1341], the recovery


def test_fhddm_sees_a_lasting_rise_on_every_seed():
    for seed in range(5):
        e = _errors([(1000, 0.05), (1000, 0.5)], seed=seed)
        times = _alarm_times(DriftMonitor("fhddm", response=("record",)), e)
        assert times and all(t >= 1000 for t in times) and times[0] < 1150, (seed, times)  # before: none


def test_a_learner_with_fhddm_alarms_after_its_labels_change():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    y[600:] = 1 - y[600:]  # every label flipped from event 600 on
    model = OnlineContinualLearner(drift=DriftMonitor("fhddm", response=("record",)), seed=0)
    for i in range(len(X)):
        x = {f"f{j}": float(v) for j, v in enumerate(X[i])}
        model.predict_proba_one(x)
        model.learn_one(x, int(y[i]))
    alarms = model.drift_.alarms_
    assert alarms and 600 <= alarms[0]["n_labelled"] < 700, [a["n_labelled"] for a in alarms]


def test_an_fhddm_state_fed_errors_starts_its_detector_afresh():
    e = _errors([(500, 0.2)])
    old = DriftMonitor("fhddm", response=("record",))
    _alarm_times(old, e)
    state = old.state_dict()
    assert state["fed"] == "correct"
    written_before = {k: v for k, v in state.items() if k != "fed"}  # as a checkpoint before r85 holds it
    restored = DriftMonitor("fhddm", response=("record",)).load_state_dict(written_before)
    assert restored.n_ == old.n_ and restored.counts_ == old.counts_
    fresh = detector_state(make_detector("fhddm"))
    assert repr(detector_state(restored.detector_)) == repr(fresh)
    same = DriftMonitor("fhddm", response=("record",)).load_state_dict(state)  # this release's state: all of it
    assert repr(detector_state(same.detector_)) == repr(detector_state(old.detector_))
