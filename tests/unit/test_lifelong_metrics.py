"""Lifelong-learning metrics against hand computations, detection scores, prequential retention."""

import math

import numpy as np
import pytest

from stream_cl.metrics import (
    TaskSegments,
    average_accuracy,
    backward_transfer,
    detection_report,
    forgetting,
    forward_transfer,
    learning_curve,
    lifelong_report,
    performance_maintenance,
    relative_performance,
    sample_efficiency,
)


def test_sequential_tasks_reduce_to_the_standard_definitions():
    rng = np.random.default_rng(0)
    T = 5
    R = rng.random((T, T))
    trained = list(range(T))
    b = rng.random(T) * 0.2
    assert average_accuracy(R, trained) == pytest.approx(R[-1].mean())
    assert backward_transfer(R, trained) == pytest.approx(np.mean([R[-1, i] - R[i, i] for i in range(T - 1)]))
    assert forward_transfer(R, trained, b) == pytest.approx(np.mean([R[i - 1, i] - b[i] for i in range(1, T)]))
    assert forgetting(R, trained) == pytest.approx(np.mean([R[j:T - 1, j].max() - R[-1, j] for j in range(T - 1)]))


def test_recurring_tasks_use_the_last_phase_that_trained_them():
    trained = [0, 1, 0, 2]
    R = [[0.9, 0.1, 0.1],
         [0.6, 0.8, 0.1],
         [0.95, 0.5, 0.2],
         [0.7, 0.4, 0.9]]
    # BWT: task 0 against phase 2 (its last), task 1 against phase 1
    assert backward_transfer(R, trained) == pytest.approx(((0.7 - 0.95) + (0.4 - 0.8)) / 2)
    assert forgetting(R, trained) == pytest.approx(((0.95 - 0.7) + (0.8 - 0.4)) / 2)
    # PM: task 0 at phase 1 (vs 0) and 3 (vs 2); task 1 at phases 2 and 3 (vs 1)
    assert performance_maintenance(R, trained) == pytest.approx(np.mean([0.6 - 0.9, 0.7 - 0.95, 0.5 - 0.8, 0.4 - 0.8]))
    assert average_accuracy(R, trained) == pytest.approx(np.mean([0.7, 0.4, 0.9]))
    assert forward_transfer(R, trained, [0.1, 0.1, 0.1]) == pytest.approx(((0.1 - 0.1) + (0.2 - 0.1)) / 2)


def test_report_is_json_ready_and_marks_undefined_metrics():
    r = lifelong_report([[0.5]], [0])
    assert r["average_accuracy"] == 0.5 and r["backward_transfer"] is None and r["forgetting"] is None
    assert r["forward_transfer"] is None and r["relative_performance"] is None
    import json

    json.dumps(lifelong_report(np.eye(3), [0, 1, 2], [0.1] * 3, {0: [1, 0]}, {0: [1, 1]}))


def test_relative_performance_and_sample_efficiency():
    ste = {0: np.r_[np.zeros(50), np.ones(150)], 1: np.ones(200)}
    same = relative_performance(ste, ste), sample_efficiency(ste, ste, window=10)
    assert same == (1.0, 1.0)
    faster = {0: np.r_[np.zeros(10), np.ones(190)], 1: np.ones(200)}
    assert relative_performance(faster, ste) > 1.0
    assert sample_efficiency(faster, ste, window=10) > 1.0
    worse = {0: np.r_[np.zeros(50), (np.arange(150) % 2 == 0)], 1: np.ones(200)}
    assert relative_performance(worse, ste) < 1.0


def test_learning_curve_is_a_trailing_mean():
    assert np.allclose(learning_curve([1, 0, 1, 1, 0], 3), [1, 0.5, 2 / 3, 2 / 3, 2 / 3])


def test_detection_report():
    r = detection_report([50, 1020, 1030, 2600, 3100], [1000, 2000, 3000], n_events=4000, max_delay=500)
    assert r["detected"] == 2 and r["missed"] == 1 and r["delays"] == [20, 100]
    assert r["false_alarms"] == 3 and math.isclose(r["false_alarms_per_10k"], 7.5)
    assert detection_report([], [10], 100)["mean_delay"] is None


