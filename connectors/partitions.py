"""A group member's learned state, partition by partition: restore, takeover, fold, changelog records.

The partition is the unit of state (as in Kafka Streams): each source partition's part of
the learner (:meth:`learner.contribution`) and its delayed-label store live in the model
changelog (:mod:`connectors.changelog`), keyed ``"topic/partition"``, written by the member
that owns the partition inside its transactions. :class:`PartitionStates` is the member's
side of it, in the places the daemon calls a state store:

* **restore** (start): the local checkpoint, a cache of the whole learner, if there is one;
* **catch-up** (``catch_up``, in the loop's thread before the source joins the group): read the
  changelog to its end, so that the takeover, which runs on the consumer's IO thread where no
  heartbeat goes out while it reads, reads only what came since;
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
"""

from __future__ import annotations

import logging
import math
import time

from kafka import TopicPartition

from stream_cl.config import ConfigError
from stream_cl.contribution import Contribution, ContributionError

from .logs import log_event
from .state import CheckpointState, check_settings, settings_state

__all__ = ["PartitionStates", "partition_key"]

log = logging.getLogger("stream_cl.daemon")

# how a refusal of a changelog part says to start a new model instead (the group's parts stay where they are)
NEW_CHANGELOG = ("to start a new model, give the group a new changelog.topic (or a new kafka.group_id, whose default "
                 "changelog.topic is '<group_id>.model') and an empty checkpoint.dir")

# what a changelog record takes beyond its key and value in its record batch (Kafka's batch
# header is 61 bytes, the record's own fields a few varints): counted against the topic's limit
RECORD_OVERHEAD = 128


def partition_key(topic: str, partition: int) -> str:
    """The state key of a source partition: ``"topic/partition"``."""
    return f"{topic}/{partition}"


