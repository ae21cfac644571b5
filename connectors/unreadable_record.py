"""Records kafka-python cannot parse, found and stepped over as dead letters instead of stopping the daemon.

kafka-python (3.0) refuses some records the broker holds and Java clients read: a header whose
name is not UTF-8 (Go clients such as franz-go and sarama take any bytes for it; the Java
client reads it with replacement characters), or a batch that fails its checksum. Its
``poll()`` then raises ``CorruptRecordError`` without saying which partition, and the next
``poll()`` of that consumer loops without end. The daemon stopped on it, and every restart
met it again at the same offset: one record stopped the group for good.

kafka-python parses a record batch whole, the records below the offset it was asked for too,
so the records after an unreadable one in its batch cannot be read either, by this client.
:class:`UnreadableRecords` finds where reading fails: a poll that raises returned nothing, so
the first record at some partition's position is the one. A probe consumer (no group, the
source's own connection, isolation and fetch settings; one for the source's life) reads one
record at each position that has one; where it raises, it reads again one offset on, and on,
until it reads a record or the partition's end. The source steps over that run of offsets,
each a ``malformed`` dead letter (kafka-python cannot give their bytes: the detail says how to
read them with Kafka's own tools), committed with the offsets as every other output.

>>> from kafka import TopicPartition
>>> [d.origin for d in unreadable_letters(TopicPartition("events", 3), 17, 19, ValueError("bad header name"))]
['events/3@17', 'events/3@18']
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CorruptRecordError

from stream_cl.events import DeadLetter

__all__ = ["FIND_TIMEOUT_S", "UnreadableRecords", "unreadable_letters"]

FIND_TIMEOUT_S = 30.0  # one search, all partitions: a read of one record from a reachable broker takes milliseconds
READ_TIMEOUT_S = 5.0  # one read: a partition whose end is past its position but returns nothing (a leader moving)
MAX_RUN = 10_000  # offsets stepped over at one search; a longer run goes on at the next poll's error


class UnreadableRecords:
    """Where a partitioned source's records cannot be read by kafka-python (module docstring).

    ``options``: the source's client settings (connection, security), ``settings``: its consumer's
    isolation and fetch sizes. The probe consumer is made at the first search and kept until :meth:`close`.
    """

    def __init__(self, options: Mapping, **settings):
        self.options, self.settings = dict(options), settings
        self.last: TopicPartition | None = None  # the partition of the last run found: tried first
        self._probe: KafkaConsumer | None = None

    def find(self, positions: Mapping[TopicPartition, int],
             timeout_s: float = FIND_TIMEOUT_S) -> tuple[TopicPartition, int, int] | None:
        """``(tp, first, stop)``: offsets ``first`` (a partition's position) to ``stop`` (excluded) of ``tp`` that
        kafka-python cannot read; None where every position reads (a fault that came and went)."""
        deadline = time.monotonic() + timeout_s
        if self._probe is None:
            self._probe = KafkaConsumer(**self.options, **self.settings, group_id=None, enable_auto_commit=False,
                                        allow_auto_create_topics=False)
        probe = self._probe
        ends = probe.end_offsets(list(positions))
        order = sorted(positions, key=lambda tp: tp != self.last)  # (stable: the rest as given)
        for tp in order:
            first, end = positions[tp], ends.get(tp, 0)
            if end <= first or time.monotonic() > deadline:
                continue  # nothing to read there
            probe.assign([tp])  # (the partition read before is given up, its fetched records with it)
            if self._read(tp, first, deadline) != "unreadable":
                continue
            stop = first + 1
            while stop < end and stop - first < MAX_RUN and self._read(tp, stop, deadline) == "unreadable":
                stop += 1
            self.last = tp
            return tp, first, stop
        return None

    def _read(self, tp: TopicPartition, offset: int, deadline: float) -> str:
        """What reading ``tp`` from ``offset`` meets first: ``"record"``, ``"unreadable"`` or ``"nothing"``."""
        probe = self._probe
        probe.seek(tp, offset)  # (which also drops a fetch kafka-python would loop on)
        until = min(deadline, time.monotonic() + READ_TIMEOUT_S)
        try:
            while time.monotonic() < until:
                if probe.poll(timeout_ms=200, max_records=1):
                    return "record"
        except CorruptRecordError:
            return "unreadable"
        return "nothing"

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None


def unreadable_letters(tp: TopicPartition, first: int, stop: int, error: Exception) -> list[DeadLetter]:
    """The dead letters of offsets ``first`` to ``stop`` (excluded) of ``tp``, which kafka-python could not read."""
    letters = []
    for offset in range(first, stop):
        letters.append(DeadLetter(
            None, "malformed",
            f"kafka-python cannot read from this offset ({error}): the record here, or one before it in its record "
            "batch (kafka-python parses a batch whole), is one it cannot parse, so it was stepped over and its bytes "
            "are not here; read it with Kafka's own tools: kafka-console-consumer.sh --bootstrap-server HOST:PORT "
            f"--topic {tp.topic} --partition {tp.partition} --offset {offset} --max-messages 1 "
            "--property print.headers=true", f"{tp.topic}/{tp.partition}@{offset}"))
    return letters
