"""TorchBackbone: a TorchScript backbone pickles, and the unpickled learner predicts identically."""

import copy
import pickle

import numpy as np
import pytest
import torch

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import TorchBackbone

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # torch deprecates TorchScript


@pytest.mark.parametrize("given", ["path", "script module"])
def test_a_torchscript_backbone_pickles_and_predicts_identically(tmp_path, given):
    torch.manual_seed(0)
    net = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh()))
    path = tmp_path / "backbone.pt"
    torch.jit.save(net, str(path))
    backbone = TorchBackbone(str(path) if given == "path" else net, input_dim=3)
    model = OnlineContinualLearner(backbone=backbone, key_units=0, device="cpu")
    rng = np.random.default_rng(0)
    xs = [{k: float(v) for k, v in zip("abc", rng.normal(size=3))} for _ in range(80)]
    ys = [x["a"] > x["b"] for x in xs]
    model.prequential_batch(xs[:40], ys[:40])
    for copied in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert [copied.predict_proba_one(x) for x in xs[40:]] == [model.predict_proba_one(x) for x in xs[40:]]
        np.testing.assert_array_equal(copied.prequential_batch(xs[40:], ys[40:]),
                                      copy.deepcopy(model).prequential_batch(xs[40:], ys[40:]))
        bb = copied.backbone_
        assert not bb.net_.training and not any(p.requires_grad for p in bb.net_.parameters())
        assert bb.module == str(path) if given == "path" else bb.module is bb.net_
