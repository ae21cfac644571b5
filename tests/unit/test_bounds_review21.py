"""Review 21: per-task prequential segments, replay groups and the trainable learner's inputs stay
bounded in a never-ending stream."""

import pickle

import numpy as np
import pytest

from stream_cl.config import load_config_dict
from stream_cl.events import Event
from stream_cl.metrics import TaskSegments
from stream_cl.prequential import Prequential
from stream_cl.replay.buffers import ClassBalancedReplay, PowerLawReplay, ReservoirReplay

ONE = np.ones(1, dtype=bool)

# -- 1: TaskSegments keeps state for the tracked (reported) tasks only -----------------------------------

_TASKS = ["a"] * 7 + ["b"] * 5 + [3] * 6 + ["a"] * 4 + [None] * 2 + ["3"] * 5 + ["b"] * 6 + [3] * 3 + ["a"] * 5
_HITS = [1.0] * 13 + [0.0] + [1.0] * 3 + [0.0, 1.0, 1.0, 0.0, 1.0, 0.0] + [1.0] * 4 + [0.0] + [1.0] * 13 + [0.0]
# TaskSegments(probe=3, keep=5).report() after _TASKS[:40], computed by the code before the fix
_OLD_REPORT = {
    "segments": 8, "recurrences": 4, "mean_retention": 0.08333333333333334,
    "retention_by_task": {"a": 0.0, "b": 0.0, "3": 0.33333333333333337},
    "recent_segments": [
        {"task": "a", "start": 18, "events": 4, "accuracy": 0.75, "head_accuracy": 0.6666666666666666,
         "retention": -0.33333333333333337},
        {"task": "3", "start": 24, "events": 5, "accuracy": 0.8, "head_accuracy": 1.0, "retention": None},
        {"task": "b", "start": 29, "events": 6, "accuracy": 1.0, "head_accuracy": 1.0, "retention": 0.0},
        {"task": 3, "start": 35, "events": 3, "accuracy": 1.0, "head_accuracy": 1.0, "retention": 0.33333333333333337},
        {"task": "a", "start": 38, "events": 2, "accuracy": 1.0, "head_accuracy": 1.0, "retention": 0.33333333333333337}],
    "probe": 3, "tasks": ["a", "b", 3, "3"],
    "accuracy_matrix": [[1.0, 1.0, 0.6666666666666666, 1.0], [0.6666666666666666, 1.0, 0.6666666666666666, 1.0],
                        [0.6666666666666666, 1.0, 0.6666666666666666, 1.0], [1.0, 1.0, 1.0, 0.6666666666666666]],
    "accuracy_matrix_kind": "prequential: diagonal at the end of a task's first segment, "
                            "off-diagonal at the next segment of the column's task",
}


def test_a_stream_with_few_tasks_reports_what_it_did_before():
    seg = TaskSegments(probe=3, keep=5)
    seg.update(_TASKS[:40], _HITS[:40])
    r = seg.report()
    assert r == {**_OLD_REPORT, "max_tasks": 100, "untracked_segments": 0, "untracked_events": 0}
    assert seg.report() == r and seg.current["n"] == 2  # reporting changed nothing; the segment is still open


def test_a_fresh_task_per_event_keeps_state_for_the_tracked_tasks_only():
    seg = TaskSegments(probe=2)
    n = 5000
    seg.update([f"s{i}" for i in range(n)], [float(i % 2) for i in range(n)])
    r = seg.report()
    m = TaskSegments.MAX_TASKS
    assert len(seg.last_tail) <= m and len(seg.retention) <= m and len(seg.matrix) == m
    assert sum(len(row) for row in seg.matrix.values()) <= m * m
    assert len(r["tasks"]) == m and len(r["accuracy_matrix"]) == m
    # segments of the tasks past the matrix are counted, the open one included
    assert r["segments"] == n and r["untracked_segments"] == n - m and r["untracked_events"] == n - m
    size = len(pickle.dumps(seg))
    seg.update([f"t{i}" for i in range(n)], [1.0] * n)
    assert len(pickle.dumps(seg)) < size * 1.2  # 5000 more tasks: about the same size


def test_an_untracked_task_has_no_retention_and_tracked_ones_keep_theirs():
    TaskSegments.MAX_TASKS, saved = 2, TaskSegments.MAX_TASKS
    try:
        seg = TaskSegments(probe=1)
        seg.update(["a", "b", "c", "a", "c", "b"], [1.0, 1.0, 1.0, 0.0, 1.0, 1.0])
        r = seg.report()
    finally:
        TaskSegments.MAX_TASKS = saved
    assert r["tasks"] == ["a", "b"] and r["accuracy_matrix"] == [[1.0, 1.0], [0.0, 1.0]]
    assert r["retention_by_task"] == {"a": -1.0, "b": 0.0} and r["recurrences"] == 2
    assert (r["untracked_segments"], r["untracked_events"]) == (2, 2)
    assert [s["retention"] for s in r["recent_segments"]] == [None, None, None, -1.0, None, 0.0]


# -- 2: replay buffers forget a group once none of its rows is stored -----------------------------------


def _fresh_groups(buf, n, as_task):
    for i in range(n):
        if as_task:
            buf.offer(np.array([float(i)]), ONE, "y", task=f"t{i}")
        else:
            buf.offer(np.array([float(i)]), ONE, f"c{i}")
        buf.draw(1)
    return buf


