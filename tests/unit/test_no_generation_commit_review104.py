"""Review r104: a member that fell out of the group must not commit a transaction with its offsets.

kafka-python resets a member's group metadata to "no generation" (generation -1, member id "") when a
heartbeat is answered UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION: a member frozen past its session timeout
(SIGSTOP, a long pause), whose partitions the group gave to another member. KafkaSource.group_metadata()
is read at the end of each poll, and the heartbeat's reset can land while that poll waits for records: the
loop then processes them and commits with ``(group, -1, "", None)``. The broker checks nothing in a
transactional offset commit that carries no generation, no member id and no instance id (it is the form
that producers without KIP-447 use): the zombie's predictions, changelog records and offsets commit over
the new owner's (seen in review with two daemons and a real broker: r104_zombie_freeze.py, one duplicate
prediction in 4 freezes; r104_gen_minus_one.py: the broker takes the commit while another member is Stable).

No broker here: a stub producer records what the writer asks of it.
"""

import pytest

from commit_kit import CommitMetrics, NullStore, StartedCommits  # tests/unit/commit_kit.py
from connectors.commit import CommitCoordinator, CommitPolicy
from connectors.transaction import Fenced, TransactionAborted, TransactionalWriter


class _Producer:
    def __init__(self):
        self.calls = []

    def init_transactions(self):
        self.calls.append("init")

    def begin_transaction(self):
        self.calls.append("begin")

    def send(self, topic, key=None, value=None, headers=None):
        self.calls.append(("send", topic))

        class _Done:
            def failed(self):
                return False

        return _Done()

    def flush(self, timeout=None):
        pass

    def send_offsets_to_transaction(self, offsets, group):
        self.calls.append(("offsets", group.generation_id, group.member_id))

    def commit_transaction(self):
        self.calls.append("commit")

    def abort_transaction(self):
        self.calls.append("abort")

    def close(self, timeout=None):
        pass


NO_GENERATION = ("g", -1, "", None)  # what kafka-python's reset_generation() leaves in group_metadata()


def test_the_writer_refuses_offsets_without_a_generation():
    producer = _Producer()
    writer = TransactionalWriter(producer, "predictions")
    with pytest.raises(Fenced):
        writer.commit([("events", 0, 56)], NO_GENERATION, [("g.model", b"events/0", b"part")])
    assert "commit" not in producer.calls, producer.calls  # the zombie's records and offsets never commit
    assert not any(c[0] == "offsets" for c in producer.calls if isinstance(c, tuple)), producer.calls


def test_the_writer_still_commits_a_member_of_a_generation():
    producer = _Producer()
    writer = TransactionalWriter(producer, "predictions")
    writer.commit([("events", 0, 56)], ("g", 3, "member-1", None))
    assert ("offsets", 3, "member-1") in producer.calls and "commit" in producer.calls


class _Source:
    """A source that still holds its partitions while its consumer's generation was reset."""

    def __init__(self):
        from kafka import TopicPartition

        self.tp = TopicPartition("events", 0)
        self.assigned = {self.tp}
        self.positions = {self.tp: 56}
        self.committed = {self.tp: 50}

    def fill_positions(self):
        pass

    def group_metadata(self):
        return NO_GENERATION


def test_the_coordinator_does_not_start_a_commit_for_a_member_out_of_the_group():
    publisher = StartedCommits()
    policy = CommitPolicy(200)
    policy.touch()
    coordinator = CommitCoordinator(_Source(), publisher, NullStore(), CommitMetrics(), policy)
    with pytest.raises(TransactionAborted):
        coordinator.commit("interval")
        coordinator.settle()
    assert not publisher.started, f"a commit of a member out of the group was started: {publisher.started}"
