"""OnlineContinualLearner: River conformance, batch = loop, state, bad input."""

import math
import pickle

import numpy as np
import pytest
import torch
from river import checks, datasets, linear_model, metrics, preprocessing
from river.datasets import synth

from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.backbones import RandomFeatures, TorchBackbone
from stream_cl.features import InvalidFeatureError
from stream_cl.replay import ReservoirReplay
from stream_cl.trainable import TrainableLearner


@pytest.mark.parametrize("params", list(OnlineContinualLearner._unit_test_params()), ids=str)
def test_river_check_estimator(params):
    checks.check_estimator(OnlineContinualLearner(**params))


def test_no_river_check_is_skipped():
    assert not OnlineContinualLearner(device="cpu")._unit_test_skips()


def _small(**kw):
    return OnlineContinualLearner(backbone=RandomFeatures(width=48, seed=3), device="cpu", **kw)


def test_prequential_batch_equals_the_predict_then_learn_loop():
    stream = synth.ConceptDriftStream(synth.SEA(variant=0, seed=1), synth.SEA(variant=3, seed=2), position=150, width=50, seed=4)
    data = list(stream.take(400))
    xs = [dict(x) for x, _ in data]
    for i in range(0, 400, 37):  # features that disappear now and then
        xs[i].pop(1, None)
    ys = [None if i % 7 == 3 else y for i, (_, y) in enumerate(data)]
    loop = _small()
    expected = []
    for x, y in zip(xs, ys):
        expected.append(loop.predict_proba_one(x))
        if y is not None:
            loop.learn_one(x, y)
    batch = _small()
    sizes = np.random.default_rng(0).choice([1, 5, 64, 130], size=40)
    start = 0
    for b in sizes:
        if start >= len(xs):
            break
        probas = batch.prequential_batch(xs[start:start + b], ys[start:start + b])
        for i, row in enumerate(probas):
            want = expected[start + i]
            have = {c: p for c, p in zip(batch.classes_, row) if p > 0 or c in want}
            assert set(have) == set(want), start + i
            for c in want:
                assert math.isclose(have[c], want[c], rel_tol=1e-6, abs_tol=1e-8), (start + i, c)
        start += b
    assert start >= len(xs)


def test_default_beats_logistic_regression_on_a_drifting_stream():
    stream = synth.ConceptDriftStream(synth.Agrawal(classification_function=0, seed=1),
                                      synth.Agrawal(classification_function=4, seed=2), position=1500, width=400, seed=3)
    data = list(stream.take(3000))
    ours = OnlineContinualLearner(device="cpu")
    hits = 0
    for s in range(0, 3000, 256):
        chunk = data[s:s + 256]
        probas = ours.prequential_batch([x for x, _ in chunk], [y for _, y in chunk])
        hits += sum(ours.classes_[int(p.argmax())] == y for p, (_, y) in zip(probas, chunk) if p.max() > 0)
    lr = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    acc = metrics.Accuracy()
    for x, y in data:
        acc.update(y, lr.predict_one(x))
        lr.learn_one(x, y)
    assert hits / 3000 > acc.get() + 0.05


def test_state_dict_round_trip_resumes_exactly():
    data = list(datasets.ImageSegments().take(300))
    a = _small()
    a.prequential_batch([x for x, _ in data[:150]], [y for _, y in data[:150]])
    b = _small().load_state_dict(a.state_dict())
    pa = a.prequential_batch([x for x, _ in data[150:]], [y for _, y in data[150:]])
    pb = b.prequential_batch([x for x, _ in data[150:]], [y for _, y in data[150:]])
    assert np.array_equal(pa, pb)
    assert pickle.loads(pickle.dumps(a)).predict_proba_one(data[0][0]) == a.predict_proba_one(data[0][0])


