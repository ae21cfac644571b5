"""Review r19's drift findings: direction "up" keeps a fast detector's abrupt rises (finding 1),
a non-finite error or loss is refused by DriftMonitor and Homeostasis (finding 2)."""

import math

import numpy as np
import pytest

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.checkpoint import load_checkpoint, save_checkpoint
from stream_cl.drift import DIRECTION_WINDOW, DriftMonitor
from stream_cl.homeostasis import Homeostasis
from state_kit import same  # tests/unit/state_kit.py


def _flips(n=6000, every=1000, seed=1):
    """The review's stream: a linear concept whose label flips every ``every`` events."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        x = rng.normal(size=3)
        y = int(x[0] + 0.5 * x[1] > 0)
        xs.append({"a": float(x[0]), "b": float(x[1]), "c": float(x[2])})
        ys.append(1 - y if (i // every) % 2 else y)
    return xs, ys


def _learner(drift, homeostasis=None):
    return OnlineContinualLearner(backbone=RandomFeatures(width=16, seed=0), key_units=2, device="cpu",
                                  heads=((1.0, "all"), (0.99, "all")), drift=drift, homeostasis=homeostasis)


def _errors(rates, per=1000, seed=0):
    """0/1 errors at each rate in turn, ``per`` events each."""
    rng = np.random.default_rng(seed)
    return (rng.random(per * len(rates)) < np.repeat(rates, per)).astype(float)


# -- finding 1: the direction of a detection -------------------------------------------------
def test_hddm_a_alarms_at_every_flip_with_direction_up():
    """The error jumps from ~2% to 50-100% at each flip; HDDM_A fires ~5 events in, while the
    ~50-event average is still near the old level (before the fix: alarms at 1005 and 2006 only,
    the other three counted as "the signal went down")."""
    xs, ys = _flips()
    m = _learner(DriftMonitor("hddm_a", response=("record",)))
    m.prequential_batch(xs, ys)
    ts = [a["t"] for a in m.alarms_]
    assert len(ts) == 5 and all(c < t <= c + 50 for c, t in zip(range(1000, 6000, 1000), ts)), ts
    assert m.drift_.n_ignored_ == 0


def test_adwin_still_ignores_the_learner_getting_better():
    """ADWIN also detects each recovery after a flip (the error falling back): those stay ignored,
    and the five rises stay alarms (the same as before the fix)."""
    xs, ys = _flips()
    m = _learner(DriftMonitor("adwin", response=("record",)))
    m.prequential_batch(xs, ys)
    assert [a["t"] for a in m.alarms_] == [1024, 2016, 3040, 4032, 5024]
    assert m.drift_.n_ignored_ == 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_falling_error_raises_no_alarm_with_direction_up(seed):
    """ADWIN is two-sided: it detects the error falling at 1000 and 3000 as well as rising at
    2000; only the rise is an alarm."""
    e = _errors([0.5, 0.05, 0.5, 0.02], seed=seed)  # better, worse, better
    up = DriftMonitor("adwin", response=("record",))
    both = DriftMonitor("adwin", response=("record",), direction="both")
    alarms = [a["t"] for t, x in enumerate(e, start=1) if (a := up.update(x, x, t))]
    assert len(alarms) == 1 and 2000 < alarms[0] <= 2100 and up.n_ignored_ == 2
    assert len([t for t, x in enumerate(e, start=1) if both.update(x, x, t)]) == 3


def test_the_window_is_the_last_signals_and_survives_a_round_trip():
    e = _errors([0.1, 0.6, 0.1, 0.6, 0.1])
    a = DriftMonitor("hddm_a", response=("record",))
    for t, x in enumerate(e[:2500], start=1):
        a.update(x, x, t)
    state = a.state_dict()
    assert state["last"] == list(e[2500 - DIRECTION_WINDOW:2500])
    b = DriftMonitor("hddm_a", response=("record",)).load_state_dict(state)
    assert same(b.state_dict(), state)
    for t, x in enumerate(e[2500:], start=2501):
        assert a.update(x, x, t) == b.update(x, x, t)
    assert [al["t"] for al in a.alarms_] == [al["t"] for al in b.alarms_] and a.n_alarms_ == 2  # one after the cut
    assert same(a.state_dict(), b.state_dict())


def test_a_learner_checkpoint_keeps_the_window(tmp_path):
    """Through save_checkpoint/load_checkpoint, cut 2 events after a flip: the window (the
    flip's first errors) is what lets HDDM_A's detection a few events later be an alarm."""
    xs, ys = _flips(n=4000)
    a = _learner(DriftMonitor("hddm_a", response=("record",)))
    pa = a.prequential_batch(xs, ys)
    b = _learner(DriftMonitor("hddm_a", response=("record",)))
    b.prequential_batch(xs[:3002], ys[:3002])
    save_checkpoint(tmp_path / "c.safetensors", b.state_dict())
    c = _learner(DriftMonitor("hddm_a", response=("record",)))
    c.load_state_dict(load_checkpoint(tmp_path / "c.safetensors")[0])
    assert list(c.drift_.last_) == list(b.drift_.last_) and len(c.drift_.last_) == DIRECTION_WINDOW
    pc = c.prequential_batch(xs[3002:], ys[3002:])
    assert np.abs(pa[3002:] - pc).max() < 1e-12
    assert [al["t"] for al in c.alarms_] == [al["t"] for al in a.alarms_] and len(a.alarms_) == 3


def test_a_state_saved_before_the_window_loads_with_an_empty_one():
    a = DriftMonitor("adwin", response=("record",))
    for t, x in enumerate(_errors([0.1, 0.5]), start=1):
        a.update(x, x, t)
    old = {k: v for k, v in a.state_dict().items() if k != "last"}  # a checkpoint from before the field
    b = DriftMonitor("adwin", response=("record",)).load_state_dict(old)
    assert len(b.last_) == 0 and b.last_.maxlen == DIRECTION_WINDOW and b.n_ == a.n_
    for t, x in enumerate(_errors([0.1, 0.6], seed=3), start=2001):  # goes on watching, fills the window
        b.update(x, x, t)
    assert len(b.last_) == DIRECTION_WINDOW and b.n_alarms_ > a.n_alarms_


def test_per_event_and_batched_learners_agree_with_drift_on():
    """The River loop (predict_proba_one, learn_one) and prequential_batch: same probabilities,
    same alarms (t and n_labelled: every event labelled), same need."""
    xs, ys = _flips(n=3000)

    def make():
        return _learner(DriftMonitor("hddm_a", response=("need", "forget", "restart"), restart_after=30),
                        Homeostasis())
    a, b = make(), make()
    pa = []
    for x, y in zip(xs, ys):
        p = a.predict_proba_one(x)
        pa.append([p.get(c, 0.0) for c in (0, 1)])
        a.learn_one(x, y)
    pb = b.prequential_batch(xs, ys)[:, [b.classes_.index(c) for c in (0, 1)]]
    assert np.abs(np.array(pa) - pb).max() < 1e-8
    key = [(al["t"], al["n_labelled"]) for al in a.alarms_]
    assert len(key) == 2 and key == [(al["t"], al["n_labelled"]) for al in b.alarms_]
    assert a.need_ == pytest.approx(b.need_, abs=1e-12)


# -- finding 2: non-finite values ------------------------------------------------------------
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_homeostasis_refuses_a_non_finite_loss_or_error(bad):
    h = Homeostasis()
    for _ in range(50):
        h.observe(error=0.0, loss=0.1)
    before = h.state_dict()
    with pytest.raises(ValueError, match=r"Homeostasis.observe: loss must be a finite number, got (nan|inf|-inf)"):
        h.observe(error=0.0, loss=bad)
    with pytest.raises(ValueError, match=r"Homeostasis.observe: error must be a finite number"):
        h.observe(error=bad, loss=0.1)
    assert h.state_dict() == before  # refused before anything moved
    for _ in range(300):
        h.observe(error=0.0, loss=0.9)  # the loss jumps: the need still rises
    assert h.need_ > 1.0


@pytest.mark.parametrize("detector, signal", [("adwin", "loss"), ("page_hinkley", "loss"), ("adwin", "error"),
                                              ("hddm_a", "error")])
def test_drift_monitor_refuses_a_non_finite_watched_signal(detector, signal):
    m = DriftMonitor(detector, signal=signal, response=("record",))
    for _ in range(500):
        m.update(0.0, 0.1)
    before = m.state_dict()
    bad = (math.nan, 0.1) if signal == "error" else (0.0, math.nan)
    with pytest.raises(ValueError, match=f"DriftMonitor.update: {signal} must be a finite number, got nan"):
        m.update(*bad)
    assert same(m.state_dict(), before)
    for _ in range(1000):
        m.update(1.0, 0.9)  # the signal jumps: still an alarm
    assert m.n_alarms_ >= 1


def test_an_unwatched_loss_is_not_checked():
    """An error-watching monitor never reads the loss (e.g. a log loss, inf at p = 0)."""
    m = DriftMonitor("ddm", response=("record",))
    m.update(0.0, math.inf)
    assert m.n_ == 1
