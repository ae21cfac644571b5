"""Drift detection: River detectors' state survives a save/load round trip exactly; alarms,
responses and their bookkeeping; detection on a stream with a known change; config wiring."""

import numpy as np
import pytest

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.config import ConfigError, load_config_dict
from stream_cl.detectors import DETECTORS, detector_state, load_detector_state, make_detector
from stream_cl.drift import DriftMonitor
from stream_cl.factory import build_learner
from stream_cl.homeostasis import Homeostasis
from state_kit import same  # tests/unit/state_kit.py


def _errors(n=4000, change=2000, seed=0, before=0.1, after=0.5):
    rng = np.random.default_rng(seed)
    p = np.where(np.arange(n) < change, before, after)
    e = (rng.random(n) < p).astype(float)
    loss = np.clip(0.1 + 0.7 * e + 0.1 * rng.random(n), 0, 1)
    return e, loss


def _stream_for(name, seed, raw=False):
    """Errors and losses with a change for detector ``name``, and the change point. ``raw``: for River's
    detector itself, where FHDDM fires when the mean of its input falls (the monitor feeds it correctness)."""
    kw = dict(n=1600, change=800) if name == "kswin" else dict(n=4000, change=2000)  # KSWIN runs a test per event
    if raw and name == "fhddm":
        kw.update(before=0.5, after=0.1)
    e, loss = _errors(seed=seed, **kw)
    return e, loss, kw["change"]


@pytest.mark.parametrize("name", list(DETECTORS))
def test_detector_state_round_trip_resumes_the_exact_sequence(name):
    e, loss, change = _stream_for(name, seed=1, raw=True)
    signal = loss if name == "kswin" else e
    value = (lambda x: bool(x)) if DETECTORS[name][1] else float  # noqa: E731
    resume = change - 50  # shortly before the change: what the detector learned before it decides the alarm

    def detections(detector, start):
        found = []
        for t in range(start, len(signal)):
            detector.update(value(signal[t]))
            if detector.drift_detected:
                found.append(t)
        return found

    a = make_detector(name, seed=3)
    for x in signal[:resume]:
        a.update(value(x))
    b = make_detector(name, seed=3)
    load_detector_state(b, detector_state(a))
    assert same(detector_state(b), detector_state(a))
    expected, got = detections(a, resume), detections(b, resume)
    assert expected and got == expected
    assert same(detector_state(b), detector_state(a))
    # the check can tell: a detector that lost what it learned before the resume detects elsewhere
    assert detections(make_detector(name, seed=3), resume) != expected


@pytest.mark.parametrize("name", list(DETECTORS))
def test_monitor_round_trip_mid_stream_gives_the_same_alarms(name):
    e, loss, change = _stream_for(name, seed=2)
    resume = change - 50

    def run(monitor, start):  # the alarms returned and the steps where the detector fired (alarm or ignored)
        out = []
        for t in range(start, len(e)):
            alarm = monitor.update(e[t], loss[t], t)
            if alarm or monitor.detector_.drift_detected:
                out.append((t, alarm))
        return out

    a = DriftMonitor(name, response=("record",), seed=5)
    for t in range(resume):
        a.update(e[t], loss[t], t)
    b = DriftMonitor(name, response=("record",), seed=5).load_state_dict(a.state_dict())
    assert same(b.state_dict(), a.state_dict())
    expected, got = run(a, resume), run(b, resume)
    assert expected and got == expected
    assert same(b.state_dict(), a.state_dict()) and a.n_alarms_ == b.n_alarms_ and a.n_ignored_ == b.n_ignored_
    assert run(DriftMonitor(name, response=("record",), seed=5), resume) != expected  # the check can tell


def test_adwin_detects_the_change_and_records_the_alarm_as_an_event():
    e, loss = _errors(seed=0)
    mon = DriftMonitor("adwin", response=("need", "forget"))
    alarms = [a for t in range(len(e)) if (a := mon.update(e[t], loss[t], t=t))]
    assert alarms and 2000 <= alarms[0]["t"] < 2300
    a = alarms[0]
    assert {"t", "detector", "signal", "response"} <= set(a) and a["detector"] == "adwin" and a["response"] == "need+forget"
    assert mon.counts_ == {"adwin": {"need+forget": mon.n_alarms_}}


def test_improvements_are_not_alarms_with_direction_up():
    e, loss = _errors(before=0.5, after=0.05, seed=4)  # the learner gets better
    up, both = DriftMonitor("adwin", response=("record",)), DriftMonitor("adwin", response=("record",), direction="both")
    for t in range(len(e)):
        up.update(e[t], loss[t], t)
        both.update(e[t], loss[t], t)
    assert both.n_alarms_ >= 1 and up.n_alarms_ == 0 and up.n_ignored_ >= 1


