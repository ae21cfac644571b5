"""Review r118's left-out items, fixed later (F5, a first start that meets a broker restart: in
test_broker_outage_review115.py, with r115's outages):
- F8: a member whose revocation waited on a stuck commit showed ``running`` and /readyz 200 while the whole
  group waited on it. It is ``revoking`` (/readyz 503) while that commit is under way.
- F9: committed offsets a transaction left open on ``__consumer_offsets`` held for good ended every member
  with kafka-python's "User rebalance callback throws an error" and a traceback; nothing named the remedy.
  The error now names the group's partition of ``__consumer_offsets`` and the ``kafka-transactions.sh``
  commands, and the source hands it to the daemon as itself (its ``failed`` line: test_daemon_review24).
No broker here: the builds and the commit are stubs (the real-broker runs are r118's)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError
from source_kit import ListConsumer  # tests/unit/source_kit.py

import connectors.daemon as daemon_module
from connectors.http import DaemonStatus
from connectors.kafka import KafkaSource
from connectors.kafka_assignment import CommittedOffsetsUnreadable, offsets_topic_partition
from connectors.status import DaemonMetrics
from stream_cl.config import KafkaConfig, MappingConfig


# -- F8 ---------------------------------------------------------------------------------------------------------
def _member(metrics, seen, fail=None):
    """A member held in its revocation's commit: ``seen`` gets /readyz's answer from inside the commit."""
    probes = DaemonStatus(stall_timeout_s=60.0)

    def commit(why, partitions):
        seen.append(probes.ready())
        if fail is not None:
            raise fail

    member = SimpleNamespace(_failed=False, reset_reason=None, metrics=metrics, _fatal=None,
                             source=SimpleNamespace(assigned={TopicPartition("events", 0)}),
                             commits=SimpleNamespace(commit=commit), state=SimpleNamespace(drop=lambda parts: None))
    probes.attach(member)
    return member, probes


def test_a_member_committing_at_a_revocation_is_not_ready_and_then_running_again():
    metrics, seen = DaemonMetrics(), []
    metrics.state = "running"
    member, probes = _member(metrics, seen)
    assert probes.ready()[0]
    daemon_module.Daemon.on_revoke(member, {TopicPartition("events", 0)}, lost=False)
    ((ok, body),) = seen
    assert not ok and body["state"] == "revoking" and body["detail"] == "daemon revoking"
    assert metrics.state == "running" and probes.ready()[0]


def test_a_failed_commit_at_a_revocation_leaves_the_state_to_the_start_over():
    metrics, seen = DaemonMetrics(), []
    metrics.state = "running"
    member, probes = _member(metrics, seen, fail=KafkaTimeoutError("did not answer commit within 60 s"))
    daemon_module.Daemon.on_revoke(member, {TopicPartition("events", 0)}, lost=False)
    assert seen[0][1]["state"] == "revoking"
    assert member.reset_reason.startswith("commit at revocation failed")
    # not ready again meanwhile: the member is about to drop its state and start over (review r122)
    assert metrics.state == "revoking" and not probes.ready()[0]


def test_a_stopping_member_stays_stopping_through_its_revocation():
    metrics, seen = DaemonMetrics(), []
    metrics.state = "stopping"
    member, _ = _member(metrics, seen)
    daemon_module.Daemon.on_revoke(member, {TopicPartition("events", 0)}, lost=False)
    assert seen[0][1]["state"] == "stopping" and metrics.state == "stopping"


# -- F9 ---------------------------------------------------------------------------------------------------------
class _HeldOffsets(ListConsumer):
    """A consumer whose assignment callback gave up on the committed offsets, as kafka-python reports it."""

    def poll(self, timeout_ms=0, max_records=500):
        try:
            raise CommittedOffsetsUnreadable("held")
        except CommittedOffsetsUnreadable as e:
            raise KafkaError("User rebalance callback throws an error") from e


def test_the_source_hands_held_offsets_to_the_daemon_as_themselves():
    source = KafkaSource(KafkaConfig(topics=["events"], group_id="g"), MappingConfig(), consumer=_HeldOffsets([]))
    with pytest.raises(CommittedOffsetsUnreadable, match="held"):
        source.poll(10)


def test_other_callback_errors_are_left_as_kafka_python_raised_them():
    class Broken(ListConsumer):
        def poll(self, timeout_ms=0, max_records=500):
            raise KafkaError("User rebalance callback throws an error") from RuntimeError("a bug of ours")

    source = KafkaSource(KafkaConfig(topics=["events"], group_id="g"), MappingConfig(), consumer=Broken([]))
    with pytest.raises(KafkaError, match="User rebalance callback"):
        source.poll(10)


def _held_offsets_text(monkeypatch, group_id: str, servers, partition: int) -> str:
    """The text of :class:`CommittedOffsetsUnreadable` for ``events/<partition>`` of ``group_id``, after a
    wait whose every try timed out (as while a transaction left open holds the offsets)."""
    import asyncio

    cfg = KafkaConfig(topics=["events"], group_id=group_id, bootstrap_servers=servers,
                      session_timeout_ms=6_000, transaction_timeout_ms=10_000)
    source = KafkaSource(cfg, MappingConfig(), consumer=ListConsumer([]))

    async def held(partitions, timeout_ms):
        raise KafkaTimeoutError("Timeout waiting for future")

    clock = iter(range(0, 10**6, 5))  # 5 s a look: past the 30 s budget within a few tries
    monkeypatch.setattr("connectors.kafka_assignment.time.monotonic", lambda: float(next(clock)))
    with pytest.raises(CommittedOffsetsUnreadable) as raised:
        asyncio.run(source._fetch_committed(held, {TopicPartition("events", partition)}))
    return str(raised.value)


def test_the_remedy_names_the_groups_partition_of_the_offsets_topic(monkeypatch, caplog):
    text = _held_offsets_text(monkeypatch, "stream-cl", ["b1:9092", "b2:9092"], 3)
    assert offsets_topic_partition("stream-cl") == 30  # Java: Math.abs("stream-cl".hashCode()) % 50
    assert ("kafka-transactions.sh --bootstrap-server b1:9092,b2:9092 describe-producers --topic __consumer_offsets "
            "--partition 30") in text
    assert "abort --topic __consumer_offsets --partition 30 --start-offset" in text and "events/3" in text


# -- review r120 ------------------------------------------------------------------------------------------------
def test_the_status_file_says_revoking_while_the_revocation_commits(tmp_path):
    # review r120 F8-1: on a real broker frozen for 12 s during m0's revocation commit, /readyz said revoking
    # but the status file said running with its old partitions the whole time (only the loop wrote it, and the
    # loop is blocked in poll while on_revoke runs)
    import json

    from connectors.status import StatusReporter

    metrics, seen, files = DaemonMetrics(), [], []
    metrics.state = "running"
    path = tmp_path / "status.json"
    member, _ = _member(metrics, seen)
    member.status = StatusReporter(metrics, str(path))
    inner = member.commits.commit

    def commit(why, partitions):
        files.append(json.loads(path.read_text())["state"])
        inner(why, partitions)

    member.commits = SimpleNamespace(commit=commit)
    daemon_module.Daemon.on_revoke(member, {TopicPartition("events", 0)}, lost=False)
    assert files == ["revoking"] and json.loads(path.read_text())["state"] == "running"


def test_the_held_offsets_line_names_the_partition_for_any_number_of_offsets_partitions(monkeypatch):
    # review r120 F9-1: the line gave the partition for 50 partitions only, and on the dev broker (1 partition)
    # its describe-producers command ran 60 s and failed with a METADATA timeout; it now gives the hashCode too
    from connectors.kafka_assignment import offsets_topic_hash

    text = _held_offsets_text(monkeypatch, "it-q1-bf43a4b350", "b:9092", 0)
    # javac: "it-q1-bf43a4b350".hashCode() = -1059903155 (partition 5 of 50, 0 of 1: the r120 broker held it in 0)
    assert offsets_topic_hash("it-q1-bf43a4b350") == 1059903155
    assert "partition 1059903155 modulo offsets.topic.num.partitions" in text
    assert "partition 5 with the default 50 partitions, 0 with 1" in text
    assert "describe-producers --topic __consumer_offsets --partition 5" in text
    assert "the row whose CurrentTransactionStartOffset is not None" in text


def test_kafka_pythons_traceback_of_held_offsets_is_left_to_the_daemons_failed_line():
    # review r122: kafka-python logs the listener's error with log.exception before it raises it; after the
    # start-up hold that traceback came before the daemon's failed line, which says the same and the remedy
    import logging

    from connectors.logs import ListenerTiming

    try:
        raise CommittedOffsetsUnreadable("held")
    except CommittedOffsetsUnreadable:
        import sys

        held = logging.LogRecord("kafka.coordinator.consumer", logging.ERROR, "", 0,
                                 "User provided rebalance listener %s for group %s failed on partition assignment: %s",
                                 ("L", "g", "{}"), sys.exc_info())
    try:
        raise RuntimeError("a bug of ours")
    except RuntimeError:
        other = logging.LogRecord("kafka.coordinator.consumer", logging.ERROR, "", 0, "listener failed", (),
                                  sys.exc_info())
    assert ListenerTiming().filter(held) is False and ListenerTiming().filter(other) is True
