"""Review r132 of the replay buffers (stream_cl/replay/).

Finding (low, fixed): ``load_state_dict`` took states no buffer writes, which the docs say are
refused ("a group id past its groups", docs/partitions.md and docs/daemon.md): a row without a
group in a buffer that groups every row (class-balanced; power-law by label) loaded, then failed
every later admission and draw with an ``IndexError``; a full group's id past the groups loaded,
and the group later given that id was full before its first row; a group key named twice loaded;
and replay ``M`` of the wrong size raised only after the buffer had been emptied.

The other tests answer the review's questions about behaviour found sound (fixed seeds, bounds
that fail on a wrong law): reservoir inclusion at several points in time, class-balanced quotas as
classes appear late, disappear or outnumber the capacity, the power law's exponent measured from
draws and "last seen" when a task recurs, bounded memory for unbounded labels and tasks, exact
continuation through the checkpoint format, and rows copied rather than referenced.
"""

import numpy as np
import pytest
from scipy import stats

from state_kit import same  # tests/unit/state_kit.py
from stream_cl.checkpoint_format import decode_state, encode_state
from stream_cl.replay import ClassBalancedReplay, PowerLawReplay, ReservoirReplay

ALPHA = 1e-3  # significance of the goodness-of-fit tests (fixed seeds: deterministic outcomes)
ONE = np.ones(1, dtype=bool)


def _offer(buf, labels, tasks=None, start=0):
    tasks = [None] * len(labels) if tasks is None else tasks
    for i, (y, t) in enumerate(zip(labels, tasks)):
        buf.offer(np.array([float(start + i)]), ONE, y, t)
    return buf


# -- finding: states no buffer writes are refused before anything changes ------------------
def _class_balanced_state():
    return _offer(ClassBalancedReplay(3, seed=0), list("aab")).state_dict()


@pytest.mark.parametrize("make", [lambda: ClassBalancedReplay(3, seed=0),
                                  lambda: PowerLawReplay(3, group="label", seed=0)])
def test_a_row_without_a_group_is_refused_where_every_row_has_one(make):
    buf = make()
    state = _offer(make(), list("aab")).state_dict()
    state.update(gid=np.full(3, -1), keys=[], key_seen=[], key_last=[], full=[])
    before = buf.state_dict()
    with pytest.raises(ValueError, match="replay gid"):  # was loaded; the next event: IndexError
        buf.load_state_dict(state)
    assert same(buf.state_dict(), before)


def test_rows_alone_still_load_where_the_policy_keeps_them():
    state = _offer(PowerLawReplay(3, seed=0), ["y"] * 5).state_dict()  # no task, group="sample": gid -1
    assert PowerLawReplay(3, seed=0).load_state_dict(state).size_ == 3


def test_a_full_group_past_the_groups_is_refused():
    state = {**_class_balanced_state(), "full": [0, 1, 7]}
    with pytest.raises(ValueError, match="replay full"):  # was loaded: a 8th class would be full at birth
        ClassBalancedReplay(3, seed=0).load_state_dict(state)


def test_a_group_named_twice_is_refused():
    state = {**_class_balanced_state(), "keys": ["a", "a"]}
    with pytest.raises(ValueError, match="names a group twice"):
        ClassBalancedReplay(3, seed=0).load_state_dict(state)


def test_presence_flags_of_the_wrong_size_leave_the_buffer_as_it_was():
    buf = _offer(ReservoirReplay(3, seed=0), list("xyz"))
    before = buf.state_dict()
    state = {**_offer(ReservoirReplay(3, seed=1), list("abc")).state_dict(), "M": np.ones(5, dtype=bool)}
    with pytest.raises(ValueError, match="replay M"):
        buf.load_state_dict(state)
    assert same(buf.state_dict(), before)  # was emptied (size 0) by the failed load


# -- found sound ----------------------------------------------------------------------------
def test_reservoir_inclusion_is_uniform_at_several_points_in_time_through_batched_interleave():
    for t in (15, 60, 150):
        inclusion = np.zeros(t)
        for seed in range(300):
            buf = ReservoirReplay(max_samples=10, ratio=0.5, seed=seed)
            X = np.arange(float(t))[:, None]
            for s in range(0, t, 7):
                buf.interleave(X[s:s + 7], np.ones((len(X[s:s + 7]), 1), dtype=bool), [0] * len(X[s:s + 7]))
            inclusion[buf.X_[: buf.size_, 0].astype(int)] += 1
        assert inclusion.sum() == 300 * min(t, 10)
        assert stats.chisquare(inclusion).pvalue > ALPHA, t


