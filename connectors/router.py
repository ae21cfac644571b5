"""One poll's records through the model: events predicted and learned per partition, labels joined, outputs routed.

The :class:`Router` is the daemon's per-batch work: it splits a poll into events, labels
and dead letters; predicts and learns the events partition by partition (each
partition's events in their order, as the partition's part of the learner requires);
remembers unlabelled events for a delayed label in their partition's store and learns
the ones whose label came first; joins the labels; and hands predictions and dead
letters to the publisher. Records the source marked *silent* (re-learned after a
restore: their outputs were committed before) are learned and never published again;
nor are they counted again in the prequential and per-task accuracies (each event counts
once, with the prediction that was published): their predictions go through a second
:class:`~stream_cl.prequential.Prequential` on the same learner, whose statistics are
not exported. A delayed label's join is a replayed one (made before the restore) only when
both its records were committed before it: the label and the event each re-read silently,
or restored waiting in the store. A join with one side new is new: it counts in the
accuracies, and its dead letter, if the model refuses it, is published. The accuracies
score a label against the prediction published for its event; an event re-read silently
waits without one (the replay's prediction is not the one published before the restore:
the model had learned other things by then), so its label is learned and not scored
(``unscored`` in the report).

What the new work adds to the exporter's counters of drift alarms, category overflow and
label outcomes is counted by :class:`~connectors.new_work.NewWork`: around the router's steps,
and from the label stores' own counts of new work.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from itertools import groupby

from stream_cl.events import DeadLetter, Event
from stream_cl.pending import LabelUpdate
from stream_cl.prequential import Prequential

from .logs import log_event
from .new_work import NewWork
from .sinks import dead_letter_record

__all__ = ["Router"]

log = logging.getLogger("stream_cl.daemon")


class Router:
    """Predict, learn, join and route the records of one poll (module docstring).

    ``partitioned``: the learner keeps a part per source partition (``"topic/partition"``);
    otherwise every event goes to its one partition (``None``). :meth:`label_key` names the
    events partition a label record's partition is co-partitioned with. ``dead_letter_topic_bytes``:
    the dead-letter topic's own ``max.message.bytes`` (``None``: not known); dead letters are cut to
    fit it where it is below ``kafka.max_message_bytes``, as the broker refuses a larger record and the
    transaction holding it aborts.
    """

    def __init__(self, config, step, learner, pending, publisher, metrics, state, partitioned: bool,
                 dead_letter_topic_bytes: int | None = None):
        self.config, self.step, self.learner, self.pending = config, step, learner, pending
        self.publisher, self.metrics, self.state, self.partitioned = publisher, metrics, state, partitioned
        kcfg = config.kafka
        self.events_topic = kcfg.topics[0] if len(kcfg.topics) == 1 else ""
        self.remember = bool(kcfg.labels_topic)  # without a labels topic no label can come later
        self.publish = bool(kcfg.predictions_topic)
        self.dead_letter_bytes = min(kcfg.max_message_bytes, dead_letter_topic_bytes or kcfg.max_message_bytes)
        self._replay_step: Prequential | None = None  # for silent records (made at the first one)
        # (partition, event id) of the events this process predicted new and counted as predict-only in
        # step's report while they wait for a label: their join moves them to labelled. Kept here, not in
        # the store: a store reinstalled by a takeover (the partition back from the changelog) marks its
        # entries committed, those this process counted too. Bounded, as the stores are, per store (past it, a
        # join counts in labelled alone, as one of an event predicted before a restore does)
        self._counted_waiting: OrderedDict = OrderedDict()
        self._counted_bound = max(2 * config.labels.max_pending, 10_000)  # per store
        self.new_work = NewWork(learner, pending, metrics)  # what the exporter's counters count
        self.unrouted = UnroutedDeadLetters()  # without a dead-letter topic: said in the log, a line a minute
        self.misrouted = MisroutedLabels()  # labels that came to another partition than their event's: said likewise

    def replay_step(self) -> Prequential:
        """The step silent records go through: the same learner, statistics of its own (never exported;
        an automatic window keeps them bounded)."""
        if self._replay_step is None:
            self._replay_step = Prequential(self.learner, window=None, max_classes=self.step.max_classes)
        return self._replay_step

    def key_of(self, origin: str):
        """The partition key of a record's origin ``"topic/partition@offset"`` (``None`` unpartitioned)."""
        return origin.rpartition("@")[0] if self.partitioned else None

    def label_key(self, origin: str):
        """The events partition a label of ``"labels/q@offset"`` joins: ``"<events topic>/q"``."""
        if not self.partitioned:
            return None
        return f"{self.events_topic}/{origin.rpartition('@')[0].rpartition('/')[2]}"

    def process(self, batch, polled_at: float | None = None) -> None:
        """Predict and learn the events of one poll, join its labels, route its dead letters.

        ``polled_at`` (``time.perf_counter()`` when the poll returned) starts each event's
        latency; the histograms and per-task accuracy are updated once per micro-batch.
        """
        m, silent = self.metrics, batch.silent
        polled_at = time.perf_counter() if polled_at is None else polled_at
        by_key: dict = {}
        letters: list[DeadLetter] = []
        labels: list[LabelUpdate] = []
        for item in batch.items:
            cls = item.__class__
            if cls is Event:
                by_key.setdefault(self.key_of(item.origin), []).append(item)
            elif cls is DeadLetter:
                letters.append(item)
            else:
                labels.append(item)
        if letters:  # the decoder's, in the run's report as a file run's are (the model's refusals: the step's own)
            self.step.stats.add_dead_letters([d for d in letters if d.origin not in silent] if silent else letters)
        m.records += len(batch.items)
        self.state.add(len(batch.items))
        # a partition whose records of this poll are all dead letters moved on too: its changelog part must follow
        # to the committed offset (review r82: a trailing run of them left the part one record short for good)
        for key in {self.key_of(d.origin) for d in letters} - by_key.keys():
            self.state.touched(key, 0)
        early: dict = {}  # key -> [join (as in joined below)] of this poll's events whose label came before them
        for key, events in by_key.items():
            self.state.touched(key, len(events))
            letters += self._predict(key, events, batch, silent, polled_at, early)
        if silent and letters:
            letters = [d for d in letters if d.origin not in silent]  # records published before the restore
        # key -> [(event joined with its label, whether the join is a replayed one, the prediction published for
        # it, whether self.step counted that prediction: the event was predicted new in this process)]
        joined: dict = {}
        for key, found in early.items():
            joined.setdefault(key, []).extend(found)
        for (key, committed), run in groupby(labels, key=lambda u: (self.label_key(u.origin), u.origin in silent)):
            # its store changed (a label that waits for its event) or its labels moved on: the part must follow
            # (review r86: a label that only waited left no record, and a takeover came without it)
            self.state.touched(key, 0)
            found = self._join(key, run, committed)
            if found:
                joined.setdefault(key, []).extend(found)
        for key, found in joined.items():
            self.state.touched(key, len(found))
            letters += self._learn(key, found, batch)  # (a join's dead letter goes by the join, not its event's origin)
        self._expire()  # every partition's store: one with no records in this poll ages too
        self.new_work.count_labels()
        if letters:
            self._dead_letters(letters, batch.raw)

    def expire(self) -> None:
        """Drop what waited too long in the label stores (a quiet poll: ages move on), counted as new."""
        self._expire()
        self.new_work.count_labels()

    def _expire(self) -> None:
        # a store that dropped entries changed: its changelog part must follow, or the partition's next owner
        # takes the entries over again and counts them expired twice, after they waited past max_age_s (r86)
        for key in self.pending.expire():
            self.state.touched(key, 0)

    def _join(self, key, labels, committed: bool) -> list:
        """Join ``labels`` of events partition ``key``, all ``committed`` (re-read silently) or none, with
        their events, in the partition's store or in the store from before partitions; returns the joins (as
        :meth:`process` keeps them)."""
        stores = [self.pending.for_key(key)]
        if key is not None and None in self.pending.stores:  # a store from before partitions
            stores.append(self.pending.for_key(None))
        joins = []
        for label in labels:
            # the store its event waits in; none: the partition's, where the label waits for its event (a
            # store that does not hold the event would keep the label waiting, joined or not elsewhere)
            store = next((s for s in stores if label.id in s), stores[0])
            found = store.join_committed(label, committed=committed)
            if found is None and key is not None:  # it waits: is its event waiting in another partition?
                elsewhere = self.pending.holder(label.id, besides=key)
                if elsewhere is not None:
                    self.misrouted.add(label.origin, elsewhere)
            if found is not None:
                event, published, event_committed = found
                counted = self._counted_waiting.pop((key, event.id), False) is None  # None: it was there
                joins.append((event, committed and event_committed, published, counted, label.origin))
        return joins

    def _predict(self, key, events: list, batch, silent, polled_at: float, early: dict) -> list[DeadLetter]:
        """Predict, then learn (when labelled), one partition's events in order; returns dead letters.

        Silent events (replayed) and the others are stepped apart, in order (a learner's result
        does not depend on how its stream is cut into batches): only the others count in the
        accuracies and are published.
        """
        m, size, letters = self.metrics, self.config.run.batch_size, []
        store = self.pending.for_key(key) if self.remember else None
        runs = groupby(events, key=lambda e: e.origin in silent) if silent else [(False, events)]
        for replayed, run in runs:
            run = list(run)
            step = self.replay_step() if replayed else self.step
            for i in range(0, len(run), size):
                chunk = run[i : i + size]
                t0 = time.perf_counter()
                before = self.new_work.before_step(replayed)
                predictions, rejected = step.process(chunk, partition=key)
                t1 = time.perf_counter()
                self.new_work.count_step(before)
                m.step_seconds.observe(t1 - t0)  # a replay step is a step
                if store is not None:
                    refused = {d.origin for d in rejected}
                    # the predictions are those of the events the model took, in order
                    for e, p in zip((e for e in chunk if e.origin not in refused), predictions):
                        if e.y is None and e.id is not None:
                            # its label may have come first: then it is learned now, scored against p. A
                            # replayed event's p is the replay's, not the one published before the restore
                            # (the model had learned other things by then): it waits with none, and is not scored
                            told = None if replayed else p
                            found = store.add_committed(e, published=told, committed=replayed)
                            if found is None and not replayed:  # waits, counted predict-only by self.step
                                self._counted_waiting[(key, e.id)] = None
                                # down to the bound of the stores held now: after a rebalance took stores away,
                                # one pop per add had kept the old bound's size for the life of the process (r152)
                                bound = self._counted_bound * max(len(self.pending.stores), 1)
                                while len(self._counted_waiting) > bound:
                                    self._counted_waiting.popitem(last=False)
                            if found is not None:
                                labelled, label_committed, label_origin = found
                                told = None if replayed else replace(p, y_true=labelled.y)
                                join = (labelled, replayed and label_committed, told, not replayed, label_origin)
                                early.setdefault(key, []).append(join)
                if rejected:
                    letters.extend(_original(rejected, batch.raw))
                if replayed:  # published before the restore, and counted then
                    m.events["replayed"] += len(predictions)
                    continue
                m.event_latency.observe(t1 - polled_at, len(predictions))  # poll to published prediction
                m.tasks.update(predictions)
                if self.publish:
                    self.publisher.write(predictions)
                n_labelled = sum(p.y_true is not None for p in predictions)
                m.events.update(learned=n_labelled, predicted=len(predictions) - n_labelled)
        return letters

    def _learn(self, key, found: list, batch) -> list[DeadLetter]:
        """Learn events already predicted, now joined with their label: ``found`` holds
        ``(event, replayed, published, counted, label_origin)``; the accuracies score each label against the
        prediction that was published for its event (``published``; ``None`` where it is not known, and then
        not at all: the event was re-read after a restore, or restored from a checkpoint from before the store
        kept them), replayed joins were counted before the restore, and
        the report takes an event from its predict-only count only where it ``counted`` it there. A join the
        model refuses is the label record's dead letter (:meth:`_refused_join`)."""
        m, size, letters = self.metrics, self.config.run.batch_size, []
        m.events.update(label_joined=len(found))
        for replayed, run in groupby(found, key=lambda f: f[1]):
            step = self.replay_step() if replayed else self.step
            run = list(run)
            events, published, counted = [f[0] for f in run], [f[2] for f in run], [f[3] for f in run]
            joined = {f[0].origin: (f[0], f[4]) for f in run}  # the event's origin -> (event, its label record's)
            for i in range(0, len(events), size):
                t0 = time.perf_counter()
                before = self.new_work.before_step(replayed)
                learned, rejected = step.process(events[i : i + size], partition=key, published=published[i : i + size],
                                                 counted=counted[i : i + size])
                m.step_seconds.observe(time.perf_counter() - t0)
                self.new_work.count_step(before)
                if not replayed:
                    m.tasks.update(learned)
                # a replayed join's dead letter was published before the restore; a new join's is published
                # even when its event was re-read in this poll (its origin is then among the silent ones)
                if rejected and not replayed:
                    letters.extend(self._refused_join(d, *joined[d.origin], batch.raw) if d.origin in joined
                                   else _original([d], batch.raw)[0] for d in rejected)
        return letters

    def _refused_join(self, refused: DeadLetter, event: Event, label_origin: str, raw: Mapping) -> DeadLetter:
        """The dead letter of a join the model refused (``refused``, made under ``event``'s origin): the
        label record's, where that record was read (the event has its prediction already, and the label
        record no other output), with its bytes and key when it was read in this poll, else (it came before
        its event) the label record written again under the mapping's names; the detail names the event."""
        kv = raw.get(label_origin)
        if kv is not None and kv[1] is not None:
            value = kv[1]
        else:
            m = self.config.mapping
            value = json.dumps({m.id: event.id, m.label: event.y}, default=str).encode()
        return DeadLetter(value, refused.reason, f"{refused.detail} (the label of the event read at {event.origin})",
                          label_origin or event.origin)

    def _dead_letters(self, letters: list[DeadLetter], raw: Mapping) -> None:
        m, kcfg = self.metrics, self.config.kafka
        m.events["dead_letter"] += len(letters)
        m.dead_letters.update(d.reason for d in letters)
        if kcfg.dead_letter_topic:
            records = []
            for d in letters:  # the record's key and headers go with it (none: a label read before its event)
                record = raw.get(d.origin, ())
                key, headers = record[0] if record else None, record[2] if len(record) > 2 else ()  # (or a source's pair)
                records.append(dead_letter_record(d, key, self.dead_letter_bytes, headers))
            self.publisher.write_dead(records)
        else:
            self.unrouted.add(letters)


