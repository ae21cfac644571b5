"""Records kafka-python cannot parse, found and stepped over as dead letters instead of stopping the daemon.

kafka-python (3.0) refuses some records the broker holds and Java clients read: a header whose
name is not UTF-8 (Go clients such as franz-go and sarama take any bytes for it; the Java
client reads it with replacement characters), or a batch that fails its checksum. Its
``poll()`` then raises ``CorruptRecordError`` without saying which partition, and the next
``poll()`` of that consumer loops without end. The daemon stopped on it, and every restart
met it again at the same offset: one record stopped the group for good.

The endless loop is kafka-python's failed fetch, kept as the next to read: ``seek()`` drops it only
where the new offset differs from where that fetch stopped (after a transaction marker, say, it
stopped one past the offset read). kafka-python has no public way to drop it, so
:func:`drop_failed_fetch` does it through its fetcher's private state, and says where that state is
not as expected (another kafka-python): the daemon then stops on the error, as it did before.

kafka-python parses a record batch whole, the records below the offset it was asked for too,
so the records after an unreadable one in its batch cannot be read either, by this client.
:class:`UnreadableRecords` finds where reading fails: a poll that raises returned nothing, so
the first record at some partition's position is the one. A probe consumer (no group, the
source's own connection, isolation and fetch settings; one for the source's life) reads one
record at each position that has one; where it raises, it reads again one offset on, and on,
until it reads a record or the partition's end (offsets of no record just before it, a transaction's
marker or an aborted record, are in the run too). The source steps over that run of offsets,
each a ``malformed`` dead letter (kafka-python cannot give their bytes: the detail says how to
read them with Kafka's own tools), committed with the offsets as every other output.

>>> from kafka import TopicPartition
>>> [d.origin for d in unreadable_letters(TopicPartition("events", 3), 17, 19, ValueError("bad header name"))]
['events/3@17', 'events/3@18']
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CorruptRecordError

from stream_cl.events import DeadLetter

from .kafka_assignment import LOOKUP_TIMEOUT_MS, ms_left, tp_key
from .logs import log_event

__all__ = ["FIND_TIMEOUT_S", "UnreadableRecords", "drop_failed_fetch", "step_over", "unreadable_letters"]

log = logging.getLogger("stream_cl.kafka")

FIND_TIMEOUT_S = 30.0  # one search, all partitions: a read of one record from a reachable broker takes milliseconds
READ_TIMEOUT_S = 5.0  # one read: a partition whose end is past its position but returns nothing (a leader moving)
MAX_RUN = 10_000  # offsets stepped over at one search; a longer run goes on at the next poll's error


def drop_failed_fetch(consumer) -> bool:
    """Drop the fetch a ``poll()`` of ``consumer`` failed in, which the next poll would loop on (module docstring);
    False where kafka-python's fetcher is not as this reads it, and then the consumer must not be polled again."""
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not hasattr(fetcher, "_next_partition_records"):
        return False
    failed = fetcher._next_partition_records
    if failed is not None:
        failed.drain()  # (kafka-python's own end of a partition's fetched records: its metrics, then gone)
        fetcher._next_partition_records = None
    return True


