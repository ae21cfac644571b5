"""A record kafka-python cannot parse, found and stepped over as a dead letter instead of stopping the daemon.

kafka-python (3.0) refuses some records the broker holds and Java clients read: a header whose
name is not UTF-8 (Go clients such as franz-go and sarama take any bytes for it; the Java
client reads it with replacement characters), or a batch that fails its checksum. Its
``poll()`` then raises ``CorruptRecordError`` without saying which partition, and the next
``poll()`` of that consumer loops without end. The daemon stopped on it, and every restart
met it again at the same offset: one record stopped the group for good.

:func:`find_unreadable` names the partition: the record is the first one at its partition's
position (a poll that raises returned nothing). A probe consumer, with the client's own
connection settings and isolation, reads one record at each position that has one; the
partition whose read raises holds it. The source then seeks past it and hands on a
``malformed`` dead letter for its offset (kafka-python cannot give its bytes: the dead letter
says how to read it with Kafka's own tools), committed with the offsets as every other output.
On a compacted topic whose position falls in a gap below such a record, the step is one offset:
the gap's offsets are dead letters too until the record's own is reached.

>>> from kafka import TopicPartition
>>> tp = TopicPartition("events", 3)
>>> unreadable_letter(tp, 17, ValueError("bad header name")).origin
'events/3@17'
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CorruptRecordError

from stream_cl.events import DeadLetter

__all__ = ["PROBE_TIMEOUT_S", "find_unreadable", "unreadable_letter"]

PROBE_TIMEOUT_S = 10.0  # per partition: a fetch of one record from a reachable broker takes milliseconds


def find_unreadable(options: Mapping, isolation_level: str, positions: Mapping[TopicPartition, int],
                    timeout_s: float = PROBE_TIMEOUT_S) -> TopicPartition | None:
    """The partition whose record at ``positions[tp]`` kafka-python cannot parse, else None.

    ``options``: the client's connection settings (``connectors.kafka.client_options``). Only partitions
    with a record at their position are read, one record each, by a consumer of no group (it commits
    nothing); the first whose read raises ``CorruptRecordError`` is returned.
    """
    probe = KafkaConsumer(**options, group_id=None, enable_auto_commit=False, isolation_level=isolation_level,
                          allow_auto_create_topics=False)
    try:
        ends = probe.end_offsets(list(positions))
        for tp, position in positions.items():
            if ends.get(tp, 0) <= position:
                continue  # nothing to read there
            probe.assign([tp])  # (the partition read before is given up, its fetched records with it)
            probe.seek(tp, position)
            deadline = time.monotonic() + timeout_s
            try:
                while time.monotonic() < deadline:
                    if probe.poll(timeout_ms=500, max_records=1):
                        break
            except CorruptRecordError:
                return tp
        return None
    finally:
        probe.close()


def unreadable_letter(tp: TopicPartition, offset: int, error: Exception) -> DeadLetter:
    """The dead letter of the record at ``offset`` of ``tp`` that kafka-python could not parse (``error``)."""
    where = f"{tp.topic}/{tp.partition}@{offset}"
    return DeadLetter(None, "malformed",
                      f"kafka-python cannot read this record ({error}), so it was stepped over and its bytes are not "
                      f"here; read it with Kafka's own tools: kafka-console-consumer.sh --bootstrap-server HOST:PORT "
                      f"--topic {tp.topic} --partition {tp.partition} --offset {offset} --max-messages 1 "
                      f"--property print.headers=true", where)
