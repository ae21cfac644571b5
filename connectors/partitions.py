"""A group member's learned state, partition by partition: restore, takeover, fold, changelog records.

The partition is the unit of state (as in Kafka Streams): each source partition's part of
the learner (:meth:`learner.contribution`) and its delayed-label store live in the model
changelog (:mod:`connectors.changelog`), keyed ``"topic/partition"``, written by the member
that owns the partition inside its transactions. :class:`PartitionStates` is the member's
side of it, in the places the daemon calls a state store:

* **restore** (start): the local checkpoint, a cache of the whole learner, if there is one;
* **catch-up** (``catch_up``, in the loop's thread before the source joins the group): read the
  changelog to its end, so that the takeover, which the whole group waits for, reads only what
  came since;
* **takeover** (``resume_at``, on assignment): read the changelog to its end, and for each
  assigned partition install the newer of its changelog part and the cached one; the
  partition resumes at the offset that part covers, and the source re-learns, silently,
  what the group committed after it;
* **records_for** (in each transaction): every ``changelog.every_events`` events of a
  partition or ``changelog.every_seconds``, the contributions of the owned partitions that
  changed, with the offsets they cover (events, and the co-partitioned labels partition);
* **fold** (every ``changelog.fold_every_seconds``): merge the latest parts of the
  partitions other members own, so that every member serves the same model, up to the
  changelog interval;
* **committed**: the local checkpoint cache, when due.

This module decides when a part is read, merged or written; the rules for one part (whose it
is, whether it fits this member's model, how it is encoded) are :mod:`connectors.changelog_parts`'.
"""

from __future__ import annotations

import logging
import time

from kafka import TopicPartition

from stream_cl.contribution import Contribution

from .changelog_parts import PartEncoder, PartReader
from .logs import log_event
from .state import CheckpointState

__all__ = ["PartitionStates", "partition_key"]

log = logging.getLogger("stream_cl.daemon")


def partition_key(topic: str, partition: int) -> str:
    """The state key of a source partition: ``"topic/partition"``."""
    return f"{topic}/{partition}"


