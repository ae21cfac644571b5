"""A group member's changelog parts, one at a time: read, judged and merged (:class:`PartReader`), encoded (:class:`PartEncoder`).

:class:`~connectors.partitions.PartitionStates` decides when a partition's part is read, merged or
written; this module holds the rules for one part: whose it is (the group stamped on every record),
whether it fits this member's model (the settings stamped beside it, and which side is the odd one
when it does not), and how a part and its waiting events are encoded within the changelog topic's
record limit.
"""

from __future__ import annotations

import logging
import math

from stream_cl.config import ConfigError
from stream_cl.contribution import Contribution, ContributionError

from .logs import log_event
from .state import check_settings, settings_state

__all__ = ["NEW_CHANGELOG", "PartEncoder", "PartReader"]

log = logging.getLogger("stream_cl.daemon")

# how a refusal of a changelog part says to start a new model instead (the group's parts stay where they are)
NEW_CHANGELOG = ("to start a new model, give the group a new changelog.topic (or a new kafka.group_id, whose default "
                 "changelog.topic is '<group_id>.model') and an empty checkpoint.dir")

# what a changelog record takes beyond its key and value in its record batch (Kafka's batch
# header is 61 bytes, the record's own fields a few varints): counted against the topic's limit
RECORD_OVERHEAD = 128



class PartReader:
    """Reads partitions' parts from the changelog table and merges them into the learner, refusing
    another group's parts and judging a part the learner refuses (:meth:`merge`)."""

    def __init__(self, config, learner, table=None):
        self.config, self.learner, self.table = config, learner, table  # table: ChangelogTable, or None (no changelog)
        self.topic = table.topic if table is not None else ""
        # compared on every read: a changelog serves one group (its records are keyed by source partition,
        # which a second group on the same topic would share)
        self.group = config.kafka.group_id
        self.written: set[str] = set()  # keys this member wrote records of (:meth:`_group_fits`)
        self._fits: bool | None = None  # _group_fits' count, once per assignment

    def wrote(self, key: str) -> None:
        """This member wrote a record of ``key``: it proves nothing of the group's settings."""
        self.written.add(key)

    def recount(self) -> None:
        """A new assignment: the group's settings are counted again, should a takeover be refused."""
        self._fits = None

    def read(self, key: str) -> Contribution | None:
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
                f"changelog.topic: {self.topic!r} holds the part of partition {key!r} that group {writer!r} "
                f"wrote, and this member's kafka.group_id is {self.group!r}: a changelog serves one group, whose parts "
                "and offsets another would take over (and overwrite); give this group its own changelog.topic (empty: "
                f"'<group_id>.model'), or keep group_id = {writer!r} to serve that group's model")
        return c

    def merge(self, key: str, c: Contribution, resum: bool = True, takeover: bool = True) -> bool:
        """Merge ``key``'s changelog part ``c`` into the learner; False, changing nothing, where the
        learner refuses it and the member goes on without it (logged); a :class:`ConfigError` (the
        member stops, exit 2) where this member is the one whose settings are not the group's.

        The record was read whole (:meth:`read` refuses a damaged or unreadable one), so a refusal
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
        written = f"the changelog part of partition {key!r} in {self.topic!r} (the group's model)"
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
        """Whether at least as many of the group's records keep this member's settings as other ones, and
        some do (``key``'s,
        refused, among the others; records this member wrote, and those of releases before records
        kept settings, prove nothing). A member started with other settings writes records of its own
        too (a partition with none yet), so one that fits is no proof: the majority is. Counted once
        per assignment (:meth:`recount`): each record is decoded whole, in the assignment callback."""
        if self._fits is None:
            fit = unfit = 0
            for other in sorted(set(self.table.keys()) - self.written) if self.table is not None else ():
                try:
                    c = self.read(other)
                except ConfigError:  # another group's part: not this group's settings either
                    continue
                settings = (c.pending or {}).get("settings") if c is not None else None
                if isinstance(settings, dict):
                    try:
                        check_settings(self.config, settings, None)
                        fit += 1
                    except ConfigError:
                        unfit += 1
            # a tie with records on both sides goes to this member (review r82: in a group of three, one of them
            # odd, a healthy member taking the odd one's partitions over counted the other healthy member's
            # records against the odd one's, a tie, and stopped with the odd setting as the fix); the odd member
            # itself, at its first takeover, has no record of the group's with its settings, and still stops
            self._fits = fit >= unfit and fit > 0
        return self._fits


class PartEncoder:
    """Encodes a partition's changelog value: its model part and waiting-label store, stamped with
    the group and the settings the part was learned with, within the topic's record limit."""

    def __init__(self, config, learner, pending):
        self.learner, self.pending = learner, pending
        self.group = config.kafka.group_id  # PartReader.read compares it
        # a member the record does not fit names the setting that differs (PartReader.merge)
        self.settings = settings_state(config)
        self.max_bytes = config.changelog.max_message_bytes  # the changelog topic's max.message.bytes
        self.last_evicted = 0  # waiting entries the last encode evicted to fit its record

    def encode(self, key: str, offset, labels) -> bytes:
        """Partition ``key``'s changelog value: its model part and its waiting-label store. A value
        larger than the changelog topic takes would fail every transaction holding it
        (``MessageSizeTooLargeError``, the member reset again and again), so the oldest waiting
        entries (events, and labels that came before their event) are evicted until it fits, as
        ``labels.max_pending`` and ``labels.max_early`` evict them (counted, and logged); a model part
        too large by itself is a config error naming the setting."""
        store = self.pending.for_key(key)
        fixed = len(key.encode()) + RECORD_OVERHEAD  # the record's bytes beside its value
        gone, passes, model = 0, 0, None
        while True:  # each pass evicts at least one event: it ends, fitting or with no event left
            value = self.learner.contribution(key, offset=offset, pending={"store": store.state_dict(),
                                                                            "labels": labels,
                                                                            "group": self.group,
                                                                            "settings": self.settings}).to_bytes()
            size = fixed + len(value)
            if size <= self.max_bytes:
                self.last_evicted = gone  # (the store changed: PartitionStates may owe a checkpoint)
                if gone:
                    log_event(log, "labels_evicted_for_changelog", level=logging.WARNING, partition=key, evicted=gone,
                              waiting=len(store), waiting_labels=store.waiting_labels, limit=self.max_bytes,
                              hint="raise changelog.max_message_bytes or lower labels.max_pending "
                                   "(labels.max_early for labels that come before their event)")
                return value
            if model is None:  # the part without its labels, encoded once: eviction changes only the labels
                model = len(self.learner.contribution(key, offset=offset).to_bytes())
            waiting = len(store) + store.waiting_labels
            if not waiting or fixed + model > self.max_bytes:
                raise ConfigError(
                    f"changelog.max_message_bytes: the changelog record of partition {key!r} is {size} bytes, over "
                    f"the limit of {self.max_bytes} bytes (its model part {model} bytes, its {len(store)} events "
                    f"waiting for a label and {store.waiting_labels} labels waiting for their event the rest); "
                    f"raise changelog.max_message_bytes to at least {size}")
            # the average waiting entry's size sizes the pass; the oldest may be smaller (events that grew
            # features since), so a pass that falls short doubles the next one's count
            per_entry = max((size - model) / waiting, 1.0)
            gone += store.evict_oldest(math.ceil((size - self.max_bytes) / per_entry) << min(passes, 30))
            passes += 1
