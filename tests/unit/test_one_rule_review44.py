"""Review 44, finding 4: each hyperparameter bound is one rule, the engine's.

config.py checked the same bounds as the engine classes' ``__init__``, each with its own copy of the
numbers, and one pair had drifted apart: ``replay.ratio`` stopped at 100 in the config while
``ReplayBuffer`` took any finite ratio, so the library accepted 1000 where the config refused it. The
bounds now live in the engine (a constant and a predicate), and config.py imports them: at each edge,
a value just inside is taken by both and one just outside is refused by both.
"""

from __future__ import annotations

import math

import pytest

from stream_cl import bounds
from stream_cl.config import ConfigError, load_config_dict
from stream_cl.drift import DriftMonitor
from stream_cl.heads.ridge_stats import RidgeStatistics
from stream_cl.homeostasis import Homeostasis
from stream_cl.imbalance import ImbalanceCompensator
from stream_cl.mixing import AccuracyMixer
from stream_cl.replay import ClassBalancedReplay, PowerLawReplay, ReservoirReplay, make_replay

TINY = math.nextafter(0.0, 1.0)  # the smallest positive float
BELOW_1, ABOVE_1 = math.nextafter(1.0, 0.0), math.nextafter(1.0, 2.0)
BELOW_HALF = math.nextafter(0.5, 0.0)
NEG = -TINY
BELOW_LEAST = math.nextafter(1e-300, 0.0)  # below the least positive value taken (stream_cl.bounds.MIN_POSITIVE)
MAX = 1.7976931348623157e308  # the largest finite float


# -- the library's replay ratio has the config's ceiling ------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda r: ReservoirReplay(ratio=r), lambda r: ClassBalancedReplay(ratio=r),
                                  lambda r: PowerLawReplay(ratio=r), lambda r: make_replay("reservoir", ratio=r)],
                         ids=["reservoir", "class_balanced", "power_law", "make_replay"])
def test_a_replay_buffer_refuses_a_ratio_of_1000_naming_ratio_and_the_fix(make):
    with pytest.raises(ValueError, match=r"^ratio must be a number in \[0, 100\], got 1000\.0; use replayed rows per "
                                         r"fresh row such as 1\.0$"):
        make(1000.0)
    assert make(100.0).ratio == 100.0  # the ceiling itself is taken


# -- the config and the engine agree at every edge ---------------------------------------------------------------------
# (config section, key, other keys of the section, the engine built with the value, the parameter's name,
#  values just inside, values just outside)
CASES = [
    ("replay", "ratio", {"policy": "reservoir"}, lambda v: ReservoirReplay(ratio=v), "ratio",
     [0.0, 100.0], [NEG, math.nextafter(100.0, math.inf), math.inf, math.nan]),
    ("replay", "alpha", {"policy": "power_law"}, lambda v: PowerLawReplay(alpha=v), "alpha",
     [0.0, MAX], [NEG, math.inf, math.nan]),
    ("model", "forgetting", {}, lambda v: RidgeStatistics(forgetting=v), "forgetting",
     [0.5, 1.0], [BELOW_HALF, ABOVE_1, math.nan]),
    ("model", "input_forgetting", {}, lambda v: RidgeStatistics(forgetting=v), "forgetting",
     [0.5, 1.0], [BELOW_HALF, ABOVE_1, math.nan]),
    ("model", "gamma", {}, lambda v: RidgeStatistics(gamma=v), "gamma", [1e-300, MAX],
     [0.0, BELOW_LEAST, TINY, math.inf, math.nan]),
    # (steps and decays at least 1e-300, as every positive number: the mixer's closed form takes 1 / decay)
    ("model", "mix_decay", {}, lambda v: AccuracyMixer(2, decay=v), "mix_decay",
     [1e-300, BELOW_1], [0.0, TINY, BELOW_LEAST, 1.0, math.nan]),
    ("drift", "forget_value", {}, lambda v: DriftMonitor(forget_value=v), "forget_value",
     [0.5, 1.0], [BELOW_HALF, ABOVE_1, math.nan]),
    ("homeostasis", "min_forgetting", {}, lambda v: Homeostasis(min_forgetting=v), "min_forgetting",
     [0.5, 1.0], [BELOW_HALF, ABOVE_1, math.nan]),
    # the rates also obey set_point_rate < recent_rate (the engine's alone): the other rate is set to keep it
    ("homeostasis", "recent_rate", {"set_point_rate": 1e-300},
     lambda v: Homeostasis(recent_rate=v, set_point_rate=1e-300), "recent_rate", [2e-300, BELOW_1],
     [0.0, TINY, 1.0, math.nan]),
    ("homeostasis", "set_point_rate", {"recent_rate": BELOW_1},
     lambda v: Homeostasis(set_point_rate=v, recent_rate=BELOW_1), "set_point_rate",
     [1e-300, math.nextafter(BELOW_1, 0.0)], [0.0, TINY, 1.0, math.nan]),
    ("homeostasis", "need_decay", {}, lambda v: Homeostasis(need_decay=v), "need_decay",
     [1e-300, BELOW_1], [0.0, TINY, 1.0, math.nan]),
    ("homeostasis", "lr_low", {}, lambda v: Homeostasis(lr_low=v), "lr_low", [TINY, 1.0], [0.0, ABOVE_1, math.nan]),
    ("homeostasis", "lr_high", {}, lambda v: Homeostasis(lr_high=v), "lr_high", [1.0, math.inf], [BELOW_1, math.nan]),
    ("homeostasis", "z", {}, lambda v: Homeostasis(z=v), "z", [0.0, MAX], [NEG, math.inf, math.nan]),
    ("homeostasis", "max_need", {}, lambda v: Homeostasis(max_need=v), "max_need", [1e-300, MAX],
     [0.0, BELOW_LEAST, math.inf]),
    ("imbalance", "max_weight", {}, lambda v: ImbalanceCompensator(max_weight=v), "max_weight",
     [1.0, 1e6], [BELOW_1, math.nextafter(1e6, math.inf), math.nan]),
    ("imbalance", "power", {}, lambda v: ImbalanceCompensator(power=v), "power", [0.0, MAX], [NEG, math.inf]),
    ("imbalance", "min_count", {}, lambda v: ImbalanceCompensator(min_count=v), "min_count", [2], [1]),
]
EDGES = [pytest.param(case, value, inside, id=f"{case[0]}.{case[1]}={value!r}")
         for case in CASES for inside, values in ((True, case[5]), (False, case[6])) for value in values]