class UnroutedDeadLetters:
    """Dead letters with no ``kafka.dead_letter_topic`` to go to: logged at most one line per
    ``every_s`` seconds, with the count by reason since the last line and the latest one's detail.
    A line per poll that held one made ~650,000 lines a day of a steady trickle of bad records;
    every dead letter is still counted in ``stream_cl_dead_letters_total``.

    >>> clock = iter([0.0, 10.0, 61.0]).__next__
    >>> said = UnroutedDeadLetters(every_s=60.0, clock=clock)
    >>> bad = DeadLetter(b"{", "malformed", "not JSON", "events/0@7")
    >>> said.add([bad]), said.add([bad, bad]), said.add([bad])  # the first at once, then a minute on
    (True, False, True)
    """

    def __init__(self, every_s: float = 60.0, clock=time.monotonic):
        self.every_s, self.clock = every_s, clock
        self._since: Counter = Counter()  # reason -> dead letters since the last line
        self._next = -float("inf")

    def add(self, letters: list[DeadLetter]) -> bool:
        """Count ``letters`` (not empty); log the line when it is due. Returns whether it logged."""
        self._since.update(d.reason for d in letters)
        now = self.clock()
        if now < self._next:
            return False
        self._next = now + self.every_s
        n, last = self._since.total(), letters[-1]
        reasons = ", ".join(f"{r} {c}" for r, c in sorted(self._since.items()))
        log.warning("%d dead letters since the last such line (no kafka.dead_letter_topic; at most a line every %g s): "
                    "%s; the latest: %s at %s: %s", n, self.every_s, reasons, last.reason, last.origin, last.detail)
        self._since.clear()
        return True


