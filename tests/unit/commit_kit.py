"""Fakes of what ``connectors.commit.CommitCoordinator`` drives (the state store, the publisher, the
metrics), for tests of its commits without a broker."""

from __future__ import annotations

from collections import Counter


class NullStore:
    """A state store with no changelog records and no checkpoint to write."""

    def records_for(self, covered, force=False):
        return []

    def snapshot(self, covered, reason):
        return None

    def committed(self, covered, reason):
        pass


class StartedCommits:
    """A publisher that records each commit started: ``started``, its (offsets, group metadata)."""

    def __init__(self):
        self.started = []

    def start_commit(self, offsets, group, records=()):
        self.started.append((offsets, group))

    def finish_commit(self, wait=True):
        return 0.001 if self.started else None


class CommitMetrics:
    """The metrics a coordinator counts into."""

    def __init__(self):
        self.transactions, self.commits, self.commit_deferrals = Counter(), 0, 0

        class _Histogram:
            def observe(self, v):
                pass

        self.commit_duration = _Histogram()
