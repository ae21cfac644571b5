"""The shadow restarter's schedule and decisions (stream_cl.shadows)."""

import numpy as np

from stream_cl.heads import RidgeClassHead
from stream_cl.shadows import ShadowRestarter
from state_kit import same  # tests/unit/state_kit.py


def _heads(n=2):
    return [RidgeClassHead(1.0, 0.99, "cpu") for _ in range(n)]


def _restarter(covered=(1,), after=3):
    return ShadowRestarter(list(covered), after, lambda i: RidgeClassHead(1.0, 0.99, "cpu"))


def _rows(rng, n, flip):
    X = np.hstack([np.ones((n, 1)), rng.normal(size=(n, 2))])  # (n, 3)
    ys = ["a" if (x[1] > 0) != flip else "b" for x in X]
    return X, ys


def _copy(head):
    again = RidgeClassHead(1.0, 0.99, "cpu")
    again.load_state_dict(head.state_dict())
    return again


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


def test_a_round_trip_keeps_the_shadows_hits_and_learned_state_and_so_the_restart_decision():
    rng = np.random.default_rng(0)
    heads, r = _heads(), _restarter(after=3)
    X, ys = _rows(rng, 200, flip=False)
    for h in heads:
        h.prequential(X, ys)
    r.alarm(watched=10)
    r.control(heads, watched=10)
    X2, ys2 = _rows(rng, 60, flip=True)  # the shadow learns the flipped concept, better than its head
    head_hits = [np.array([h.classes[int(s.argmax())] == y for s, y in zip(h.prequential(X2, ys2), ys2)]) for h in heads]
    hits = lambda S, head, y: np.array([head.classes[int(s.argmax())] == t for s, t in zip(S, y)])  # noqa: E731
    r.learn(lambda i: X2, ys2, None, head_hits, hits)
    assert r.hits_[1][0] > r.hits_[1][1] and r.shadows_[1].ridge.n_rows == 60

    again = _restarter(after=3).load_state_dict(r.state_dict())
    assert again.hits_ == r.hits_
    assert sorted(again.shadows_) == [1] and same(again.shadows_[1].state_dict(), r.shadows_[1].state_dict())
    Xq, _ = _rows(rng, 20, flip=False)
    assert np.array_equal(again.shadows_[1].scores(Xq), r.shadows_[1].scores(Xq))  # the same predictions

    # the restart is decided on the restored hits: the shadow was right more often, so it replaces head 1
    heads_again = [_copy(h) for h in heads]
    r.control(heads, watched=13)
    again.control(heads_again, watched=13)
    assert (r.n_restarts_, r.n_restarts_skipped_) == (1, 0)
    assert (again.n_restarts_, again.n_restarts_skipped_) == (1, 0)
    assert all(same(u.state_dict(), v.state_dict()) for u, v in zip(heads_again, heads))  # the same learned head
    assert heads_again[1].ridge.n_rows == 60


def test_restart_after_counts_from_the_control_point_where_the_shadows_started():
    heads, r = _heads(), _restarter(after=3)
    r.alarm(watched=10)
    r.control(heads, watched=20)  # the next control point is 10 events after the alarm (>= restart_after)
    assert sorted(r.shadows_) == [1] and r.started_at_ == 20
    assert r.n_restarts_ + r.n_restarts_skipped_ == 0  # not judged before it learned anything
    r.control(heads, watched=22)
    assert r.shadows_ and r.n_restarts_ + r.n_restarts_skipped_ == 0
    r.control(heads, watched=23)  # 3 watched since the shadows started
    assert not r.shadows_ and r.n_restarts_skipped_ == 1 and r.started_at_ == -1
    # a new alarm while shadows learn starts them again, and the count with them
    r.alarm(watched=30)
    r.control(heads, watched=31)
    r.alarm(watched=32)
    r.control(heads, watched=33)
    assert r.started_at_ == 33
    r.control(heads, watched=35)
    assert r.shadows_ and r.n_restarts_skipped_ == 1
    r.control(heads, watched=36)
    assert not r.shadows_ and r.n_restarts_skipped_ == 2


def test_the_start_count_survives_a_state_round_trip_and_old_checkpoints_count_from_the_alarm():
    heads, r = _heads(), _restarter(after=3)
    r.alarm(watched=10)
    r.control(heads, watched=20)
    again = _restarter(after=3).load_state_dict(r.state_dict())
    assert again.started_at_ == 20 and again.start_ == 10
    again.control(heads, watched=22)
    assert again.shadows_  # not due before 23
    old = _restarter(after=3).load_state_dict({k: v for k, v in r.state_dict().items() if k != "shadow_started"})
    assert old.started_at_ == 10  # as the checkpoint's writer counted: from the alarm
    old.control(heads, watched=22)
    assert not old.shadows_ and old.n_restarts_skipped_ == 1


def test_a_learner_judges_shadows_after_restart_after_rows_however_batched_and_resumed(monkeypatch, tmp_path):
    from stream_cl import OnlineContinualLearner
    from stream_cl.backbones import RandomFeatures
    from stream_cl.checkpoint import load_checkpoint, save_checkpoint
    from stream_cl.drift import DriftMonitor

    judged = []  # rows each judged shadow had learned
    control = ShadowRestarter.control

    def spy(self, heads, watched):
        rows = [sh.ridge.n_rows for sh in self.shadows_.values()]
        done = self.n_restarts_ + self.n_restarts_skipped_
        control(self, heads, watched)
        if self.n_restarts_ + self.n_restarts_skipped_ > done:
            judged.append(min(rows, default=0))  # none before the call: started and judged at once

    monkeypatch.setattr(ShadowRestarter, "control", spy)
    rng = np.random.default_rng(0)
    n = 1500
    xs = [{"a": float(rng.normal()), "b": float(rng.normal())} for _ in range(n)]
    ys = [int((x["a"] > 0) ^ ((i // 500) % 2 == 1)) for i, x in enumerate(xs)]  # the concept flips every 500 events

    def make():  # control points 256 events apart, restarts due 100 events after the shadows start
        return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu", control_every=256,
                                      drift=DriftMonitor("adwin", response=("reset",), restart_after=100))

    a = make()
    pa = np.vstack([a.prequential_batch(xs[s:s + 100], ys[s:s + 100]) for s in range(0, n, 100)])
    assert judged and min(judged) >= 100  # the first alarm's shadows were judged with 0 rows
    assert a.n_restarts_ >= 1
    b = make()
    pb = np.vstack([b.prequential_batch(xs[s:s + 37], ys[s:s + 37]) for s in range(0, 800, 37)])
    assert b.shadows_ and b.restarter_.started_at_ != b.restarter_.alarm_at_  # saved while shadows learn
    save_checkpoint(tmp_path / "c.safetensors", b.state_dict())
    c = make().load_state_dict(load_checkpoint(tmp_path / "c.safetensors")[0])
    assert c.restarter_.hits_ == b.restarter_.hits_ and any(sum(h) for h in b.restarter_.hits_.values())
    assert sorted(c.shadows_) == sorted(b.shadows_)
    assert all(same(c.shadows_[i].state_dict(), b.shadows_[i].state_dict()) for i in b.shadows_)
    pc = np.vstack([c.prequential_batch(xs[s:s + 64], ys[s:s + 64]) for s in range(814, n, 64)])
    assert np.abs(pa[:814] - pb).max() < 1e-12 and np.abs(pa[814:] - pc).max() < 1e-12
    assert (a.n_restarts_, a.n_restarts_skipped_) == (c.n_restarts_, c.n_restarts_skipped_)
