"""Replay buffers: each policy's admission and sampling distributions (statistical tests with
fixed seeds), budgets, exact state round trips, and replay inside the learners."""

import numpy as np
import pytest
from scipy import stats

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.replay import ClassBalancedReplay, CounterRandom, PowerLawReplay, ReservoirReplay, make_replay
from state_kit import same  # tests/unit/state_kit.py

ALPHA = 1e-3  # significance of the goodness-of-fit tests (fixed seeds: deterministic outcomes)


def _row(v: float, d: int = 2):
    return np.full(d, v), np.ones(d, dtype=bool)


def _fill(buf, labels, tasks=None, d: int = 2):
    tasks = [None] * len(labels) if tasks is None else tasks
    for i, (y, t) in enumerate(zip(labels, tasks)):
        x, m = _row(float(i), d)
        buf.offer(x, m, y, t)
    return buf


def _draw_counts(buf, n: int) -> np.ndarray:
    return np.bincount(buf.draw(n), minlength=buf.size_)


def _chi2_ok(counts: np.ndarray, p: np.ndarray) -> bool:
    keep = p > 0
    assert counts[~keep].sum() == 0, "drew a row of probability 0"
    expected = p[keep] / p[keep].sum() * counts.sum()
    return stats.chisquare(counts[keep], expected).pvalue > ALPHA


# -- sampling distributions --------------------------------------------------------------
def test_reservoir_draws_uniformly():
    buf = _fill(ReservoirReplay(max_samples=50, seed=1), [i % 3 for i in range(400)])
    p = buf.probabilities()
    assert np.allclose(p, 1 / 50)
    assert _chi2_ok(_draw_counts(buf, 20_000), p)


def test_reservoir_admission_is_uniform_over_the_history():
    # each of the 200 rows ends in a 20-row reservoir with probability 20/200 (over 300 seeds)
    inclusion = np.zeros(200)
    for seed in range(300):
        buf = _fill(ReservoirReplay(max_samples=20, seed=seed), [0] * 200)
        inclusion[[int(x) for x in buf.X_[: buf.size_, 0]]] += 1
    assert inclusion.sum() == 300 * 20
    assert stats.chisquare(inclusion).pvalue > ALPHA


def test_class_balanced_draws_each_class_equally_and_stores_them_balanced():
    labels = ["a"] * 900 + ["b"] * 90 + ["c"] * 10  # heavily imbalanced
    rng = np.random.default_rng(0)
    buf = _fill(ClassBalancedReplay(max_samples=60, seed=2), list(rng.permutation(labels)))
    counts = {c: buf.y_.count(c) for c in "abc"}
    assert counts["c"] == 10 and counts["a"] == counts["b"] == 25  # the rare class kept whole
    p = buf.probabilities()
    per_class = {c: p[np.array(buf.y_) == c].sum() for c in "abc"}
    assert np.allclose(list(per_class.values()), 1 / 3)
    draws = buf.draw(30_000)
    by_class = np.array([sum(buf.y_[i] == c for i in draws) for c in "abc"])
    assert stats.chisquare(by_class).pvalue > ALPHA
    assert _chi2_ok(_draw_counts(buf, 30_000), p)


def test_power_law_group_probabilities_follow_the_law():
    # tasks 0, 1, 2 last seen at 9, 29, 49; task 3 is current (last seen at 59); t = 60
    tasks = [0] * 10 + [1] * 20 + [2] * 20 + [3] * 10
    alpha = 1.3
    buf = _fill(PowerLawReplay(max_samples=1000, alpha=alpha, seed=3), ["y"] * len(tasks), tasks)
    p = buf.probabilities()
    w = np.array([(60 - 9) ** -alpha, (60 - 29) ** -alpha, (60 - 49) ** -alpha, 0.0])
    w /= w.sum()
    got = [p[np.array(buf.task_) == k].sum() for k in range(4)]
    assert np.allclose(got, w)
    # inside a task, rows are equally likely
    for k in range(3):
        assert np.allclose(p[np.array(buf.task_) == k], w[k] / tasks.count(k))
    assert _chi2_ok(_draw_counts(buf, 40_000), p)


