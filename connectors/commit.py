"""The commit path: outputs, offsets and state of a commit interval become durable together.

A :class:`CommitCoordinator` commits every ``kafka.commit_interval_ms`` (and on
revocation and shutdown), as numbered steps, in this order:

1. **positions**: the next offset of every assigned partition, moved past what Kafka
   itself skipped (transaction markers, aborted records, compaction gaps);
2. **state records**: what the state store wants to go into this transaction (the model
   changelog: the contributions of the partitions that changed, when due);
3. **transaction**: the publisher commits the interval's predictions and dead letters,
   the state records, and the offsets (with the consumer's group metadata, so a member
   of a stale generation is refused) as one Kafka transaction;
4. **after**: the store may write its local cache (a checkpoint of the state and the
   offsets it covers), which only shortens a later recovery. The store takes it when the
   commit starts (step 4 covers the state as of step 2) and saves it once step 3 is done.

An interval's transaction commits while the loop goes on: step 3 is started, and the loop
polls, learns and writes the next interval's events (into the next transaction) while the
publisher flushes and commits. The commit is finished (:meth:`CommitCoordinator.settle`)
as soon as the publisher answers; only then do the offsets count as committed, and only
then is its checkpoint saved. An interval commit that comes due while the one before is
still under way is not started then (:meth:`CommitCoordinator.commit_when_free`): the loop
goes on, its events go into the open transaction, and the commit starts at the first turn
that finds the publisher done (or, once the one under way is :data:`DEFER_LIMIT_S` old,
after waiting for it, within the publisher's commit timeout). The commits at revocation and
shutdown wait for the one under way, and for themselves. Waiting for each interval's
transaction had cost the loop a tenth of its time on the benchmark machine (RESULTS.md 9i);
waiting for those a checkpoint followed, and for the one before when the next came due,
3-4 µs per event more (9l).

While a restored state re-learns the records below the group's committed offsets, those
committed offsets stay as they are (the transaction never moves them back).

Nothing is committed when nothing changed. If step 3 fails, nothing of the interval is
visible, and the daemon's in-memory state is ahead of what is committed: the caller
must drop it (a restart restores the last committed state and re-learns from there).
That holds for a failure found when a commit is finished, too: the events learned since
it started are dropped with the rest, and what they wrote never commits (the publisher
is aborted with the daemon).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from stream_cl.events import PartitionedSource, TransactionalPublisher

from .logs import log_event
from .transaction import Fenced, TransactionAborted, out_of_group

__all__ = ["CommitCoordinator", "CommitPolicy", "DEFER_LIMIT_S"]

# How long an interval commit may be put off because the one before is still under way. A
# commit takes tens of milliseconds on a healthy broker; past this, the loop waits for it, so
# that a publisher that stopped answering meets its commit timeout instead of being asked forever.
DEFER_LIMIT_S = 2.0

log = logging.getLogger("stream_cl.daemon")


class CommitPolicy:
    """Due every ``every_ms`` milliseconds once something changed (``touch``), or at once when forced."""

    def __init__(self, every_ms: float, clock=time.monotonic):
        self.every_s = every_ms / 1000.0
        self.clock = clock
        self.last = clock()
        self.dirty = False

    def touch(self) -> None:
        """Something was processed: a commit becomes due once ``every_ms`` have passed."""
        self.dirty = True

    def due(self) -> bool:
        """Whether something changed and ``every_ms`` passed since the last commit."""
        return self.dirty and self.clock() - self.last >= self.every_s

    def done(self) -> None:
        """A commit was made: nothing is due until the next :meth:`touch` and interval."""
        self.dirty = False
        self.last = self.clock()


class CommitCoordinator:
    """Runs the commit steps (module docstring) for one daemon: its source, publisher and state store."""

    def __init__(self, source: PartitionedSource, publisher: TransactionalPublisher, store, metrics, policy: CommitPolicy):
        self.source = source
        self.publisher = publisher
        self.store = store
        self.metrics = metrics
        self.policy = policy
        self._under_way: _Transaction | None = None

    def commit(self, reason: str, partitions=None) -> dict:
        """Commit now (steps 1-4); returns the offsets of this commit (``{TopicPartition: offset}``).

        ``partitions``: the partitions whose offsets go into the transaction (default:
        every assigned one). An ``"interval"`` commit may still be under way on return
        (module docstring); any other is finished. Raises :class:`TransactionAborted`
        (:class:`Fenced`) when this transaction, or the one under way before it, could not be
        committed, and :class:`DeliveryError` when the publisher is gone.
        """
        began, before = self.policy.clock(), self._under_way is not None
        self.settle()  # one transaction at a time: the one before this
        waited = self.policy.clock() - began  # (said in a revocation's or shutdown's commit line: review r120)
        src = self.source
        if partitions is None:
            src.fill_positions()  # 1. past markers and compaction gaps (blocking: main thread only)
            partitions = set(src.assigned)
        covered = {tp: src.positions[tp] for tp in partitions if tp in src.positions}  # what the state has learned
        # while a restored state re-learns up to the committed offset, the group's offset stays where it is:
        # moving it back would publish the re-learned records' outputs again after the next restart
        offsets = {tp: max(o, src.committed.get(tp, o)) for tp, o in covered.items()}
        changed = {tp: o for tp, o in offsets.items() if src.committed.get(tp) != o}
        records = self.store.records_for(covered, force=reason != "interval")  # 2. (every changed part at the end)
        if not changed and not records and not self.policy.dirty:
            self.policy.done()
            if reason != "interval":
                self.store.committed(covered, reason)  # the store may still owe a checkpoint of what it covers
                if before:  # its wait is said all the same: a revocation may have waited long (review r122)
                    log_event(log, "commit", reason=reason, partitions=0, records=0, seconds=0.0,
                              waited_s=round(waited, 4), detail="nothing new after the transaction under way")
            return offsets
        group = src.group_metadata()
        why = out_of_group(group) if offsets else None
        if why is not None:  # not started at all (the writer refuses it too)
            self.metrics.transactions["fenced"] += 1  # counted as the writer's refusal of it is (r108)
            raise Fenced(why)
        self.publisher.start_commit([(tp.topic, tp.partition, o) for tp, o in sorted(offsets.items())],  # 3.
                                    group, records)
        self.policy.done()
        # step 4 covers the state as it is now: taken now, saved once the transaction is committed
        checkpoint = self.store.snapshot(covered, reason)
        self._under_way = _Transaction(offsets, reason, len(records), checkpoint, self.policy.clock(), waited)
        if reason != "interval":
            self.settle()
        return offsets

    def commit_when_free(self) -> bool:
        """An ``"interval"`` commit, unless the one before is still under way: then nothing now
        (the caller tries again at its next turn). Returns whether a commit was made. Waiting for
        the publisher here had cost the loop 3-4 µs per event on the benchmark machine
        (RESULTS.md 9l); a transaction that starts later only holds more events."""
        t = self._under_way
        if t is not None and self.policy.clock() - t.started < DEFER_LIMIT_S and not self.settle(wait=False):
            self.metrics.commit_deferrals += 1
            return False
        self.commit("interval")
        return True

    def settle(self, wait: bool = True) -> bool:
        """Finish the transaction under way, if any (``wait=False``: only if the publisher has
        answered); returns whether none is under way now. Raises as :meth:`commit` does."""
        t = self._under_way
        if t is None:
            return True
        m = self.metrics
        try:
            seconds = self.publisher.finish_commit(wait)
        except TransactionAborted as e:
            self._under_way = None
            m.transactions["fenced" if isinstance(e, Fenced) else "aborted"] += 1
            raise
        if seconds is None:
            return False
        self._under_way = None
        m.transactions["committed"] += 1
        m.commits += 1
        m.commit_duration.observe(seconds)
        self.source.committed.update(t.offsets)
        if t.checkpoint is not None:
            self.store.write(t.checkpoint)  # 4.
        if t.reason != "interval":
            log_event(log, "commit", reason=t.reason, partitions=len(t.offsets), records=t.records,
                      seconds=round(seconds, 4), waited_s=round(t.waited, 4))
        return True


@dataclass(frozen=True)
class _Transaction:
    """A commit started and not yet finished: what :meth:`CommitCoordinator.settle` completes."""

    offsets: dict  # {TopicPartition: offset} in the transaction
    reason: str
    records: int  # state records in it
    checkpoint: object  # step 4's checkpoint (the store's snapshot as of the start), or None
    started: float  # the policy's clock when it started
    waited: float = 0.0  # seconds it waited for the transaction before it to finish
