"""Learners on payload-shaped events: categories, nulls, nesting, times. Exactness and resumption hold."""

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import torch

from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.backbones import KeyUnits, OnlineStandardizer, RandomFeatures
from stream_cl.checkpoint import load_checkpoint, save_checkpoint
from stream_cl.config import ConfigError, load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.feature_batch import KEYED_CATEGORIES
from stream_cl.prequential import Prequential
from stream_cl.replay import ReservoirReplay
from stream_cl.trainable import TrainableLearner


def payments(n: int, seed: int = 0) -> list[tuple[dict, str]]:
    """Small payment events: the label depends on the merchant, the amount and a nested country."""
    rng = np.random.default_rng(seed)
    risky = {f"m{i}" for i in range(0, 30, 3)}
    out = []
    for i in range(n):
        m = f"m{int(rng.integers(30))}"
        amount = float(rng.lognormal(3, 1))
        country = ["FR", "DE", "US", None][int(rng.integers(4))]
        fraud = (m in risky) != (country is None and amount > 40)
        x = {"amount": amount if i % 9 else None, "merchant": m, "card": {"country": country, "3ds": bool(i % 2)}}
        if i % 13 == 0:
            x["tags"] = ["promo", "web"]
        out.append((x, "fraud" if fraud else "ok"))
    return out


def small(**kw) -> OnlineContinualLearner:
    return OnlineContinualLearner(backbone=RandomFeatures(width=32, seed=3), device="cpu", **kw)


@pytest.mark.parametrize("kw", [{}, {"replay": ReservoirReplay(max_samples=50, ratio=0.5, seed=1)}], ids=["plain", "replay"])
def test_batches_give_the_predict_then_learn_loop_with_categories(kw):
    data = payments(260)
    xs = [x for x, _ in data]
    ys = [None if i % 8 == 5 else y for i, (_, y) in enumerate(data)]
    settings = {"max_categories": 12, "missing_indicators": True, **kw}
    loop = small(**settings)
    expected = []
    for x, y in zip(xs, ys):
        expected.append(loop.predict_proba_one(x))
        if y is not None:
            loop.learn_one(x, y)
    batch = small(**settings)
    start = 0
    for b in (1, 7, 64, 100, 88):
        probas = batch.prequential_batch(xs[start:start + b], ys[start:start + b])
        for i, row in enumerate(probas):
            want = expected[start + i]
            have = {c: p for c, p in zip(batch.classes_, row) if p > 0 or c in want}
            assert set(have) == set(want), start + i
            for c in want:
                assert math.isclose(have[c], want[c], rel_tol=1e-6, abs_tol=1e-8), (start + i, c)
        start += b
    assert start == len(xs)
    assert batch.feature_names_in_ == loop.feature_names_in_
    assert batch.index_.overflow == loop.index_.overflow and loop.index_.overflow["merchant"] > 0


