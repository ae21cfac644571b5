"""Review r139 of the observability edge (connectors/status.py, connectors/daemon.py, the exporter).

F1: the loop built the run's report (``PrequentialStats.report()``: the per-task accuracy matrix, the windowed
accuracy, the learner's state) at every turn, to hand it to ``StatusReporter.write``, which rewrites the
status file about once a second, and never without ``kafka.status_file``: every other report was thrown away.
With events that carry a task (150 tasks) that was ~0.77 ms of a ~1 ms turn of 4-event polls (990 us a turn
against 228 us once it is built only for a write). Now ``write`` takes what makes the report and calls it
only for a file it rewrites.

F2: a member that starts over (fenced, an aborted commit) has left its group when it aborts, and holds no
partition while it is built again (a restore and the changelog's catch-up: up to minutes), but went on
exporting the lag and the committed offset of the partitions it held before, frozen, beside the member that
took them over: the group's lag by topic (``job_topic:stream_cl_consumer_lag_messages:sum``, the dashboard's
"Consumer lag") counted those partitions twice, and ``stream_cl_committed_offset`` is documented as "for
partitions it holds".
"""

from __future__ import annotations

import json
import threading

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.commit import CommitPolicy
from connectors.daemon import Daemon
from connectors.daemon_exits import EXIT_RESET
from connectors.prometheus import register_metrics
from connectors.status import StatusReporter
from connectors.transaction import Fenced
from router_kit import GroupPublisher  # tests/unit/router_kit.py
from source_kit import ItemsSource  # tests/unit/source_kit.py
from stream_cl.config import load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores


def _items(n: int) -> list:
    """``n`` labelled events of partition events/0, each carrying one of 15 tasks (10 events each in turn)."""
    return [Event({"a": float(i % 7), "b": float(i % 3)}, "p" if i % 3 else "n", str(i), f"t{(i // 10) % 15}", None,
                  f"events/0@{i}") for i in range(n)]


def _daemon(tmp_path, items: list, publisher, every_events: int = 10**9) -> Daemon:
    cfg = load_config_dict({"model": {"kind": "analytic", "forgetting": [1.0]},
                            "kafka": {"topics": ["events"], "predictions_topic": "p"},
                            "checkpoint": {"dir": str(tmp_path / "ckpt"), "every_events": every_events,
                                           "every_seconds": 3600},
                            "run": {"batch_size": 4}})
    group: dict = {}
    return Daemon(cfg, build_learner(cfg.model), lambda me: ItemsSource(me, items, group, batch=4), publisher,
                  PendingStores(), threading.Event())


class _CountedReport:
    """The daemon's ``step.stats.report``, counting the reports built."""

    def __init__(self, daemon: Daemon):
        self.real, self.built = daemon.step.stats.report, 0
        daemon.step.stats.report = self

    def __call__(self) -> dict:
        self.built += 1
        return self.real()


# -- F1 ----------------------------------------------------------------------------------------------------
def test_without_a_status_file_the_loop_builds_no_report(tmp_path):
    daemon = _daemon(tmp_path, _items(80), GroupPublisher({}))
    daemon.commits.policy = CommitPolicy(10**9)
    counted = _CountedReport(daemon)
    for _ in range(20):  # 20 polls of 4 events
        daemon.run_once()
    assert daemon.metrics.events["learned"] == 80
    assert counted.built == 0


def test_a_report_is_built_for_each_status_file_write_and_no_other(tmp_path):
    """The timer is set past the test: the file is written at the first assignment (turn 1) alone, then, once
    a write is due at every turn, at each turn, each time with the report as it is then."""
    daemon = _daemon(tmp_path, _items(100), GroupPublisher({}))
    daemon.commits.policy = CommitPolicy(10**9)
    path = tmp_path / "status.json"
    daemon.status = StatusReporter(daemon.metrics, str(path), every_s=3600.0)
    counted = _CountedReport(daemon)
    for _ in range(20):  # 80 events
        daemon.run_once()
    assert counted.built == 1
    assert json.loads(path.read_text())["report"]["events"] == 4
    daemon.status.every_s = 0.0  # a write due at every turn
    for turn in (21, 22):
        daemon.run_once()
        report = json.loads(path.read_text())["report"]
        assert (report["events"], report["labelled"], report["tasks"]["segments"]) == (4 * turn, 4 * turn, 9)
    assert counted.built == 3


# -- F2 ----------------------------------------------------------------------------------------------------
class _FencedAfter(GroupPublisher):
    """Commits ``n`` transactions, then is fenced (a newer member of the group took over)."""

    def __init__(self, n: int):
        super().__init__({})
        self.left = n

    def finish_commit(self, wait=True):
        if self.left == 0:
            raise Fenced("fenced: a newer generation took over")
        self.left -= 1
        return 0.001


def _partition_series(daemon: Daemon) -> dict:
    registry = CollectorRegistry()
    register_metrics(registry, lambda: daemon)
    text = generate_latest(registry).decode()
    return {(s.name, s.labels["partition"]): s.value for fam in text_string_to_metric_families(text)
            for s in fam.samples if s.name in ("stream_cl_consumer_lag_messages", "stream_cl_committed_offset")}


def test_a_member_that_starts_over_exports_no_partition_it_held_before(tmp_path):
    daemon = _daemon(tmp_path, _items(200), _FencedAfter(3))
    daemon.commits.policy = CommitPolicy(0)
    for _ in range(3):
        daemon.run_once()
    daemon.status.write(daemon.source, daemon.pending, dict, force=True)  # the loop's snapshot, about once a second
    assert _partition_series(daemon) == {("stream_cl_consumer_lag_messages", "0"): 188.0,
                                         ("stream_cl_committed_offset", "0"): 8.0}
    assert daemon.run() == EXIT_RESET  # the fourth commit is fenced: it aborts, leaving the group
    assert daemon.metrics.state == "rejoining"
    assert _partition_series(daemon) == {}  # what the collector serves while the member is built again
    assert daemon.metrics.assigned == [] and daemon.metrics.lag == {} and daemon.metrics.committed == {}
