"""The torch code path against the numpy one, for the default learner.

``"torch:cpu"`` runs the CUDA code on the CPU, so CI covers it; the ``"cuda"`` cases run only
where a GPU is visible (the one kind of skip CI allows).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from river import datasets

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures, resolve_device
from stream_cl.backbones.device import AUTO_CUDA_MIN_FEATURES
from stream_cl.checkpoint import CheckpointStore

DEVICES = ["torch:cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU-only"))]


def _stream(n: int):
    data = list(datasets.ImageSegments().take(n))
    xs = [x for x, _ in data]
    ys = [y if i % 9 else None for i, (_, y) in enumerate(data)]  # every ninth label arrives late (never)
    return xs, ys


@pytest.mark.parametrize("device", DEVICES)
def test_the_default_learner_on_a_torch_device_predicts_what_the_numpy_path_predicts(device):
    xs, ys = _stream(360)
    numpy_path, torch_path = OnlineContinualLearner(device="cpu"), OnlineContinualLearner(device=device)
    assert torch_path.device_ == device
    for s in range(0, 240, 60):  # batched
        a = numpy_path.prequential_batch(xs[s:s + 60], ys[s:s + 60])
        b = torch_path.prequential_batch(xs[s:s + 60], ys[s:s + 60])
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    for x, y in zip(xs[240:], ys[240:]):  # one event at a time
        p, q = numpy_path.predict_proba_one(x), torch_path.predict_proba_one(x)
        assert p.keys() == q.keys()
        assert [q[c] for c in p] == pytest.approx([p[c] for c in p], rel=1e-7, abs=1e-9)
        if y is not None:
            numpy_path.learn_one(x, y)
            torch_path.learn_one(x, y)


@pytest.mark.parametrize("device", DEVICES)
def test_a_checkpoint_written_on_a_torch_device_resumes_on_the_cpu_and_back(tmp_path, device):
    xs, ys = _stream(300)
    first = OnlineContinualLearner(device=device)
    first.prequential_batch(xs[:200], ys[:200])
    store = CheckpointStore(tmp_path)
    store.save({"model": first.state_dict()})
    state, _ = store.load_latest()
    on_cpu = OnlineContinualLearner(device="cpu").load_state_dict(state["model"])
    np.testing.assert_allclose(on_cpu.predict_proba_batch(xs[200:]), first.predict_proba_batch(xs[200:]), rtol=1e-7, atol=1e-9)
    on_cpu.prequential_batch(xs[200:250], ys[200:250])
    store.save({"model": on_cpu.state_dict()})
    state, _ = store.load_latest()
    back = OnlineContinualLearner(device=device).load_state_dict(state["model"])
    first.prequential_batch(xs[200:250], ys[200:250])
    np.testing.assert_allclose(back.predict_proba_batch(xs[250:]), first.predict_proba_batch(xs[250:]), rtol=1e-7, atol=1e-9)


def test_auto_puts_a_learner_on_a_visible_gpu_only_from_the_width_where_it_pays(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine
    assert resolve_device("auto", features=AUTO_CUDA_MIN_FEATURES) == "cuda"
    assert resolve_device("auto", features=AUTO_CUDA_MIN_FEATURES - 1) == "cpu"
    assert resolve_device("auto") == "cuda"  # nothing to go by (a torch-module backbone)
    assert OnlineContinualLearner().device_ == "cpu"  # the default 256 features: 14-33x faster per event
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", features=8192) == "cpu"
    assert OnlineContinualLearner(backbone=RandomFeatures(width=AUTO_CUDA_MIN_FEATURES)).device_ == "cpu"


def test_auto_keeps_the_default_trainable_learner_on_the_cpu(monkeypatch):
    from stream_cl.trainable import TrainableLearner

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert TrainableLearner().device_ == "cpu"  # 256 hidden: 0.5-0.6x on CUDA
    assert TrainableLearner(hidden=None).device_ == "cpu"


def test_a_torch_module_already_on_another_device_gives_its_width_before_the_learner_moves_it():
    from stream_cl.backbones import TorchBackbone

    # "auto" reads the width before the backbone is moved to the learner's device; a module the
    # user put on a GPU must answer where it is (the meta device stands in for one here)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh()).to("meta")
    assert TorchBackbone(net, input_dim=3).out_features == 5


def test_auto_goes_by_the_width_of_random_features_only(monkeypatch):
    """A torch module's own forward may be where the time goes (a network): "auto" keeps sending
    it to a visible GPU; random features cost little, so the heads' width decides."""
    import stream_cl.learner as learner_module
    from stream_cl.backbones import TorchBackbone

    asked = []
    monkeypatch.setattr(learner_module, "resolve_device", lambda device, features=None: asked.append(features) or "cpu")
    OnlineContinualLearner()
    OnlineContinualLearner(backbone=RandomFeatures(width=4096))
    OnlineContinualLearner(backbone=TorchBackbone(torch.nn.Linear(3, 5), input_dim=3))
    assert asked == [256, 4096, None]