def test_forget_response_holds_for_forget_events():
    mon = DriftMonitor("adwin", response=("forget", "restart"), forget_value=0.97, forget_events=50, restart_after=30)
    e, loss = _errors(seed=0)
    t = 0
    while not mon.update(e[t], loss[t], t):
        t += 1
    assert mon.forgetting_override() == 0.97 and mon.trains_shadows
    for k in range(49):
        mon.update(0.0, 0.0, t + 1 + k)
    assert mon.forgetting_override() == 0.97
    mon.update(0.0, 0.0, t + 50)
    assert mon.forgetting_override() is None


def test_alarm_list_is_bounded():
    mon = DriftMonitor("ddm", response=("record",), max_alarms=3, params={"warm_start": 5})
    rng = np.random.default_rng(0)
    for t in range(20_000):
        p = 0.05 if (t // 500) % 2 == 0 else 0.6
        mon.update(float(rng.random() < p), 0.0, t)
    assert mon.n_alarms_ > 3 and len(mon.alarms_) == 3


def test_bad_monitor_settings_are_refused():
    with pytest.raises(ValueError, match="0/1 error only"):
        DriftMonitor("ddm", signal="loss")
    with pytest.raises(ValueError, match="unknown drift detector"):
        DriftMonitor("cusum")
    with pytest.raises(ValueError, match="response"):
        DriftMonitor("adwin", response=("panic",))
    with pytest.raises(ValueError, match="homeostasis"):
        OnlineContinualLearner(drift=DriftMonitor("adwin", response=("need",)), device="cpu")


def _flip_stream(n=900, flip=450, seed=0):
    rng = np.random.default_rng(seed)
    xs = [{"a": float(rng.normal()), "b": float(rng.normal())} for _ in range(n)]
    ys = [int((x["a"] > 0) == (i < flip)) for i, x in enumerate(xs)]
    return xs, ys


def _memory_and_adaptive_head(response: tuple) -> OnlineContinualLearner:
    """An exact memory head and an adaptive one, ADWIN answering alarms with ``response``."""
    return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu",
                                  heads=((1.0, "all"), (0.995, "all")), control_every=8,
                                  drift=DriftMonitor("adwin", response=response, restart_after=40))


def test_learner_alarms_and_restart_from_the_shadow_head():
    xs, ys = _flip_stream()
    model = _memory_and_adaptive_head(("restart",))
    model.prequential_batch(xs[:450], ys[:450])
    rows_before = model.heads_[1].ridge.n_rows
    model.prequential_batch(xs[450:], ys[450:])
    assert model.n_alarms_ >= 1 and 450 < model.alarms_[0]["t"] < 600
    assert model.alarm_counts_ == {"adwin": {"restart": model.n_alarms_}}
    # the adaptive head was replaced by the shadow (trained only since the alarm); the exact head was not
    assert model.heads_[1].ridge.n_rows < 900 - 450 + 1 < rows_before + 450
    assert model.heads_[0].ridge.n_rows == 900
    assert model.forgetting_ == [1.0, 0.995]


def test_reset_restarts_the_memory_head_too_and_only_when_its_shadow_was_better():
    xs, ys = _flip_stream()
    model = _memory_and_adaptive_head(("reset",))
    model.prequential_batch(xs[:450], ys[:450])
    assert model.n_alarms_ == 0 and model.heads_[0].ridge.n_rows == 450
    model.prequential_batch(xs[450:], ys[450:])
    t = model.alarms_[0]["t"]
    assert model.n_alarms_ == 1 and 450 < t < 600 and model.n_restarts_ == 1
    # after the flip the memory head (all 450 old rows) predicts worse than a fresh one: both
    # heads restarted from their shadows, which learned only the rows since the alarm
    assert model.heads_[0].ridge.n_rows < 900 - t + 1 and model.heads_[1].ridge.n_rows < 900 - t + 1
    assert model.heads_[0].ridge.forgetting == 1.0 and model.forgetting_ == [1.0, 0.995]

    # a false alarm on a stable stream: the memory head's shadow is not better, the head stays
    steady = _memory_and_adaptive_head(("reset",))
    steady.prequential_batch(xs[:450], ys[:450])
    steady.restarter_.alarm(steady.drift_.n_)  # as if an alarm had just been raised
    steady.prequential_batch(xs[:60], ys[:60])  # the same concept again
    assert steady.heads_[0].ridge.n_rows == 510  # kept: its shadow knew only 60 rows


