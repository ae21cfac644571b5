"""Review r91: a replay buffer's rows share their label, task and weight objects (what the byte
budget counts is a reference each); the memory of forgotten groups follows the byte budget; a
huge ``alpha`` still leaves the current task out; ``make_replay`` refuses a misspelt key."""

import json

import numpy as np
import pytest

from stream_cl.replay import PowerLawReplay, ReservoirReplay, make_replay


def _decoded(i: int) -> dict:
    """An event's label and task as each event's JSON decodes them: new string objects every time."""
    return json.loads(json.dumps({"y": f"class_{i % 3}", "task": f"task_{i // 500}", "w": 1.0}))


def test_rows_holding_equal_values_share_one_object():
    buf = ReservoirReplay(max_samples=300, seed=0)
    rng = np.random.default_rng(0)
    for i in range(2000):
        e = _decoded(i)
        buf.offer(rng.normal(size=2), np.ones(2, bool), e["y"], e["task"], np.float64(e["w"]))
    assert buf.size_ == 300
    assert len({id(y) for y in buf.y_}) == 3  # was one object per row: 300
    assert len({id(t) for t in buf.task_}) == len(set(buf.task_)) <= 4
    assert len({id(w) for w in buf.w_}) == 1
    state = buf.state_dict()
    state["y"] = ["".join(list(y)) for y in state["y"]]  # as a checkpoint decodes them: an object a row
    restored = ReservoirReplay(max_samples=300, seed=0)
    restored.load_state_dict(state)
    assert len({id(y) for y in restored.y_}) == 3 and restored.y_ == buf.y_


def test_a_label_of_one_type_is_not_shared_with_an_equal_one_of_another():
    buf = ReservoirReplay(max_samples=10, seed=0)
    for y in (1, True, 1.0):
        buf.offer(np.zeros(1), np.ones(1, bool), y)
    assert [type(y) for y in buf.y_] == [int, bool, float]


def test_the_memory_of_forgotten_groups_follows_the_byte_budget():
    buf = PowerLawReplay(max_samples=10**7, max_bytes=100_000, seed=0)  # a byte budget alone, in effect
    for t in range(8000):  # one row per task
        buf.offer(np.zeros(1), np.ones(1, bool), "y", task=t)
    assert len(buf.state_dict()["retired"]) <= max(100_000 // 32, 1000)  # was 8000 - rows held


@pytest.mark.parametrize("alpha", [1.0, 1e300, 1e308])
def test_a_huge_alpha_still_leaves_the_current_task_out(alpha):
    buf = PowerLawReplay(max_samples=30, alpha=alpha, seed=0)
    for task in [0] * 10 + [1] * 10 + [2] * 10:
        buf.offer(np.zeros(1), np.ones(1, bool), "y", task=task)
    p = buf.probabilities()
    tasks = np.array(buf.task_)
    assert np.isfinite(p).all() and p[tasks == 2].sum() == 0.0 and abs(p.sum() - 1.0) < 1e-12
    if alpha > 1e6:
        assert p[tasks == 1].sum() == 1.0  # the most recent past task alone (was NaN: the current drawn)


@pytest.mark.parametrize("policy", ["reservoir", "class_balanced"])
def test_make_replay_refuses_a_misspelt_key(policy):
    with pytest.raises(TypeError, match="max_smples"):
        make_replay(policy, max_smples=5)
    assert make_replay(policy, max_samples=5, alpha=0.5).max_samples == 5  # the power-law keys are dropped
