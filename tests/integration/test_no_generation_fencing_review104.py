"""Review r104: the broker takes a transactional offset commit that carries no generation (-1), no member id
and no instance id, whoever owns the partitions: KIP-447 fences only what names a member. kafka-python resets
a member expelled from the group (frozen past its session timeout) to exactly that metadata, and the daemon's
source reads it at the end of a poll whose fetch waited while the heartbeat's answer reset it; the daemon's
writer must then refuse to commit (Fenced), as it does for a stale generation.

Seen end to end in review (r104_zombie_freeze.py): a daemon frozen 8 s past its 6 s session timeout
committed ``group=('it-zg-…', -1, '', None) offsets=[('2', 56), ('3', 58)] records=1`` 10 ms after its
heartbeat said "local member_id was not recognized", over the member that owned partitions 2 and 3: one
prediction twice for a read_committed reader, and its changelog part over the owner's.
"""

from daemon_kit import wait_for
from kafka import KafkaConsumer, KafkaProducer

from connectors.transaction import Fenced, TransactionAborted, TransactionalWriter


def test_a_commit_without_a_generation_is_refused_while_another_member_owns_the_partition(kafka_kit):
    events = kafka_kit.topic("r104-in", partitions=1)
    preds = kafka_kit.topic("r104-pred", partitions=1)
    group = f"it-r104-{kafka_kit.tag}"
    kafka_kit.produce(events, [(str(i), {"id": str(i)}) for i in range(10)])
    owner = KafkaConsumer(events, bootstrap_servers=kafka_kit.bootstrap, group_id=group, enable_auto_commit=False,
                          isolation_level="read_committed", auto_offset_reset="earliest")
    try:
        wait_for(lambda: owner.poll(200) is not None and owner.assignment(), 60, "the owner's assignment")
        producer = KafkaProducer(bootstrap_servers=kafka_kit.bootstrap, transactional_id=f"r104-zombie-{kafka_kit.tag}",
                                 enable_idempotence=True, acks=-1)
        writer = TransactionalWriter(producer, preds)
        producer.send(preds, key=b"zombie", value=b'{"id": "zombie"}')
        refused = False
        try:
            writer.commit([(events, 0, 4)], (group, -1, "", None))
        except (Fenced, TransactionAborted):
            refused = True
        finally:
            writer.close(timeout=5)
        committed = kafka_kit.committed(group, events)
        reader = kafka_kit.reader(preds)
        reader.read_to_end(60)  # read_committed: past the zombie's transaction once it is complete, either way
        assert refused, (f"a member with no generation committed over the partition's owner: the group's offset is "
                         f"now {committed}, and a read_committed reader sees {[r.key for r in reader.records]}")
        assert committed.get(0) is None and not reader.records
    finally:
        owner.close()
