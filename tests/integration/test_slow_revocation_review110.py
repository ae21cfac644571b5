"""Review r110: a member whose revocation takes longer than its session timeout keeps its membership, and the
commit it makes at the end of that revocation is taken.

The revocation's commit (every changed part encoded, a transaction, a checkpoint) ran in kafka-python's
rebalance listener, on the consumer's IO thread, where no heartbeat goes out. The review measured 15 s for 24
changed parts of a 150-input model on two cores, and a 50 s revocation when the broker was slow to take a
commit that ``kafka.commit_timeout_ms`` (60 s) allows; past ``kafka.session_timeout_ms`` the broker dropped the
member and fenced that commit ("group metadata mismatch: UnknownMemberIdError"), and with traffic going on the
two members of a group started over four times in two minutes without ever holding a split of the partitions.
The owner's work now runs on a worker thread while the IO thread goes on heartbeating
(``connectors.kafka_assignment.off_the_io_thread``).
"""

from __future__ import annotations

import threading

from daemon_kit import wait_for
from kafka import KafkaConsumer, KafkaProducer

from connectors.kafka import KafkaSource
from connectors.transaction import TransactionAborted, TransactionalWriter
from stream_cl.config import KafkaConfig, MappingConfig

SESSION_MS = 6000  # the broker's group.min.session.timeout.ms; the project's own group tests use it too


class _SlowRevocation:
    """Daemon.on_revoke's shape: the group's metadata, a long piece of work, then the transactional commit."""

    def __init__(self, writer: TransactionalWriter, topic: str):
        self.writer, self.topic = writer, topic
        self.source: KafkaSource | None = None
        self.outcome: object = None
        self.done = threading.Event()

    def on_assign(self, partitions):
        return {}

    def on_wait(self):
        pass

    def on_revoke(self, partitions, lost):
        group = self.source.group_metadata()
        # the work a wide model's revocation does, 1.6 session timeouts long (r110: 15 s for 24 parts of a
        # 150-input model); a stand-in for that work's length, not a wait for anything
        threading.Event().wait(1.6 * SESSION_MS / 1000)
        try:
            self.writer.commit([(self.topic, 0, 5)], group)
            self.outcome = "committed"
        except TransactionAborted as e:  # (Fenced among them)
            self.outcome = e
        self.done.set()


def test_a_revocation_longer_than_the_session_timeout_keeps_the_member_and_its_commit(kafka_kit):
    events = kafka_kit.topic("r110-in", partitions=1)
    preds = kafka_kit.topic("r110-pred", partitions=1)
    group = f"it-r110-{kafka_kit.tag}"
    kafka_kit.produce(events, [(str(i), {"id": str(i)}) for i in range(10)])
    producer = KafkaProducer(bootstrap_servers=kafka_kit.bootstrap, transactional_id=f"r110-{kafka_kit.tag}",
                             enable_idempotence=True, acks=-1)
    writer = TransactionalWriter(producer, preds)
    hooks = _SlowRevocation(writer, events)
    cfg = KafkaConfig(bootstrap_servers=kafka_kit.bootstrap, topics=[events], group_id=group,
                      session_timeout_ms=SESSION_MS, auto_offset_reset="earliest")
    source = KafkaSource(cfg, MappingConfig(), hooks=hooks)
    hooks.source = source
    joining = KafkaConsumer(bootstrap_servers=kafka_kit.bootstrap, group_id=group, enable_auto_commit=False,
                            session_timeout_ms=SESSION_MS, auto_offset_reset="earliest")
    stop = threading.Event()

    def join():  # a second member: its join makes the group revoke the first member's partition
        joining.subscribe([events])
        while not stop.is_set():
            joining.poll(200)

    second = threading.Thread(target=join, daemon=True)
    try:
        wait_for(lambda: source.poll(100) is not None and source.assigned, 60, "the first member's assignment")
        producer.send(preds, key=b"0", value=b'{"id": "0"}')  # a prediction in the revocation's transaction
        second.start()
        wait_for(lambda: source.poll(100) is not None and hooks.done.is_set(), 120, "the slow revocation's end")
        assert hooks.outcome == "committed", (
            f"the member was dropped during its {1.6 * SESSION_MS / 1000:.1f} s revocation (no heartbeat went out) "
            f"and its commit was refused: {hooks.outcome!r}; the group's offset is {kafka_kit.committed(group, events)}")
        # (the transaction's markers reach the group's offsets a moment after the commit returns)
        wait_for(lambda: kafka_kit.committed(group, events) == {0: 5}, 60, "the revocation's offset in the group")
        reader = kafka_kit.reader(preds)
        reader.read_to_end(60)
        assert [r.key for r in reader.records] == [b"0"]
    finally:
        stop.set()
        if second.is_alive():
            second.join(30)
        joining.close()
        source.close()
        writer.close(timeout=5)
