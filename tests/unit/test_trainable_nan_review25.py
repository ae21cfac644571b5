"""Review r25, finding 1: an accepted ``weight_decay`` or ``lr`` turned the trainable learner's network to NaN.

Each AdamW step multiplies every weight by ``1 - lr * weight_decay``; from 2 on the weights grow
until they are NaN (``lr=0.01, weight_decay=300`` and ``lr=0.5, weight_decay=5`` were accepted),
and a huge ``lr`` alone overflowed two hidden layers. Now such a decay is refused (the learner and
the config, naming the keys), and a step that would leave a weight or moment non-finite is not
taken, only counted (``report()["skipped_steps"]``), so the network keeps serving finite weights.
"""

from __future__ import annotations

import itertools
import math
import pickle

import numpy as np
import pytest
from river.datasets import synth

from stream_cl.config import ConfigError, load_config_dict
from stream_cl.factory import build_learner
from stream_cl.homeostasis import Homeostasis
from stream_cl.trainable import TrainableLearner

DATA = list(itertools.islice(synth.Agrawal(seed=1), 400))


def _learn(model, data=DATA):
    for x, y in data:
        model.learn_one(x, y)
    return model


def _finite(model) -> bool:
    return all(bool(np.isfinite(p.numpy()).all()) for p in model.params_)


# -- (a) a decay that is certain to diverge is refused --------------------------------------
@pytest.mark.parametrize("lr, weight_decay", [(0.01, 300.0), (0.5, 5.0), (0.5, 2.0)])  # the review's two; 1 exactly
def test_the_learner_refuses_lr_times_weight_decay_of_1_or_more(lr, weight_decay):
    with pytest.raises(ValueError, match=r"lr \* weight_decay = .* must be < 1: .* use weight_decay < \d"):
        TrainableLearner(hidden=(8,), lr=lr, weight_decay=weight_decay, device="cpu")


def test_the_bound_counts_homeostasis_lr_high():
    TrainableLearner(hidden=(8,), lr=0.01, weight_decay=20.0, device="cpu")  # 0.2 alone
    TrainableLearner(hidden=(8,), lr=0.01, weight_decay=20.0, homeostasis=Homeostasis(lr_high=4.0), device="cpu")  # 0.8
    with pytest.raises(ValueError, match=r"lr \* weight_decay \* homeostasis.lr_high = 0.01 \* 30.0 \* 4.0 = 1.2 "
                                         r"must be < 1: .* use weight_decay < 25"):
        TrainableLearner(hidden=(8,), lr=0.01, weight_decay=30.0, homeostasis=Homeostasis(lr_high=4.0), device="cpu")


def test_small_decays_and_no_decay_are_taken():
    TrainableLearner(hidden=(8,), lr=0.01, weight_decay=1e-4, device="cpu")
    TrainableLearner(hidden=(8,), lr=10.0, weight_decay=0.0, device="cpu")  # no decay: only the rate's bound


@pytest.mark.parametrize("lr, homeostasis", [(1e20, None), (3.0, Homeostasis(lr_high=4.0))])
def test_a_rate_past_max_lr_is_refused(lr, homeostasis):
    """lr 1e20 (float32) left weights whose logits overflow after the first step, which was finite (r26)."""
    with pytest.raises(ValueError, match="must be at most 10"):
        TrainableLearner(hidden=(8,), lr=lr, homeostasis=homeostasis, device="cpu")


def _config(trainable: dict, **sections):
    return load_config_dict({"model": {"kind": "trainable", "device": "cpu"},
                             "trainable": {"hidden": [8], **trainable}, **sections})


@pytest.mark.parametrize("lr, weight_decay", [(0.01, 300.0), (0.5, 5.0)])
def test_the_config_refuses_it_naming_the_key(lr, weight_decay):
    cfg = _config({"lr": lr, "weight_decay": weight_decay})  # each key alone is valid
    with pytest.raises(ConfigError, match=r"^trainable\.weight_decay: trainable\.lr \* trainable\.weight_decay = .* "
                                          r"use trainable\.weight_decay < \d.*or a smaller trainable\.lr"):
        build_learner(cfg)


