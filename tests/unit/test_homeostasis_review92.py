"""Review r92: the homeostatic need settles on a stationary stream whose errors come in runs, and
still rises at once on an abrupt change; the controller takes signals in [0, 1] only; the mixer's
closed form keeps its digits at small decays; a drift response named twice is refused."""

import random

import numpy as np
import pytest

from stream_cl.drift import DriftMonitor
from stream_cl.homeostasis import Homeostasis, noise_band
from stream_cl.mixing import AccuracyMixer


def _runs(mean_run: int, n: int = 40_000, rate: float = 0.2, seed: int = 2) -> np.ndarray:
    """The need along a stationary stream: an error rate of ``rate`` in runs of mean length ``mean_run``."""
    rng, h, e, needs = random.Random(seed), Homeostasis(), 0.0, []
    for _ in range(n):
        if rng.random() < 1.0 / mean_run:
            e = float(rng.random() < rate)
        needs.append(h.observe(e, 0.1 + 0.8 * e))
    return np.array(needs[2000:])


@pytest.mark.parametrize("mean_run, most", [(1, 0.02), (5, 0.1), (20, 0.5)])
def test_the_need_settles_when_errors_come_in_runs(mean_run, most):
    needs = _runs(mean_run)
    assert needs.mean() < most  # with independent errors assumed: 0.006, 0.88 and 1.58


def test_an_abrupt_change_still_raises_the_need_at_once():
    rng, h, needs = random.Random(0), Homeostasis(), []
    for t in range(3000):
        e = float(rng.random() < (0.1 if t < 2000 else 0.5))
        needs.append(h.observe(e, 0.05 + 0.8 * e + 0.1 * rng.random()))
    assert max(needs[200:2000]) < 0.1
    assert next(t for t in range(2000, 3000) if needs[t] > 1.0) - 2000 < 60  # 38 events, as before


def test_the_band_widens_with_the_lag_correlation():
    from stream_cl.homeostasis import lag_correlation

    assert noise_band(0.1, 0.02, 2.0, 0.01, rho=0.0) == noise_band(0.1, 0.02, 2.0, 0.01)
    assert noise_band(0.1, 0.02, 2.0, 0.01, rho=0.75) > 2 * noise_band(0.1, 0.02, 2.0, 0.01) - 0.01
    assert lag_correlation(1.0, 1.0) == 0.9 and lag_correlation(-1.0, 1.0) == 0.0


@pytest.mark.parametrize("error, loss", [(2.0, 0.5), (-5.0, 0.5), (0.0, 1.7e308), (1.0, -0.1)])
def test_signals_outside_the_unit_interval_are_refused(error, loss):
    h = Homeostasis()
    h.observe(0.0, 0.1)
    before = h.state_dict()
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        h.observe(error, loss)
    assert h.state_dict() == before


def test_a_state_resumes_exactly_and_an_older_state_loads():
    rng = random.Random(5)
    signals = [(float(rng.random() < 0.3), rng.random()) for _ in range(600)]
    whole = Homeostasis()
    for e, l in signals:
        whole.observe(e, l)
    first = Homeostasis()
    for e, l in signals[:300]:
        first.observe(e, l)
    resumed = Homeostasis().load_state_dict(first.state_dict())
    for e, l in signals[300:]:
        resumed.observe(e, l)
    assert resumed.state_dict() == whole.state_dict()
    older = {k: v for k, v in first.state_dict().items() if k in ("n", "loss_recent", "loss_set_point", "error_recent",
                                                                  "error_set_point", "need")}
    h = Homeostasis().load_state_dict(older)
    assert h.report()["error_lag_correlation"] == 0.0 and h.error_dev_ == 0.0


@pytest.mark.parametrize("decay", [0.995, 1e-3, 1e-8, 1e-12])
def test_the_mixers_closed_form_matches_its_loop_at_small_decays(decay):
    rng = np.random.default_rng(0)
    hits = rng.random((200, 3)) < [0.9, 0.6, 0.3]
    labelled = rng.random(200) < 0.8
    batch = AccuracyMixer(3, decay).prequential(hits, labelled)
    loop, weights = AccuracyMixer(3, decay), []
    for h, lab in zip(hits, labelled):
        weights.append(loop.weights())
        if lab:
            loop.absorb(h.tolist())
    np.testing.assert_allclose(batch, np.array(weights), rtol=0, atol=1e-12)  # 1e-12: 5e-4 apart before


def test_a_subnormal_decay_and_a_response_named_twice_are_refused():
    with pytest.raises(ValueError, match="mix_decay"):
        AccuracyMixer(3, 1e-310)
    with pytest.raises(ValueError, match="names a response twice"):
        DriftMonitor("adwin", response=("forget", "forget"))