def test_learner_alarm_times_do_not_depend_on_batching():
    xs, ys = _flip_stream(seed=1)

    def make():
        return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu", control_every=8,
                                      heads=((1.0, "all"), (0.99, "all")), homeostasis=Homeostasis(),
                                      drift=DriftMonitor("hddm_a", response=("need", "forget", "restart"), restart_after=30))
    a, b = make(), make()
    pa = np.vstack([a.prequential_batch(xs[s:s + 100], ys[s:s + 100]) for s in range(0, 900, 100)])
    pb = np.vstack([b.prequential_batch(xs[s:s + 7], ys[s:s + 7]) for s in range(0, 900, 7)])
    assert [(x["t"], x["detector"]) for x in a.alarms_] == [(x["t"], x["detector"]) for x in b.alarms_]
    assert a.n_alarms_ >= 1
    assert np.allclose(pa, pb, atol=1e-8)


def test_config_wires_detector_responses_and_homeostasis():
    cfg = load_config_dict({"model": {"device": "cpu"}, "drift": {"detector": "page_hinkley", "response": ["need", "restart"],
                                                                "restart_after": 50},
                            "homeostasis": {"enabled": True, "min_forgetting": 0.97, "control_every": 16},
                            "replay": {"policy": "reservoir", "max_bytes": 100000}, "imbalance": {"mode": "reweight"}})
    model = build_learner(cfg)
    assert model.drift.detector == "page_hinkley" and model.drift.restart_after == 50
    assert model.homeostasis.min_forgetting == 0.97 and model.control_every == 16
    assert model.replay.max_bytes == 100000 and model.imbalance.mode == "reweight"
    with pytest.raises(ConfigError, match="drift.response"):
        build_learner(load_config_dict({"drift": {"detector": "adwin", "response": ["need"]}}))
    with pytest.raises(ConfigError, match="drift.detector"):
        load_config_dict({"drift": {"detector": "cusum"}})
    trainable = build_learner(load_config_dict({"model": {"kind": "trainable", "device": "cpu"}, "trainable": {"hidden": [16]},
                                                "replay": {"policy": "power_law"}}))
    assert trainable.hidden == (16,) and type(trainable.replay).__name__ == "PowerLawReplay"


def test_the_torch_code_path_of_the_continual_parts_matches_numpy():
    """The CUDA code path (torch tensors between the stages), run on the CPU through torch."""
    import torch

    from stream_cl.heads.class_head import RidgeClassHead
    from stream_cl.imbalance import ImbalanceCompensator
    from stream_cl.replay import ReservoirReplay

    xs, ys = _flip_stream(600, 300, seed=2)

    def make(torch_path):
        m = OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu", control_every=8,
                                   heads=((1.0, "all"), (0.99, "all")), homeostasis=Homeostasis(),
                                   replay=ReservoirReplay(30, seed=1), imbalance=ImbalanceCompensator("both", seed=2),
                                   drift=DriftMonitor("adwin", response=("need", "restart"), restart_after=20))
        if torch_path:
            m.heads_ = [RidgeClassHead(m.gamma, lam, "torch:cpu") for lam, _ in m.heads]
            designs = m._designs
            m._designs = lambda Z, M: {k: torch.from_numpy(v) for k, v in designs(Z, M).items()}
        return m

    a, b = make(False), make(True)
    pa = np.vstack([a.prequential_batch(xs[s:s + 50], ys[s:s + 50]) for s in range(0, 600, 50)])
    pb = np.vstack([b.prequential_batch(xs[s:s + 50], ys[s:s + 50]) for s in range(0, 600, 50)])
    assert np.allclose(pa, pb, atol=1e-8)
    assert a.n_alarms_ == b.n_alarms_ >= 1 and a.n_restarts_ + a.n_restarts_skipped_ >= 1


def test_remix_resets_the_mixture_record_at_the_next_control_point():
    xs, ys = _flip_stream(seed=3)

    def make(response):
        return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu", control_every=8,
                                      heads=((1.0, "all"), (0.99, "all")), drift=DriftMonitor("adwin", response=response))
    remix, record = make(("remix",)), make(("record",))
    for i, (x, y) in enumerate(zip(xs, ys)):
        p_remix, p_record = remix.prequential_batch([x], [y]), record.prequential_batch([x], [y])
        if remix.n_remixes_:
            break
        assert np.array_equal(p_remix, p_record)  # the same learner until the record is reset
    assert remix.n_alarms_ == record.n_alarms_ == 1 and remix.drift_.remix_due_ is False
    assert remix.n_labelled_ % 8 == 0 and i + 1 - remix.alarms_[0]["t"] < 8  # at the first control point after it
    assert np.all(remix.mixer_.accuracy == 0.0) and np.all(record.mixer_.accuracy > 0.5)
    assert np.allclose(remix.head_weights_, 1 / remix.mixer_.accuracy.size)
    assert remix.report()["drift"]["remixes"] == 1 and record.report()["drift"]["remixes"] == 0