def test_power_law_includes_the_current_task_when_asked_or_when_alone():
    buf = _fill(PowerLawReplay(max_samples=100, alpha=1.0, exclude_current=False), ["y"] * 20, [0] * 10 + [1] * 10)
    p = buf.probabilities()
    assert np.isclose(p[np.array(buf.task_) == 1].sum(), 1 / (1 + 1 / 11))
    alone = _fill(PowerLawReplay(max_samples=100), ["y"] * 5, [7] * 5)
    assert np.allclose(alone.probabilities(), 0.2)


def test_power_law_without_tasks_weighs_each_row_by_its_own_age():
    buf = _fill(PowerLawReplay(max_samples=100, alpha=2.0, seed=4), ["y"] * 30)
    ages = 30 - buf.time_[: buf.size_]
    w = ages.astype(float) ** -2.0
    assert np.allclose(buf.probabilities(), w / w.sum())
    assert _chi2_ok(_draw_counts(buf, 20_000), buf.probabilities())


def test_power_law_storage_is_balanced_over_tasks():
    tasks = [0] * 500 + [1] * 50 + [2] * 500
    buf = _fill(PowerLawReplay(max_samples=90, seed=5), ["y"] * len(tasks), tasks)
    assert sorted(buf.task_.count(k) for k in range(3)) == [30, 30, 30]


def test_power_law_balances_rows_with_and_without_a_task_when_only_some_rows_carry_one():
    # half the rows name their task: the two kinds are balanced, then the tasks among themselves (a
    # reservoir over every row for the task-less ones left the task rows a handful, as those could
    # only ever replace each other)
    rng = np.random.default_rng(0)
    tasks = [None if rng.random() < 0.5 else f"task{t // 1000}" for t in range(4000)]
    buf = _fill(PowerLawReplay(max_samples=40, seed=0), ["y"] * len(tasks), tasks)
    assert [buf.task_.count(k) for k in (None, "task0", "task1", "task2", "task3")] == [20, 5, 5, 5, 5]
    # tasks arriving once the buffer is full of task-less rows take their share from them
    late = _fill(PowerLawReplay(max_samples=30, max_bytes=30 * 50, seed=1), ["y"] * 400, [None] * 200 + [0, None] * 100)
    assert [late.task_.count(k) for k in (None, 0)] == [15, 15] and late.row_bytes(2) == 50
    # wider rows shrink the byte budget to 22 rows, taken from the task rows; admissions restore the balance
    late.offer(*_row(1.0, d=4), "y", None)
    assert late.capacity() == 22 and [late.task_.count(k) for k in (None, 0)] == [15, 7]
    _fill(late, ["y"] * 40, [0, None] * 20, d=4)
    assert [late.task_.count(k) for k in (None, 0)] == [11, 11]


def test_alpha_zero_is_uniform_over_other_groups():
    tasks = [0] * 40 + [1] * 10 + [2] * 10
    buf = _fill(PowerLawReplay(max_samples=1000, alpha=0.0), ["y"] * len(tasks), tasks)
    p = buf.probabilities()
    assert np.allclose([p[np.array(buf.task_) == k].sum() for k in range(3)], [0.5, 0.5, 0.0])


# -- budgets and the draw loop ------------------------------------------------------------
def test_byte_budget_caps_the_buffer_and_shrinks_as_inputs_appear():
    buf = ReservoirReplay(max_samples=1000, max_bytes=10_000, seed=0)
    _fill(buf, [0] * 200, d=4)
    assert buf.capacity() == 10_000 // (9 * 4 + 32) and buf.size_ == buf.capacity()
    assert buf.nbytes_ <= 10_000
    x, m = _row(1.0, 40)  # a row with 40 inputs: every stored row now costs 392 bytes
    buf.offer(x, m, 0)
    assert buf.size_ == 10_000 // (9 * 40 + 32) and buf.nbytes_ <= 10_000
    assert buf.X_.shape[1] == 40


def test_interleave_ratio_and_order():
    buf = ReservoirReplay(max_samples=10, ratio=0.5, seed=0)
    X = np.arange(20.0)[:, None]
    ys = [i % 2 if i % 5 else None for i in range(20)]  # some rows unlabelled
    draw = buf.interleave(X, np.ones_like(X, dtype=bool), ys)
    assert buf.n_seen_ == 16
    # floor(0.5 (c + 1)) - floor(0.5 c) rows before labelled row c (the first has an empty buffer)
    assert len(draw.y) == 8
    assert all(ys[p] is not None for p in draw.pos)
    assert all(x < p for x, p in zip(draw.X[:, 0], draw.pos))  # only rows seen before are replayed


