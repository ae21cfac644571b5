"""A one-partition stand-in for :class:`connectors.kafka.KafkaSource`, for unit tests that drive a real
:class:`~connectors.daemon.Daemon` without a broker.

:class:`OnePartitionSource` resumes where the daemon's state ends (its ``on_assign``) and marks what
lies below the group's committed offset (``group[("events", 0)]``) as silent, as the real source
does; a subclass says what it holds (:meth:`size`) and how a poll reads it (:meth:`poll`).
"""

from __future__ import annotations

from kafka import TopicPartition


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

    def take_warnings(self):
        return []

    def at_end(self):
        return self.positions[self.tp] >= self.size()

    def lag(self):
        return {self.tp: self.size() - self.positions[self.tp]}

    def close(self):
        pass
