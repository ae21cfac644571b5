"""TrainableLearner: River conformance, batching-independent micro-batches, replay mixing,
homeostatic per-layer learning rates, exact state round trips."""

import pickle

import numpy as np
import pytest
from river import checks

from stream_cl.drift import DriftMonitor
from stream_cl.homeostasis import Homeostasis
from stream_cl.replay import PowerLawReplay, ReservoirReplay
from stream_cl.trainable import TrainableLearner


@pytest.mark.parametrize("params", list(TrainableLearner._unit_test_params()), ids=str)
def test_river_check_estimator(params):
    checks.check_estimator(TrainableLearner(**params))


def test_no_river_check_is_skipped():
    assert not TrainableLearner()._unit_test_skips()


def _stream(n=600, seed=0, flip=None):
    rng = np.random.default_rng(seed)
    xs = [{"a": float(rng.normal()), "b": float(rng.normal()), "c": float(rng.normal())} for _ in range(n)]
    ys = []
    for i, x in enumerate(xs):
        y = "pos" if x["a"] + 0.5 * x["b"] > 0 else "neg"
        if flip is not None and i >= flip:
            y = "neg" if y == "pos" else "pos"
        ys.append(y)
    return xs, ys


def _make(**kw):
    return TrainableLearner(hidden=(16,), lr=0.02, micro_batch=8, device="cpu", seed=1, **kw)


def test_learns_and_predictions_do_not_depend_on_batching():
    xs, ys = _stream()
    a, b = _make(replay=ReservoirReplay(50, seed=0)), _make(replay=ReservoirReplay(50, seed=0))
    pa = np.vstack([np.pad(a.prequential_batch([x], [y]), ((0, 0), (0, 2)))[:, :2] for x, y in zip(xs, ys)])
    pb = np.vstack([b.prequential_batch(xs[s:s + 45], ys[s:s + 45]) for s in range(0, 600, 45)])
    assert np.allclose(pa[1:], pb[1:], atol=1e-9)
    hits = [a.classes_[int(p.argmax())] == y for p, y in zip(pb[300:], ys[300:])]
    assert np.mean(hits) > 0.9
    assert a.n_updates_ == 600 // 8 and a.replay_.n_replayed_ > 500


def test_predict_only_events_do_not_train():
    xs, ys = _stream(100)
    m = _make()
    m.prequential_batch(xs[:40], ys[:40])
    before = [p.clone() for p in m.params_]
    m.prequential_batch(xs[40:60], [None] * 20)
    assert all(np.array_equal(p.numpy(), q.numpy()) for p, q in zip(before, m.params_)) and m.n_labelled_ == 40


def test_replay_rows_join_each_micro_batch_at_the_ratio():
    xs, ys = _stream(160)
    m = _make(replay=PowerLawReplay(100, ratio=2.0, seed=3))
    m.prequential_batch(xs, ys, tasks=[i // 40 for i in range(160)])
    assert m.replay_.n_seen_ == 160 and m.replay_.n_replayed_ == 2 * 160 - 2
    assert m.replay_size_ == 100 and m.replay_bytes_ == 100 * (9 * 3 + 32)


def test_homeostasis_scales_per_layer_learning_rates_after_a_shift():
    xs, ys = _stream(900, flip=600)
    m = TrainableLearner(hidden=(16, 16), lr=0.01, micro_batch=8, device="cpu",
                         homeostasis=Homeostasis(lr_sensitivity=(0.25, 0.5, 1.0)),
                         drift=DriftMonitor("adwin", response=("need",)))
    m.prequential_batch(xs[:600], ys[:600])
    calm = m.learning_rates_
    assert calm == pytest.approx([0.01] * 3, rel=0.3)
    m.prequential_batch(xs[600:650], ys[600:650])
    shifted = m.learning_rates_
    assert shifted[2] > shifted[1] > shifted[0] > calm[0]  # deeper layers more plastic
    assert m.need_ > 1.0
    assert m.report()["learning_rates"] == shifted


def test_state_round_trip_resumes_exactly_mid_micro_batch(tmp_path):
    xs, ys = _stream(400, flip=250)

    def make():
        return _make(replay=ReservoirReplay(40, seed=4), homeostasis=Homeostasis(),
                     drift=DriftMonitor("hddm_w", response=("record", "need")))
    a = make()
    a.prequential_batch(xs[:203], ys[:203])  # 203: a micro-batch is pending
    assert len(a._pending) == 3
    from stream_cl.checkpoint import load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path / "t.safetensors", a.state_dict())
    b = make().load_state_dict(load_checkpoint(tmp_path / "t.safetensors")[0])
    pa = a.prequential_batch(xs[203:], ys[203:])
    pb = b.prequential_batch(xs[203:], ys[203:])
    assert np.array_equal(pa, pb)
    assert all(np.array_equal(p.numpy(), q.numpy()) for p, q in zip(a.params_, b.params_))
    assert a.alarms_ == b.alarms_
    c = pickle.loads(pickle.dumps(a))
    assert np.array_equal(c.predict_proba_batch(xs[:5]), a.predict_proba_batch(xs[:5]))


def test_new_classes_and_features_grow_the_network():
    m = _make()
    m.prequential_batch([{"a": 1.0}] * 8, ["x"] * 8)
    m.prequential_batch([{"a": 1.0, "z": 2.0}] * 8, ["y"] * 8)
    assert m.classes_ == ["x", "y"] and m.params_[0].shape == (16, 2) and m.params_[-2].shape == (2, 16)
    p = m.predict_proba_one({"a": 1.0, "z": 2.0})
    assert set(p) == {"x", "y"} and abs(sum(p.values()) - 1) < 1e-9


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="hidden"):
        TrainableLearner(hidden=())
    with pytest.raises(ValueError, match="'record' and 'need'"):
        TrainableLearner(drift=DriftMonitor("adwin", response=("restart",)))
    with pytest.raises(ValueError, match="sample weights"):
        TrainableLearner(device="cpu").prequential_batch([{"a": 1.0}], [1], sample_weight=[2.0])


