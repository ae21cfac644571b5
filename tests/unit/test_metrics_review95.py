"""Review r95: the accuracy plot counts every alarm raised; the progress line's recent accuracy is
the last complete window's; a lifelong report with an undefined entry is JSON."""

import json
import math

from PIL import Image

from connectors.report import plot_report
from stream_cl.metrics import lifelong_report
from stream_cl.prequential import PrequentialStats


def test_the_accuracy_plot_counts_the_alarms_raised_not_those_kept(tmp_path):
    report = {"source": "file", "model": "OnlineContinualLearner", "events": 7000, "accuracy": 0.9, "window": 250,
              "windowed_accuracy": [{"events": 250 * (i + 1), "accuracy": 0.9} for i in range(28)],
              "alarms": [{"t": 5000, "detector": "ddm", "response": "forget"},
                         {"t": 6000, "detector": "ddm", "response": "forget"}],
              "continual": {"drift": {"alarms": 4}}}
    paths, _ = plot_report(report, tmp_path)
    (accuracy,) = [p for p in paths if p.name == "accuracy.png"]
    assert Image.open(accuracy).text["Description"].endswith("drift alarms 4 (the last 2 drawn)")  # was 2


def test_recent_accuracy_is_the_last_complete_windows():
    stats = PrequentialStats(window=1000)
    assert math.isnan(stats.recent_accuracy)
    stats.update([1] * 10, [1] * 9 + [0])
    assert stats.recent_accuracy == 0.9  # the running window before the first completes
    stats.update([1] * 990, [1] * 891 + [0] * 99)
    stats.update([1], [0])  # one wrong event into the next window
    assert stats.recent_accuracy == 0.9  # was 0.0: that event's alone


def test_a_lifelong_report_with_an_undefined_entry_is_json():
    report = lifelong_report([[float("nan")]], [0])
    assert json.loads(json.dumps(report, allow_nan=False))["R"] == [[None]]
