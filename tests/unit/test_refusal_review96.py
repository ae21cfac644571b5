"""Review r96 of this session's refusal machinery: a replayed row the backbone refuses is dropped
from the buffer, not a reason to refuse every later event; a refused event leaves a hashed bucket's
kind and the category overflow counts as they were; whatever a module raises is a refusal; an
older homeostasis state earns its correlation credit anew; a subnormal bandwidth is refused."""

import copy
import random

import numpy as np
import pytest
import torch

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures, TorchBackbone
from stream_cl.homeostasis import Homeostasis
from stream_cl.replay import ReservoirReplay

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


class LogB(torch.nn.Module):
    """Refuses a row whose standardised ``b`` is at or below -2.5."""

    def forward(self, z):
        return torch.cat([torch.tanh(z), torch.log(z[:, 1:2] + 2.5)], 1)


def _events(rng, n: int, b: float):
    a = rng.uniform(-1, 1, n)
    return [{"a": float(v), "b": float(b)} for v in a], [int(v > 0) for v in a]


def test_a_replayed_row_the_backbone_refuses_is_dropped_not_every_later_event():
    model = OnlineContinualLearner(backbone=TorchBackbone(LogB(), input_dim=2, dtype="float64"), device="cpu",
                                   replay=ReservoirReplay(max_samples=200, ratio=0.5, seed=0))
    rng = np.random.default_rng(0)
    xs, ys = _events(rng, 40, 0.0)
    model.prequential_batch(xs, ys)
    xs, ys = _events(rng, 400, 10.0)  # b moves: the early rows, replayed, standardise below -2.5
    for x, y in zip(xs, ys):  # the daemon's event-by-event retry: every one refused from event ~250 on before
        model.prequential_batch([x], [y])
    assert model.n_events_ == 440 and model.replay_.n_seen_ == 440  # was 291: nothing learned from event 251 on
    before = model.replay_.size_
    # a b = 0 row now standardises below -2.5: drawn, it is refused and leaves the buffer
    zeros = np.flatnonzero(model.replay_.X_[: model.replay_.size_, 1] == 0.0)
    assert model.replay_.forget_rows(model.replay_.X_[zeros], model.replay_.M_[zeros]) == len(zeros)
    assert model.replay_.size_ == before - len(zeros)


def test_a_refused_event_leaves_hashed_buckets_and_category_counts_as_they_were():
    class LogShift(torch.nn.Module):
        def forward(self, z):
            return torch.log(z + 10.0)

    for settings in ({"hash_width": 8}, {"max_categories": 1}):
        model = OnlineContinualLearner(backbone=TorchBackbone(LogShift(), input_dim=8), device="cpu", **settings)
        for i in range(40):
            model.learn_one({"a": float(i % 5), "b": float(i % 3), "c": "x" if i % 2 else "y"}, i % 2)
        twin = copy.deepcopy(model)
        with pytest.raises(ValueError, match="non-finite features"):
            model.learn_one({"a": -1e6, "b": 0.0, "c": "red"}, 1)  # a new category value
        assert model.index_.state_dict()["kinds"].tolist() == twin.index_.state_dict()["kinds"].tolist()
        assert model.index_.overflow == twin.index_.overflow


def test_whatever_a_module_raises_is_a_refusal_that_changes_nothing():
    class Checked(torch.nn.Module):
        def forward(self, z):
            assert bool((z > -5).all()), "input out of range"
            return torch.tanh(z)

    model = OnlineContinualLearner(backbone=TorchBackbone(Checked(), input_dim=2, dtype="float64"), device="cpu")
    for i in range(40):
        model.learn_one({"a": float(i % 5), "b": float(i % 3)}, i % 2)
    twin = copy.deepcopy(model)
    with pytest.raises(ValueError, match="the module failed"):  # was an AssertionError, the mean moved to -24,388
        model.learn_one({"a": -1e6, "b": 0.0}, 1)
    np.testing.assert_array_equal(model.scaler_.mean, twin.scaler_.mean)


def test_an_older_homeostasis_state_earns_its_correlation_credit_anew():
    rng = random.Random(0)
    h = Homeostasis()
    for _ in range(3000):
        e = float(rng.random() < 0.2)
        h.observe(e, 0.1 + 0.8 * e)
    older = {k: v for k, v in h.state_dict().items() if k in ("n", "loss_recent", "loss_set_point", "error_recent",
                                                              "error_set_point", "need")}
    loaded = Homeostasis().load_state_dict(older)
    for e in ([1.0] * 5 + [0.0] * 5) * 2:  # errors in runs: 20 events are not enough to credit them
        loaded.observe(e, 0.1 + 0.8 * e)
    assert loaded.report()["error_lag_correlation"] == 0.0  # was credited at once
    resumed = Homeostasis().load_state_dict(loaded.state_dict())
    assert resumed.state_dict() == loaded.state_dict()


def test_a_subnormal_bandwidth_is_refused():
    with pytest.raises(ValueError, match="bandwidth must be a finite number >= 1e-300"):
        RandomFeatures(kind="fourier", bandwidth=1e-310)
