"""Review r117 R4-1: ``check_seed`` (the library's one seed rule) takes any int >= 0, but the trainable
learner derived its torch seed as ``seed * 7919 + 17``, which torch refuses past 2**64: a
``TrainableLearner(seed=2**64)`` was built and its first ``learn_one`` raised ``ValueError: Overflow
when unpacking long long``, mid-event (the first seed that failed: ~2.33e15). The derived seed is
reduced modulo 2**64, so a seed that worked before gives the same network."""
from __future__ import annotations

import pytest

from stream_cl.trainable import TrainableLearner


@pytest.mark.parametrize("seed", [2_329_428_472_497_734, 2**64, 2**80 + 3])
def test_a_trainable_learner_takes_every_seed_check_seed_takes(seed):
    model = TrainableLearner(hidden=(8, 4), seed=seed)
    for i in range(20):
        model.learn_one({"a": float(i % 5), "b": float(i % 3)}, i % 2)
    assert set(model.predict_proba_one({"a": 1.0, "b": 2.0})) == {0, 1}


def test_a_seed_that_worked_before_derives_the_same_torch_seed(monkeypatch):
    import torch

    seeds, real = [], torch.Generator

    def recording():
        gen = real()
        seeded = gen.manual_seed
        return type("Recorded", (), {"manual_seed": lambda self, s: (seeds.append(s), seeded(s))[1]})()

    monkeypatch.setattr(torch, "Generator", recording)
    for seed in (7, 2**64 // 7919 - 1, 2**64):
        TrainableLearner(hidden=(8, 4), seed=seed).learn_one({"a": 1.0}, 0)
    assert seeds == [7 * 7919 + 17, (2**64 // 7919 - 1) * 7919 + 17, 17]
