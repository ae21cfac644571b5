"""The shadow restarter's schedule and decisions (stream_cl.shadows)."""

import numpy as np

from stream_cl.heads import RidgeClassHead
from stream_cl.shadows import ShadowRestarter


def _heads(n=2):
    return [RidgeClassHead(1.0, 0.99, "cpu") for _ in range(n)]


def _restarter(covered=(1,), after=3):
    return ShadowRestarter(list(covered), after, lambda i: RidgeClassHead(1.0, 0.99, "cpu"))


def _rows(rng, n, flip):
    X = np.hstack([np.ones((n, 1)), rng.normal(size=(n, 2))])  # (n, 3)
    ys = ["a" if (x[1] > 0) != flip else "b" for x in X]
    return X, ys


def test_shadows_start_at_the_control_point_after_an_alarm_and_restart_when_due():
    rng = np.random.default_rng(0)
    heads, r = _heads(), _restarter()
    X, ys = _rows(rng, 200, flip=False)
    for h in heads:
        h.prequential(X, ys)
    r.control(heads, watched=5)
    assert not r.shadows_  # no alarm yet
    r.alarm(watched=10)
    r.control(heads, watched=10)
    assert sorted(r.shadows_) == [1] and r.shadows_[1].classes == heads[1].classes
    X2, ys2 = _rows(rng, 60, flip=True)  # the concept flipped: the shadow learns only the new one
    head_scores = [h.prequential(X2, ys2) for h in heads]
    head_hits = [np.array([h.classes[int(s.argmax())] == y for s, y in zip(S, ys2)]) for h, S in zip(heads, head_scores)]
    hits = lambda S, head, y: np.array([head.classes[int(s.argmax())] == t for s, t in zip(S, y)])  # noqa: E731
    r.learn(lambda i: X2, ys2, None, head_hits, hits)
    assert r.hits_[1][0] > r.hits_[1][1]
    r.control(heads, watched=12)  # not due: 2 < 3 watched since the alarm
    assert r.shadows_ and r.n_restarts_ == 0
    before0 = heads[0].ridge.n_rows
    r.control(heads, watched=13)
    assert r.n_restarts_ == 1 and not r.shadows_ and r.alarm_at_ == -1
    assert heads[1].ridge.n_rows == 60 and heads[1].ridge.forgetting == 0.99  # replaced, its factor kept
    assert heads[0].ridge.n_rows == before0  # not covered


def test_a_shadow_no_better_than_its_head_is_dropped_and_a_new_alarm_restarts_the_shadows():
    heads, r = _heads(), _restarter(after=5)
    r.alarm(watched=1)
    r.control(heads, watched=1)
    first = r.shadows_[1]
    r.alarm(watched=3)  # a second alarm before the restart was due
    r.control(heads, watched=3)
    assert r.shadows_[1] is not first and r.start_ == 3
    r.control(heads, watched=8)
    assert r.n_restarts_ == 0 and r.n_restarts_skipped_ == 1 and not r.shadows_


def test_state_round_trip_and_the_legacy_alarm_field():
    heads, r = _heads(), _restarter()
    r.alarm(watched=4)
    r.control(heads, watched=4)
    again = _restarter().load_state_dict(r.state_dict())
    assert sorted(again.shadows_) == [1] and again.start_ == 4 and again.alarm_at_ == 4
    legacy = {k: v for k, v in r.state_dict().items() if k != "alarm_at"}
    old = _restarter().load_state_dict(legacy, drift_state={"shadow_start": 4})
    assert old.alarm_at_ == 4