def test_draws_do_not_depend_on_batching():
    X = np.random.default_rng(0).normal(size=(300, 3))
    M = np.ones_like(X, dtype=bool)
    ys = list(np.random.default_rng(1).integers(0, 4, 300))
    tasks = [i // 50 for i in range(300)]
    a, b = PowerLawReplay(max_samples=40, ratio=1.5, seed=9), PowerLawReplay(max_samples=40, ratio=1.5, seed=9)
    whole = a.interleave(X, M, ys, tasks)
    parts = [b.interleave(X[s:s + 37], M[s:s + 37], ys[s:s + 37], tasks[s:s + 37]) for s in range(0, 300, 37)]
    assert np.array_equal(whole.X, np.vstack([p.X for p in parts]))
    assert whole.y == [y for p in parts for y in p.y]


@pytest.mark.parametrize("make", [lambda: ReservoirReplay(30, max_bytes=2000, seed=1), lambda: ClassBalancedReplay(30, seed=2),
                                  lambda: PowerLawReplay(30, alpha=0.7, seed=3)])
@pytest.mark.parametrize("some_without_task", [False, True])
def test_state_round_trip_resumes_exactly(make, some_without_task):
    rng = np.random.default_rng(0)
    X, ys, tasks = rng.normal(size=(400, 3)), [int(v) for v in rng.integers(0, 3, 400)], [i // 60 for i in range(400)]
    if some_without_task:  # the task-less rows' seen count is derived from the saved counts
        tasks = [None if i % 3 == 0 else k for i, k in enumerate(tasks)]
    M = rng.random((400, 3)) > 0.1
    a = make()
    a.interleave(X[:200], M[:200], ys[:200], tasks[:200])
    b = make().load_state_dict(a.state_dict())
    da, db = a.interleave(X[200:], M[200:], ys[200:], tasks[200:]), b.interleave(X[200:], M[200:], ys[200:], tasks[200:])
    assert np.array_equal(da.X, db.X) and np.array_equal(da.M, db.M) and da.y == db.y
    sa, sb = a.state_dict(), b.state_dict()
    assert np.array_equal(sa["X"], sb["X"]) and sa["y"] == sb["y"] and sa["rng"] == sb["rng"]


def test_counter_random_resumes_and_make_replay_names_policies():
    r = CounterRandom(3)
    r.uniform(1500)
    r.normal(7)
    s = r.state_dict()
    assert np.array_equal(CounterRandom.from_state(s).uniform(10), r.uniform(10))
    assert make_replay("none") is None and isinstance(make_replay("reservoir", alpha=2.0), ReservoirReplay)
    with pytest.raises(ValueError, match="unknown replay policy"):
        make_replay("lifo")


# -- inside the learner ---------------------------------------------------------------------
def _stream(n=240, seed=0):
    rng = np.random.default_rng(seed)
    xs = [{"a": float(rng.normal()), "b": float(rng.normal())} for _ in range(n)]
    ys = [int(x["a"] + 0.3 * x["b"] > 0) for x in xs]
    return xs, ys


def _learner(heads=((1.0, "all"), (0.97, "all")), **kw):
    return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu", heads=heads, **kw)


def test_learner_replay_rows_are_learned_not_scored_and_batching_does_not_matter():
    xs, ys = _stream()
    tasks = [i // 80 for i in range(len(xs))]
    one, many = _learner(replay=PowerLawReplay(50, ratio=1.0, seed=1)), _learner(replay=PowerLawReplay(50, ratio=1.0, seed=1))
    p1 = np.vstack([np.pad(one.prequential_batch([x], [y], tasks=[t]), ((0, 0), (0, 2)))[:, :2]
                    for x, y, t in zip(xs, ys, tasks)])
    p2 = np.vstack([many.prequential_batch(xs[s:s + 50], ys[s:s + 50], tasks=tasks[s:s + 50]) for s in range(0, 240, 50)])
    assert np.allclose(p1[1:], p2[1:], atol=1e-9)
    # replayed rows were learned: the heads hold fresh + replayed rows
    assert one.heads_[0].ridge.n_rows == len(xs) + one.replay_.n_replayed_ and one.replay_.n_replayed_ == len(xs) - 1
    assert one.replay_size_ == 50 and one.replay_bytes_ > 0 and one.report()["replay"]["size"] == 50


@pytest.mark.parametrize("response", [("need", "forget", "restart"), ("need", "reset", "remix")])
def test_learner_with_every_continual_part_survives_a_state_round_trip_exactly(tmp_path, response):
    from stream_cl.checkpoint import load_checkpoint, save_checkpoint
    from stream_cl.drift import DriftMonitor
    from stream_cl.homeostasis import Homeostasis
    from stream_cl.imbalance import ImbalanceCompensator

    xs, ys = _stream(600, seed=3)
    ys = [1 - y if 150 < i <= 400 else y for i, y in enumerate(ys)]  # two abrupt drifts: one each side of the checkpoint

    def make():  # the adaptive head forgets more slowly than the "forget" response's factor, so the response shows
        return _learner(heads=((1.0, "all"), (0.995, "all")), replay=ClassBalancedReplay(40, seed=2),
                        imbalance=ImbalanceCompensator("both", seed=1), homeostasis=Homeostasis(), control_every=8,
                        drift=DriftMonitor("adwin", response=response, restart_after=60, forget_value=0.98))

    a = make()
    for s in range(0, 250, 30):
        a.prequential_batch(xs[s:min(s + 30, 250)], ys[s:min(s + 30, 250)])
    assert a.shadows_ and a.n_alarms_ == 1  # saved while shadow heads learn since the first alarm
    if "forget" in response:  # ... and inside the forget window, which holds the adaptive head below its own factor
        assert a.drift_.forgetting_override() == 0.98 == a.forgetting_[1] < a.homeostasis_.forgetting(0.995)
    if "remix" in response:
        assert a.n_remixes_ == 1
    save_checkpoint(tmp_path / "c.safetensors", a.state_dict())  # the daemon's checkpoint format: no pickle
    b = make().load_state_dict(load_checkpoint(tmp_path / "c.safetensors")[0])
    pa = [a.prequential_batch(xs[s:s + 25], ys[s:s + 25]) for s in range(250, 600, 25)]
    pb = [b.prequential_batch(xs[s:s + 25], ys[s:s + 25]) for s in range(250, 600, 25)]
    assert all(np.array_equal(u, v) for u, v in zip(pa, pb))
    # the second drift's alarm came after the checkpoint: both stamp it with the events seen since the start
    assert a.n_alarms_ == 2 and a.alarms_[1]["t"] > 400 and a.alarms_ == b.alarms_
    assert a.n_events_ == b.n_events_ == 600 and a.n_remixes_ == b.n_remixes_ == (2 if "remix" in response else 0)
    assert a.forgetting_ == b.forgetting_ and a.need_ == b.need_ and (a.n_restarts_, a.n_restarts_skipped_) == (
        b.n_restarts_, b.n_restarts_skipped_)
    assert same(a.drift_.state_dict(), b.drift_.state_dict())


# -- review fixes: byte budget when inputs appear, batching, seed, policy in checkpoints ----------
def _allocated(buf) -> int:
    return buf.X_.nbytes + buf.M_.nbytes + buf.time_.nbytes + buf.gid_.nbytes


def test_a_wider_row_does_not_widen_the_empty_capacity_of_the_narrower_budget():
    buf = ReservoirReplay(max_samples=1000, max_bytes=20_000, seed=0)
    _fill(buf, [i % 3 for i in range(300)], d=1)  # capacity 20000 // 41 = 487 rows: arrays grow towards it
    assert buf.X_.shape[0] > 300
    x, m = _row(1.0, 2000)  # capacity at 2000 inputs: 20000 // 18032 = 1 row
    buf.offer(x, m, 0)
    assert buf.size_ == buf.capacity() == 1 and buf.X_.shape[1] == 2000
    assert _allocated(buf) <= buf.max_bytes  # was 8.8 MB: the 487 old rows, each 2000 inputs wide


def _columns_appear_mid_stream(n=200, new_at=105, seed=0):
    """Rows of 2 inputs, then of 3 from ``new_at`` on (the third input's column made there)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    X[:new_at, 2] = 0.0
    M = np.ones((n, 3), dtype=bool)
    M[:new_at, 2] = False
    ys = [int(v) for v in rng.integers(0, 3, n)]
    return X, M, ys


def test_byte_budget_draws_do_not_depend_on_batching_when_an_input_appears_mid_batch():
    X, M, ys = _columns_appear_mid_stream()
    width = lambda end: 3 if end > 105 else 2  # noqa: E731 -- the learner's columns after event end - 1
    one, many = ReservoirReplay(100, max_bytes=2500, seed=1), ReservoirReplay(100, max_bytes=2500, seed=1)
    d1 = [one.interleave(X[i:i + 1, :width(i + 1)], M[i:i + 1, :width(i + 1)], ys[i:i + 1]) for i in range(200)]
    d2 = [many.interleave(X[s:s + 50, :width(s + 50)], M[s:s + 50, :width(s + 50)], ys[s:s + 50]) for s in range(0, 200, 50)]
    x1, x2 = np.concatenate([d.X[:, 0] for d in d1]), np.concatenate([d.X[:, 0] for d in d2])
    assert np.array_equal(x1, x2) and [y for d in d1 for y in d.y] == [y for d in d2 for y in d.y]
    s1, s2 = one.state_dict(), many.state_dict()
    assert s1["rng"] == s2["rng"] and s1["y"] == s2["y"] and np.array_equal(s1["X"], s2["X"])
    # before any input: a stream that opens with an unlabelled event, or a labelled one without inputs
    empty = ReservoirReplay(5, max_bytes=2500)
    draw = empty.interleave(np.zeros((2, 0)), np.zeros((2, 0), dtype=bool), [None, 1])
    assert empty.n_seen_ == 1 and empty.width_ == 0 and draw.X.shape == (0, 0)


def test_learner_with_a_byte_budget_predicts_the_same_per_event_and_in_batches():
    rng = np.random.default_rng(0)
    xs = []
    for i in range(200):
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        if i >= 105:  # a new input in the middle of the batch 100..149
            x["c"] = float(rng.normal())
        xs.append(x)
    ys = [int(x["a"] + 0.3 * x["b"] > 0) for x in xs]
    # hashed inputs: the batch is as wide as the hash from the first event, whichever buckets are used
    for kw, budget in (({}, 2500), ({"hash_width": 16}, 1500)):
        one, many = (_learner(replay=ReservoirReplay(100, max_bytes=budget, seed=1), **kw) for _ in range(2))
        p1 = np.vstack([np.pad(one.prequential_batch([x], [y]), ((0, 0), (0, 2)))[:, :2] for x, y in zip(xs, ys)])
        p2 = np.vstack([many.prequential_batch(xs[s:s + 50], ys[s:s + 50]) for s in range(0, 200, 50)])
        assert np.abs(p1[1:] - p2[1:]).max() < 1e-12, kw  # was 0.15 from event 101 on
        assert one.replay_.rng_.pos == many.replay_.rng_.pos and one.replay_.size_ == many.replay_.size_


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0", None])
def test_a_seed_that_is_not_a_non_negative_int_is_refused_at_construction(seed):
    for make in (ReservoirReplay, ClassBalancedReplay, PowerLawReplay):
        with pytest.raises(ValueError, match=r"seed must be an int >= 0.*use a non-negative integer"):
            make(max_samples=5, seed=seed)
    assert ReservoirReplay(5, seed=np.int64(3)).seed == 3


def test_a_checkpoint_of_another_policy_or_grouping_is_refused():
    X, M, ys = _columns_appear_mid_stream(60)
    for src, dst in ((ReservoirReplay(20), ClassBalancedReplay(20)), (ClassBalancedReplay(20), ReservoirReplay(20)),
                     (PowerLawReplay(20, group="label"), ClassBalancedReplay(20)),
                     (PowerLawReplay(20, group="label"), PowerLawReplay(20, group="sample"))):
        src.interleave(X, M, ys)
        before = dst.state_dict()
        with pytest.raises(ValueError, match="checkpoint's replay buffer is policy") as e:
            dst.load_state_dict(src.state_dict())
        assert repr(src.policy_name) in str(e.value) and repr(dst.policy_name) in str(e.value)
        assert repr(src.group_by) in str(e.value) and repr(dst.group_by) in str(e.value)
        assert dst.state_dict().keys() == before.keys() and dst.n_seen_ == 0  # left as it was
    # the same policy loads; a checkpoint from before the policy was saved loads unchecked
    a = PowerLawReplay(20, group="label", alpha=0.3)
    a.interleave(X, M, ys)
    assert PowerLawReplay(20, group="label").load_state_dict(a.state_dict()).n_seen_ == 60
    old = {k: v for k, v in a.state_dict().items() if k not in ("policy", "group_by")}
    assert ClassBalancedReplay(20).load_state_dict(old).n_seen_ == 60
