"""Imbalance compensation: per-class statistics, pseudo-feature balance, inverse-frequency
weights, exact state round trips, and the effect on a rare class inside the learner."""

import numpy as np
import pytest

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.imbalance import ImbalanceCompensator, inverse_frequency_weight


def _imbalanced(n=1200, rare=0.05, seed=0, d=3):
    rng = np.random.default_rng(seed)
    ys = (rng.random(n) < rare).astype(int)
    X = rng.normal(size=(n, d)) + ys[:, None] * 1.2
    return X, [int(y) for y in ys]


def test_running_class_statistics_are_exact():
    X, ys = _imbalanced(300)
    comp = ImbalanceCompensator(mode="reweight")
    comp.step([X[:100], X[:100, :2]], ys[:100])
    comp.step([X[100:], X[100:, :2]], ys[100:])
    for k, c in enumerate(comp.classes_):
        rows = X[np.array(ys) == c]
        assert comp.counts_[k] == len(rows)
        assert np.allclose(comp.mean_[0][k], rows.mean(axis=0))
        assert np.allclose(comp.m2_[0][k] / len(rows), rows.var(axis=0))
        assert np.allclose(comp.mean_[1][k], rows[:, :2].mean(axis=0))


def test_pseudo_rows_top_up_the_rare_class_from_its_gaussian():
    X, ys = _imbalanced(2000, rare=0.1, seed=1)
    comp = ImbalanceCompensator(mode="pseudo", max_pseudo=16, min_count=5, seed=3)
    out = comp.step([X], ys)
    counts = dict(zip(comp.classes_, comp.counts_ + comp.pseudo_counts_))
    assert abs(counts[0] - counts[1]) <= 1  # balanced real + pseudo
    assert set(out.y) == {1} and len(out.y) == comp.pseudo_counts_.sum()
    P = out.blocks[0]
    rare = X[np.array(ys) == 1]
    assert np.allclose(P.mean(axis=0), rare.mean(axis=0), atol=0.1)
    assert np.allclose(P.std(axis=0), rare.std(axis=0), atol=0.1)
    assert np.all(np.diff(out.pos) >= 0) and all(ys[p] is not None for p in out.pos)


def test_inverse_frequency_weights():
    assert inverse_frequency_weight(0, 0, 1, 1.0, 10.0) == 1.0
    # a class at a tenth of its share weighs about ten times a class at its share
    rare = inverse_frequency_weight(9, 199, 2, 1.0, 100.0)
    common = inverse_frequency_weight(189, 199, 2, 1.0, 100.0)
    assert rare / common == pytest.approx(190 / 10)
    assert inverse_frequency_weight(0, 10_000, 2, 1.0, 10.0) == 10.0  # clipped
    assert inverse_frequency_weight(5, 100, 2, 0.0, 10.0) == 1.0  # power 0: no reweighting


def test_batching_does_not_change_the_compensation_and_state_round_trips():
    X, ys = _imbalanced(600, seed=2)
    a, b = ImbalanceCompensator("both", seed=1), ImbalanceCompensator("both", seed=1)
    whole = a.step([X], ys)
    parts = [b.step([X[s:s + 41]], ys[s:s + 41]) for s in range(0, 600, 41)]
    assert np.allclose(whole.blocks[0], np.vstack([p.blocks[0] for p in parts]))
    assert np.allclose(whole.weights, np.concatenate([p.weights for p in parts]))
    c = ImbalanceCompensator("both", seed=1).load_state_dict(a.state_dict())
    X2, ys2 = _imbalanced(200, seed=5)
    oa, oc = a.step([X2], ys2), c.step([X2], ys2)
    assert np.array_equal(oa.blocks[0], oc.blocks[0]) and np.array_equal(oa.weights, oc.weights)


def _recall(mode):
    X, ys = _imbalanced(3000, rare=0.04, seed=7, d=4)
    xs = [dict(zip("abcd", row)) for row in X.tolist()]
    model = OnlineContinualLearner(backbone=RandomFeatures(width=16), key_units=0, device="cpu", heads=((1.0, "all"),),
                                   imbalance=None if mode is None else ImbalanceCompensator(mode, max_pseudo=4, seed=0))
    model.prequential_batch(xs[:2000], ys[:2000])
    P = model.predict_proba_batch(xs[2000:])
    pred = np.array(model.classes_)[P.argmax(axis=1)]
    truth = np.array(ys[2000:])
    return float((pred[truth == 1] == 1).mean()), float((pred == truth).mean())


def test_compensation_raises_the_rare_class_recall():
    base, base_acc = _recall(None)
    pseudo, _ = _recall("pseudo")
    reweight, _ = _recall("reweight")
    assert pseudo > base + 0.1 and reweight > base + 0.1
    assert base_acc > 0.9


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="mode"):
        ImbalanceCompensator(mode="smote")
    with pytest.raises(ValueError, match="min_count"):
        ImbalanceCompensator(min_count=1)


def test_a_column_created_mid_batch_does_not_change_the_pseudo_rows():
    # the learner's design gains a column at row 30 (0 there, as a standardised first value is):
    # one step at the final width must draw the noise a step per row at its own width draws
    X, ys = _imbalanced(80, rare=0.2, seed=3, d=3)
    X[:31, 2] = 0.0  # absent before row 30, and 0 at it (a standardised first value)
    widths = [2 if i < 30 else 3 for i in range(80)]
    a, b = ImbalanceCompensator("pseudo", min_count=2, seed=0), ImbalanceCompensator("pseudo", min_count=2, seed=0)
    per_row = [a.step([X[i:i + 1, :widths[i]]], ys[i:i + 1]) for i in range(80)]
    whole = b.step([X], ys)
    assert sum(len(o.y) for o in per_row) == len(whole.y) > 0 and whole.pos.min() < 30
    rows = np.vstack([np.pad(o.blocks[0], ((0, 0), (0, 3 - o.blocks[0].shape[1]))) for o in per_row])  # (pseudo rows, 3)
    assert np.array_equal(rows, whole.blocks[0]) and a.rng_.state_dict() == b.rng_.state_dict()


def test_pseudo_rows_keep_the_learner_independent_of_batches_spanning_a_new_key():
    rng = np.random.default_rng(1)
    xs, ys = [], []
    for i in range(60):
        x = {"u": float(rng.normal()), "v": float(rng.normal())}
        if i >= 25:  # a key first met mid-batch
            x["w"] = float(rng.normal())
        xs.append(x)
        ys.append("A" if rng.random() < 0.8 else "B")

    def make():
        return OnlineContinualLearner(device="cpu", imbalance=ImbalanceCompensator(mode="pseudo", seed=0))

    def run(size):
        m = make()
        P = [m.prequential_batch(xs[s:s + size], ys[s:s + size]) for s in range(0, 60, size)]
        return np.vstack([np.pad(p, ((0, 0), (0, 2 - p.shape[1]))) for p in P])  # (events, 2 classes)
    per_event = run(1)
    for size in (30, 60):
        np.testing.assert_allclose(run(size), per_event, rtol=0, atol=1e-12)
