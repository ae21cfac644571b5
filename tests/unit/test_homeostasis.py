"""Each rule of the homeostatic controller, as a pure function; then the controller and its
effect on a learner's forgetting factors and learning rates."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.homeostasis import (
    Homeostasis,
    ema_rate,
    forgetting_for_need,
    learning_rate_scales,
    next_need,
    noise_band,
    surprise,
    track,
)

SEEDED = settings(derandomize=True)  # the same examples on every run: CI cannot flake
unit = st.floats(0.0, 1.0)


# -- ema_rate / track ----------------------------------------------------------------------
def test_ema_rate_is_a_running_mean_then_the_fixed_rate():
    assert [ema_rate(n, 0.1) for n in range(4)] == [1.0, 0.5, 1 / 3, 0.25]
    assert ema_rate(9, 0.1) == 0.1 and ema_rate(10_000, 0.1) == 0.1
    v = 0.0
    for n, x in enumerate([3.0, 5.0, 7.0]):
        v = track(v, x, ema_rate(n, 0.01))
    assert math.isclose(v, 5.0)  # the mean of the first three


@SEEDED
@given(unit, unit, st.floats(0.0, 1.0))
def test_track_moves_towards_the_observation_by_the_rate(value, observed, rate):
    new = track(value, observed, rate)
    assert min(value, observed) - 1e-12 <= new <= max(value, observed) + 1e-12
    assert math.isclose(new - value, rate * (observed - value), abs_tol=1e-12)


# -- noise_band ------------------------------------------------------------------------------
def test_noise_band_is_the_standard_deviation_of_an_exponential_average():
    rng = np.random.default_rng(0)
    p, rate = 0.2, 0.05
    v, trace = p, []
    for x in rng.random(100_000) < p:
        v = track(v, float(x), rate)
        trace.append(v)
    sigma = noise_band(p, rate, 1.0, 0.0)
    assert math.isclose(np.std(trace), sigma, rel_tol=0.05)
    assert noise_band(0.0, rate, 2.0, 0.01) == 0.01  # a perfect learner: only the tolerance
    assert noise_band(0.5, rate, 2.0, 0.0) > noise_band(0.1, rate, 2.0, 0.0)


# -- surprise --------------------------------------------------------------------------------
def test_no_surprise_within_the_band_or_when_doing_better():
    assert surprise(0.12, 0.10, 0.1, 0.1, False, loss_band=0.03, error_band=0.03) == 0.0
    assert surprise(0.01, 0.30, 0.0, 0.3, False) == 0.0


def test_surprise_grows_with_the_excess_and_weighs_loss_error_and_alarm():
    s = surprise(0.40, 0.10, 0.5, 0.2, False, loss_gain=2.0, error_gain=0.5, loss_band=0.1, error_band=0.1)
    assert math.isclose(s, 2.0 * (0.40 - 0.10 - 0.1) + 0.5 * (0.5 - 0.2 - 0.1))
    assert math.isclose(surprise(0.1, 0.1, 0.1, 0.1, True, alarm_gain=1.5), 1.5)


@SEEDED
@given(unit, unit, unit, unit, st.booleans())
def test_surprise_is_never_negative(lr, ls, er, es, alarm):
    assert surprise(lr, ls, er, es, alarm) >= 0.0


# -- need ------------------------------------------------------------------------------------
def test_need_decays_when_stable_rises_with_surprise_and_stays_in_bounds():
    assert next_need(2.0, 0.0, 0.9, 4.0) == pytest.approx(1.8)
    assert next_need(2.0, 0.5, 0.9, 4.0) == pytest.approx(2.3)
    assert next_need(3.9, 5.0, 0.9, 4.0) == 4.0
    need = 3.0
    for _ in range(500):
        need = next_need(need, 0.0, 0.99, 4.0)
    assert need < 0.03


@SEEDED
@given(st.floats(0, 10), st.floats(0, 10), st.floats(0.01, 0.999), st.floats(0.1, 10))
def test_need_is_bounded(need, s, decay, max_need):
    assert 0.0 <= next_need(need, s, decay, max_need) <= max_need


# -- forgetting ---------------------------------------------------------------------------------
def test_forgetting_goes_from_the_base_towards_the_floor_as_need_grows():
    assert forgetting_for_need(0.0, 0.995, 0.95, 1.0) == 0.995
    assert forgetting_for_need(1.0, 0.995, 0.95, 1.0) == pytest.approx(0.9725)  # half way at half_need
    values = [forgetting_for_need(n, 0.995, 0.95, 1.0) for n in np.linspace(0, 100, 50)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert values[-1] > 0.95
    # a floor above the base never raises the factor
    assert forgetting_for_need(2.0, 0.9, 0.95, 1.0) == 0.9


@SEEDED
@given(st.floats(0, 100), st.floats(0.5, 1.0), st.floats(0.5, 1.0), st.floats(0.01, 10))
def test_forgetting_stays_between_floor_and_base(need, base, floor, half):
    lam = forgetting_for_need(need, base, floor, half)
    assert min(base, floor) - 1e-12 <= lam <= base + 1e-12


# -- learning rates ---------------------------------------------------------------------------
def test_learning_rate_scales_per_layer_within_bounds():
    assert learning_rate_scales(0.0, (0.5, 1.0), 0.5, 3.0) == [1.0, 1.0]
    assert learning_rate_scales(1.0, (0.5, 1.0), 0.5, 3.0) == [1.5, 2.0]
    assert learning_rate_scales(10.0, (0.5, 1.0), 0.5, 3.0) == [3.0, 3.0]
    assert learning_rate_scales(1.0, (-0.8,), 0.5, 3.0) == [0.5]  # a layer that calms down, bounded


@SEEDED
@given(st.floats(0, 10), st.lists(st.floats(-2, 2), min_size=1, max_size=4))
def test_learning_rate_scales_are_bounded(need, sens):
    for s in learning_rate_scales(need, sens, 0.25, 4.0):
        assert 0.25 <= s <= 4.0


# -- the controller -----------------------------------------------------------------------------
def _bernoulli(p, n, seed):
    return (np.random.default_rng(seed).random(n) < p).astype(float)


def test_controller_is_calm_on_a_stationary_stream_and_needy_after_a_shift():
    h = Homeostasis()
    for e in _bernoulli(0.1, 3000, 0):
        h.observe(e, 0.05 + 0.8 * e)
    calm = h.need_
    assert calm < 0.2 and h.forgetting(0.995) > 0.99
    for e in _bernoulli(0.45, 200, 1):
        h.observe(e, 0.05 + 0.8 * e)
    assert h.need_ > 2.0
    assert h.forgetting(0.995) < 0.99 and h.learning_rate_scales(2)[1] > 1.5
    # the set point adapts to the new normal and the need decays again
    for e in _bernoulli(0.45, 4000, 2):
        h.observe(e, 0.05 + 0.8 * e)
    assert h.need_ < 0.5
    assert abs(h.error_set_point_ - 0.45) < 0.1


def test_alarms_raise_the_need():
    h = Homeostasis(alarm_gain=1.5)
    h.observe(0.0, 0.1)
    before = h.need_
    h.observe(0.0, 0.1, alarm=True)
    assert h.need_ == pytest.approx(min(h.max_need, before * h.need_decay + 1.5))
    assert h.alarm() == pytest.approx(min(h.max_need, h.need_decay * before + 3.0))


def test_controller_state_round_trip_is_exact():
    a = Homeostasis()
    errs = _bernoulli(0.3, 500, 3)
    for e in errs[:250]:
        a.observe(e, 0.7 * e)
    b = Homeostasis().load_state_dict(a.state_dict())
    for e in errs[250:]:
        assert a.observe(e, 0.7 * e) == b.observe(e, 0.7 * e)
    assert a.state_dict() == b.state_dict()


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="set_point_rate"):
        Homeostasis(recent_rate=0.01, set_point_rate=0.05)
    with pytest.raises(ValueError, match="min_forgetting"):
        Homeostasis(min_forgetting=0.2)


def test_need_lowers_the_adaptive_heads_forgetting_in_the_learner():
    rng = np.random.default_rng(0)
    xs = [{"a": float(v)} for v in rng.normal(size=600)]
    ys = [int(x["a"] > 0) for x in xs[:300]] + [int(x["a"] < 0) for x in xs[300:]]  # the concept flips
    model = OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu",
                                   heads=((1.0, "all"), (0.995, "all")), homeostasis=Homeostasis(), control_every=16)
    model.prequential_batch(xs[:300], ys[:300])
    assert model.forgetting_ == pytest.approx([1.0, 0.995], abs=2e-3)
    model.prequential_batch(xs[300:340], ys[300:340])
    assert model.need_ > 1.0
    assert model.forgetting_[0] == 1.0 and model.forgetting_[1] < 0.99  # the exact head is never made to forget


@pytest.mark.parametrize("sens", [(math.inf,), (0.25, math.nan), (0.25, -math.inf), (0.25, "0.5")])
def test_lr_sensitivity_must_be_finite_numbers(sens):
    bad = len(sens) - 1
    with pytest.raises(ValueError, match=rf"lr_sensitivity\[{bad}\] must be a finite number, got .*; use a per-layer"):
        Homeostasis(lr_sensitivity=sens)
    with pytest.raises(ValueError, match="lr_sensitivity must be a sequence"):
        Homeostasis(lr_sensitivity=0.5)
    assert Homeostasis(lr_sensitivity=(0.25, -0.5)).learning_rate_scales(2) == [1.0, 1.0]  # need 0: no change


@pytest.mark.parametrize("name", ["tolerance", "z", "loss_gain", "error_gain", "alarm_gain", "max_need", "half_need"])
@pytest.mark.parametrize("value", [math.inf, math.nan, -1.0])
def test_the_other_gains_and_bounds_must_be_finite(name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be a finite number >=? (0|1e-300), got .*; use a value such as"):
        Homeostasis(**{name: value})
