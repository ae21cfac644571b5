"""Review r121 F4: a state refused for other settings named them as the state keeps them, every number a
float ("key_units=8.0", "seed=0.0"), which the learner then refuses when a user writes them back; and a
backbone that differed was said twice (as the backbone, then as its exact setting)."""
from __future__ import annotations

import pytest

from stream_cl import OnlineContinualLearner


def _state(**settings):
    learner = OnlineContinualLearner(device="cpu", **settings)
    learner.learn_one({"a": 1.0}, 1)
    return learner.state_dict()


def test_settings_that_differ_are_said_as_a_user_writes_them():
    with pytest.raises(ValueError) as refused:
        OnlineContinualLearner(device="cpu", key_units=4).load_state_dict(_state(key_units=8))
    text = str(refused.value)
    assert "checkpoint's learner is OnlineContinualLearner with key_units=8, this one" in text
    assert "with key_units=4:" in text and ".0" not in text


def test_another_backbone_is_said_once():
    with pytest.raises(ValueError) as refused:
        OnlineContinualLearner(device="cpu", seed=1).load_state_dict(_state(seed=0))
    text = str(refused.value)
    assert text.count("RandomFeatures") == 2  # the checkpoint's and this one's, not again as "backbone=..."
    assert "backbone=" not in text and "with seed=0, this one" in text