class PartitionStates(CheckpointState):
    """The state store of a group member (module docstring); its local checkpoint is a cache."""

    def __init__(self, config, learner, pending, metrics, stats, table=None, store=None, loaded=None):
        super().__init__(config, learner, pending, metrics, stats, store, loaded)
        self.table = table  # ChangelogTable, or None (changelog off: the checkpoint is the only state)
        cl = config.changelog
        self.every_events, self.every_s, self.fold_every_s = cl.every_events, cl.every_seconds, cl.fold_every_seconds
        self.labels_topic = config.kafka.labels_topic
        self.reader = PartReader(config, learner, table)  # a part read, judged and merged
        self.encoder = PartEncoder(config, learner, pending)  # a part encoded as its changelog value
        self.owned: set[str] = set()  # partition keys of the events partitions this member holds
        self.changed: dict[str, int] = {}  # owned key -> events processed since its last changelog record
        self._written = time.monotonic()
        self._folded = 0.0
        # the first fold merges every key the table holds, not only those read since its last changed():
        # a table kept across a reset (connectors.daemon_build.RunChangelog) was folded into the learner that reset
        self._fold_all = True
        self.parts: dict[str, int | None] = {}  # key -> source offset of the part the model serves
        # keys whose part here (restored from the checkpoint) is ahead of their last changelog record:
        # their waiting events exist only here until that record is written
        self.ahead: set[str] = set()
        self.folds = self.fold_records = 0
        self.fold_seconds = 0.0
        self.changelog_records = self.changelog_bytes = 0

    # -- catch-up and takeover -------------------------------------------------------------------
    def catch_up(self) -> int:
        """Read the changelog to its end before the source joins the group; returns the records read.

        The takeover reads it again in the assignment callback (it must see what was written up to
        the assignment), which the whole group waits for: it ran on the consumer's IO thread, where no
        heartbeat went out while it read, and a read longer than the session timeout expelled the
        member during its own assignment (it now runs on a worker thread, within the rebalance
        timeout). Read here, the callback reads only what came since. No group waits on this thread yet, so a read
        that outlasts the table's timeout goes on while it makes progress (a long changelog); one
        that reads nothing in a whole timeout (an unreachable broker) raises."""
        if self.table is None:
            return 0
        read = 0
        while True:
            before = self.table.records
            try:
                return read + self.table.catch_up()
            except TimeoutError:
                if self.table.records == before:
                    raise
                read += self.table.records - before

    def resume_at(self, partitions) -> dict:
        """Install each assigned partition's newest state; return where each partition resumes."""
        events = [tp for tp in partitions if tp.topic != self.labels_topic]
        if self.table is not None and events:
            self.table.catch_up()
        self.reader.recount()
        out = {}
        for tp in events:
            key = partition_key(tp.topic, tp.partition)
            self.owned.add(key)
            start, labels_at = self._take_over(key, tp)
            if start is not None:
                out[tp] = start
            if labels_at is not None and self.labels_topic:
                out[TopicPartition(self.labels_topic, tp.partition)] = labels_at
        # waiting events of a partition restored from the checkpoint but assigned elsewhere: its owner
        # has them (from the changelog); kept here, they aged into false "expired" counts
        for key in self.pending.keys():
            if key is not None and key not in self.owned:
                self._drop_store(key)
        return out

    def _take_over(self, key: str, tp: TopicPartition) -> tuple[int | None, int | None]:
        """Install ``key``'s newest part; returns (where the partition resumes, where its labels resume).

        The model's own part of ``key`` (learned here, folded, or restored: ``self.parts``) is
        kept when it is newer than the changelog's, or as new and restored from the checkpoint
        (:meth:`_replaces`); otherwise the changelog's part (and its waiting events) replaces it.
        A part of other settings stops the member (:meth:`PartReader.merge`)."""
        served = self.parts.get(key)
        c = self.reader.read(key)
        labels_tp = TopicPartition(self.labels_topic, tp.partition) if self.labels_topic else None
        labels_here = self.offsets.get(labels_tp) if labels_tp is not None else None
        replaces = c is not None and self._replaces(key, c, served, labels_here)
        if replaces and self.reader.merge(key, c):
            self.parts[key] = c.offset
            self.ahead.discard(key)
            extra = c.pending or {}
            self.pending.install(key, extra.get("store"))
            log_event(log, "takeover", partition=key, source="changelog", offset=c.offset,
                      pending_labels=len(self.pending.for_key(key)),
                      waiting_labels=self.pending.for_key(key).waiting_labels)
            return c.offset, extra.get("labels")
        if replaces:  # refused, changing nothing (logged): as if the changelog held none
            c = None
        if served is not None:
            recorded = c is not None and c.offset == served and (c.pending or {}).get("labels") == labels_here
            if recorded:  # the restored part is the record's (equal offsets): the changelog owes nothing
                self.ahead.discard(key)
            elif self.table is not None:
                # the changelog is behind this part (restored from the checkpoint): it owes a record, written with
                # the next commit that is due and at the latest with the revocation's. A revocation drops the
                # partition's waiting events here; with no record holding them, taking the partition back from
                # this part found them gone, and their labels never joined
                self.changed.setdefault(key, 0)
                self.ahead.add(key)
            return served, labels_here
        return None, None

    def _replaces(self, key: str, c: Contribution, served: int | None, labels_here: int | None) -> bool:
        """Whether the changelog's part ``c`` of ``key`` replaces the model's own part (covering events
        up to ``served``; ``labels_here``: the labels offset the checkpoint covers): when it is newer.

        At equal events offsets the part the checkpoint restored (``ahead``) is kept: it holds the same
        events, restored exactly, while a record from a release before the heads' anchors were kept
        re-anchors the forgetting heads when installed alone (predictions then differed by up to 0.7
        after an upgrade). The labels co-partitioned with the events are not in that offset: joins
        learn too, so the part that covers more labels is the newer one; the record wins only when it
        covers more. What else differs between the two is checked all the same: the record was read
        (its group stamp compared, :meth:`PartReader.read`), and the checkpoint's settings were compared at
        restore. A part that is not the restored one (folded in, or written here since, or restored
        but dropped at a revocation: its waiting events gone) gives way to the record at equal
        offsets, so that a part a fold replaced can never pass for the newer one."""
        if served is None:
            return True
        if c.offset is None or c.offset != served:
            return c.offset is not None and c.offset > served
        if key not in self.ahead:
            return True
        theirs = (c.pending or {}).get("labels")
        return theirs is not None and (labels_here is None or theirs > labels_here)

    # -- checkpoints (a cache): which part of each partition the model serves ------------------
    def extra_state(self) -> dict:
        """What the checkpoint keeps besides the offsets: the parts served, as of which offsets, and the partitions
        owned."""
        return {"parts": dict(self.parts), "owned": sorted(self.owned)}

    def load_extra(self, state) -> None:
        """Which part of each partition the restored model serves: for the partitions this member
        owned, what the checkpoint's offsets cover (the model is ahead of their last changelog
        write); for the others, the part last folded in (``parts``)."""
        saved = state.get("parts") or {}
        self.parts = {k: (None if o is None else int(o)) for k, o in saved.items()}
        owned = set(state["owned"]) if "owned" in state else None  # absent: written before the changelog
        for tp, o in self.offsets.items():
            key = partition_key(tp.topic, tp.partition)
            if tp.topic != self.labels_topic and (owned is None or key in owned):
                self.parts[key] = o
                self.ahead.add(key)

    def drop(self, partitions) -> None:
        """Partitions revoked or lost: their state lives on in the changelog (and in the fold)."""
        for tp in partitions:
            key = partition_key(tp.topic, tp.partition)
            if key in self.owned:
                self.owned.discard(key)
                self.changed.pop(key, None)
                if key in self.ahead:  # its part is newer than its record: taken back, the record is installed
                    self._drop_store(key)
                elif key in self.pending.stores:  # kept, not owned: it neither ages nor expires until then (r108)
                    self.pending.stores[key].freeze()
                # else the store stays until the assignment that follows (resume_at drops the stores of the keys
                # it does not give back): a key given back whose revocation record the changelog cannot show yet
                # (its last stable offset held by another transaction) keeps its own part, and must keep the
                # waiting events written with it (review r104)

    def _drop_store(self, key: str) -> None:
        """Drop ``key``'s waiting events here: its owner has them, from the changelog. A part here still
        ahead of its changelog record (restored, its record not yet written: a restart onto other
        partitions, a partition lost before a commit) then stops being taken for the newer one, so
        taking the partition back installs the record with its waiting events, not this part without
        them. (With no record at all the part stays: the partition then resumes from it.)"""
        if key in self.ahead:
            self.ahead.discard(key)
            if self.table is not None and self.table.get(key) is not None:
                self.parts[key] = None
        self.pending.drop(key)

    # -- in each transaction --------------------------------------------------------------------
    def touched(self, key, n: int) -> None:
        """``n`` events of partition ``key`` were processed."""
        if key in self.owned:
            self.changed[key] = self.changed.get(key, 0) + n

    def records_due(self) -> bool:
        """Whether changed parts wait for their changelog write (a drained topic still owes the last ones)."""
        return self.table is not None and bool(self.changed) and time.monotonic() - self._written >= self.every_s

    def records_for(self, covered: dict, force: bool = False) -> list:
        """Changelog records of the owned partitions that changed, when due (always when ``force``)."""
        if self.table is None or not self.changed:
            return []
        due = force or time.monotonic() - self._written >= self.every_s
        keys = [k for k, n in self.changed.items() if due or n >= self.every_events]
        records = []
        for key in keys:
            topic, _, part = key.rpartition("/")
            tp = TopicPartition(topic, int(part))
            if tp not in covered:
                continue
            labels = covered.get(TopicPartition(self.labels_topic, tp.partition)) if self.labels_topic else None
            value = self.encoder.encode(key, covered[tp], labels)
            if self.encoder.last_evicted and self.offsets.get(tp) == covered[tp]:
                # the store changed, and the last checkpoint covers the record's very offset, so a restore would
                # take that checkpoint (a tie) with the evicted entries: the one after this commit holds the store
                self.changed_without_records = True
            records.append((self.reader.topic, key.encode(), value))
            self.reader.wrote(key)
            self.parts[key] = covered[tp]
            self.ahead.discard(key)
            self.changelog_records += 1
            self.changelog_bytes += len(value)
            del self.changed[key]
        if due:
            self._written = time.monotonic()
        return records

    # -- fold -----------------------------------------------------------------------------------
    def fold(self, force: bool = False) -> int:
        """Merge the latest parts of partitions other members own; returns how many were merged."""
        if self.table is None or (not force and time.monotonic() - self._folded < self.fold_every_s):
            return 0
        t0 = time.perf_counter()
        self._folded = time.monotonic()
        self.table.poll(0)
        keys = self.table.changed()
        if self._fold_all:  # (see __init__)
            keys |= set(self.table.keys())
            self._fold_all = False
        merged = 0
        for key in sorted(keys):
            c = None if key in self.owned else self.reader.read(key)
            if c is None:
                continue
            if not self.reader.merge(key, c, resum=False, takeover=False):  # one re-sum after the fold's merges
                continue
            self.parts[key] = c.offset
            self.ahead.discard(key)  # the record's part is served now, not the one a checkpoint restored
            merged += 1
        if merged:
            self.learner.resum()
            self.policy.add(merged)  # the served model changed: the next checkpoint (a cache) is due sooner
            self.folds += 1
            self.fold_records += merged
            self.fold_seconds += time.perf_counter() - t0
        return merged
