"""Review r131 of delayed labels, end to end.

Finding 1 (low): a daemon restored from a checkpoint under a smaller ``labels.max_pending`` (or
``labels.max_early``) than the checkpoint was written with drops the oldest waiting entries, and the
store counts them as this process's work (review r73), but the daemon restored its state *before*
making the router whose :class:`~connectors.new_work.NewWork` takes its starting point from the stores'
counts: the drop was inside that starting point and never reached ``stream_cl_labels_total``.
"""

from __future__ import annotations

import threading

from kafka import TopicPartition

from connectors.commit import CommitPolicy
from connectors.daemon import Daemon
from stream_cl.config import load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores
from router_kit import GroupPublisher  # tests/unit/router_kit.py
from source_kit import ItemsSource  # tests/unit/source_kit.py


def _daemon(ckdir, items: list, group: dict, max_pending: int) -> Daemon:
    cfg = load_config_dict({"model": {"kind": "analytic", "forgetting": [1.0]},
                            "kafka": {"topics": ["events"], "predictions_topic": "p", "labels_topic": "labels"},
                            "labels": {"max_pending": max_pending},
                            "checkpoint": {"dir": str(ckdir), "every_events": 16, "every_seconds": 3600}})
    pending = PendingStores(max_pending, clock=lambda: 0.0)
    d = Daemon(cfg, build_learner(cfg.model), lambda me: ItemsSource(me, items, group), GroupPublisher(group), pending,
               threading.Event())
    d.commits.policy = CommitPolicy(0)  # a commit after every poll
    return d


def _until(daemon: Daemon, position: int) -> None:
    while daemon.source.positions[TopicPartition("events", 0)] < position:
        daemon.run_once()


def test_entries_a_restore_drops_under_a_smaller_max_pending_are_exported(tmp_path):
    items = [Event({"a": float(i % 5)}, None, str(i), None, None, f"events/0@{i}") for i in range(24)]
    group: dict = {}
    first = _daemon(tmp_path, items, group, max_pending=100)
    _until(first, 20)  # the checkpoint covers 16 events waiting for their labels; 4 more committed after it
    assert first.state.offsets == {TopicPartition("events", 0): 16}

    second = _daemon(tmp_path, items, group, max_pending=5)  # restarted with a smaller bound
    assert len(second.pending) == 5 and second.pending.new_outcomes() == (0, 11, 0)  # 11 evicted by this process
    _until(second, 24)  # 16..19 re-read silently (their evictions were the process before's), 4 new ones evicted
    assert second.pending.new_outcomes() == (0, 15, 0)
    assert second.metrics.label_outcomes["expired"] == 15  # stream_cl_labels_total{outcome="expired"}; was 4
