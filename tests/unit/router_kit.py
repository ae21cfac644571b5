"""Helpers for the unit tests that drive the daemon's :class:`~connectors.router.Router` without a broker."""

from __future__ import annotations


class RecordingPublisher:
    """Stands in for the daemon's publisher: keeps what the router writes."""

    def __init__(self):
        self.predictions, self.dead = [], []

    def write(self, predictions):
        self.predictions += predictions

    def write_dead(self, records):
        self.dead += records


class GroupPublisher(RecordingPublisher):
    """A publisher for a whole :class:`~connectors.daemon.Daemon`: each commit is done at once, into the
    consumer group's committed offsets ``group`` (a dict shared by the processes a test runs in turn)."""

    def __init__(self, group: dict):
        super().__init__()
        self.group = group

    def start_commit(self, offsets, group_metadata, records=()):
        self.group.update({(t, p): o for t, p, o in offsets})

    def finish_commit(self, wait=True):
        return 0.001

    def check(self):
        pass

    def close(self):
        pass

    abort = close
