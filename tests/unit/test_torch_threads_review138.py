"""Review r138: the learners' torch calls run on one thread too, unless the process chose its threads.

``one_blas_thread`` confined numpy's and scipy's OpenBLAS but not torch's intra-op pool, which runs
torch's MKL products (the trainable learner's whole network, a torch-module backbone's forward, the
random features' batched product). README promises that in Python "the learners run with one BLAS
thread even if you never call set_threads"; a ``TrainableLearner`` ran its network on a thread per
core. On this 2-core host with a busy neighbour that made its batches of 256 5x-100x slower
(218-2,207 against 11,167-22,339 events/s) and its events one at a time 5x-7x slower.
"""

import random

import pytest
import torch

from stream_cl import OnlineContinualLearner, runtime
from stream_cl.backbones import TorchBackbone
from stream_cl.mlp import OnlineMLP
from stream_cl.trainable import TrainableLearner


@pytest.fixture
def two_torch_threads(monkeypatch):
    """torch at 2 threads, as a fresh process on two cores has it, and no set_threads call on record."""
    monkeypatch.setattr(runtime, "_managed", False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _events(n: int) -> tuple[list, list]:
    rng = random.Random(5)
    xs = [{"a": rng.gauss(0, 1), "b": rng.gauss(0, 1)} for _ in range(n)]
    return xs, [int(x["a"] > x["b"]) for x in xs]


def _spy(monkeypatch, owner, name: str) -> list:
    seen = []
    original = getattr(owner, name)

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return seen


def test_the_trainable_network_runs_on_one_torch_thread_and_gives_the_count_back(two_torch_threads, monkeypatch):
    logits, train = _spy(monkeypatch, OnlineMLP, "logits"), _spy(monkeypatch, OnlineMLP, "train")
    model = TrainableLearner(hidden=(8,), micro_batch=4, device="cpu")
    xs, ys = _events(24)
    model.prequential_batch(xs[:12], ys[:12])
    for x, y in zip(xs[12:], ys[12:]):
        model.predict_proba_one(x)
        model.learn_one(x, y)
    model.predict_proba_batch(xs)
    assert train and logits and set(train) == {1} and set(logits) == {1}, (train, logits)
    assert torch.get_num_threads() == 2


def test_a_torch_module_backbone_runs_on_one_torch_thread(two_torch_threads, monkeypatch):
    seen = _spy(monkeypatch, TorchBackbone, "forward")
    torch.manual_seed(0)
    model = OnlineContinualLearner(backbone=TorchBackbone(torch.nn.Linear(2, 4), input_dim=2), key_units=0,
                                   device="cpu")
    seen.clear()  # (the learner's build runs the module once on a zero row, for its width)
    xs, ys = _events(16)
    model.prequential_batch(xs[:8], ys[:8])
    for x, y in zip(xs[8:], ys[8:]):
        model.predict_proba_one(x)
        model.learn_one(x, y)
    assert seen and set(seen) == {1}, seen
    assert torch.get_num_threads() == 2


def test_a_process_that_chose_its_threads_keeps_torchs_count(two_torch_threads, monkeypatch):
    seen = _spy(monkeypatch, OnlineMLP, "logits")
    monkeypatch.setattr(runtime, "_managed", True)  # what set_threads records
    model = TrainableLearner(hidden=(8,), micro_batch=4, device="cpu")
    model.prequential_batch(*_events(8))
    assert seen and set(seen) == {2}, seen
