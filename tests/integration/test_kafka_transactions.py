"""Transactional input against the real broker: an aborted transaction's events are never learned
(``read_committed``, the default), and a topic that ends in a transaction marker still ends.
"""

from __future__ import annotations

import json
import random

from daemon_kit import Kit, event
from kafka import KafkaProducer

from stream_cl.checkpoint import CheckpointStore


def produce_transactions(kit: Kit, topic: str) -> tuple[set[str], set[str]]:
    """100 committed, 50 aborted, 100 committed events; returns (committed ids, aborted ids)."""
    rng = random.Random(3)
    producer = KafkaProducer(bootstrap_servers=kit.bootstrap, transactional_id=f"it-tx-{kit.tag}")
    committed, aborted = set(), set()
    try:
        producer.init_transactions()
        for block, (n, commit) in enumerate([(100, True), (50, False), (100, True)]):
            producer.begin_transaction()
            for i in range(n):
                doc = event(1000 * block + i, rng)
                producer.send(topic, key=doc["id"].encode(), value=json.dumps(doc).encode())
                (committed if commit else aborted).add(doc["id"])
            producer.flush()  # on the log before the abort, as in a real aborted transaction
            producer.commit_transaction() if commit else producer.abort_transaction()
    finally:
        producer.close()
    return committed, aborted


def run_to_end(kit: Kit, name: str, topic: str, **kafka) -> tuple[set[str], dict, object]:
    preds = kit.topic(f"{name}-pred")
    daemon = kit.start(kit.config(name, [topic], kafka={"predictions_topic": preds, "stop_at_end": True, **kafka}))
    assert daemon.wait(120) == 0, daemon.log()[-3000:]  # it stops: the topic's last offset is a marker
    reader = kit.reader(preds)
    reader.read_to_end(60)
    return {r.key.decode() for r in reader.records}, kit.committed(f"it-{name}-{kit.tag}", topic), daemon


def test_read_committed_never_learns_an_aborted_transaction_and_reaches_the_end(kafka_bootstrap, tmp_path):
    kit = Kit(kafka_bootstrap, tmp_path)
    try:
        topic = kit.topic("tx")
        committed, aborted = produce_transactions(kit, topic)
        end = kit.end_offsets(topic)[0]
        assert end == 100 + 50 + 100 + 3  # three transaction markers

        ids, offsets, daemon = run_to_end(kit, "tx-committed", topic)
        assert ids == committed  # 200 predictions; none of the aborted 50
        assert offsets == {0: end}  # committed past the last marker: a restart reads nothing again
        assert daemon.status()["events"] == {"learned": 200}
        state, _ = CheckpointStore(tmp_path / "tx-committed-ckpt").load_latest()
        assert state["model"]["head"]["ridge"]["n_rows"] == 200
        assert [o for _, _, o in state["offsets"]] == [end]

        # the setting matters: read_uncommitted learns the aborted events too
        ids, offsets, _ = run_to_end(kit, "tx-uncommitted", topic, isolation_level="read_uncommitted")
        assert ids == committed | aborted
        assert offsets == {0: end}
    finally:
        kit.close()


# A member that dies (its whole process tree: a lost node, a killed pod) between sending its offsets
# to its transaction and committing it: the transaction, and the offsets it holds, stay open until
# the broker aborts it (its transaction.timeout.ms, then the broker's check every 10 s)
DEAD_MEMBER = """
import os, signal, sys
from kafka import KafkaProducer, TopicPartition
from kafka.structs import ConsumerGroupMetadata, OffsetAndMetadata
bootstrap, topic, preds, group = sys.argv[1:5]
p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=group + "-dead", transaction_timeout_ms=20000)
p.init_transactions()
p.begin_transaction()
p.send(preds, key=b"dead-member", value=b"{}")
p.flush()
p.send_offsets_to_transaction({TopicPartition(topic, 0): OffsetAndMetadata(5, "", -1)},
                              ConsumerGroupMetadata(group, -1, "", None))  # returns once the broker holds them
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_member_waits_for_offsets_a_dead_members_open_transaction_holds(kafka_kit):
    # found by review: the member taking the partition over asked for its committed offsets, got
    # UNSTABLE_OFFSET_COMMIT until the broker aborted the dead transaction, gave up at the session
    # timeout and exited 1 ("User rebalance callback throws an error"), as would the next member
    import signal
    import subprocess
    import sys

    kit = kafka_kit
    topic, preds = kit.topic("held"), kit.topic("held-pred")
    rng = random.Random(5)
    docs = [event(i, rng) for i in range(20)]
    kit.produce(topic, [(d["id"], d) for d in docs])
    group = f"it-held-{kit.tag}"  # the group kit.config("held", ...) joins
    dead = subprocess.run([sys.executable, "-c", DEAD_MEMBER, kit.bootstrap, topic, preds, group], timeout=120)
    assert dead.returncode == -signal.SIGKILL
    daemon = kit.start(kit.config("held", [topic], kafka={"predictions_topic": preds, "stop_at_end": True,
                                                          "session_timeout_ms": 6000}))
    assert daemon.wait(150) == 0, daemon.log()[-3000:]
    assert '"committed_offsets_waiting"' in daemon.log()  # it waited out the dead transaction
    reader = kit.reader(preds)
    reader.read_to_end(60)
    keys = sorted(r.key.decode() for r in reader.records)
    assert keys == sorted(d["id"] for d in docs)  # each event once; the aborted transaction's record never shows
    assert kit.committed(group, topic) == {0: 20}
