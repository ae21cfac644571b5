"""Review r87 F1: River's memory count (``_memory_usage``, ``show_memory``, ``check_bounded_memory_growth``)
counted a torch tensor as its header: a TrainableLearner holding 26 MB of weights and Adam moments read
11 KiB, and less as it learned. The learners add their tensors' storages (stream_cl.memory)."""

import numpy as np

from stream_cl.memory import tensor_bytes
from stream_cl.trainable import TrainableLearner


def _learned(hidden):
    rng = np.random.default_rng(0)
    model = TrainableLearner(hidden=hidden, micro_batch=4, device="cpu")
    for i in range(8):  # two micro-batches: Adam's moments exist
        model.learn_one({f"f{j}": float(v) for j, v in enumerate(rng.normal(size=8))}, i % 2)
    return model


def test_a_networks_weights_and_moments_are_in_rivers_memory_count():
    model = _learned((512, 512))
    layer = 512 * 512 * 8  # the hidden-to-hidden weights, float64: 2 MiB
    assert tensor_bytes(model) >= 3 * layer  # the weights and Adam's two moments
    assert model._raw_memory_usage >= 3 * layer  # (was ~11 KiB)
    small = _learned((8,))
    assert small._raw_memory_usage < model._raw_memory_usage - 3 * layer


def test_a_storage_is_counted_once_and_numpy_stays_rivers():
    import torch

    class Holder:
        def __init__(self):
            self.t = torch.zeros(256, dtype=torch.float64)
            self.same = [self.t, self.t[:4], {"again": self.t}]
            self.a = np.zeros(1000)

    assert tensor_bytes(Holder()) == 256 * 8
