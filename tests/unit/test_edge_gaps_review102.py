"""Review r102 (tests that cannot fail): hand-made mutants of the file and daemon edges that no unit test
killed. Each test below fails on its mutant (named in the test's comment) and passes on the code as it is."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib.axes

from connectors import report
from connectors.commit import CommitPolicy
from connectors.metric_names import base_metric
from connectors.prometheus import TaskAccuracy
from connectors.kafka import PolledBatch
from connectors.router import Router
from connectors.status import DaemonMetrics
from stream_cl.config import MappingConfig, load_config_dict
from stream_cl.events import Event, Prediction
from stream_cl.factory import build_learner
from stream_cl.mapping_check import _MAX_FIELDS, FieldCensus
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import Prequential
from router_kit import RecordingPublisher  # tests/unit/router_kit.py


# -- commit: due once something changed, every_ms after the last commit (mutant: due without a change) --------
def test_r102_an_interval_commit_is_due_only_once_something_changed():
    now = [0.0]
    policy = CommitPolicy(100, clock=lambda: now[0])
    now[0] = 5.0
    assert not policy.due()  # an idle loop starts no commit (fill_positions asks the broker for every partition)
    policy.touch()
    assert policy.due()
    policy.done()
    now[0] = 10.0
    assert not policy.due()


# -- router: the events counted predict-only while they wait are remembered within a bound (mutant: unbounded) --
def test_r102_the_routers_record_of_waiting_predictions_is_bounded():
    config = load_config_dict({"model": {"kind": "analytic"}, "run": {"batch_size": 4},
                               "kafka": {"topics": ["events"], "predictions_topic": "p", "labels_topic": "labels"}})
    learner = build_learner(config.model)
    router = Router(config, Prequential(learner, window=50), learner, PendingStores(), RecordingPublisher(),
                    DaemonMetrics(), SimpleNamespace(add=lambda n: None, touched=lambda key, n: None), partitioned=True)
    router._counted_bound = 3  # (at least 10,000: an event whose label never comes stayed in it for good)
    events = [Event({"a": float(i)}, None, f"e{i}", None, None, f"events/0@{i}") for i in range(10)]
    router.process(PolledBatch(events, {}, frozenset()))
    assert list(router._counted_waiting) == [("events/0", f"e{i}") for i in (7, 8, 9)]  # the newest kept


# -- prometheus ------------------------------------------------------------------------------------------------
def test_r102_a_task_dropped_and_met_again_in_one_batch_starts_anew():
    # (mutant: its later events went into the dropped counts, and the series shown was the other task's)
    acc = TaskAccuracy(window=10, max_tasks=1)
    acc.update([Prediction("1", "a", 1.0, "a", "t1"), Prediction("2", "a", 1.0, "a", "t2"),
                Prediction("3", "a", 1.0, "b", "t1")])
    assert acc.snapshot() == {"t1": 0.0} and acc.dropped == 2


def test_r102_only_a_histograms_series_have_suffixes():
    # (mutant: any metric's name with _count or _sum read as that metric; test_deploy takes a dashboard's query so)
    assert base_metric("stream_cl_classes_count") is None and base_metric("stream_cl_events_total_sum") is None
    assert base_metric("stream_cl_model_step_seconds_count") == "stream_cl_model_step_seconds"


# -- report: a matrix value that is no accuracy is a gap, not a cell (mutant: drawn, and written in the cell) ---
def test_r102_a_damaged_matrix_value_is_drawn_as_a_gap(tmp_path, monkeypatch):
    written = []
    real = matplotlib.axes.Axes.text
    monkeypatch.setattr(matplotlib.axes.Axes, "text", lambda ax, x, y, s, *a, **k: written.append(s) or real(ax, x, y, s, *a, **k))
    path, _ = report._accuracy_matrix({"tasks": {"tasks": ["A", "B"], "accuracy_matrix": [[0.5, 5.0], [-1.0, 0.25]]}},
                                      tmp_path)
    assert path.exists() and written == ["0.50", "0.25"]


# -- mapping check: the field census remembers at most _MAX_FIELDS other fields (mutant: every one) -----------
def test_r102_the_field_census_is_bounded():
    census = FieldCensus(MappingConfig(), sample=10)
    for i in range(5):
        census.observe({**{f"f{i}_{j}": 1.0 for j in range(100)}, "y": 0})
    assert census.seen["y"] == 5  # the label, named by the mapping, is counted past the bound
    assert len(census.seen) <= _MAX_FIELDS + 1