class MisroutedLabels:
    """Labels read on a labels partition other than their event's, while the event waits in this member's
    store of its own partition: logged at most one ``label_not_co_partitioned`` line per ``every_s`` seconds,
    with the count since the last line and the latest one's partitions. A label joins only its own
    partition's store (its learning and its offset go into that partition's changelog record together), so
    such a label never joins: it waits as a label before its event would, and its event waits too, until
    ``labels.max_age_s`` counts them unknown and expired (a day by default). Review r151 measured 108 of 200
    labels keyed otherwise than their events left so, by a single daemon reading both partitions, with
    nothing said. Seen only where this member holds both partitions, and only when the label comes after
    its event.

    >>> clock = iter([0.0, 10.0, 61.0]).__next__
    >>> said = MisroutedLabels(every_s=60.0, clock=clock)
    >>> said.add("labels/1@4", "events/0"), said.add("labels/1@5", "events/0"), said.add("labels/0@9", "events/1")
    (True, False, True)
    """

    def __init__(self, every_s: float = 60.0, clock=time.monotonic):
        self.every_s, self.clock = every_s, clock
        self._since = 0  # labels met since the last line
        self._next = -float("inf")

    def add(self, label_origin: str, event_partition: str) -> bool:
        """Count one such label (read at ``label_origin``; its event waits in ``event_partition``); log the
        line when it is due. Returns whether it logged."""
        self._since += 1
        now = self.clock()
        if now < self._next:
            return False
        self._next = now + self.every_s
        labels_partition = label_origin.rpartition("@")[0]
        log_event(log, "label_not_co_partitioned", level=logging.WARNING, labels=self._since,
                  label=label_origin, event_partition=event_partition,
                  detail=f"{self._since} label(s) since the last such line came to another partition than their "
                         f"event's (the latest read at {label_origin}, its event waiting in {event_partition}): a "
                         f"label joins only the events of its own partition number ({labels_partition} joins "
                         f"{_events_partition(labels_partition, event_partition)}), so these never join, and count "
                         "as unknown, their events as expired, after labels.max_age_s; produce the labels keyed as "
                         "their events are (both by event id), with Kafka's default partitioner, to topics of "
                         "the same partition count")
        self._since = 0
        return True


def _events_partition(labels_partition: str, event_partition: str) -> str:
    """The events partition of the number of ``labels_partition`` ("labels/1" beside "events/0": "events/1")."""
    return f"{event_partition.rpartition('/')[0]}/{labels_partition.rpartition('/')[2]}"


def _original(rejected: list[DeadLetter], raw: Mapping) -> list[DeadLetter]:
    """Dead letters from the model carry the record's original bytes."""
    out = []
    for d in rejected:
        kv = raw.get(d.origin)
        out.append(DeadLetter(kv[1], d.reason, d.detail, d.origin) if kv is not None else d)
    return out
