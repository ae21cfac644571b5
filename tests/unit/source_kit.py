"""A one-partition stand-in for :class:`connectors.kafka.KafkaSource`, for unit tests that drive a real
:class:`~connectors.daemon.Daemon` without a broker.

:class:`OnePartitionSource` resumes where the daemon's state ends (its ``on_assign``) and marks what
lies below the group's committed offset (``group[("events", 0)]``) as silent, as the real source
does; a subclass says what it holds (:meth:`size`) and how a poll reads it (:meth:`poll`), as
:class:`ItemsSource` does for a list of decoded events.
:class:`CommitAtOncePublisher` stands in for the daemon's publisher, committing at once as
``InlinePublisher`` does.
"""

from __future__ import annotations

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from connectors.kafka import PolledBatch


class OnePartitionSource:
    """Partition ``events/0`` of ``size()`` records (module docstring)."""

    def __init__(self, daemon, group: dict, batch: int):
        self.tp = TopicPartition("events", 0)
        self.batch, self.rebalances = batch, 0
        self.assigned = {self.tp}
        done = group.get(("events", 0))
        start = daemon.on_assign({self.tp}).get(self.tp, done or 0)
        self.positions = {self.tp: start}
        self.replay_until = done if done is not None and done > start else -1  # below it: silent
        self.committed = {} if done is None else {self.tp: done}

    def size(self) -> int:
        raise NotImplementedError

    def group_metadata(self):
        return ("g", 1, "m", None)

    def fill_positions(self):
        pass

    def take_warnings(self, final=False):
        return []

    def at_end(self):
        return self.positions[self.tp] >= self.size()

    def lag(self):
        return {self.tp: self.size() - self.positions[self.tp]}

    def close(self):
        pass


class ItemsSource(OnePartitionSource):
    """Decoded ``items`` (events and labels, in order) at offsets 0, 1, ... of events/0, ``batch`` a poll."""

    def __init__(self, daemon, items: list, group: dict, batch: int = 4):
        super().__init__(daemon, group, batch)
        self.items = items

    def size(self) -> int:
        return len(self.items)

    def poll(self, max_records):
        pos = self.positions[self.tp]
        chunk = self.items[pos : pos + min(self.batch, max_records)]
        self.positions[self.tp] = pos + len(chunk)
        silent = frozenset(item.origin for i, item in enumerate(chunk, pos) if i < self.replay_until)
        return PolledBatch(chunk, {}, silent)


class CommitAtOncePublisher:
    """Holds what is written until a commit makes it visible, as a Kafka transaction does."""

    def __init__(self, log, group):
        self.log, self.group = log, group  # group: the consumer group's committed offsets, shared across runs
        self.predictions, self.dead, self._open = [], [], ([], [])
        self.sent = 0
        self._done = False

    def write(self, predictions):
        self._open[0].extend(predictions)

    def write_dead(self, records):
        self._open[1].extend(records)

    def start_commit(self, offsets, group, records=()):  # committed at once, as InlinePublisher does
        self.log.append(f"commit:{offsets[0][2] if offsets else None}")
        self.predictions += self._open[0]
        self.dead += self._open[1]
        self._open = ([], [])
        self.group.update({(t, p): o for t, p, o in offsets})
        self._done = True

    def finish_commit(self, wait=True):
        done, self._done = self._done, False
        return 0.001 if done else None

    def check(self):
        pass

    def close(self):
        self._open = ([], [])  # what was not committed is aborted

    abort = close


class ListConsumer:
    """A consumer whose polls hand out a fixed list of records of events/0, ``max_records`` at a time."""

    def __init__(self, values: list[bytes]):
        self.records = [ConsumerRecord(topic="events", partition=0, leader_epoch=0, offset=i, timestamp=0,
                                       timestamp_type=0, key=None, value=v, headers=[], checksum=None,
                                       serialized_key_size=-1, serialized_value_size=-1 if v is None else len(v),
                                       serialized_header_size=-1)
                        for i, v in enumerate(values)]

    def subscribe(self, topics=(), pattern=None, listener=None):
        pass

    def poll(self, timeout_ms=0, max_records=500):
        out, self.records = self.records[:max_records], self.records[max_records:]
        return {TopicPartition("events", 0): out} if out else {}

    def partitions_for_topic(self, topic):
        return {0}

    def group_metadata(self):
        return ("g", 1, "m", None)

    def close(self, autocommit=True):
        pass