def test_the_config_counts_homeostasis_lr_high():
    build_learner(_config({"lr": 0.01, "weight_decay": 20.0}, homeostasis={"enabled": True, "lr_high": 4.0}))
    cfg = _config({"lr": 0.01, "weight_decay": 30.0}, homeostasis={"enabled": True, "lr_high": 4.0})
    with pytest.raises(ConfigError, match=r"^trainable\.weight_decay: .*homeostasis\.lr_high = 0\.01 \* 30\.0 \* 4\.0"):
        build_learner(cfg)


# -- (b) a step that overflows is not taken -------------------------------------------------
# the weights stay finite, but the one step taken makes them so large that the logits overflow (numpy warns)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_huge_lr_leaves_the_weights_finite_and_counts_the_skipped_steps():
    """The review's t7: two hidden layers and lr=1e150 (no decay) made every weight NaN (such a rate is
    refused now, MAX_LR: forced past the check here, as a checkpoint of an older release could hold it)."""
    m = TrainableLearner(hidden=(8, 8), lr=0.01, device="cpu")
    m.lr = 1e150
    m = _learn(m)
    assert _finite(m)
    assert m.net_.skipped_steps > 0
    assert m.report()["skipped_steps"] == m.net_.skipped_steps
    assert m.net_.t + m.net_.skipped_steps == m.n_updates_ * m.steps  # each step taken or counted


def test_a_step_that_overflows_changes_nothing_and_predictions_stay_probabilities():
    m = _learn(TrainableLearner(hidden=(8, 8), lr=0.01, device="cpu"), DATA[:200])
    before, updates = m.net_.state_dict(), m.n_updates_
    assert before["skipped_steps"] == 0 and m.report()["skipped_steps"] == 0
    m.lr = math.inf  # forced past the checks: every step's new weights are infinite or NaN
    _learn(m, DATA[200:])
    after = m.net_.state_dict()
    assert after["t"] == before["t"]
    assert after["skipped_steps"] == m.n_updates_ - updates > 0  # every micro-batch's step
    for key in ("params", "m", "v"):
        for a, b in zip(before[key], after[key]):
            np.testing.assert_array_equal(a, b)  # the weights and Adam's moments as before the first skipped step
    for x, _ in DATA[:20]:
        p = m.predict_proba_one(x)
        assert all(math.isfinite(v) and 0 <= v <= 1 for v in p.values()) and sum(p.values()) == pytest.approx(1.0)
    m.lr = 0.01  # a sane rate trains again
    _learn(m, DATA[:32])
    assert m.net_.t == before["t"] + 2 and _finite(m)


def test_the_count_is_kept_by_state_dict_and_pickle_and_older_states_load_with_0():
    m = _learn(TrainableLearner(hidden=(4,), lr=0.01, device="cpu"), DATA[:64])
    m.lr = math.inf
    _learn(m, DATA[64:128])
    n = m.net_.skipped_steps
    assert n == 4
    m.lr = 0.01  # back to the setting of the learners it loads into (a state of another lr is refused)
    state = m.state_dict()
    assert state["skipped_steps"] == n
    assert TrainableLearner(hidden=(4,), device="cpu").load_state_dict(state).report()["skipped_steps"] == n
    assert pickle.loads(pickle.dumps(m)).net_.skipped_steps == n
    old = {k: v for k, v in state.items() if k != "skipped_steps"}  # written before the count existed
    assert TrainableLearner(hidden=(4,), device="cpu").load_state_dict(old).net_.skipped_steps == 0
    net = m.net_
    old_pickle = pickle.loads(pickle.dumps(net))
    del old_pickle.__dict__["skipped_steps"]
    assert pickle.loads(pickle.dumps(old_pickle)).skipped_steps == 0


def test_the_config_names_trainable_lr_for_a_rate_past_max_lr():
    with pytest.raises(ConfigError, match=r"^trainable\.lr: trainable\.lr = 1e\+20 must be at most 10"):
        build_learner(_config({"lr": 1e20}))
