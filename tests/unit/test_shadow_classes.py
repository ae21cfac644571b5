"""Shadow heads keep their heads' classes, in the heads' order (stream_cl.shadows).

With partitions, partition 0's drift alarm started its shadows with that moment's classes;
partition 1 then brought class 2, which the served heads learned but partition 0's shadows
(which learn only partition 0's rows) never did. The restart loaded the shadow's class list
into the head (found by review): with "reset" head 0 lost class 2 and every later
``learn_one`` raised ``ValueError: shape mismatch``; with "restart" head 1 silently dropped it.
"""

from __future__ import annotations

import numpy as np
import pytest

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.drift import DriftMonitor
from stream_cl.heads import RidgeClassHead
from stream_cl.shadows import ShadowRestarter

RESPONSES = [("reset",), ("restart",)]


def _learner(response) -> OnlineContinualLearner:
    return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu", sgd_lr=None,
                                  heads=((1.0, "all"), (0.99, "all")), control_every=4,
                                  drift=DriftMonitor("ddm", response=response, restart_after=40))


def _stream(own_class: bool = False, seed: int = 0) -> list:
    """Events ``(x, y, partition)``. Partition 0 sees the concept flip at event 300 (its shadows
    start at event 309 and replace the heads at event 369); partition 1 learns a block of the old
    concept (events 150-179) and brings class 2 at events 320-339, while the shadows are pending.
    ``own_class``: partition 0 then brings class 3 of its own, also while they are pending."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(600):
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        if 150 <= i < 180:
            out.append((x, int(x["a"] > 0), 1))
        elif 320 <= i < 340:
            x["b"] += 5.0
            out.append((x, 2 if i % 2 else int(x["a"] > 0), 1))
        elif own_class and i in (345, 350, 355):
            x["a"] -= 5.0
            out.append((x, 3, 0))
        else:
            out.append((x, int((x["a"] > 0) != (i >= 300)), 0))
    return out


def _learn_until_the_restart(m: OnlineContinualLearner, events: list, check_shadows: bool = False) -> int:
    """Learn events one by one until partition 0's shadows replaced heads (``check_shadows``: checking
    on the way that pending shadows hold their heads' classes). Returns the next event's index."""
    for t, (x, y, p) in enumerate(events):
        m.learn_one(x, y, partition=p)
        if p == 0 and check_shadows:
            for i, shadow in m.shadows_.items():
                assert shadow.classes == m.heads_[i].classes
        if m.n_restarts_:
            return t + 1
    raise AssertionError("no restart")


@pytest.mark.parametrize("response", RESPONSES)
def test_a_restart_keeps_the_class_another_partition_brought(response):
    m = _learner(response)
    events = _stream()
    t = _learn_until_the_restart(m, events)
    assert m.n_restarts_ == 1 and t > 340  # after partition 1 brought class 2
    assert [list(h.classes) for h in m.heads_] == [[1, 0, 2], [1, 0, 2]]
    assert [h.ridge.n_outputs for h in m.heads_] == [3, 3]
    # partition 1's rows of class 2 stay in the heads: far out along b, class 2 is still the likeliest
    P = m.predict_proba_one({"a": 0.0, "b": 5.0}, partition=0)
    assert list(P) == [1, 0, 2] and max(P, key=P.get) == 2
    for x, y, p in events[t : t + 30] + [({"a": 0.1, "b": 5.2}, 2, 1), ({"a": -0.3, "b": 4.9}, 2, 0)]:
        m.learn_one(x, y, partition=p)  # both partitions go on learning
    assert m.n_restarts_ == 1 and [list(h.classes) for h in m.heads_] == [[1, 0, 2], [1, 0, 2]]


@pytest.mark.parametrize("response", RESPONSES)
def test_a_class_of_the_alarmed_partition_follows_the_other_partitions_in_the_heads_order(response):
    m = _learner(response)
    t = _learn_until_the_restart(m, _stream(own_class=True), check_shadows=True)
    assert m.n_restarts_ == 1 and t > 355
    assert [list(h.classes) for h in m.heads_] == [[1, 0, 2, 3], [1, 0, 2, 3]]
    P = m.predict_proba_one({"a": -5.0, "b": 0.0}, partition=0)
    assert list(P) == [1, 0, 2, 3] and max(P, key=P.get) == 3


@pytest.mark.parametrize("response", RESPONSES)
def test_batching_invariance_with_a_class_arriving_in_another_partition_while_shadows_are_pending(response):
    events = _stream(own_class=True, seed=0)
    runs = {}
    for size in (1, 64):
        m, rows, i = _learner(response), [], 0
        while i < len(events):  # runs of one partition, cut into batches of up to `size`
            p, j = events[i][2], i
            while j < len(events) and j - i < size and events[j][2] == p:
                j += 1
            P = m.prequential_batch([e[0] for e in events[i:j]], [e[1] for e in events[i:j]], partition=p)
            cols = {c: n for n, c in enumerate(m.classes_)}  # classes_ is only ever appended to
            rows += [[P[k, cols[c]] if cols.get(c, 9) < P.shape[1] else 0.0 for c in (0, 1, 2, 3)] for k in range(j - i)]
            i = j
        runs[size] = (np.array(rows), m.n_restarts_, [list(h.classes) for h in m.heads_])
    assert runs[1][1] == runs[64][1] >= 1
    assert runs[1][2] == runs[64][2] == [[1, 0, 2, 3], [1, 0, 2, 3]]
    np.testing.assert_allclose(runs[64][0], runs[1][0], rtol=0, atol=1e-9)


# -- the restarter on its own ----------------------------------------------------------------------

def _rows(rng, n, flip, label_b="b"):
    X = np.hstack([np.ones((n, 1)), rng.normal(size=(n, 2))])  # (n, 3)
    return X, ["a" if (x[1] > 0) != flip else label_b for x in X]


def _started(rng):
    heads = [RidgeClassHead(1.0, 0.99, "cpu") for _ in range(2)]
    r = ShadowRestarter([0, 1], 3, lambda i: RidgeClassHead(1.0, 0.99, "cpu"))
    X, ys = _rows(rng, 100, flip=False)
    for h in heads:
        h.prequential(X, ys)
    r.alarm(watched=10)
    r.control(heads, watched=10)
    X, ys = _rows(rng, 40, flip=True)
    scored = [h.prequential(X, ys) for h in heads]
    r.learn(lambda i: X, ys, None, [np.zeros(40, bool)] * 2, lambda S, h, y: np.ones(len(y), bool))
    return heads, r, scored


def test_follow_appends_the_heads_new_class_with_a_zero_column_and_leaves_equal_lists_alone():
    rng = np.random.default_rng(0)
    heads, r, _ = _started(rng)
    before = {i: s.ridge.weights().copy() for i, s in r.shadows_.items()}
    r.follow(heads)  # the same classes: nothing changes
    for i, s in r.shadows_.items():
        assert s.classes == ["a", "b"] and s.ridge.n_outputs == 2
        np.testing.assert_array_equal(s.ridge.weights(), before[i])
    X, ys = _rows(rng, 5, flip=False, label_b="c")  # another partition's rows bring "c" to the heads only
    for h in heads:
        h.prequential(X, ys)
    W = r.shadows_[0].ridge.weights().copy()
    r.follow(heads)
    for s in r.shadows_.values():
        assert s.classes == ["a", "b", "c"] and s.ridge.n_outputs == 3
        assert np.array_equal(s.ridge.weights()[:, 2], np.zeros(3))
    np.testing.assert_array_equal(r.shadows_[0].ridge.weights()[:, :2], W)
    X, ys = _rows(rng, 3, flip=True)
    for s in r.shadows_.values():  # a shadow goes on learning, one row and a batch
        s.learn_row(X[0], ys[0])
        s.prequential(X[1:], ys[1:])


def test_a_restart_leaves_the_head_every_class_it_serves_even_without_follow():
    rng = np.random.default_rng(1)
    heads, r, _ = _started(rng)  # the shadows were right more often: both replace their heads
    r.hits_ = {0: [5, 0], 1: [5, 0]}
    X, ys = _rows(rng, 5, flip=False, label_b="c")
    for h in heads:
        h.prequential(X, ys)  # a class the shadows never saw
    assert r.control(heads, watched=13) == [0, 1]
    for h in heads:
        assert h.classes == ["a", "b", "c"] and h.ridge.n_outputs == 3 and len(h.counts) == 3
        h.learn_row(X[0], "c")  # learning goes on
