"""From a regression review of this session's group commits:

1. the changelog read before the join, against a broker that does not answer, is a ``TimeoutError``
   naming the changelog (kafka-python's ``KafkaTimeoutError`` or a position of ``None`` got through
   before, past the loop that keeps a slow read going, as a TypeError);
2. a member whose takeover failed (it stops) looks nothing up, seeks nothing and warns of nothing;
3. a daemon folds the changelog only after its first assignment: read before the join, the changelog
   holds the parts of the partitions it is about to take, which would replace its checkpoint's newer ones.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError

from connectors.changelog import ChangelogTable
from stream_cl.factory import build_learner
from test_changelog_policy import FakeGroupConsumer  # tests/unit/test_changelog_policy.py

TP = TopicPartition("g.model", 0)


class SilentBroker:
    """The table's consumer against a broker that stopped answering (kafka-python's two answers)."""

    def __init__(self, how: str):
        self.how = how

    def end_offsets(self, partitions, timeout_ms=None):
        if self.how == "ends":
            raise KafkaTimeoutError("Failed to get offsets by timestamps in 10000 ms")
        return {tp: 5 for tp in partitions}

    def position(self, tp, timeout_ms=None):
        return None  # what kafka-python returns when the lookup timed out

    def poll(self, timeout_ms=0):
        return {}


def _table(how: str) -> ChangelogTable:
    table = ChangelogTable.__new__(ChangelogTable)  # no broker: the consumer is the fake
    table.topic, table.partitions, table.consumer = "g.model", [TP], SilentBroker(how)
    table.topic_id, table._missing_since, table.values, table._changed = None, None, {}, set()
    table.records = table.bytes = 0
    return table


@pytest.mark.parametrize("how", ["ends", "positions"])
def test_a_changelog_read_the_broker_does_not_answer_is_a_timeout_naming_the_changelog(how):
    with pytest.raises(TimeoutError, match=r"the changelog 'g.model' was not read to its end within 10 s .*"
                                           r"is the broker reachable\?"):
        _table(how).catch_up(timeout_s=10)


def test_a_takeover_that_failed_looks_nothing_up_and_warns_of_nothing(caplog):
    from connectors.kafka_assignment import RebalanceCallbacks

    tp = TopicPartition("events", 0)
    source = RebalanceCallbacks()
    source.consumer = FakeGroupConsumer({tp: 600}, {tp: 300})  # deleted records below a committed offset
    source.cfg = SimpleNamespace(session_timeout_ms=6000, transaction_timeout_ms=10_000, max_poll_interval_ms=300_000)
    source.hooks = SimpleNamespace(on_assign=lambda partitions: None, on_wait=lambda: None)  # the owner stops
    source.assigned, source.positions, source.replay_until, source.committed = set(), {}, {}, {}
    source.rebalances = 0
    with caplog.at_level(logging.WARNING, logger="stream_cl.kafka"):
        asyncio.run(source._on_assigned({tp}))
    assert not hasattr(source.consumer, "looked_up") and source.consumer.seeks == {}
    assert source.assigned == set() and not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_daemon_folds_only_after_its_first_assignment(tmp_path):
    from test_changelog_table_lifecycle import Changelog, FakeTable, GroupSource, _daemon

    other = build_learner(_config(tmp_path))
    for i in range(30):
        other.learn_one({"f0": float(i % 5), "f1": float(i % 3)}, "ab"[i % 2], partition="events/1")
    changelog = Changelog([("events/1", other.contribution("events/1", offset=30).to_bytes())])
    GroupSource.builds, GroupSource.script, GroupSource.changelog = [], {}, changelog
    daemon = _daemon(tmp_path, FakeTable(changelog))  # the changelog read before the join
    daemon._joined = False  # as between the join's start and its assignment (the fake assigns at once)
    daemon.run_once()
    assert daemon.state.folds == 0 and daemon.state.parts == {}  # nothing folded before the assignment
    daemon.on_assign(set())  # an assignment with no partitions: every member gets the callback (eager)
    daemon.state._folded = 0.0  # the fold interval passed
    daemon.run_once()
    assert daemon.state.folds == 1 and daemon.state.parts == {"events/1": 30}


def _config(tmp_path):
    from test_changelog_table_lifecycle import _config as config

    return config(tmp_path)