def _config_takes(section: str, key: str, others: dict, value) -> bool:
    table = {key: [value] if key.endswith("forgetting") and section == "model" else value, **others}
    try:
        load_config_dict({section: table})
    except ConfigError as e:
        assert str(e).startswith(f"{section}.{key}"), str(e)  # the key is named
        assert "; " in str(e)  # and a fix follows
        return False
    return True


def _engine_takes(build, name: str, value) -> bool:
    try:
        build(value)
    except ValueError as e:
        assert name in str(e), str(e)  # the parameter is named
        return False
    return True


@pytest.mark.parametrize("case, value, inside", EDGES)
def test_the_config_and_the_engine_take_the_same_values_at_each_edge(case, value, inside):
    section, key, others, build, name, _, _ = case
    assert _config_takes(section, key, others, value) is inside
    assert _engine_takes(build, name, value) is inside


# -- one rule: moving a bound in stream_cl.bounds moves the engine's and the config's ------------------------------------------------------------
def test_the_config_reads_the_replay_ratio_ceiling_from_the_buffer(monkeypatch):
    monkeypatch.setattr(bounds, "MAX_REPLAY_RATIO", 50.0)
    assert not _config_takes("replay", "ratio", {"policy": "reservoir"}, 60.0)
    assert not _engine_takes(lambda v: ReservoirReplay(ratio=v), "ratio", 60.0)


def test_the_config_reads_the_forgetting_floor_from_the_engine(monkeypatch):
    monkeypatch.setattr(bounds, "MIN_FORGETTING", 0.6)
    for section, key in (("model", "forgetting"), ("drift", "forget_value"), ("homeostasis", "min_forgetting")):
        assert not _config_takes(section, key, {}, 0.55), key
    for build, name in ((lambda v: RidgeStatistics(forgetting=v), "forgetting"),
                        (lambda v: DriftMonitor(forget_value=v), "forget_value"),
                        (lambda v: Homeostasis(min_forgetting=v), "min_forgetting")):
        assert not _engine_takes(build, name, 0.55), name


def test_the_config_reads_the_largest_max_weight_from_the_compensator(monkeypatch):
    monkeypatch.setattr(bounds, "MAX_IMBALANCE_WEIGHT", 100.0)
    assert not _config_takes("imbalance", "max_weight", {}, 200.0)
    assert not _engine_takes(lambda v: ImbalanceCompensator(max_weight=v), "max_weight", 200.0)


def test_the_config_loads_no_numpy_for_its_bounds():
    # the bounds lived in the engine modules, and config imported numpy, river and ~18 engine modules for them:
    # the publisher child and the CLI read the config first (docs/daemon.md: the child is the standard library
    # and kafka-python only)
    import subprocess
    import sys

    code = "import sys, stream_cl.config; print(sorted(m for m in ('numpy', 'river', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
