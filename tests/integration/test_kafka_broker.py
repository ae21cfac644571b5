"""The broker from deploy/kafka/dev-broker.sh is a real Kafka, not a port that
happens to be open: topics with several partitions, acknowledged produce,
consumer-group consumption and committed offsets all round-trip."""

import contextlib
import json
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

N_MESSAGES = 100
N_PARTITIONS = 3


def test_produce_consume_commit_roundtrip(kafka_bootstrap):
    topic = f"it-broker-{uuid.uuid4().hex}"  # unique: the broker may be shared by a whole run
    group = f"it-group-{uuid.uuid4().hex}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="it-admin")
    try:
        admin.create_topics(
            {topic: {"num_partitions": N_PARTITIONS, "replication_factor": 1}},
            timeout_ms=10_000,
            wait_for_metadata=True,
        )

        # bytes in, bytes out: callable (de)serializers are deprecated in kafka-python 3
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        futures = [
            producer.send(topic, key=f"k{i}".encode(), value=json.dumps({"i": i}).encode())
            for i in range(N_MESSAGES)
        ]
        producer.flush(timeout=30)
        written = [f.get(timeout=30) for f in futures]
        producer.close()
        # murmur2 over these fixed keys is deterministic and hits every partition
        assert {m.partition for m in written} == set(range(N_PARTITIONS))

        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        try:
            received = []
            deadline = time.monotonic() + 60  # bounded: poll() itself blocks, no sleeps
            while len(received) < N_MESSAGES and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=1000).values():
                    received.extend(json.loads(r.value)["i"] for r in records)
            assert sorted(received) == list(range(N_MESSAGES))

            consumer.commit()
            committed = [consumer.committed(TopicPartition(topic, p)) for p in range(N_PARTITIONS)]
        finally:
            consumer.close()
        assert sum(o or 0 for o in committed) == N_MESSAGES, committed

        # Same answer from the group coordinator via the admin API.
        offsets = admin.list_group_offsets({group: None})[group]
        assert sum(om.offset for tp, om in offsets.items() if tp.topic == topic) == N_MESSAGES
    finally:
        with contextlib.suppress(Exception):  # cleanup must not mask the real failure
            admin.delete_topics([topic])
        admin.close()