def test_task_segments_measure_retention_on_recurrence():
    seg = TaskSegments(probe=3)
    tasks = ["a"] * 5 + ["b"] * 5 + ["a"] * 5 + [None] * 2 + ["b"] * 3
    hits = [0, 1, 1, 1, 1] + [1, 1, 1, 1, 1] + [0, 0, 1, 1, 1] + [1, 1] + [1, 1, 1]
    seg.update(tasks, hits)
    r = seg.report()
    assert r["segments"] == 4 and r["recurrences"] == 2
    assert r["retention_by_task"] == {"a": pytest.approx(1 / 3 - 1.0), "b": pytest.approx(0.0)}
    assert seg.report() == r  # reporting does not close the open segment
    seg.update(["b"], [0])
    assert seg.report()["segments"] == 4


def test_run_report_carries_lifelong_matrix_alarms_and_continual_state(tmp_path):
    import json

    from stream_cl import OnlineContinualLearner
    from stream_cl.backbones import RandomFeatures
    from stream_cl.drift import DriftMonitor
    from stream_cl.events import Event
    from stream_cl.prequential import Prequential
    from stream_cl.replay import PowerLawReplay

    rng = np.random.default_rng(0)
    learner = OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu",
                                     replay=PowerLawReplay(50), drift=DriftMonitor("adwin", response=("record",)))
    step = Prequential(learner, window=200)
    events = []
    for i in range(1500):
        task = ("t0", "t1", "t0", "t2", "t1")[i // 300]
        x = float(rng.normal())
        y = int((x > 0) == (task != "t1"))  # t1 flips the concept: alarms
        events.append(Event({"x": x, "task_feature": 1.0}, y, id=str(i), task=task))
    for s in range(0, 1500, 100):
        step.process(events[s:s + 100])
    report = json.loads(json.dumps(step.stats.report()))
    life = report["tasks"]
    assert life["tasks"] == ["t0", "t1", "t2"] and len(life["accuracy_matrix"]) == 3
    assert life["accuracy_matrix"][0][0] > 0.9 and life["recurrences"] == 2
    assert report["continual"]["replay"]["size"] == 50 and report["alarms"] and report["alarms"][0]["detector"] == "adwin"
    assert learner.replay_.key_seen_ and learner.replay_.keys_[0] == ("task", "t0")  # tasks reached the replay
    try:
        from connectors.report import plot_report
    except ImportError:  # the plotting extra is not installed
        return
    written, _ = plot_report({**report, "lifelong": report["tasks"]}, tmp_path)  # the plot reads lifelong.accuracy_matrix
    assert {p.name for p in written} >= {"accuracy.png", "accuracy_matrix.png"}


def test_a_matrix_that_does_not_match_the_phases_is_refused():
    R = [[0.9, 0.1, 0.1], [0.8, 0.9, 0.2], [0.7, 0.8, 0.9]]
    with_initial_row = [[0.1, 0.1, 0.1]] + R  # an "untrained" row 0: BWT came out +0.65 instead of -0.15
    for metric in (average_accuracy, backward_transfer, forgetting, performance_maintenance, lifelong_report):
        with pytest.raises(ValueError, match="R has 4 rows but trained names 3 phases: R needs one row per phase"):
            metric(with_initial_row, [0, 1, 2])
        with pytest.raises(ValueError, match="R has 3 rows but trained names 4 phases"):
            metric(R, [0, 1, 2, 0])
        with pytest.raises(ValueError, match="trained is empty: give the task of each training phase"):
            metric(np.zeros((0, 2)), [])
        with pytest.raises(ValueError, match="trained names task 3, not a column of R"):
            metric(R, [0, 1, 3])
    with pytest.raises(ValueError, match="R has 4 rows"):
        forward_transfer(with_initial_row, [0, 1, 2], [0.1] * 3)
    with pytest.raises(ValueError, match="baseline has 2 values for 3 tasks"):
        forward_transfer(R, [0, 1, 2], [0.1, 0.1])
    assert backward_transfer(R, np.array([0, 1, 2])) == pytest.approx(-0.15)


def test_a_window_below_one_is_refused():
    with pytest.raises(ValueError, match="window must be an int >= 1, got 0; use e.g. 100"):
        learning_curve([1, 0, 1], 0)
    with pytest.raises(ValueError, match="window must be an int >= 1, got 0"):
        sample_efficiency({0: [1, 1]}, {0: [1, 1]}, window=0)
    with pytest.raises(ValueError, match="window must be an int >= 1, got 2.5"):
        learning_curve([1, 0, 1], 2.5)
