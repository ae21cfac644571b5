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