class PartitionStates(CheckpointState):
    """The state store of a group member (module docstring); its local checkpoint is a cache."""

    def __init__(self, config, learner, pending, metrics, stats, table=None, store=None, loaded=None):
        super().__init__(config, learner, pending, metrics, stats, store, loaded)
        self.table = table  # ChangelogTable, or None (changelog off: the checkpoint is the only state)
        self.changelog_topic = table.topic if table is not None else ""
        cl = config.changelog
        self.every_events, self.every_s, self.fold_every_s = cl.every_events, cl.every_seconds, cl.fold_every_seconds
        self.labels_topic = config.kafka.labels_topic
        # stamped on every record and compared on every read: a changelog serves one group (its records
        # are keyed by source partition, which a second group on the same topic would share)
        self.group = config.kafka.group_id
        # stamped on every record too: a member the record does not fit names the setting that differs (_merge)
        self.settings = settings_state(config)
        self.max_record_bytes = cl.max_message_bytes  # the changelog topic's max.message.bytes
        self.owned: set[str] = set()  # partition keys of the events partitions this member holds
        self.written: set[str] = set()  # partition keys this member wrote changelog records of (_group_fits)
        self._fits: bool | None = None  # _group_fits' count, once per assignment
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
        the assignment), on the consumer's IO thread, where no heartbeat goes out while it reads: a
        read longer than the session timeout expelled the member during its own assignment. Read
        here, the callback reads only what came since. No group waits on this thread yet, so a read
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
        self._fits = None  # counted again, should a takeover be refused (_group_fits)
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
        A part of other settings stops the member (:meth:`_merge`)."""
        served = self.parts.get(key)
        c = self._read(key)
        labels_tp = TopicPartition(self.labels_topic, tp.partition) if self.labels_topic else None
        labels_here = self.offsets.get(labels_tp) if labels_tp is not None else None
        replaces = c is not None and self._replaces(key, c, served, labels_here)
        if replaces and self._merge(key, c):
            self.parts[key] = c.offset
            self.ahead.discard(key)
            extra = c.pending or {}
            self.pending.install(key, extra.get("store"))
            log_event(log, "takeover", partition=key, source="changelog", offset=c.offset,
                      pending_labels=len(self.pending.for_key(key)))
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
        (its group stamp compared, :meth:`_read`), and the checkpoint's settings were compared at
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

    def _merge(self, key: str, c: Contribution, resum: bool = True, takeover: bool = True) -> bool:
        """Merge ``key``'s changelog part ``c`` into the learner; False, changing nothing, where the
        learner refuses it and the member goes on without it (logged); a :class:`ConfigError` (the
        member stops, exit 2) where this member is the one whose settings are not the group's.

        The record was read whole (:meth:`_read` refuses a damaged or unreadable one), so a refusal
        means the part is not this learner's model: other [model] or learner-section settings (named
        as the config key where the record keeps its settings, as a checkpoint's are; by the learner's
        own names in records written before), or inputs in another order. Which side is wrong decides:

        * at a ``takeover``, where most of the group's records were not written with this member's
          settings (:meth:`_group_fits`), the member is the odd one (a config changed over an empty
          checkpoint.dir): going on, it served a new model and its next record replaced the group's
          learned state in the changelog (compaction keeps only the latest), so it stops, as a
          checkpoint of other settings stops the start;
        * where most were (a member started with other settings wrote this one), and at a fold,
          which never writes the partitions it folds, the record is the odd one: taken as missing,
          so that one such member does not stop every healthy one;
        * a record of this very config refused all the same (inputs met in another order,
          docs/partitions.md; a release whose learner spells a setting otherwise, docs/deploy.md,
          Upgrades): taken as missing."""
        try:
            self.learner.merge(key, c, resum=resum)
            return True
        except ContributionError as e:
            differs, refusal = self._differs(key, c, e), e
        if differs is None:
            detail = (f"the record keeps this member's config, refused all the same ({refusal}): its inputs met in "
                      "another order, an input of the other kind, or written by a release whose learner spells a "
                      "setting otherwise")
        elif takeover and not self._group_fits(key):
            raise differs
        else:
            detail = f"{differs}; most parts of the group's model were written with this member's settings"
        log_event(log, "changelog_refused", level=logging.ERROR, key=key, detail=f"{detail}: taken as missing")
        return False

    def _differs(self, key: str, c: Contribution, refusal: ContributionError) -> ConfigError | None:
        """How ``key``'s refused record ``c`` differs from this member's config, as the error that stops a
        member (naming the config key where the record keeps its settings); None: it keeps this config."""
        written = f"the changelog part of partition {key!r} in {self.changelog_topic!r} (the group's model)"
        settings = (c.pending or {}).get("settings")  # absent: written before records kept them
        if isinstance(settings, dict):
            try:
                check_settings(self.config, settings, None, written=written, new=NEW_CHANGELOG)
            except ConfigError as e:
                return e
            return None
        return ConfigError(
            f"changelog.topic: {written} does not fit this member's model: {refusal}; restore the settings the "
            "group's model was learned with ([model] and the [replay], [drift], [homeostasis], [imbalance] and "
            f"[trainable] sections, which the learner's settings named come from), or {NEW_CHANGELOG}; going "
            "on would overwrite the group's part with the new model's")

    def _group_fits(self, key: str) -> bool:
        """Whether more of the group's records keep this member's settings than other ones (``key``'s,
        refused, among the others; records this member wrote, and those of releases before records
        kept settings, prove nothing). A member started with other settings writes records of its own
        too (a partition with none yet), so one that fits is no proof: the majority is. Counted once
        per assignment (:meth:`resume_at`): each record is decoded whole, in the assignment callback."""
        if self._fits is None:
            fit = unfit = 0
            for other in sorted(set(self.table.keys()) - self.written) if self.table is not None else ():
                try:
                    c = self._read(other)
                except ConfigError:  # another group's part: not this group's settings either
                    continue
                settings = (c.pending or {}).get("settings") if c is not None else None
                if isinstance(settings, dict):
                    try:
                        check_settings(self.config, settings, None)
                        fit += 1
                    except ConfigError:
                        unfit += 1
            self._fits = fit > unfit
        return self._fits

    def _read(self, key: str) -> Contribution | None:
        """``key``'s latest changelog part, or ``None`` (none, or damaged or unreadable: logged, and the
        member goes on as if it had none)."""
        raw = self.table.get(key) if self.table is not None else None
        if raw is None:
            return None
        try:
            c = Contribution.from_bytes(raw)
        except ContributionError as e:
            log_event(log, "changelog_refused", level=logging.ERROR, key=key, detail=str(e))
            return None
        writer = c.pending.get("group") if isinstance(c.pending, dict) else None  # None: written before the stamp
        if writer is not None and writer != self.group:
            raise ConfigError(
                f"changelog.topic: {self.changelog_topic!r} holds the part of partition {key!r} that group {writer!r} "
                f"wrote, and this member's kafka.group_id is {self.group!r}: a changelog serves one group, whose parts "
                "and offsets another would take over (and overwrite); give this group its own changelog.topic (empty: "
                f"'<group_id>.model'), or keep group_id = {writer!r} to serve that group's model")
        return c

    # -- checkpoints (a cache): which part of each partition the model serves ------------------
    def extra_state(self) -> dict:
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
                self._drop_store(key)

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
            value = self._record(key, covered[tp], labels)
            records.append((self.changelog_topic, key.encode(), value))
            self.written.add(key)
            self.parts[key] = covered[tp]
            self.ahead.discard(key)
            self.changelog_records += 1
            self.changelog_bytes += len(value)
            del self.changed[key]
        if due:
            self._written = time.monotonic()
        return records

    def _record(self, key: str, offset, labels) -> bytes:
        """Partition ``key``'s changelog value: its model part and its waiting-label store. A value
        larger than the changelog topic takes would fail every transaction holding it
        (``MessageSizeTooLargeError``, the member reset again and again), so the oldest waiting
        events are evicted until it fits, as ``labels.max_pending`` evicts them (counted, and
        logged); a model part too large by itself is a config error naming the setting."""
        store = self.pending.for_key(key)
        fixed = len(key.encode()) + RECORD_OVERHEAD  # the record's bytes beside its value
        gone, passes, model = 0, 0, None
        while True:  # each pass evicts at least one event: it ends, fitting or with no event left
            value = self.learner.contribution(key, offset=offset, pending={"store": store.state_dict(),
                                                                            "labels": labels,
                                                                            "group": self.group,
                                                                            "settings": self.settings}).to_bytes()
            size = fixed + len(value)
            if size <= self.max_record_bytes:
                if gone:
                    log_event(log, "labels_evicted_for_changelog", level=logging.WARNING, partition=key, evicted=gone,
                              waiting=len(store), limit=self.max_record_bytes,
                              hint="raise changelog.max_message_bytes or lower labels.max_pending")
                return value
            if model is None:  # the part without its labels, encoded once: eviction changes only the labels
                model = len(self.learner.contribution(key, offset=offset).to_bytes())
            waiting = len(store)
            if not waiting or fixed + model > self.max_record_bytes:
                raise ConfigError(
                    f"changelog.max_message_bytes: the changelog record of partition {key!r} is {size} bytes, over "
                    f"the limit of {self.max_record_bytes} bytes (its model part {model} bytes, its {waiting} events "
                    f"waiting for a label the rest); raise changelog.max_message_bytes to at least {size}")
            # the average waiting event's size sizes the pass; the oldest may be smaller (events that grew
            # features since), so a pass that falls short doubles the next one's count
            per_event = max((size - model) / waiting, 1.0)
            gone += store.evict_oldest(math.ceil((size - self.max_record_bytes) / per_event) << min(passes, 30))
            passes += 1

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
            c = None if key in self.owned else self._read(key)
            if c is None:
                continue
            if not self._merge(key, c, resum=False, takeover=False):  # one re-sum after the fold's merges
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