def test_softmax_regression_without_hidden_layers():
    xs, ys = _stream(300)
    m = TrainableLearner(hidden=None, lr=0.05, micro_batch=8, device="cpu")
    P = m.prequential_batch(xs, ys)
    assert len(m.params_) == 2 and m.params_[0].shape == (2, 3)
    assert np.mean([m.classes_[int(p.argmax())] == y for p, y in zip(P[150:], ys[150:])]) > 0.9
    assert m.clone().hidden is None


def _late_keys_stream(n=60, seed=7):
    """Keys "u", "v" from the start (the first two events only predicted), a numeric "w" from
    event 15 and a category "c" from event 30: batches that span their arrival."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        x = {"u": float(rng.normal()), "v": float(rng.normal())}
        if i >= 15:
            x["w"] = float(rng.normal())
        if i >= 30:
            x["c"] = str(rng.choice(["r", "g"]))
        xs.append(x)
        ys.append(None if i < 2 else ("A" if x["u"] + 0.3 * x.get("w", 0.0) > 0 else "B"))
    return xs, ys


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_a_key_first_met_mid_batch_gives_the_per_event_predictions(weight_decay):
    # the first inputs fix the first layer's scale, and a column that exists before a micro-batch
    # trains is decayed with it: growing to a batch's width before its first row changed both
    xs, ys = _late_keys_stream()

    def make():
        return TrainableLearner(hidden=(16,), micro_batch=4, weight_decay=weight_decay, device="cpu", seed=1)
    a = make()
    per_event = [a.prequential_batch([x], [y]) for x, y in zip(xs, ys)]
    pa = np.vstack([np.pad(p, ((0, 0), (0, 2 - p.shape[1]))) for p in per_event])  # (events, 2 classes)
    for size in (20, 60):  # 20: the keys arrive mid-batch and a micro-batch trains before them
        b = make()
        pb = np.vstack([np.pad(P, ((0, 0), (0, 2 - P.shape[1])))  # (events, 2 classes)
                        for P in (b.prequential_batch(xs[s:s + size], ys[s:s + size]) for s in range(0, len(xs), size))])
        np.testing.assert_allclose(pb, pa, rtol=0, atol=1e-12)
        assert b.net_.fan_in == a.net_.fan_in == 2  # the inputs of the first learned event
        assert all(np.allclose(p.numpy(), q.numpy(), rtol=0, atol=1e-12) for p, q in zip(a.params_, b.params_))


def test_a_state_saved_before_any_input_takes_its_scale_from_the_first_inputs(tmp_path):
    from stream_cl.checkpoint import load_checkpoint, save_checkpoint

    xs, ys = _late_keys_stream()
    a = _make()
    a.prequential_batch(xs[:2], ys[:2])  # only predicted: no input column yet
    state = a.state_dict()
    assert a.net_.n_inputs == 0
    state["fan_in"] = 1  # what such a state held before the scale waited for the first inputs
    save_checkpoint(tmp_path / "t.safetensors", state)
    b = _make().load_state_dict(load_checkpoint(tmp_path / "t.safetensors")[0])
    pa, pb = a.prequential_batch(xs[2:], ys[2:]), b.prequential_batch(xs[2:], ys[2:])
    assert np.array_equal(pa, pb) and a.net_.fan_in == b.net_.fan_in == 2


def test_infinite_or_malformed_rates_are_refused_naming_them():
    # found by review: lr=inf or weight_decay=inf (or nan) made every weight NaN at the first step
    for kwargs, name in (({"lr": float("inf")}, "lr"), ({"weight_decay": float("inf")}, "weight_decay"),
                         ({"weight_decay": float("nan")}, "weight_decay"), ({"weight_decay": -1.0}, "weight_decay"),
                         ({"weight_decay": "0.1"}, "weight_decay"), ({"lr": True}, "lr")):
        with pytest.raises(ValueError, match=rf"^{name} must be a finite number"):
            TrainableLearner(**kwargs)


def test_a_bad_device_of_the_trainable_kind_is_named_as_model_device():
    from stream_cl.config import ConfigError, load_config_dict
    from stream_cl.factory import build_learner

    with pytest.raises(ConfigError, match=r"^model\.device: "):
        build_learner(load_config_dict({"model": {"kind": "trainable", "device": "tpu"}}))
