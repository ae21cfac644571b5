"""Review r117 (the style guide's "each rule validated in one place"): rules written twice had drifted.
- ``RandomFeatures(width=...)`` wrote its own int check: numpy's ``int64(4)`` was refused (every other
  count takes numpy's ints) and ``width=True`` was taken, to fail later with "an integer is required";
- ``FileSource(idle_timeout_s=nan)`` was taken (the config's rule refuses NaN);
- the drift response ``"need"`` without homeostasis was checked in two learners, the dtype in two classes;
- a saved ``restarts`` field of three counts failed with numpy's bare "cannot reshape array of size 3
  into shape (2,)", naming no field.
Each is the one rule now (``checks.check_int``, ``bounds.is_nonnegative``, ``continual_steps.check_parts``,
``checks.check_dtype``, ``state_checks.saved_counts(size=...)``)."""
from __future__ import annotations

import numpy as np
import pytest

from connectors.files import FileSource
from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.config import MappingConfig
from stream_cl.drift import DriftMonitor
from stream_cl.homeostasis import Homeostasis
from stream_cl.trainable import TrainableLearner


def test_random_features_take_numpys_ints_and_refuse_a_bool():
    assert RandomFeatures(width=np.int64(4)).width == 4
    with pytest.raises(ValueError, match=r"^width must be an int >= 0, got True"):
        RandomFeatures(width=True)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_a_file_sources_idle_timeout_is_the_configs_rule(tmp_path, bad):
    with pytest.raises(ValueError, match=r"^idle_timeout_s must be a finite number >= 0"):
        FileSource(tmp_path / "e.jsonl", MappingConfig(), follow=True, idle_timeout_s=bad)


@pytest.mark.parametrize("cls", [OnlineContinualLearner, TrainableLearner])
def test_the_need_response_needs_homeostasis_in_every_learner(cls):
    with pytest.raises(ValueError, match=r"^the drift response 'need' raises the homeostatic need"):
        cls(drift=DriftMonitor("adwin", response=("record", "need")))
    cls(drift=DriftMonitor("adwin", response=("record", "need")), homeostasis=Homeostasis())


def test_a_saved_restarts_field_of_another_length_names_the_field():
    model = OnlineContinualLearner(drift=DriftMonitor("adwin", response=("restart",)), seed=0)
    for i in range(40):
        model.learn_one({"a": float(i % 3)}, i % 2)
    state = model.state_dict()
    restarter = next(v for k, v in _walk(state) if k == "restarts")
    restarter.append(0)  # three counts where two are saved
    with pytest.raises(ValueError, match=r"saved state: restarts must be 2 integers, got 3"):
        OnlineContinualLearner(drift=DriftMonitor("adwin", response=("restart",)), seed=0).load_state_dict(state)


def _walk(obj):
    """Every (key, value) of a nested state, depth first."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)
