"""Review r120: a revocation that took 10.7 s (the interval transaction under way hung on a frozen broker)
logged its commit line with ``seconds`` 0.016: the line timed only its own transaction, not the wait for
the one before it. The line says that wait now, as ``waited_s``."""
from __future__ import annotations

import json
import logging

from commit_kit import CommitMetrics, NullStore  # tests/unit/commit_kit.py
from kafka import TopicPartition

from connectors.commit import CommitCoordinator, CommitPolicy
from connectors.logs import JsonFormatter


class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class _SlowBefore:
    """A publisher whose first transaction answers only after 10 s of waiting; later ones at once (0.016 s)."""

    def __init__(self, clock):
        self.clock, self.started = clock, []

    def start_commit(self, offsets, group, records=()):
        self.started.append(offsets)

    def finish_commit(self, wait=True):
        if not wait:
            return None
        if len(self.started) == 1:
            self.clock.t += 10.0  # the interval transaction under way answers after the broker is back
        return 0.016


class _Source:
    def __init__(self):
        self.tp = TopicPartition("events", 0)
        self.assigned, self.positions, self.committed = {self.tp}, {self.tp: 10}, {}

    def fill_positions(self):
        pass

    def group_metadata(self):
        return ("g", 1, "member-1", None)


def _one_under_way():
    """A coordinator whose interval transaction is under way (it answers after 10 s), its source and publisher."""
    clock = _Clock()
    source, publisher = _Source(), _SlowBefore(clock)
    policy = CommitPolicy(0, clock=clock)
    coordinator = CommitCoordinator(source, publisher, NullStore(), CommitMetrics(), policy)
    policy.touch()
    coordinator.commit("interval")  # under way on return
    return coordinator, source, publisher, policy


def test_a_revocations_commit_line_says_how_long_it_waited_for_the_transaction_before_it(caplog):
    coordinator, source, publisher, policy = _one_under_way()
    source.positions[source.tp] = 20
    policy.touch()
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        coordinator.commit("revoke")
    (line,) = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    assert line["event"] == "commit" and line["reason"] == "revoke"
    assert line["seconds"] == 0.016 and line["waited_s"] == 10.0


def test_a_revocation_that_waited_and_had_nothing_new_says_its_wait(caplog):
    # review r122: the wait went unsaid where the transaction under way already covered everything
    coordinator, _, publisher, _ = _one_under_way()  # nothing is learned after it
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        coordinator.commit("revoke")
    (line,) = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    assert line["event"] == "commit" and line["partitions"] == 0 and line["waited_s"] == 10.0
    assert line["detail"] == "nothing new after the transaction under way"
    assert len(publisher.started) == 1  # no second transaction


def test_a_revocation_with_nothing_under_way_and_nothing_new_says_nothing(caplog):
    clock = _Clock()
    source = _Source()
    source.committed = dict(source.positions)  # all committed before: nothing new
    coordinator = CommitCoordinator(source, _SlowBefore(clock), NullStore(), CommitMetrics(),
                                    CommitPolicy(0, clock=clock))
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        coordinator.commit("revoke")
    assert caplog.records == []