def test_the_analytic_classifier_is_closed_form_ridge_on_indicator_columns():
    data = payments(400, seed=1)
    model = AnalyticClassifier(gamma=0.5, max_categories=20)
    for s in range(0, 400, 50):
        chunk = data[s:s + 50]
        model.prequential_batch([x for x, _ in chunk], [y for _, y in chunk])
    names = model.feature_names_in_
    pos = {k: j for j, k in enumerate(names)}
    X = np.zeros((len(data), 1 + len(names)))  # the one-hot design, built by hand
    X[:, 0] = 1.0
    for i, (x, _) in enumerate(data):
        amount = x["amount"]
        if amount is not None:
            X[i, 1 + pos["amount"]] = amount
        m = f"merchant={x['merchant']}"
        X[i, 1 + pos.get(m, pos["merchant=<other>"])] = 1.0
        if x["card"]["country"] is not None:
            X[i, 1 + pos[f"card.country={x['card']['country']}"]] = 1.0
        X[i, 1 + pos["card.3ds"]] = float(x["card"]["3ds"])
        if "tags" in x:
            X[i, 1 + pos["tags[0]=promo"]] = X[i, 1 + pos["tags[1]=web"]] = 1.0
    Y = np.array([[y == c for c in model.classes_] for _, y in data], dtype=float)
    W = np.linalg.solve(X.T @ X + 0.5 * np.eye(X.shape[1]), X.T @ Y)
    np.testing.assert_allclose(model.coef_, W[1:].T, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(model.intercept_, W[0], rtol=1e-7, atol=1e-9)
    assert model.index_.overflow["merchant"] > 0  # 30 merchants, 20 columns: the rest share one


def test_indicators_are_not_standardised_and_read_zero_until_learned():
    s = OnlineStandardizer()
    X = np.array([[1.0, 5.0], [0.0, 7.0], [1.0, 9.0], [1.0, 3.0]])  # column 0: a rare-ish category
    M = np.array([[True, True], [False, True], [True, True], [True, True]])
    raw = np.array([True, False])
    Z = s.prequential(X, M, np.ones(4, dtype=bool), raw)
    # 0 the first time, then its own value (times INDICATOR_SCALE = 0.5), never a standardised 1/sqrt(p)
    assert Z[:, 0].tolist() == [0.0, 0.0, 0.5, 0.5]
    assert Z[2, 1] == pytest.approx((9.0 - 6.0) / 1.0)  # numeric columns as before
    assert s.transform(np.array([[1.0, 6.0]]), np.array([[True, True]]), raw).tolist() == [[0.5, 0.0]]


def test_indicator_inputs_get_no_threshold_units():
    units = KeyUnits(per_key=3, seed=0)
    Z = torch.tensor([[0.5, 1.0, -1.0]], dtype=torch.float64)
    out = units.forward(Z, ["a", "c=x", "b"], torch.ones(1, 3, dtype=torch.bool), np.array([False, True, False]))
    assert out.shape == (1, 4 + 1 + 4)
    full = units.forward(Z, ["a", "c=x", "b"], torch.ones(1, 3, dtype=torch.bool))
    assert torch.equal(out[0, :5], full[0, :5]) and torch.equal(out[0, 5:], full[0, 8:])
    model = small(key_units=4)
    model.prequential_batch([{"a": 1.0, "c": "x"}, {"a": 2.0, "c": "y"}], ["p", "q"])
    assert model.heads_[0].ridge.n_features == 1 + 32 + 1 * (1 + 4) + 2  # bias, random features, a's block, 2 indicators
    # a skipped input loses its block altogether
    out = units.forward(Z, ["a", "c=x", "b"], torch.ones(1, 3, dtype=torch.bool), np.array([False, True, False]),
                        np.array([False, True, False]))
    assert torch.equal(out, torch.cat([full[0, :4], full[0, 8:]])[None])


def test_only_the_first_categories_of_a_feature_widen_the_backbone_heads():
    model = small(key_units=2)
    xs = [{"a": float(i), "m": f"m{i}"} for i in range(50)]
    model.prequential_batch(xs, [i % 2 for i in range(50)])
    assert len(model.feature_names_in_) == 51 and model.index_.unkeyed_mask.sum() == 50 - KEYED_CATEGORIES
    all_view = 1 + 32 + (1 + 2) + KEYED_CATEGORIES  # bias, random features, a's block, the keyed categories
    assert model.heads_[0].ridge.n_features == all_view
    assert model.heads_[2].ridge.n_features == 1 + 51  # an input head: every column


@pytest.mark.parametrize("hash_width", [None, 64])
def test_a_category_alone_decides_the_label_and_the_learner_sees_it(hash_width):
    rng = np.random.default_rng(2)
    cats = [f"c{i}" for i in range(20)]
    label = {c: ["a", "b", "c"][i % 3] for i, c in enumerate(cats)}
    data = []
    for _ in range(1500):
        c = cats[int(rng.integers(20))]
        data.append(({"noise": float(rng.normal()), "cat": c}, label[c]))
    model = OnlineContinualLearner(device="cpu", hash_width=hash_width)
    hits = 0
    for s in range(0, 1500, 100):
        chunk = data[s:s + 100]
        P = model.prequential_batch([x for x, _ in chunk], [y for _, y in chunk])
        if s >= 500:
            hits += sum(model.classes_[int(p.argmax())] == y for p, (_, y) in zip(P, chunk))
    assert hits / 1000 > 0.98


def _frame(data):
    return pd.DataFrame([{"amount": x["amount"], "merchant": x["merchant"], "country": x["card"]["country"]}
                         for x, _ in data])


def _rows(frame):
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


@pytest.mark.parametrize("make", [lambda: AnalyticClassifier(max_categories=10), lambda: small(max_categories=10),
                                  lambda: TrainableLearner(hidden=(16,), device="cpu", max_categories=10)],
                         ids=["analytic", "online", "trainable"])
def test_learn_many_on_a_frame_with_object_columns_learns_its_rows(make):
    data = payments(120, seed=3)
    frame = _frame(data)
    y = pd.Series([y for _, y in data])
    one, many = make(), make()
    if isinstance(one, TrainableLearner):  # its first layer's scale depends on the first batch: same batches
        one.prequential_batch(_rows(frame.iloc[:50]), list(y.iloc[:50]))
        one.prequential_batch(_rows(frame.iloc[50:]), list(y.iloc[50:]))
    else:
        for row, label in zip(_rows(frame), y):
            one.learn_one(row, label)
    many.learn_many(frame.iloc[:50], y.iloc[:50]).learn_many(frame.iloc[50:], y.iloc[50:])
    assert one.feature_names_in_ == many.feature_names_in_ and "merchant=<other>" in one.feature_names_in_
    test = _frame(payments(30, seed=4))
    np.testing.assert_allclose(one.predict_proba_many(test).to_numpy(), many.predict_proba_many(test).to_numpy(),
                               rtol=1e-6, atol=1e-9)
    assert [one.predict_one(x) for x in _rows(test)] == many.predict_many(test).tolist()


def test_a_checkpoint_with_categories_resumes_exactly(tmp_path):
    data = payments(300, seed=5)
    xs, ys = [x for x, _ in data], [y for _, y in data]
    a = small(max_categories=8, missing_indicators=True)
    a.prequential_batch(xs[:150], ys[:150])
    save_checkpoint(tmp_path / "m.safetensors", a.state_dict())
    state, _ = load_checkpoint(tmp_path / "m.safetensors")
    b = small(max_categories=8, missing_indicators=True).load_state_dict(state)
    assert b.index_.overflow == a.index_.overflow and b.index_.categories == a.index_.categories
    np.testing.assert_array_equal(a.prequential_batch(xs[150:], ys[150:]), b.prequential_batch(xs[150:], ys[150:]))
    assert b.feature_names_in_ == a.feature_names_in_


def test_time_features_come_from_datetimes_and_from_the_event_time():
    t0 = datetime(2024, 3, 4, tzinfo=timezone.utc)
    # night events are one class, day events the other: only the time tells them apart
    times = [t0 + timedelta(minutes=37 * i) for i in range(600)]
    labels = ["night" if t.hour < 6 or t.hour >= 18 else "day" for t in times]
    model = AnalyticClassifier(time_features=True)
    for t, y in zip(times, labels):
        model.learn_one({"when": t, "u": 1.0}, y)
    assert model.feature_names_in_[:4] == ["when.hour_sin", "when.hour_cos", "when.dow_sin", "when.dow_cos"]
    assert model.predict_one({"when": t0 + timedelta(hours=2), "u": 1.0}) == "night"
    assert model.predict_one({"when": t0 + timedelta(hours=12), "u": 1.0}) == "day"
    # the run loops: the event's time (mapping.timestamp) as ts.* columns
    step = Prequential(AnalyticClassifier(time_features=True))
    events = [Event({"u": 1.0}, y, str(i), None, t.timestamp()) for i, (t, y) in enumerate(zip(times, labels))]
    step.process(events)
    assert step.learner.feature_names_in_ == ["u", "ts.hour_sin", "ts.hour_cos", "ts.dow_sin", "ts.dow_cos"]
    preds, dead = step.process([Event({"u": 1.0}, None, "n", None, (t0 + timedelta(hours=3)).timestamp())])
    assert not dead and preds[0].y_pred == "night"
    plain = Prequential(AnalyticClassifier())  # without time_features the time is no feature
    plain.process(events[:5])
    assert plain.learner.feature_names_in_ == ["u"]


def test_the_run_report_counts_category_overflow():
    step = Prequential(AnalyticClassifier(max_categories=1))
    step.process([Event({"m": m}, "a") for m in ("x", "y", "z", "x")])
    report = step.stats.report()["features"]
    assert report["overflow_total"] == 2 and report["overflow"] == {"m": 2} and report["indicator_columns"] == 2


def test_the_config_builds_learners_with_the_encoding_settings():
    cfg = load_config_dict({"model": {"device": "cpu", "max_categories": 7, "missing_indicators": True,
                                      "time_features": True}, "mapping": {"nan_policy": "missing", "max_depth": 2}})
    for kind in ("online", "analytic", "trainable"):
        learner = build_learner(cfg.replace("model", kind=kind, forgetting=[1.0]))
        assert (learner.index_.max_categories, learner.index_.missing_indicators, learner.index_.time_features) == (7, True, True)
    assert cfg.mapping.nan_policy == "missing" and cfg.mapping.max_depth == 2
    with pytest.raises(ConfigError, match="model.max_categories: must be > 0"):
        load_config_dict({"model": {"max_categories": 0}})
    with pytest.raises(ConfigError, match="mapping.nan_policy: must be one of 'reject', 'missing'"):
        load_config_dict({"mapping": {"nan_policy": "drop"}})
    with pytest.raises(ConfigError, match=r"mapping.max_depth: must be in \[0, 100\]"):
        load_config_dict({"mapping": {"max_depth": -1}})


def test_the_gpu_code_path_on_the_cpu_gives_the_same_predictions_with_categories():
    data = payments(200, seed=6)
    xs = [{**x, "shop": f"s{i % 47}"} for i, (x, _) in enumerate(data)]  # 47 shops: past KEYED_CATEGORIES, and the bound
    ys = [y if i % 9 else None for i, (_, y) in enumerate(data)]
    numpy_path = OnlineContinualLearner(backbone=RandomFeatures(width=32), device="cpu", max_categories=40)
    torch_path = OnlineContinualLearner(backbone=RandomFeatures(width=32), device="torch:cpu", max_categories=40)
    for s in range(0, 200, 50):
        a = numpy_path.prequential_batch(xs[s:s + 50], ys[s:s + 50])
        b = torch_path.prequential_batch(xs[s:s + 50], ys[s:s + 50])
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    assert torch_path.index_.unkeyed_mask.sum() == 40 - KEYED_CATEGORIES and torch_path.index_.overflow["shop"] > 0
