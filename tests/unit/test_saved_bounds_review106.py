"""Review r106: the load-time range checks of 47c8c09 must take every state the constructors allow a
learner to write. Two bounds were tighter than the constructors': a random stream's seed (check_seed
takes any int >= 0; the saved seed was refused past 2**53) and the drift monitor's ``forget_until``
(``n + forget_events``, where ``forget_events`` is any int >= 1). Both states loaded on 745d64e."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from stream_cl import OnlineContinualLearner
from stream_cl.checkpoint_format import decode_state, encode_state
from stream_cl.drift import DriftMonitor
from stream_cl.imbalance import ImbalanceCompensator
from stream_cl.replay import ClassBalancedReplay, ReservoirReplay

SEEDS = [2**53 + 1, 2**63 - 1, 2**64 + 5]  # check_seed takes each (numpy's SeedSequence too)


def _through_checkpoint(state):
    return decode_state(encode_state({"s": state}))[0]["s"]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_replay_buffer_with_a_large_seed_restores_and_continues(seed):
    X = np.arange(12.0)[:, None]
    M = np.ones_like(X, dtype=bool)
    buf = ClassBalancedReplay(5, seed=seed)
    buf.interleave(X, M, list("abcabcabcabc"))
    restored = ClassBalancedReplay(5, seed=seed).load_state_dict(_through_checkpoint(buf.state_dict()))
    a, b = copy.deepcopy(buf).interleave(X, M, list("cbacba" * 2)), restored.interleave(X, M, list("cbacba" * 2))
    assert a.y == b.y and np.array_equal(a.X, b.X)


@pytest.mark.parametrize("seed", SEEDS)
def test_an_imbalance_compensator_with_a_large_seed_restores(seed):
    comp = ImbalanceCompensator(seed=seed, min_count=2)
    X = np.array([[1.0, 0.0]] * 8 + [[0.0, 1.0]] * 2)
    comp.step([X], ["a"] * 8 + ["b"] * 2)
    restored = ImbalanceCompensator(seed=seed, min_count=2).load_state_dict(_through_checkpoint(comp.state_dict()))
    out_a, out_b = copy.deepcopy(comp).step([X], ["b"] * 10), restored.step([X], ["b"] * 10)
    assert out_a.y == out_b.y and all(np.array_equal(p, q) for p, q in zip(out_a.blocks, out_b.blocks))


def test_a_learner_checkpoint_with_a_64_bit_replay_seed_restores():
    def make():
        return OnlineContinualLearner(device="cpu", replay=ReservoirReplay(50, seed=2**63 - 1))

    rng = np.random.default_rng(0)
    src = make()
    for i in range(30):
        src.learn_one({"a": float(rng.normal())}, i % 2)
    make().load_state_dict(decode_state(encode_state(src.state_dict()))[0])  # refused: 'random seed must be ... 2**53'


@pytest.mark.parametrize("forget_events", [2**53, 10**18])
def test_a_forget_window_the_constructor_takes_restores(forget_events):
    def make():
        return DriftMonitor("hddm_a", response=("forget",), forget_events=forget_events)

    monitor = make()
    for i in range(400):
        monitor.update(float(i >= 200 or i % 10 == 0), 0.5)
    assert monitor.n_alarms_ > 0 and monitor.forget_until_ > 2**53
    restored = make().load_state_dict(_through_checkpoint(monitor.state_dict()))
    assert restored.forget_until_ == monitor.forget_until_
    assert restored.forgetting_override() == monitor.forgetting_override()
