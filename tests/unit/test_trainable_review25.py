"""Kind "trainable" with hash_width over max_columns: its network's first layer takes exactly hash_width
inputs, so every event was refused at learn time ("0 new inputs would give the network's first layer
10,000 inputs, over max_columns"); now it is refused where the learner is made, naming the key."""

from __future__ import annotations

import pytest

from stream_cl.config import ConfigError, load_config_dict
from stream_cl.factory import build_learner
from stream_cl.trainable import TrainableLearner


def test_the_config_refuses_hash_width_over_max_columns_naming_the_key():
    config = load_config_dict({"model": {"kind": "trainable", "hash_width": 10_000, "max_columns": 100,
                                         "device": "cpu"}})
    with pytest.raises(ConfigError, match=r"^model\.hash_width: hash_width=10,000 gives the network's first layer "
                                          r"10,000 inputs, over max_columns \(100\)"):
        build_learner(config)


def test_the_learner_refuses_it_before_its_feature_index_takes_a_slot_per_input():
    with pytest.raises(ValueError, match="over max_columns"):
        TrainableLearner(hash_width=2**40, max_columns=8192, device="cpu")  # a list of 2**40 slots: no memory for it


def test_hash_width_at_max_columns_or_without_a_bound_learns():
    for model in (TrainableLearner(hash_width=64, max_columns=64, device="cpu"),
                  TrainableLearner(hash_width=64, device="cpu")):
        model.learn_one({"a": 1.0, "b": "x"}, "y")
        assert model.predict_one({"a": 1.0}) == "y"