@pytest.mark.parametrize("make, as_task", [(lambda: ClassBalancedReplay(max_samples=20, seed=0), False),
                                           (lambda: PowerLawReplay(max_samples=20, seed=0), True),
                                           (lambda: PowerLawReplay(max_samples=20, group="label", seed=0), False)],
                         ids=["class_balanced", "power_law_tasks", "power_law_labels"])
def test_groups_held_are_bounded_by_the_rows_stored(make, as_task):
    buf = _fresh_groups(make(), 3000, as_task)
    assert buf.size_ == 20 and len(buf.keys_) <= buf.size_ + 1
    assert len(buf.key_seen_) == len(buf.key_last_) == len(buf._key_pos) == len(buf.keys_)
    assert len(buf._retired) <= max(buf.max_samples, buf.MIN_FORGOTTEN_KEPT)
    assert buf.group_counts().min() >= 1 and all(0 <= g < len(buf.keys_) for g in buf.full_)
    state = buf.state_dict()
    assert len(state["keys"]) <= 21 and len(state["retired"]) <= 1000
    small = len(pickle.dumps(state))
    _fresh_groups(buf, 3000, as_task)
    assert len(pickle.dumps(buf.state_dict())) < small * 1.2  # the checkpoint does not grow


def _old_state(buf):
    """``buf``'s state as the code before the fix wrote it: every group ever seen, no "retired" or
    "grouped_seen" (the groups without a row stored are put back, at the end, with their counts)."""
    state = buf.state_dict()
    for key, (seen, full) in buf._retired.items():
        if full:
            state["full"].append(len(state["keys"]))
        state["keys"].append(list(key) if isinstance(key, tuple) else key)
        state["key_seen"].append(seen)
        state["key_last"].append(0)
    del state["retired"], state["grouped_seen"]
    return state


@pytest.mark.parametrize("cls", [ClassBalancedReplay, PowerLawReplay])
def test_a_checkpoint_of_every_group_ever_seen_loads_and_continues_the_same(cls):
    as_task = cls is PowerLawReplay
    buf = cls(max_samples=3, seed=2)
    rng = np.random.default_rng(0)
    for i in range(200):  # 6 groups, 3 slots: groups empty out and come back
        k = int(rng.integers(6))
        buf.offer(np.array([float(i)]), ONE, k, task=k if as_task and i % 3 else None)
    state = _old_state(buf)
    assert len(state["keys"]) > len(buf.keys_)
    copy = cls(max_samples=3, seed=2).load_state_dict(state)
    assert len(copy.keys_) <= copy.size_ + 1 and copy.n_grouped_seen_ == buf.n_grouped_seen_
    assert dict(copy._retired) == dict(buf._retired)
    for i in range(300):
        k = int(rng.integers(6))
        drawn = [b.draw(2).tolist() for b in (buf, copy)]  # the same rows drawn, with the same random numbers
        assert [copy.y_[s] for s in drawn[1]] == [buf.y_[s] for s in drawn[0]]
        for b in (buf, copy):
            b.offer(np.array([1000.0 + i]), ONE, k, task=k if as_task and i % 3 else None)
        np.testing.assert_array_equal(copy.X_[: copy.size_], buf.X_[: buf.size_])
        np.testing.assert_allclose(copy.probabilities(), buf.probabilities())


def test_a_forgotten_class_comes_back_full_with_its_rows_counted():
    # 2 slots, 3 classes: "a" loses both rows (a full class), is forgotten, and comes back as CBRS has it:
    # treated as not full while it has no row, then full again with stored/seen over all its rows
    buf = ClassBalancedReplay(max_samples=2, seed=0)
    for i, y in enumerate("aa" + "bc" * 20):
        buf.offer(np.array([float(i)]), ONE, y)
    assert "a" not in buf.y_ and "a" not in buf.keys_ and buf._retired["a"] == (2, True)
    buf.offer(np.array([99.0]), ONE, "a")
    g = buf.keys_.index("a")
    assert "a" in buf.y_ and buf.key_seen_[g] == 3 and g in buf.full_


def test_reservoir_has_no_groups():
    buf = ReservoirReplay(max_samples=5, seed=0)
    for i in range(100):
        buf.offer(np.array([float(i)]), ONE, i)
    assert buf.keys_ == [] and buf.state_dict()["retired"] == [] and buf.state_dict()["grouped_seen"] == 0


def test_the_trainable_learner_bounds_its_inputs_by_max_columns():
    # (a review: kind = "trainable" took model.max_columns and ignored it; 4,001 inputs after 4k events
    # with a new key each)
    from stream_cl.factory import build_learner

    cfg = load_config_dict({"model": {"kind": "trainable", "device": "cpu", "max_columns": 5}})
    model = build_learner(cfg)
    model.learn_one({f"k{i}": 1.0 for i in range(4)}, "a")
    before = model.state_dict()
    with pytest.raises(ValueError, match="2 new inputs would give the network's first layer 6 inputs, over max_columns"):
        model.learn_one({"k0": 1.0, "new1": 2.0, "new2": 3.0}, "b")
    assert model.feature_names_in_ == ["k0", "k1", "k2", "k3"] and model.classes_ == before["classes"]
    step = Prequential(model)
    _, dead = step.process([Event({"k0": 1.0, "x": 1.0, "z": 2.0}, "a", "1"), Event({"k1": 2.0, "w": 1.0}, "b", "2")])
    assert [d.reason for d in dead] == ["rejected_by_model"] and model.feature_names_in_[-1] == "w"
