"""The learners' own hyperparameters are refused in ``__init__``, naming the parameter, the value
got and what to use (review r19: findings 1, 2 and 3)."""

import math

import numpy as np
import pytest
import torch

from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.backbones import RandomFeatures

NAN, INF = float("nan"), float("inf")


def _online(**kw):
    return OnlineContinualLearner(**{"device": "cpu", **kw})


def _events(n=40):
    rng = np.random.default_rng(0)
    xs = [{"a": float(rng.normal()), "b": float(rng.normal())} for _ in range(n)]
    return xs, [int(x["a"] > x["b"]) for x in xs]


# -- mix_sharpness (finding 1) ----------------------------------------------------------------
@pytest.mark.parametrize("value", [NAN, INF, -100.0, "100", None, True])
def test_mix_sharpness_must_be_a_finite_number_at_least_zero(value):
    # NaN and inf made every probability 0; a negative value mixed towards the worst head
    with pytest.raises(ValueError, match="mix_sharpness must be a finite number >= 0") as err:
        _online(mix_sharpness=value)
    assert repr(value) in str(err.value) and "use" in str(err.value)


def test_mix_sharpness_zero_mixes_the_heads_equally():
    model = _online(mix_sharpness=0)
    xs, ys = _events()
    P = model.prequential_batch(xs, ys)
    assert np.allclose(model.head_weights_, 1 / len(model.head_weights_))
    assert np.allclose(P.sum(axis=1)[1:], 1.0)


@pytest.mark.parametrize("value", [1.0, 0.0, "0.9", None])
def test_mix_decay_errors_name_the_learners_parameter(value):
    with pytest.raises(ValueError, match=r"mix_decay must be in \(0, 1\)"):
        _online(mix_decay=value)


# -- AnalyticClassifier's device (finding 2) --------------------------------------------------
def test_analytic_device_auto_is_the_cpu_and_the_setting_stays_as_given():
    model = AnalyticClassifier(device="auto")
    assert model.device == "auto" and model.device_ == "cpu"
    xs, ys = _events()
    for x, y in zip(xs, ys):
        model.learn_one(x, y)
    assert model.predict_one(xs[0]) in (0, 1)
    assert model.clone().device == "auto"


@pytest.mark.parametrize("device, resolved", [("cpu", "cpu"), ("torch:cpu", "torch:cpu")])
def test_analytic_device_resolves_what_it_took_before(device, resolved):
    assert AnalyticClassifier(device=device).device_ == resolved


@pytest.mark.parametrize("device", ["gpu", None, 1.5, "cuda:x"])
def test_analytic_device_that_is_no_device_is_named(device):
    with pytest.raises(ValueError, match="device") as err:
        AnalyticClassifier(device=device)
    assert repr(device) in str(err.value) and "'cpu'" in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_analytic_cuda_without_a_gpu_is_named():
    with pytest.raises(ValueError, match="no CUDA GPU is visible; use 'auto' or 'cpu'"):
        AnalyticClassifier(device="cuda")


# -- the learners' other hyperparameters (finding 3) ------------------------------------------
BAD_ANALYTIC = [
    ("gamma", "1"), ("gamma", None), ("gamma", NAN), ("gamma", 0.0),
    ("temperature", "0.1"), ("temperature", INF), ("temperature", 0.0), ("temperature", NAN),
    ("forgetting", "0.9"), ("forgetting", None), ("forgetting", 0.2),
    ("max_columns", "10"), ("max_columns", 0), ("max_columns", 1.5), ("max_columns", True),
    ("hash_width", True), ("hash_width", "8"), ("hash_width", 0),
    ("max_categories", True), ("max_categories", "5"), ("max_categories", 0),
    ("time_features", "no"), ("time_features", 1), ("missing_indicators", "no"), ("missing_indicators", None),
]
BAD_ONLINE = [
    ("gamma", None), ("gamma", "1"), ("temperature", "0.1"), ("temperature", INF),
    ("sgd_lr", -0.1), ("sgd_lr", "0.1"), ("sgd_lr", INF), ("sgd_lr", NAN),
    ("seed", -1), ("seed", 1.5), ("seed", "0"),
    ("heads", (1.0, "all")), ("heads", ((1.0, "everything"),)), ("heads", ()), ("heads", "all"),
    ("heads", (("0.9", "all"),)), ("heads", ((0.2, "all"),)), ("heads", ((float("nan"), "inputs"),)),
    ("key_units", True), ("key_units", -1), ("key_units", "8"),
    ("max_columns", "10"), ("hash_width", True), ("max_categories", "5"),
    ("time_features", "no"), ("missing_indicators", "no"),
    ("control_every", 0), ("control_every", "4"), ("control_every", True), ("device", None), ("device", 1),
    ("mix_decay", "0.9"), ("mix_sharpness", NAN),
]


