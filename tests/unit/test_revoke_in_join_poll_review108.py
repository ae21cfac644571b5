"""Review r108: a revocation inside the very poll whose join just completed must commit with the generation
that join gave, not the metadata KafkaSource cached at the end of the poll before.

kafka-python 3.0.12's ``KafkaConsumer.poll`` runs ``_poll_once`` until records come or its timer runs out:
a member whose join completes (its assignment) and finds no records yet goes on polling in the same call,
and a second rebalance (another member joining) revokes its partitions inside it. KafkaSource refreshed its
group metadata only when ``poll`` returned, so that revocation's commit carried the poll before's: for a
member's first poll (a start, or the rebuild after any reset) the initial ``(group, -1, "", None)``, which
r104's check refuses (Fenced: the member starts over, a legitimate owner); for a member already running, the
generation before the join (the broker answers ILLEGAL_GENERATION: Fenced too). Seen against a real broker
(r108_revoke_in_join_poll.py): cached ``(-1, '')``, live generation 1, "Fenced: the consumer has no group
generation".
"""

from __future__ import annotations

import asyncio

from commit_kit import CommitMetrics, NullStore, StartedCommits  # tests/unit/commit_kit.py
from kafka import TopicPartition

from connectors.commit import CommitCoordinator, CommitPolicy
from connectors.kafka import KafkaSource
from stream_cl.config import KafkaConfig, MappingConfig

TP = TopicPartition("events", 0)


class _JoinThenRebalanceConsumer:
    """One poll: the join completes (generation 5), no records, a second rebalance revokes (eager)."""

    def __init__(self):
        self.listener, self.generation = None, ("g", -1, "", None)

    def subscribe(self, topics=(), pattern=None, listener=None):
        self.listener = listener

    def partitions_for_topic(self, topic):
        return {0}

    def seek(self, tp, offset):
        pass

    def group_metadata(self):
        return self.generation

    def poll(self, timeout_ms=0, max_records=500):
        self.generation = ("g", 5, "member-5", None)  # JoinGroup answered: kafka-python's _generation
        asyncio.run(self.listener.on_partitions_assigned({TP}))
        asyncio.run(self.listener.on_partitions_revoked({TP}))  # the same poll's next _poll_once
        return {}

    def close(self, autocommit=True):
        pass


class _Hooks:
    """What Daemon.on_revoke / on_assign do with the source (its state covers offset 40)."""

    def __init__(self):
        self.failed = None

    def on_assign(self, partitions):
        return {tp: 40 for tp in partitions}

    def on_revoke(self, partitions, lost):
        try:
            self.commits.commit("revoke", partitions=set(self.source.assigned))
        except Exception as e:  # noqa: BLE001 -- Daemon.on_revoke: "commit at revocation failed": a reset
            self.failed = e

    def on_wait(self):
        pass


def test_a_revocation_in_the_poll_that_joined_commits_with_the_new_generation():
    hooks = _Hooks()
    source = KafkaSource(KafkaConfig(topics=["events"], group_id="g"), MappingConfig(), hooks=hooks,
                         consumer=_JoinThenRebalanceConsumer())
    publisher = StartedCommits()
    hooks.source = source
    hooks.commits = CommitCoordinator(source, publisher, NullStore(), CommitMetrics(), CommitPolicy(200))
    source.poll(100)
    assert hooks.failed is None, f"the owner's commit at its revocation failed (a reset): {hooks.failed}"
    assert [g[:3] for _, g in publisher.started] == [("g", 5, "member-5")], publisher.started
