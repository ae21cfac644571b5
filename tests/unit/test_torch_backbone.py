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


def _two_feature_learner(net, input_dim=3, **kw):
    from stream_cl import OnlineContinualLearner
    from stream_cl.backbones import TorchBackbone

    model = OnlineContinualLearner(backbone=TorchBackbone(net, input_dim=input_dim, **kw), key_units=0, device="cpu")
    for i in range(30):
        model.learn_one({"a": float(i % 5), "b": float(i % 3)}, i % 2)
    return model


def test_an_event_past_input_dim_is_refused_before_anything_changes():
    """Found by review: the check ran in forward, after the new input was indexed and standardised;
    from then on every event, clean ones too, failed with 'the stream has 4 features'."""
    import torch

    torch.manual_seed(0)
    model = _two_feature_learner(torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh()))
    model.learn_one({"a": 1.0, "c": 2.0}, 0)  # the third input: at input_dim
    probe = {"a": 1.0, "b": 0.0, "c": 1.0}
    before = model.predict_proba_one(probe)
    for learn in (lambda x: model.learn_one(x, 1), lambda x: model.prequential_batch([probe, x], [0, 1])):
        with pytest.raises(ValueError, match=r"4 inputs, more than the backbone takes \(input_dim=3\)"):
            learn({"a": 1.0, "d": 2.0})
    assert model.feature_names_in_ == ["a", "b", "c"] and model.predict_proba_one(probe) == before
    model.learn_one(probe, 1)  # and it goes on learning


def test_non_finite_features_are_refused_before_the_heads_learn_them():
    """Found by review: a module giving NaN for some inputs made the backbone heads' statistics NaN
    for good, silently (the mixer then leaned on the input heads alone)."""
    import torch

    class Log(torch.nn.Module):
        def forward(self, z):
            return torch.log(z + 10.0)  # NaN below -10

    model = _two_feature_learner(Log())
    with pytest.raises(ValueError, match="non-finite features"):
        model.learn_one({"a": -1e6, "b": 0.0}, 1)
    assert all(np.isfinite(h.ridge.A).all() and np.isfinite(h.ridge.B).all() for h in model.heads_)


def test_a_checkpoint_of_another_module_is_refused_and_the_callers_module_is_left_alone():
    import torch

    from stream_cl import OnlineContinualLearner
    from stream_cl.backbones import TorchBackbone

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh())
    model = _two_feature_learner(net)
    assert net.training and all(p.requires_grad for p in net.parameters())  # frozen: a copy, not the caller's
    other = OnlineContinualLearner(backbone=TorchBackbone(torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh()),
                                                          input_dim=3), key_units=0, device="cpu")
    with pytest.raises(ValueError, match="differ in settings: the checkpoint's learner is OnlineContinualLearner with "
                                         "backbone TorchBackbone"):
        other.load_state_dict(model.state_dict())
    older = {k: v for k, v in model.state_dict().items() if k != "identity"}  # before states kept the learner's
    with pytest.raises(ValueError, match="the checkpoint's backbone is TorchBackbone"):
        other.load_state_dict(older)
    same = OnlineContinualLearner(backbone=TorchBackbone(net, input_dim=3), key_units=0, device="cpu")
    same.load_state_dict(model.state_dict())
    assert same.predict_proba_one({"a": 1.0, "b": 2.0}) == model.predict_proba_one({"a": 1.0, "b": 2.0})


def test_the_module_runs_in_the_dtype_asked_and_a_wrong_shape_names_the_backbone():
    import torch

    model = _two_feature_learner(torch.nn.Linear(3, 4), dtype="float64")  # a float32 module, cast (a copy)
    assert model.backbone_.net_.weight.dtype == torch.float64

    class Pair(torch.nn.Module):
        def forward(self, z):
            return z, z

    from stream_cl.backbones import TorchBackbone

    with pytest.raises(ValueError, match=r"TorchBackbone\(Pair.*returned tuple"):
        TorchBackbone(Pair(), input_dim=3).out_features
    with pytest.raises(ValueError, match=r"the module failed on a \(1, 5\) float32 batch"):
        TorchBackbone(torch.nn.Linear(3, 4), input_dim=5).out_features