def test_bad_events_raise_before_any_state_changes():
    model = _small()
    model.learn_one({"a": 1.0}, "x").learn_one({"a": 2.0}, "y")
    before = pickle.dumps(model)
    with pytest.raises(InvalidFeatureError, match="not finite"):
        model.prequential_batch([{"a": 1.0}, {"a": float("nan"), "b": 1.0}], ["x", "y"])
    with pytest.raises(ValueError, match="None"):
        model.learn_one({"a": 1.0}, None)
    assert pickle.dumps(model) == before


def test_a_torch_module_backbone_works_and_rejects_too_many_features():
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU())
    torch.manual_seed(0)
    model = OnlineContinualLearner(backbone=TorchBackbone(net, input_dim=3), device="cpu")
    for i in range(50):
        model.learn_one({"a": float(i % 2), "b": float(i % 3), "c": 1.0}, i % 2)
    assert model.predict_one({"a": 1.0, "b": 0.0, "c": 1.0}) == 1
    with pytest.raises(ValueError, match="input_dim=3"):
        model.learn_one({"a": 1.0, "b": 0.0, "c": 1.0, "d": 2.0}, 0)


def test_bad_hyperparameters_name_the_fix():
    with pytest.raises(ValueError, match="view"):
        OnlineContinualLearner(heads=((1.0, "everything"),), device="cpu")
    with pytest.raises(ValueError, match="device"):
        OnlineContinualLearner(device="tpu")


def test_the_gpu_code_path_on_the_cpu_gives_the_same_predictions():
    data = list(datasets.ImageSegments().take(200))
    xs, ys = [x for x, _ in data], [y if i % 9 else None for i, (_, y) in enumerate(data)]
    numpy_path = OnlineContinualLearner(backbone=RandomFeatures(width=32), device="cpu")
    torch_path = OnlineContinualLearner(backbone=RandomFeatures(width=32), device="torch:cpu")
    for s in range(0, 200, 50):
        a = numpy_path.prequential_batch(xs[s:s + 50], ys[s:s + 50])
        b = torch_path.prequential_batch(xs[s:s + 50], ys[s:s + 50])
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    assert numpy_path.predict_proba_one(xs[0]) == pytest.approx(torch_path.predict_proba_one(xs[0]), rel=1e-7)


def test_a_torchscript_file_backbone_loads_from_disk(tmp_path):
    torch.manual_seed(0)
    net = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh()))
    path = tmp_path / "backbone.pt"
    torch.jit.save(net, str(path))
    model = OnlineContinualLearner(backbone=TorchBackbone(str(path), input_dim=4), key_units=0, device="cpu")
    rng = np.random.default_rng(0)
    xs = [{k: float(v) for k, v in zip("abcd", rng.normal(size=4))} for _ in range(300)]
    ys = [x["a"] + x["b"] > 0 for x in xs]
    probas = model.prequential_batch(xs, ys)
    hits = [model.classes_[int(p.argmax())] == y for p, y in zip(probas[100:], ys[100:])]
    assert np.mean(hits) > 0.9
    with pytest.raises(ValueError, match="not found"):
        TorchBackbone(str(tmp_path / "missing.pt"), input_dim=4)