@pytest.mark.parametrize("make, name, value", [(AnalyticClassifier, n, v) for n, v in BAD_ANALYTIC]
                         + [(_online, n, v) for n, v in BAD_ONLINE])
def test_a_bad_hyperparameter_is_refused_by_name(make, name, value):
    with pytest.raises(ValueError) as err:
        make(**{name: value})
    message = str(err.value)
    assert f"{name} must" in message and repr(value) in message, message


def test_the_backbone_must_be_a_backbone():
    with pytest.raises(TypeError, match="backbone must be a Backbone") as err:
        _online(backbone="relu")
    assert "'relu'" in str(err.value) and "None" in str(err.value)


def test_the_sgd_head_learning_rate_is_named_as_the_learners_parameter():
    with pytest.raises(ValueError, match=r"sgd_lr must be a finite number >= 1e-300, got -0\.1; use"):
        _online(sgd_lr=-0.1)


@pytest.mark.parametrize("kw", [
    {"sgd_lr": None}, {"sgd_lr": 0}, {"seed": np.int64(3)}, {"gamma": np.float32(0.5)}, {"max_columns": None},
    {"max_columns": np.int64(4096)}, {"control_every": np.int32(8)},
    {"hash_width": 16}, {"time_features": np.bool_(True)}, {"mix_sharpness": 0.0}, {"key_units": 0},
    {"heads": [[1.0, "inputs"]]}, {"backbone": RandomFeatures(width=8)},
])
def test_good_hyperparameters_are_taken(kw):
    model = _online(**kw)
    xs, ys = _events(8)
    model.prequential_batch(xs, ys)
    key = next(iter(kw))
    assert sorted(model.classes_) == [0, 1] and getattr(model, key) is kw[key]  # the setting stays as given


@pytest.mark.parametrize("kw", [{"hash_width": 16}, {"time_features": np.bool_(True)}, {"max_columns": None},
                                {"temperature": 1}, {"forgetting": 0.5}])
def test_good_analytic_hyperparameters_are_taken(kw):
    model = AnalyticClassifier(**kw)
    xs, ys = _events(8)
    model.prequential_batch(xs, ys)
    assert sorted(model.classes_) == [0, 1] and math.isclose(sum(model.predict_proba_one(xs[0]).values()), 1.0)


def test_analytic_on_the_torch_path_predicts_as_on_the_cpu():
    # found by review: on a torch device (the GPU path; "torch:cpu" runs it on the CPU) learning worked
    # but predict_one / predict_proba_one / predict_proba_batch raised (numpy rows @ torch weights)
    import pandas as pd

    xs, ys = _events(30)
    models = {dev: AnalyticClassifier(device=dev) for dev in ("cpu", "torch:cpu")}
    for m in models.values():
        m.prequential_batch(xs[:20], ys[:20])
    cpu, gpu_path = models["cpu"], models["torch:cpu"]
    for x in xs[20:]:
        assert gpu_path.predict_one(x) == cpu.predict_one(x)
        a, b = gpu_path.predict_proba_one(x), cpu.predict_proba_one(x)
        assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-9 for k in a)
    assert np.allclose(gpu_path.predict_proba_batch(xs[20:]), cpu.predict_proba_batch(xs[20:]), atol=1e-9)
    frame = pd.DataFrame(xs[20:])
    assert np.allclose(gpu_path.predict_proba_many(frame).to_numpy(), cpu.predict_proba_many(frame).to_numpy(), atol=1e-9)