def test_a_pending_remix_survives_a_state_round_trip():
    mon = DriftMonitor("adwin", response=("record", "remix"))
    for i in range(2000):
        mon.update(float(i >= 1000 and i % 2 == 0), 0.0)
        if mon.remix_due_:
            break
    assert mon.remix_due_
    again = DriftMonitor("adwin", response=("record", "remix")).load_state_dict(mon.state_dict())
    assert again.take_remix() and not again.take_remix()


@pytest.mark.parametrize("forget_events, held", [(10, 50), (120, 150)])
def test_forget_window_starts_at_the_first_control_point_after_the_alarm(forget_events, held):
    # factors change only at control points (every 50 labelled events here): a window counted from the
    # alarm could end before the next one, and a 10-event window was then never applied at all
    xs, ys = _flip_stream()

    def make():
        return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu", control_every=50,
                                      heads=((1.0, "all"), (0.995, "all")),
                                      drift=DriftMonitor("adwin", response=("forget",), forget_value=0.9,
                                                         forget_events=forget_events))
    a, b = make(), make()
    factors, pa = [], []
    for x, y in zip(xs, ys):
        pa.append(a.prequential_batch([x], [y]))
        factors.append(a.forgetting_[1])  # set after event len(factors): used for the events that follow
    t = a.alarms_[0]["n_labelled"]
    assert a.n_alarms_ == 1 and t % 50 != 0  # raised between control points
    start = -(-t // 50) * 50  # the first control point after the alarm
    assert (np.flatnonzero(np.array(factors) == 0.9) + 1).tolist() == list(range(start, start + held))
    assert factors[-1] == 0.995 and a.drift_.forgetting_override() is None
    # the same window, whatever the batching
    pb = [b.prequential_batch(xs[s:s + 37], ys[s:s + 37]) for s in range(0, len(xs), 37)]
    two = [np.pad(p, ((0, 0), (0, 2 - p.shape[1]))) for p in pa + pb]  # the first rows knew one class
    assert a.alarms_ == b.alarms_ and np.allclose(np.vstack(two[: len(pa)]), np.vstack(two[len(pa):]), atol=1e-8)


def test_a_pending_forget_window_survives_a_state_round_trip():
    mon = DriftMonitor("adwin", response=("forget",), forget_value=0.97, forget_events=5)
    e, loss = _errors(seed=0)
    t = 0
    while not mon.update(e[t], loss[t], t):
        t += 1
    for k in range(10):  # past the window counted from the alarm, before a control point
        mon.update(0.0, 0.0, t + 1 + k)
    assert mon.forgetting_override() is None
    again = DriftMonitor("adwin", response=("forget",), forget_value=0.97, forget_events=5).load_state_dict(mon.state_dict())
    for m in (mon, again):  # the first control point opens the window of 5 events
        assert m.control_forgetting() == 0.97
        for k in range(4):
            m.update(0.0, 0.0)
        assert m.control_forgetting() == 0.97
        m.update(0.0, 0.0)
        assert m.control_forgetting() is None
    old = {k: v for k, v in mon.state_dict().items() if k != "forget_pending"}  # a checkpoint from before the field
    assert DriftMonitor("adwin", response=("forget",)).load_state_dict(old).forget_pending_ is False


@pytest.mark.parametrize("name", ["forget_events", "restart_after", "max_alarms"])
@pytest.mark.parametrize("value", [float("nan"), 2.5, 0, -3, True, "100"])
def test_event_counts_must_be_whole_numbers_of_at_least_one(name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be an int >= 1, got .*; use e.g. "):
        DriftMonitor("adwin", response=("forget", "restart"), **{name: value})
    assert getattr(DriftMonitor("adwin", **{name: np.int64(7)}), name) == 7


def test_a_checkpoint_of_another_detector_is_refused():
    e, loss = _errors(600, 300)
    a = DriftMonitor("adwin")
    for x, l in zip(e, loss):
        a.update(x, l)
    for other in ("kswin", "ddm", "page_hinkley"):
        b = DriftMonitor(other)
        with pytest.raises(ValueError, match=rf"checkpoint's drift detector is 'adwin', this learner's is '{other}': "
                                             r"restore with detector='adwin'"):
            b.load_state_dict(a.state_dict())
        assert b.n_ == 0  # left as it was
    assert DriftMonitor("adwin").load_state_dict(a.state_dict()).n_ == 600
    old = {k: v for k, v in a.state_dict().items() if k != "detector_name"}  # a checkpoint from before the field
    assert DriftMonitor("adwin").load_state_dict(old).n_ == 600