class UnreadableRecords:
    """Where a partitioned source's records cannot be read by kafka-python (module docstring).

    ``options``: the source's client settings (connection, security), ``settings``: its consumer's
    isolation and fetch sizes. The probe consumer is made at the first search and kept until :meth:`close`.
    """

    def __init__(self, options: Mapping, **settings):
        self.options, self.settings = dict(options), settings
        self.last: TopicPartition | None = None  # the partition of the last run found: tried first
        self._probe: KafkaConsumer | None = None

    def find(self, positions: Mapping[TopicPartition, int], timeout_s: float = FIND_TIMEOUT_S,
             max_run: int = MAX_RUN) -> tuple[TopicPartition, int, int] | None:
        """``(tp, first, stop)``: offsets ``first`` (a partition's position) to ``stop`` (excluded) of ``tp`` that
        kafka-python cannot read; None where every position reads. A search that runs out of ``timeout_s`` before
        it finds one raises ``TimeoutError``; one cut by it after, or by ``max_run``, returns the run so far."""
        deadline = time.monotonic() + timeout_s
        probe = self._consumer()  # (made at the first search: its connection counts against the time)
        ends = probe.end_offsets(list(positions), timeout_ms=ms_left(deadline))
        order = sorted(positions, key=lambda tp: tp != self.last)  # (stable: the rest as given)
        for tp in order:
            first, end = positions[tp], ends.get(tp, 0)
            if end <= first:
                continue  # nothing to read there
            if time.monotonic() > deadline:
                raise TimeoutError(f"the search for the record kafka-python cannot read ran past {timeout_s:g} s")
            if self._read(tp, first, end, deadline) != "unreadable":
                continue
            stop = first + 1
            while stop < end and stop - first < max_run and self._read(tp, stop, end, deadline) == "unreadable":
                stop += 1
            self.last = tp
            return tp, first, stop
        return None

    def _consumer(self) -> KafkaConsumer:
        if self._probe is None:
            # (a fetch of nothing but markers or aborted records waits fetch_max_wait_ms at the broker: kept short)
            self._probe = KafkaConsumer(**self.options, **self.settings, group_id=None, enable_auto_commit=False,
                                        allow_auto_create_topics=False, fetch_max_wait_ms=50)
        return self._probe

    def _read(self, tp: TopicPartition, offset: int, end: int, deadline: float) -> str:
        """What reading ``tp`` from ``offset`` meets first: ``"record"``, ``"unreadable"`` or ``"nothing"`` (the end,
        ``end``, reached past markers and aborted records, or no answer in time)."""
        probe = self._consumer()
        probe.assign([tp])  # (the partition read before is given up, its fetched records with it)
        probe.seek(tp, offset)
        until = min(deadline, time.monotonic() + READ_TIMEOUT_S)
        try:
            while time.monotonic() < until:
                if probe.poll(timeout_ms=50, max_records=1):
                    return "record"
                position = probe.position(tp, timeout_ms=ms_left(until))
                if position is None or position >= end:  # (None: not known in time, as no answer)
                    return "nothing"
        except CorruptRecordError:
            if not drop_failed_fetch(probe):  # (its next poll would loop: a new probe reads next)
                self.close()
            return "unreadable"
        return "nothing"

    def close(self) -> None:
        """Close the probe consumer, if one was made."""
        if self._probe is not None:
            self._probe.close()
            self._probe = None


def step_over(consumer, assigned: Collection[TopicPartition], search: UnreadableRecords, error: CorruptRecordError,
              max_records: int) -> tuple[TopicPartition, int, list[DeadLetter]]:
    """After ``consumer``'s poll raised ``error``: ``(tp, first, letters)``, the dead letters of at most ``max_records``
    offsets of ``tp`` from ``first`` that kafka-python cannot read, found by ``search`` among the ``assigned``
    partitions' positions, with the fetch it failed in dropped and the consumer sought past them. Found nowhere,
    where the search fails, or where the failed fetch cannot be dropped, ``error`` is raised: the daemon stops, and
    starts with a new consumer."""
    positions = {tp: consumer.position(tp, timeout_ms=LOOKUP_TIMEOUT_MS) for tp in assigned}
    try:
        found = search.find({tp: p for tp, p in positions.items() if p is not None},
                            max_run=min(max(max_records, 1), MAX_RUN))
    except Exception as e:  # noqa: BLE001 -- the search's own failure: the poll's error is the one to report
        drop_failed_fetch(consumer)  # (the consumer is not read again; a poll would loop on it)
        raise error from e
    if not drop_failed_fetch(consumer) or found is None:
        raise error
    tp, first, stop = found
    letters = unreadable_letters(tp, first, stop, error)
    log_event(log, "unreadable_record", level=logging.WARNING, origin=letters[0].origin, offsets=stop - first,
              error=str(error))
    consumer.seek(tp, stop)
    return tp, first, letters


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
            "--property print.headers=true", f"{tp_key(tp)}@{offset}"))
    return letters