def test_class_balanced_quotas_as_classes_come_late_leave_and_outnumber_the_capacity():
    buf = _offer(ClassBalancedReplay(30, seed=0), ["a"] * 500 + ["b"] * 500)
    assert sorted(buf.y_.count(c) for c in "ab") == [15, 15]
    _offer(buf, ["c"] * 500, start=1000)  # late: takes its share from the largest classes
    assert [buf.y_.count(c) for c in "abc"] == [10, 10, 10]
    _offer(buf, ["d"] * 1000, start=2000)  # a, b, c gone: d takes an equal share, none is emptied
    counts = [buf.y_.count(c) for c in "abcd"]
    assert sum(counts) == 30 and max(counts) - min(counts) <= 1
    p = buf.probabilities()
    assert np.allclose([p[np.array(buf.y_) == c].sum() for c in "abcd"], 0.25)
    many = _offer(ClassBalancedReplay(5, seed=0), [f"k{i}" for i in range(50)])  # classes > capacity
    assert many.size_ == 5 and len(set(many.y_)) == 5 and len(many.keys_) == 5
    assert np.allclose(many.probabilities(), 0.2)


def test_power_law_draws_follow_the_exponent_and_last_seen_is_the_latest_offer():
    alpha = 0.7
    tasks = [0] * 20 + [1] * 20 + [2] * 20 + [0] * 3 + [3] * 10  # task 0 recurs: last seen at 62, not 19
    buf = _offer(PowerLawReplay(200, alpha=alpha, seed=0), ["y"] * len(tasks), tasks)
    t, last = len(tasks), {0: 62, 1: 39, 2: 59}
    w = np.array([(t - last[k]) ** -alpha for k in (0, 1, 2)])
    counts = np.bincount(np.array(buf.task_)[buf.draw(60_000)], minlength=4)
    assert counts[3] == 0  # the current task is left out
    assert stats.chisquare(counts[:3], w / w.sum() * counts.sum()).pvalue > ALPHA
    # the ratio of two tasks' draws is the ratio of their gaps to the power -alpha
    assert abs(counts[1] / counts[2] - ((t - 39) / (t - 59)) ** -alpha) < 0.03


def test_memory_stays_bounded_for_unbounded_string_labels_and_tasks():
    for buf in (ReservoirReplay(50), ClassBalancedReplay(50), PowerLawReplay(50, group="label"), PowerLawReplay(50)):
        for i in range(6000):
            buf.offer(np.full(3, float(i)), np.ones(3, dtype=bool), f"{i:06d}" + "x" * 100,
                      f"t{i}" if i % 2 else None, w=1.0 + i)
        assert buf.size_ == 50 and len(buf.keys_) <= 51 and len(buf._retired) <= 1000
        assert len(buf._shared_values) <= 3 * 50 + 65 and buf.X_.shape == (50, 3)


@pytest.mark.parametrize("kind", range(4))
def test_a_restored_buffer_continues_exactly_through_the_checkpoint_format(kind):
    rng = np.random.default_rng(kind)
    n, d = 300, 4
    X, M = rng.normal(size=(n, d)), rng.random((n, d)) < 0.7
    M[: n // 2, 3] = False  # an input appears half way: with a byte budget the capacity shrinks
    X[~M] = 0.0
    ys = [("a", 1) if v < 0.3 else f"c{int(v * 5)}" for v in rng.random(n)]
    tasks = [None if v < 0.3 else int(v * 4) for v in rng.random(n)]

    def make():
        return [ReservoirReplay(12, 250, 0.7, seed=3), ClassBalancedReplay(12, ratio=1.5, seed=3),
                PowerLawReplay(12, 400, 1.0, alpha=0.8, seed=3), PowerLawReplay(12, group="label", seed=3)][kind]

    def feed(buf, cuts, restore_at=None):
        drawn = []
        for s, e in zip(cuts[:-1], cuts[1:]):
            if s == restore_at:
                buf = make().load_state_dict(decode_state(encode_state({"r": buf.state_dict()}))[0]["r"])
            draw = buf.interleave(X[s:e], M[s:e], ys[s:e], tasks[s:e])
            drawn += list(zip(draw.X.tolist(), draw.y, draw.task, (draw.pos + s).tolist()))
        return buf, drawn

    a, da = feed(make(), list(range(n + 1)))
    b, db = feed(make(), [0, 40, 97, 150, 151, 230, n], restore_at=150)
    assert da == db and len(da) > 100 and same(a.state_dict(), b.state_dict())


def test_rows_are_copied_not_referenced():
    buf = ReservoirReplay(4, seed=0)
    x, m = np.array([1.0, 2.0]), np.array([True, True])
    buf.offer(x, m, "y")
    x[:], m[:] = 9.0, False  # the caller reuses its arrays
    draw = buf.interleave(np.zeros((1, 2)), np.ones((1, 2), dtype=bool), ["y"])
    assert draw.X.tolist() == [[1.0, 2.0]] and draw.M.all()
    draw.X[:] = -1.0  # a draw, and a state, are the caller's to change
    state = buf.state_dict()
    state["X"][:] = -2.0
    assert buf.X_[0].tolist() == [1.0, 2.0]
