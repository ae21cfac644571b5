"""Review r143: the prequential report's own settings are checked where they are given.

F1 (low): ``PrequentialStats(window=0)`` (or -5, or 2.5) never completed a windowed-accuracy point,
silently, for the whole run; ``TaskSegments(probe=0)`` wrote NaN heads, tails and matrix entries
into its "JSON-ready" report (a RuntimeWarning per segment), a negative probe raised at the first
event inside the run loop, and ``keep=None`` kept every segment (the class promises bounded
memory). Each is now a ValueError naming the argument, as ``learning_curve``'s window is.
"""

from __future__ import annotations

import json

import pytest

from stream_cl.metrics import TaskSegments
from stream_cl.prequential import PrequentialStats


@pytest.mark.parametrize("window", [0, -5, 2.5, True])
def test_a_window_that_never_completes_a_point_is_refused(window):
    with pytest.raises(ValueError, match="window must be an int >= 1"):
        PrequentialStats(window=window)


@pytest.mark.parametrize("max_points", [0, -1, 1.5])
def test_a_max_points_below_one_is_refused(max_points):
    with pytest.raises(ValueError, match="max_points must be an int >= 1"):
        PrequentialStats(window=10, max_points=max_points)


def test_the_usual_windows_still_work():
    for stats in (PrequentialStats(), PrequentialStats(window=None), PrequentialStats(window=2, max_points=1)):
        stats.update([1, 1, 1, 1], [1, 0, 1, 1])
        assert stats.report()["accuracy"] == 0.75
    assert stats.windows == [{**stats.windows[0], "accuracy": 1.0}]  # the latest point of 2: (1, 1)


@pytest.mark.parametrize("probe", [0, -1, 2.0])
def test_a_probe_below_one_is_refused(probe):
    with pytest.raises(ValueError, match="probe must be an int >= 1"):
        TaskSegments(probe=probe)


def test_keep_none_is_refused_and_keep_zero_keeps_no_recent_segment():
    with pytest.raises(ValueError, match="keep must be an int >= 0"):
        TaskSegments(keep=None)
    seg = TaskSegments(probe=1, keep=0)
    seg.update(["a", "b", "a"], [1, 0, 1])
    r = seg.report()
    assert r["segments"] == 3 and r["recent_segments"] == [] and r["accuracy_matrix"] == [[1.0, 0.0], [1.0, 0.0]]
    json.dumps(r, allow_nan=False)
