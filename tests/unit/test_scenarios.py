"""Scenarios: permuted and split digits, the power-law recurrence schedule, drift streams."""

import numpy as np
import pytest

from stream_cl.scenarios import drift_stream, permuted_digits, power_law_schedule, split_digits, task_stream


def test_permuted_digits_share_labels_and_permute_pixels():
    tasks = permuted_digits(3, seed=0)
    keys = sorted(tasks[0].train[0][0])
    a = np.array([[x[k] for k in keys] for x, _ in tasks[0].train])
    b = np.array([[x[k] for k in keys] for x, _ in tasks[1].train])
    assert [y for _, y in tasks[0].train] == [y for _, y in tasks[1].train]
    perm = [int(np.flatnonzero((a == b[:, [j]]).all(axis=0))[0]) for j in range(64) if b[:, j].std() > 0][:10]
    assert len(set(perm)) == 10 and not np.array_equal(a, b)
    assert np.allclose(np.sort(a, axis=1), np.sort(b, axis=1))  # the same pixels, moved
    assert permuted_digits(3, seed=0)[2].test[:5] == tasks[2].test[:5]


def test_split_digits_are_class_incremental():
    tasks = split_digits(5, seed=1)
    seen = [sorted({y for _, y in t.train}) for t in tasks]
    assert seen == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert all(sorted({y for _, y in t.test}) == s for t, s in zip(tasks, seen))
    assert sum(len(t.train) + len(t.test) for t in tasks) == 1797


def test_power_law_schedule_introduces_every_task_and_recurs_by_recency():
    s = power_law_schedule(10, 60, alpha=1.0, seed=0)
    firsts = [s.index(k) for k in range(10)]
    assert firsts == sorted(firsts) and len(s) == 60
    assert s == power_law_schedule(10, 60, alpha=1.0, seed=0) and s != power_law_schedule(10, 60, alpha=1.0, seed=1)
    # across many seeds, the lag since a chosen task was last seen falls like a power law
    lags = []
    for seed in range(200):
        sched = power_law_schedule(4, 40, alpha=1.5, seed=seed, introduce_every=1)
        last = {}
        for i, k in enumerate(sched):
            if k in last and i >= 4:
                lags.append(i - last[k])
            last[k] = i
    counts = np.bincount(lags)
    assert counts[1] > counts[2] > counts[4] > counts[8] > 0


def test_task_stream_cycles_each_task_without_repeats_within_a_pass():
    tasks = split_digits(5, seed=0)
    st = task_stream(tasks, [0, 1, 0], segment_events=100, seed=0)
    assert len(st.events) == 300 and st.tasks == [0] * 100 + [1] * 100 + [0] * 100
    assert st.segments == [(0, 0, 100), (1, 100, 200), (0, 200, 300)]
    first = [tuple(sorted(x.items())) for x, _ in st.events[:100]]
    assert len(set(first)) == 100


def test_drift_stream_switches_concepts_at_the_change_points():
    s = drift_stream("stagger", 600, [200, 400], seed=0)
    assert s.change_points == [200, 400] and s.concepts == [0, 1, 2] and len(s.events) == 600
    # STAGGER's concepts label the same inputs differently
    rules = [lambda x: x["size"] == 0 and x["color"] == 0, lambda x: x["color"] == 2 or x["shape"] == 0,
             lambda x: x["size"] in (1, 2)]
    for k, (a, b) in enumerate([(0, 200), (200, 400), (400, 600)]):
        assert all(int(rules[k](x)) == y for x, y in s.events[a:b])
    assert drift_stream("sea", 100, [50], concepts=[3, 0]).concepts == [3, 0]
    with pytest.raises(ValueError, match="inside"):
        drift_stream("sea", 100, [100])
    with pytest.raises(ValueError, match="unknown drift stream"):
        drift_stream("electricity", 100, [50])


def test_continual_benchmark_quick_smoke(tmp_path):
    import json
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks import continual

    out = tmp_path / "r.json"
    result = continual.main(["--quick", "--seeds", "0", "--parts", "split,drift", "--streams", "stagger",
                             "--json", str(out)], out=open(tmp_path / "log.txt", "w"))
    data = json.loads(out.read_text())
    methods = data["split"][0]["methods"]
    exact, joint = methods["analytic head (exact, frozen features)"], methods["joint analytic head (upper bound)"]
    assert abs(exact["average_accuracy"] - joint["average_accuracy"]) < 1e-9  # exact: order does not matter
    assert len(exact["R"]) == len(data["split"][0]["schedule"])
    drift = result["drift"][0]
    assert set(drift["detectors"]) >= {"adwin", "ddm", "kswin"} and drift["configs"]["no response"]["accuracy"] > 0.5
