"""Review r89 F1: a TrainableLearner restored from a state wider than its own max_columns (a restart with a
lowered bound, which the state's identity allows) refused every later event, predict-only ones and ones with
no new key too, as '0 new inputs would give the network's first layer 5 inputs'. Only new inputs are refused."""

import pytest

from stream_cl.trainable import TrainableLearner


def test_a_restored_learner_over_its_bound_learns_its_known_keys_and_refuses_new_ones():
    wide = TrainableLearner(hidden=(4,), micro_batch=2, device="cpu")
    wide.prequential_batch([{"a": 1.0, "b": 2.0, "c": "x", "d": 3.0, "e": 1.0}] * 2, ["A", "B"])
    bounded = TrainableLearner(hidden=(4,), micro_batch=2, device="cpu", max_columns=3)
    bounded.load_state_dict(wide.state_dict())
    bounded.learn_one({"a": 1.0}, "A")  # a known key: learned (was refused)
    assert bounded.n_labelled_ == wide.n_labelled_ + 1
    assert bounded.prequential_batch([{"a": 1.0}], [None]).shape == (1, 2)  # predict only
    names = list(bounded.index_.names)
    with pytest.raises(ValueError, match=r"1 new inputs would give the network's first layer 6 inputs"):
        bounded.learn_one({"a": 1.0, "new": 2.0}, "A")
    assert bounded.n_labelled_ == wide.n_labelled_ + 1 and list(bounded.index_.names) == names
