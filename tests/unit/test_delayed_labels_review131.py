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
from connectors.kafka import PolledBatch
from stream_cl.config import load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores
from router_kit import RecordingPublisher  # tests/unit/router_kit.py
from source_kit import OnePartitionSource  # tests/unit/source_kit.py


class _Publisher(RecordingPublisher):
    """Commits at once, into the group's committed offsets (``group``, shared by the two processes)."""

    def __init__(self, group: dict):
        super().__init__()
        self.group = group

    def start_commit(self, offsets, group_metadata, records=()):
        self.group.update({(t, p): o for t, p, o in offsets})

    def finish_commit(self, wait=True):
        return 0.001

    def check(self):
        pass

    def close(self):
        pass

    abort = close


class _Source(OnePartitionSource):
    """``items`` at offsets 0, 1, ... of partition events/0, four a poll (tests/unit/source_kit.py)."""

    def __init__(self, daemon, items: list, group: dict):
        super().__init__(daemon, group, batch=4)
        self.items = items

    def size(self) -> int:
        return len(self.items)

    def poll(self, max_records):
        pos = self.positions[self.tp]
        chunk = self.items[pos : pos + min(self.batch, max_records)]
        self.positions[self.tp] = pos + len(chunk)
        return PolledBatch(chunk, {}, frozenset(e.origin for i, e in enumerate(chunk, pos) if i < self.replay_until))


def _daemon(ckdir, items: list, group: dict, max_pending: int) -> Daemon:
    cfg = load_config_dict({"model": {"kind": "analytic", "forgetting": [1.0]},
                            "kafka": {"topics": ["events"], "predictions_topic": "p", "labels_topic": "labels"},
                            "labels": {"max_pending": max_pending},
                            "checkpoint": {"dir": str(ckdir), "every_events": 16, "every_seconds": 3600}})
    pending = PendingStores(max_pending, clock=lambda: 0.0)
    d = Daemon(cfg, build_learner(cfg.model), lambda me: _Source(me, items, group), _Publisher(group), pending,
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
