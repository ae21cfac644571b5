"""A fake model changelog for the unit tests of :class:`connectors.partitions.PartitionStates`."""

from __future__ import annotations


class FakeTable:
    """What PartitionStates reads of a ChangelogTable: the latest value per key."""

    topic = "g.model"

    def __init__(self, values=None):
        self.values = dict(values or {})

    def catch_up(self):
        return 0

    def poll(self, timeout_ms=0):
        return 0

    def get(self, key):
        return self.values.get(key)

    def keys(self):
        return list(self.values)

    def changed(self):
        return set(self.values)