def test_the_sgd_head_batch_equals_its_row_loop():
    from stream_cl.heads.sgd import SGDSoftmaxHead

    rng = np.random.default_rng(5)
    Z = np.hstack([np.ones((120, 1)), rng.normal(size=(120, 4))])
    ys = [None if i % 7 == 0 else ["a", "b", "c"][min(2, i // 30)] for i in range(120)]  # classes arrive late
    batch, loop = SGDSoftmaxHead(0.1), SGDSoftmaxHead(0.1)
    got = np.vstack([np.pad(batch.prequential_proba(Z[s:s + 40], ys[s:s + 40]), ((0, 0), (0, 3 - len(batch.classes))))
                     for s in range(0, 120, 40)])
    want = np.vstack([np.pad(loop.prequential_proba(Z[i:i + 1], ys[i:i + 1]), ((0, 0), (0, 3 - len(loop.classes))))
                      for i in range(120)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(batch.W, loop.W, rtol=1e-9, atol=1e-12)
    # and with row weights, the Gram-matrix form equals the textbook loop (W -= lr w z g' per row)
    w = rng.uniform(0.5, 2.0, size=120)
    plain, weighted = SGDSoftmaxHead(0.1), SGDSoftmaxHead(0.1)
    ref, got_w = [], []
    for s in range(0, 120, 40):
        known = len(plain.classes)
        for y in ys[s:s + 40]:
            if y is not None and y not in plain._pos:
                plain._pos[y] = len(plain.classes)
                plain.classes.append(y)
        plain._grow(5, len(plain.classes))
        ref.append(np.pad(plain._loop(Z[s:s + 40], ys[s:s + 40], w[s:s + 40], known), ((0, 0), (0, 3 - len(plain.classes)))))
        P = weighted.prequential_proba(Z[s:s + 40], ys[s:s + 40], w[s:s + 40])
        got_w.append(np.pad(P, ((0, 0), (0, 3 - len(weighted.classes)))))
    np.testing.assert_allclose(np.vstack(got_w), np.vstack(ref), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.W, plain.W, rtol=1e-9, atol=1e-12)


def test_learn_one_after_predict_one_reuses_the_design_only_for_the_same_event():
    """predict_proba_one leaves its design rows for the learn_one of the same event; a
    different or mutated event, or a predict-only step in between, must not reuse them."""
    rng = np.random.default_rng(5)
    xs = [{"a": float(rng.normal()), "b": float(rng.normal())} for _ in range(120)]
    ys = [int(x["a"] + 0.3 * x["b"] > 0) for x in xs]
    with_predict, learn_only = OnlineContinualLearner(device="cpu"), OnlineContinualLearner(device="cpu")
    for i, (x, y) in enumerate(zip(xs, ys)):
        with_predict.predict_proba_one(xs[i - 1] if i % 7 == 3 else x)  # sometimes another event
        if i % 11 == 5:
            x = dict(x, a=x["a"] + 1.0)  # the event changed after its prediction
        if i % 13 == 6:
            with_predict.predict_proba_one(dict(x, c=1.0))  # a key the model has not seen
        with_predict.learn_one(x, y)
        learn_only.learn_one(x, y)
    a, b = with_predict.state_dict(), learn_only.state_dict()
    for ha, hb in zip(a["heads"], b["heads"]):
        for k in ("A", "B", "R"):
            assert np.array_equal(ha["ridge"][k], hb["ridge"][k])
    assert np.array_equal(a["scaler"]["mean"], b["scaler"]["mean"])
    x_new = {"a": 0.5, "b": -0.5}
    assert with_predict.predict_proba_one(x_new) == learn_only.predict_proba_one(x_new)


@pytest.mark.parametrize("make", [
    lambda: OnlineContinualLearner(device="cpu"),
    lambda: OnlineContinualLearner(device="cpu", replay=ReservoirReplay(max_samples=16)),
    AnalyticClassifier,
    lambda: TrainableLearner(micro_batch=4),
], ids=["default", "replay", "analytic", "trainable"])
def test_an_empty_batch_is_a_no_op_and_labels_or_weights_not_one_per_event_are_refused(make):
    model = make()
    assert model.prequential_batch([], []).shape == (0, 0)  # before anything is learned
    model.prequential_batch([{"a": 1.0}, {"a": -1.0}], ["yes", "no"])
    before = pickle.dumps(model)
    assert model.prequential_batch([], []).shape == (0, 2)  # a slice past the end of a stream
    with pytest.raises(ValueError, match="2 events and 1 labels: give one label per event"):
        model.prequential_batch([{"a": 1.0}, {"a": 2.0}], ["yes"])  # an event would be dropped
    with pytest.raises(ValueError, match="1 events and 2 labels"):
        model.prequential_batch([{"a": 1.0}], ["yes", "no"])
    if not isinstance(model, TrainableLearner):  # (it takes no weights at all)
        with pytest.raises(ValueError, match="1 events and 2 sample weights: give one weight per event"):
            model.prequential_batch([{"a": 1.0}], ["yes"], sample_weight=[1.0, 2.0])
    assert pickle.dumps(model) == before


@pytest.mark.parametrize("name, value", [("replay", "reservoir"), ("drift", "adwin"), ("homeostasis", True),
                                         ("imbalance", 0.5)])
def test_a_continual_part_given_as_a_plain_value_is_refused_by_name(name, value):
    with pytest.raises(TypeError, match=f"^{name} must be a [A-Za-z]+ such as [A-Za-z]+\\(\\), or None; got "):
        OnlineContinualLearner(device="cpu", **{name: value})


@pytest.mark.parametrize("make", [lambda: OnlineContinualLearner(device="cpu"), AnalyticClassifier])
def test_a_huge_finite_value_is_refused_and_the_model_kept(make):
    # 1e200 is finite: it used to be learned, and its square made the statistics inf (the
    # analytic model then predicted NaN for good, the online one lost the feature)
    import pandas as pd

    rng = np.random.default_rng(3)
    model = make()
    for _ in range(50):
        x = {"u": float(rng.normal()), "v": float(rng.normal())}
        model.learn_one(x, "A" if x["u"] > 0 else "B")
    probe = {"u": 1.0, "v": 0.0}
    before = model.predict_proba_one(probe)
    for x in ({"u": 1e200, "v": 0.0}, {"u": 0.5, "v": -(10**120)}):
        with pytest.raises(InvalidFeatureError, match=r"beyond \+-1e\+100"):
            model.learn_one(x, "A")
        with pytest.raises(InvalidFeatureError):
            model.learn_many(pd.DataFrame([{"u": 0.1, "v": 0.2}, x]), pd.Series(["A", "B"]))
    assert model.predict_proba_one(probe) == before
    assert model.predict_one({"u": 1.0, "v": 0.0}) == "A"


@pytest.mark.parametrize("make", [lambda: OnlineContinualLearner(device="cpu"), AnalyticClassifier])
def test_missing_labels_and_bad_weights_are_refused_before_anything_is_learned(make):
    import pandas as pd

    model = make()
    model.learn_one({"a": 1.0}, "x").learn_one({"a": -1.0}, "y")
    probe = {"a": 0.3}
    before = model.predict_proba_one(probe)
    # a NaN of any type, NaT, pd.NA: each NaN used to become a class of its own, and pd.NA
    # raised half-way through learning (the first head had learned the row, the model broke)
    for label in (np.float32("nan"), np.float64("nan"), pd.NaT, np.datetime64("NaT"), pd.NA):
        with pytest.raises(ValueError, match="label is missing"):
            model.learn_one({"a": 2.0}, label)
        with pytest.raises(ValueError, match="label is missing"):
            model.learn_many(pd.DataFrame({"a": [2.0, 3.0]}), pd.Series(["x", label], dtype=object))
    # NaN, inf, zero or negative weights: NaN made every later prediction NaN, zero divided by zero
    for w in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(ValueError, match="sample weight must be a positive finite number"):
            model.learn_one({"a": 2.0}, "x", w=w)
        with pytest.raises(ValueError, match="sample weight must be a positive finite number"):
            model.learn_many(pd.DataFrame({"a": [2.0, 3.0]}), pd.Series(["x", "y"]), w=[1.0, w])
    # labels or weights that are not one per event, before new classes or columns are registered
    with pytest.raises(ValueError, match="give one label per event"):
        model.learn_many(pd.DataFrame({"a": [2.0, 3.0], "b": [1.0, 1.0]}), pd.Series(["z"]))
    assert model.classes_ == ["x", "y"] and model.feature_names_in_ == ["a"]
    assert model.predict_proba_one(probe) == before


@pytest.mark.parametrize("make", [lambda: OnlineContinualLearner(device="cpu"), AnalyticClassifier])
def test_the_per_event_memo_never_reuses_a_row_that_may_have_changed(make):
    # predict_proba_one's row is reused by learn_one of an equal event; it compared values with ==
    a, b = make(), make()
    for m in (a, b):
        m.learn_one({"n": {"v": 1.0}}, "A").learn_one({"n": {"v": -1.0}}, "B")
    x = {"n": {"v": 1.0}}
    a.predict_proba_one(x)
    x["n"]["v"] = -5.0  # a reused event buffer, changed in place: the old row was learned
    a.learn_one(x, "B")
    b.learn_one({"n": {"v": -5.0}}, "B")
    q = {"n": {"v": -3.0}}
    assert a.predict_proba_one(q) == b.predict_proba_one(q)
    # array values (flattened to v[0], v[1]): their == is elementwise, and the comparison raised
    m = make()
    m.learn_one({"v": np.array([1.0, 2.0])}, "A").learn_one({"v": np.array([-1.0, 0.5])}, "B")
    m.predict_proba_one({"v": np.array([1.0, 2.0])})
    m.learn_one({"v": np.array([3.0, 4.0])}, "A")
    m.predict_proba_one({"v": 1.0})  # scalars after arrays under one key
    m.learn_one({"v": np.array([3.0, 4.0])}, "A")
    assert m.predict_one({"v": np.array([3.0, 4.0])}) == "A"


def test_max_columns_bounds_the_heads_before_anything_is_learned():
    # an event with ~1,000 new numeric keys used to grow each backbone head to 9,257 columns
    # (0.7 GB a matrix, 4.2 GB at the peak): one odd event could take a daemon's memory
    from stream_cl.prequential import Prequential
    from stream_cl.events import Event

    model = OnlineContinualLearner(device="cpu", max_columns=1 + 256 + 9 * 4)  # room for 4 numeric inputs
    for i in range(20):
        model.learn_one({"a": float(i % 3), "b": float(i % 2), "c": 1.0}, i % 2)
    probe = {"a": 1.0, "b": 0.0, "c": 1.0}
    before = model.predict_proba_one(probe)
    model.learn_one({"a": 1.0, "d": 2.0}, 1)  # the 4th input: 293 columns, at the bound
    before = model.predict_proba_one(probe)
    for learn in (lambda x: model.learn_one(x, 0), lambda x: model.learn_many(__import__("pandas").DataFrame([x]), [0])):
        with pytest.raises(ValueError, match=r"5 inputs would give the 'all' head 302 design columns, over max_columns \(293\)"):
            learn({"a": 1.0, "e": 2.0})
    assert model.feature_names_in_ == ["a", "b", "c", "d"] and model.predict_proba_one(probe) == before
    # in a run loop: that event is a dead letter, the others of its batch are learned
    events = [Event({"a": 1.0}, 0), Event({"f": 1.0}, 1, origin="o:2"), Event({"b": 1.0}, 1)]
    predictions, dead = Prequential(model).process(events)
    assert len(predictions) == 2 and [(d.reason, d.origin) for d in dead] == [("rejected_by_model", "o:2")]
    assert "over max_columns" in dead[0].detail
    # a hash width that passes the bound is refused when the learner is made
    with pytest.raises(ValueError, match=r"hash_width=4096 gives the 'all' head 37,121 design columns"):
        OnlineContinualLearner(device="cpu", hash_width=4096)
    assert OnlineContinualLearner(device="cpu", hash_width=4096, max_columns=None).max_columns is None


@pytest.mark.parametrize("decay, rows", [(0.5, 3000), (0.9, 8000), (0.3, 1500)])
def test_the_mixer_batch_past_the_float_range_of_its_closed_form_equals_its_row_loop(decay, rows):
    # q ** -rows overflows past e ** 709: the batch is taken in chunks, no NaN weights
    from stream_cl.mixing import AccuracyMixer

    rng = np.random.default_rng(5)
    hits, labelled = rng.random((rows, 3)) < 0.6, rng.random(rows) < 0.9
    start = rng.random(3)
    batch, loop, split = (AccuracyMixer(3, decay, 50.0) for _ in range(3))
    batch.accuracy, loop.accuracy, split.accuracy = start.copy(), start.copy(), start.copy()
    weights = batch.prequential(hits, labelled)
    assert np.isfinite(weights).all() and np.isfinite(batch.accuracy).all()
    for i in range(rows):
        np.testing.assert_allclose(weights[i], loop.weights(), rtol=0, atol=1e-12, err_msg=str(i))
        if labelled[i]:
            loop.absorb(hits[i].tolist())
    np.testing.assert_allclose(batch.accuracy, loop.accuracy, rtol=0, atol=1e-12)
    cuts = [0, 1, 400, rows // 2, rows - 1, rows]  # any other batching: the same weights
    parts = [split.prequential(hits[a:z], labelled[a:z]) for a, z in zip(cuts[:-1], cuts[1:])]
    np.testing.assert_allclose(np.concatenate(parts), weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(split.accuracy, batch.accuracy, rtol=0, atol=1e-12)


def test_a_learner_batch_longer_than_the_mixer_closed_form_range_equals_the_per_event_loop():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1100, 3))
    xs = [dict(a=float(r[0]), b=float(r[1]), c=float(r[2])) for r in X]
    ys = ["p" if r[0] + 0.3 * r[1] > 0 else "n" for r in X]
    batch, loop = _small(mix_decay=0.5), _small(mix_decay=0.5)
    P = np.asarray(batch.prequential_batch(xs, ys))
    assert np.isfinite(P).all()
    for i, (x, y) in enumerate(zip(xs, ys)):
        want = loop.predict_proba_one(x)
        np.testing.assert_allclose(P[i], [want.get(c, 0.0) for c in batch.classes_], rtol=0, atol=1e-12, err_msg=str(i))
        loop.learn_one(x, y)


@pytest.mark.parametrize("hash_width", [None, 64])
def test_keys_that_compare_equal_but_are_other_columns_do_not_share_the_memo(hash_width):
    # 1 == 1.0 == True, but they are three columns ("1=a", "1.0=a") or buckets: predicting {1: "a"}
    # then learning {1.0: "a"} learned the row of key 1
    def run(predict_first):
        model = OnlineContinualLearner(device="cpu", hash_width=hash_width)
        for i in range(12):
            model.learn_one({1: "ab"[i % 2], "u": float(i % 3)}, "pq"[i % 2])
        if predict_first:
            model.predict_proba_one({1: "a", "u": 0.0})
        model.learn_one({1.0: "a", "u": 0.0}, "q")
        return model.predict_proba_one({1.0: "a", "u": 1.0})

    assert run(True) == run(False)


def test_a_fresh_learner_returns_one_row_per_event_for_a_batch_without_labels():
    # found by review: a learner that knew no class returned b + 1 rows for b unlabelled events
    for model in (OnlineContinualLearner(device="cpu"), AnalyticClassifier()):
        P = model.prequential_batch([{"a": 1.0}, {"a": 2.0}, {"a": 3.0}], [None, None, None])
        assert P.shape == (3, 0)
        assert model.prequential_batch([{"a": 1.0}], [None], partition="p").shape == (1, 0)


def test_a_float32_value_is_not_taken_for_the_python_float_it_compares_equal_to():
    # found by review: numpy 2 compares np.float32(0.1) == 0.1 in float32, so learn_one({"a": 0.1}) after
    # predict_proba_one({"a": np.float32(0.1)}) learned the remembered float32 row
    for first, second in ((np.float32(0.1), 0.1), (0.1, np.float32(0.1))):
        m, twin = OnlineContinualLearner(device="cpu"), OnlineContinualLearner(device="cpu")
        for i in range(20):
            for model in (m, twin):
                model.learn_one({"a": float(i % 3)}, i % 2)
        m.predict_proba_one({"a": first})
        m.learn_one({"a": second}, 1)
        twin.learn_one({"a": second}, 1)
        np.testing.assert_array_equal(m.heads_[0].ridge.A, twin.heads_[0].ridge.A)
