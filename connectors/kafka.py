"""Kafka in: a consumer-group source.

The source subscribes a consumer group to the event topics (a list or a pattern) and,
optionally, a labels topic. It only moves bytes: every value goes through
:meth:`stream_cl.decode.EventDecoder.decode_json` (events) or
:class:`stream_cl.pending.LabelDecoder` (labels), so a topic can hold anything and a
bad record becomes a dead letter with origin ``"topic/partition@offset"``.

Offsets are never committed by the consumer. The source tracks, per partition, the
offset after the last record it returned; the daemon commits those in its Kafka
transaction, with the outputs they produced (:mod:`connectors.commit`). Rebalances
call back into the owner (:class:`RebalanceHooks`): on revoke, the owner commits; on
assign, it says up to which offset its state covers each partition, and the source
resumes there. Records between that offset and the group's committed offset were
processed and committed before (a restart's restored state is older than the last
commit): they are returned again, marked *silent* (:attr:`PolledBatch.silent`), so the
owner re-learns them without publishing anything twice.

kafka-python runs rebalance callbacks on its IO thread while the caller's thread is
blocked inside ``poll()``: the owner's state is quiescent then, and the callbacks
(:mod:`connectors.kafka_assignment`) use the consumer's coroutine APIs (a blocking call
there would deadlock the IO loop); the owner's own work (a commit, a takeover) runs on a
worker thread meanwhile, so that the IO thread goes on sending heartbeats.

The client settings the source shares with the daemon's other Kafka clients are made in
:mod:`connectors.kafka_settings`. What the daemon writes (predictions, dead letters) is built in
:mod:`connectors.sinks` and sent by :mod:`connectors.transaction`.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CorruptRecordError, KafkaError, KafkaTimeoutError, RetriableError, UnsupportedCodecError
from kafka.coordinator.assignors.range import RangePartitionAssignor

from stream_cl.config import HEARTBEAT_INTERVAL_MS, JOIN_POLL_MS, KafkaConfig, MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.events import DeadLetter
from stream_cl.mapping_check import MappingChecks
from stream_cl.pending import LabelDecoder

from .kafka_assignment import (LOOKUP_TIMEOUT_MS, AssignmentListener, CommittedOffsetsUnreadable, RebalanceCallbacks,
                               RebalanceHooks, tp_key)
from .kafka_python_install import CODECS
from .kafka_settings import client_options, group_instance_id, require_topics
from .kafka_topics import check_subscribed_topics, refuse_own_outputs
from .logs import log_event, named
from .sinks import DeliveryError, parse_origin
from .unreadable_record import UnreadableRecords, step_over

__all__ = [
    "DeliveryError",
    "KafkaSource",
    "PolledBatch",
    "RebalanceHooks",
    "parse_origin",
    "tp_key",
]

log = logging.getLogger("stream_cl.kafka")
BROKER_AWAY_SAY_S = 10.0  # a poll's broker errors: at most one line this often

# lag()'s end offsets: one ListOffsets round trip per leader, on the loop, at most this often
_LAG_LOOKUP_EVERY_S = 5.0
# and for at most this long. The request queues behind the consumer's own fetch, which the broker parks
# for up to fetch.max.wait.ms (500 ms) while nothing new arrives: measured on the dev broker, a lookup
# takes ~1 ms during a backlog and waits out the parked fetch when caught up. Past this the lag keeps
# the last fetch's high watermark (current then: nothing new came), and the loop is never held longer.
_LAG_LOOKUP_TIMEOUT_MS = 100
# a record with a null value: a delete marker of a compacted topic (or a CDC topic's), no event or label
TOMBSTONE = "a null value (a tombstone: a compacted topic's delete marker), not an event"


def mapping_checks(cfg: KafkaConfig, mapping: MappingConfig, time_features: bool) -> MappingChecks:
    """The mapping checks of a Kafka stream: with a labels topic, labels come apart from the events
    (joined by id), so an event's label field may be absent and its id field must not be."""
    return MappingChecks.for_stream(mapping, time_features, labels_apart=bool(cfg.labels_topic))


class UnreadableBatch(RuntimeError):
    """A fetched record batch this install cannot decompress: nothing of it is returned or committed."""


def _unreadable(error: Exception) -> UnreadableBatch:
    match = re.search(r"for (\w+) compression", str(error))
    extra = match.group(1) if match else ",".join(CODECS)
    return UnreadableBatch(f"a fetched record batch is compressed with a codec kafka-python cannot decompress here "
                           f"({error}); install it: pip install 'kafka-python[{extra}]' and restart: the daemon "
                           "resumes from its last checkpoint, nothing after it was committed")


# -- the source -----------------------------------------------------------------------------
@dataclass
class PolledBatch:
    """One poll's records, decoded, in consumer order."""

    items: list  # Event | DeadLetter | stream_cl.pending.LabelUpdate
    raw: dict  # origin -> (key, value, headers) of every record, for dead letters
    # origins of records below the group's committed offset: processed and committed before the
    # state was restored, so re-learned now without publishing anything (empty almost always)
    silent: frozenset = field(default_factory=frozenset)


class KafkaSource(RebalanceCallbacks):
    """Decoded records from a consumer group (see the module docstring)."""

    exhausted = False  # a topic never ends; see at_end() for stop_at_end

    def __init__(self, cfg: KafkaConfig, mapping: MappingConfig, label_policy: str = "optional",
                 hooks: RebalanceHooks | None = None, consumer: KafkaConsumer | None = None, changelog_topic: str = "",
                 time_features: bool = False, checks: MappingChecks | None = None):
        """``changelog_topic``: the model changelog the daemon writes ("" = none), never to be consumed;
        ``time_features``: ``model.time_features``, whose event times the first events are checked for;
        ``checks``: the run's mapping checks (the daemon's carry over its resets), else this source's own."""
        require_topics(cfg)
        refuse_own_outputs(cfg, changelog_topic)
        self.cfg = cfg
        self.hooks = hooks
        # without a labels topic an event's label must be in the event: check that its field appears; and no
        # event time, or times in milliseconds: each said once
        self.checks = checks or mapping_checks(cfg, mapping, time_features)
        self.decoder = EventDecoder(mapping, label_policy, census=self.checks.fields)
        self.labels = LabelDecoder(mapping)
        self.labels_topic = cfg.labels_topic
        self.positions: dict[TopicPartition, int] = {}  # next offset after the records returned
        self.assigned: set[TopicPartition] = set()
        self.committed: dict[TopicPartition, int] = {}  # last offsets committed (by the owner's transactions)
        self.replay_until: dict[TopicPartition, int] = {}  # records below these offsets come back silent
        self._group: tuple = (cfg.group_id, -1, "", None)  # the group metadata as of the last poll
        self.skipped = 0  # records returned again below a known position (not processed twice)
        self.rebalances = 0
        self.commit_failures = 0
        self._ends: dict[TopicPartition, int] = {}  # end offsets as of the last lookup for lag()
        self._ends_at: float | None = None  # time.monotonic() of that lookup (None: none yet)
        # the last poll returned as many records as it asked for: more may wait, and the fetches' high watermarks
        # may be old (lag() looks the ends up only then: caught up, the lookup waits behind the parked fetch)
        self.behind = False
        self._away_said = -float("inf")  # when a poll's broker error was last said (at most one line a BROKER_AWAY_SAY_S)
        self._closed = False
        reading = dict(isolation_level=cfg.isolation_level, fetch_max_bytes=cfg.fetch_max_bytes,
                       max_partition_fetch_bytes=cfg.max_partition_fetch_bytes,
                       # never below a record the broker may hold: oversized records are decoded into dead letters
                       receive_message_max_bytes=max(100_000_000, 2 * cfg.fetch_max_bytes))
        options = client_options(cfg)  # (secrets read, TLS files checked: once, for both consumers)
        self.consumer = consumer if consumer is not None else KafkaConsumer(
            **options,
            **reading,
            group_id=cfg.group_id,
            group_instance_id=group_instance_id(cfg) or None,
            enable_auto_commit=False,
            auto_offset_reset=cfg.auto_offset_reset,
            max_poll_records=cfg.max_poll_records,
            session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,  # below every session timeout the config accepts
            max_poll_interval_ms=cfg.max_poll_interval_ms,
            metadata_max_age_ms=cfg.metadata_max_age_ms,  # partitions added while the group runs: assigned within it
            # partition i of every subscribed topic goes to the same member: an event and its label (co-partitioned)
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        # records kafka-python cannot parse: found by a probe of the same connection and reading settings
        self.unreadable = UnreadableRecords(options, **reading)
        listener = AssignmentListener(self)
        if cfg.topic_pattern:
            pattern = cfg.topic_pattern
            if cfg.labels_topic:
                pattern = f"(?:{pattern})|{re.escape(cfg.labels_topic)}$"
            self.consumer.subscribe(pattern=pattern, listener=listener)
        else:
            topics = list(dict.fromkeys([*cfg.topics, *([cfg.labels_topic] if cfg.labels_topic else [])]))
            self.consumer.subscribe(topics=topics, listener=listener)
            check_subscribed_topics(self.consumer, cfg, topics)

    # -- polling ---------------------------------------------------------------------------
    def poll(self, max_records: int) -> PolledBatch:
        """Up to ``max_records`` decoded records; positions advance past every one returned."""
        # Without partitions the group is (re)joining: give the join round trip time to finish
        # inside one poll (kafka-python restarts a join that completes between two polls).
        timeout = self.cfg.poll_timeout_ms if self.assigned else max(self.cfg.poll_timeout_ms, JOIN_POLL_MS)
        try:
            batches = self.consumer.poll(timeout_ms=timeout, max_records=max_records)
        except UnsupportedCodecError as e:
            raise _unreadable(e) from e
        except CorruptRecordError as e:  # one record kafka-python cannot parse: stepped over, a dead letter
            return self._step_over_unreadable(e, max_records)
        except RetriableError as e:  # a broker away while the group (re)joins: kafka-python retries at the next poll
            return self._broker_away(e, timeout)
        except KafkaError as e:  # kafka-python wraps a rebalance callback's error ("User rebalance callback throws ...")
            if isinstance(e.__cause__, CommittedOffsetsUnreadable):
                raise e.__cause__ from None  # the daemon's failed line says its text (it names the remedy)
            raise
        self._group = tuple(self.consumer.group_metadata())[:4]  # this poll's generation (commits in callbacks use it)
        items: list = []
        raw: dict = {}
        silent: set = set()
        replay = self.replay_until
        append = items.append
        decode_event, decode_label = self.decoder.decode_json, self.labels.decode
        positions, assigned, checks = self.positions, self.assigned, self.checks
        skipped_before = self.skipped
        for tp, records in batches.items():
            if tp not in assigned:  # defensive: a record of a partition this consumer gave up
                continue
            expected = positions.get(tp, -1)
            decode = decode_label if tp.topic == self.labels_topic else decode_event
            prefix = f"{tp_key(tp)}@"  # origins "topic/partition@offset"
            again = checks.counted_below(tp)  # read again after a reset: counted by the checks already
            for r in records:
                offset = r.offset
                if offset < expected:  # seen and processed already
                    self.skipped += 1
                    continue
                value = r.value
                origin = prefix + str(offset)
                raw[origin] = (r.key, value, r.headers)
                if value is None:  # no event, and no JSON to parse: said as what it is
                    append(DeadLetter(None, "malformed", TOMBSTONE, origin))
                else:
                    append(decode(value, origin) if offset >= again else checks.uncounted(decode, value, origin))
                expected = offset + 1
                if replay and offset < replay.get(tp, -1):
                    silent.add(origin)
            if expected >= 0:
                positions[tp] = expected
                checks.count_to(tp, expected)
                if replay and expected >= replay.get(tp, 1 << 62):
                    del replay[tp]  # caught up with what was committed
        self.behind = len(items) + self.skipped - skipped_before >= max_records
        checks.observe_times(items)  # nothing to do once the sample is complete
        return PolledBatch(items, raw, frozenset(silent) if silent else frozenset())

    def _broker_away(self, error: RetriableError, timeout_ms: int) -> PolledBatch:
        """A poll's retriable error (a refused connection while the member looks up its group coordinator,
        during a broker restart): nothing read, said at most once per :data:`BROKER_AWAY_SAY_S`, after the
        poll's own wait. It escaped ``poll()`` and the daemon exited 1 (review r115 F3)."""
        now = time.monotonic()
        if now - self._away_said >= BROKER_AWAY_SAY_S:
            self._away_said = now
            log_event(log, "broker_unreachable", level=logging.WARNING, error=named(error),
                      detail="a poll met a broker that is away; polling on (kafka-python retries at each poll)")
        time.sleep(timeout_ms / 1000)  # the wait the poll would have had: no busy loop while the broker is away
        return PolledBatch([], {}, frozenset())

    def _step_over_unreadable(self, error: CorruptRecordError, max_records: int) -> PolledBatch:
        """A poll's ``CorruptRecordError``: the dead letters of the offsets stepped over
        (:func:`~connectors.unreadable_record.step_over`), the positions moved past them; or the error stands."""
        self._group = tuple(self.consumer.group_metadata())[:4]
        tp, first, letters = step_over(self.consumer, self.assigned, self.unreadable, error, max_records)
        self.positions[tp] = first + len(letters)
        self.checks.count_to(tp, first + len(letters))
        replay = self.replay_until.get(tp, -1)
        return PolledBatch(letters, {d.origin: (None, None, []) for d in letters},
                           frozenset(d.origin for o, d in enumerate(letters, start=first) if o < replay))

    def group_metadata(self) -> tuple:
        """``(group_id, generation_id, member_id, group_instance_id)`` as of the last poll: what a
        transaction's offsets commit needs (KIP-447), safe to read in rebalance callbacks."""
        return self._group

    def take_warnings(self, final: bool = False) -> list[str]:
        """Named fields none of the first events had (:class:`FieldCensus`), and event times that time
        features cannot use (:class:`TimeCensus`), each once: when the first ``SAMPLE`` events are read,
        or (``final``: the daemon stops) judged by the fewer events read. Not at an empty poll: a live topic
        slower than the poll timeout would be judged by its first event, a backlog by a fetch that came late."""
        return self.checks.take(final=final)

    def fill_positions(self) -> None:
        """Bring every assigned partition's position up to the consumer's (blocking; main thread only).

        A partition without a returned record starts at the consumer's position. One with
        records also moves past what the consumer skipped after the last of them: transaction
        markers (every commit or abort writes one), aborted records under ``read_committed``,
        and offsets removed by compaction. Without this a transactional topic would always
        look one record behind its end. poll() has returned every record below the consumer's
        position, and the owner has processed them all when it calls this, so the position
        never runs ahead of the model.
        """
        for tp in list(self.assigned):
            try:
                position = self.consumer.position(tp, timeout_ms=LOOKUP_TIMEOUT_MS)
            except Exception as e:  # not resolvable yet (no leader): try at the next checkpoint
                log.debug("position of %s not known yet: %s", tp_key(tp), e)
                continue
            if position is not None and position > self.positions.get(tp, -1):
                self.positions[tp] = position

    def at_end(self) -> bool:
        """True when partitions are assigned and every one is consumed to its end offset (blocking)."""
        if not self.assigned:
            return False
        self.fill_positions()
        parts = list(self.assigned)
        try:
            ends = self.consumer.end_offsets(parts, timeout_ms=LOOKUP_TIMEOUT_MS)
        except KafkaTimeoutError:  # a busy broker: ask again after the next poll
            return False
        return all(tp in self.positions and self.positions[tp] >= ends.get(tp, 0) for tp in parts)

    def lag(self, now: float | None = None) -> dict[TopicPartition, int | None]:
        """Records behind each assigned partition's end (None: not known yet); the loop's thread only.

        The end is the later of the partition's high watermark as of its last fetch and its end
        offset as of the last lookup (:meth:`_look_up_ends`). The high watermark alone reads far
        too low when a backlog starts: kafka-python updates it only when it parses a partition's
        fetch, and fetches no partition whose records are still buffered, so records produced
        since then were not counted. Neither is past the partition's current high watermark.
        ``now``: ``time.monotonic()`` by default.
        """
        parts = list(self.assigned)  # a snapshot: rebalance callbacks change the set
        self._look_up_ends(parts, time.monotonic() if now is None else now)
        out = {}
        for tp in parts:
            ends = [e for e in (self.consumer.highwater(tp), self._ends.get(tp)) if e is not None]
            pos = self.positions.get(tp)
            out[tp] = None if not ends or pos is None else max(max(ends) - pos, 0)
        return out

    def _look_up_ends(self, parts: list[TopicPartition], now: float) -> None:
        """Refresh the end offsets of ``parts`` for :meth:`lag`: blocking, so at most every
        ``_LAG_LOOKUP_EVERY_S``, for at most ``_LAG_LOOKUP_TIMEOUT_MS``, and only while the polls come
        back full (:attr:`behind`): caught up, the fetches' high watermarks are current, and the
        lookup would wait behind the consumer's parked fetch, holding the loop (and the events that
        arrive meanwhile) for the whole timeout. A lookup that fails leaves the last ends (still
        lower bounds: offsets only grow) until the next try."""
        if (not parts or self._closed or not self.behind
                or (self._ends_at is not None and now - self._ends_at < _LAG_LOOKUP_EVERY_S)):
            return
        self._ends_at = now
        try:
            self._ends = self.consumer.end_offsets(parts, timeout_ms=_LAG_LOOKUP_TIMEOUT_MS)
        except KafkaError as e:  # the consumer's fetch parked on the broker, or a slow broker: a metric can wait
            log.debug("end offsets for the lag not looked up: %s", e)

    def highwater(self, tp: TopicPartition) -> int | None:
        """The end offset of ``tp`` the last fetch saw (None before one)."""
        return self.consumer.highwater(tp)

    def close(self) -> None:
        """Leave the group (a last revoke callback runs first) and close the consumer."""
        self._closed = True  # lag() after this (the last status) looks nothing up: a closed consumer raises
        try:
            self.consumer.close(autocommit=False)
        finally:
            self.unreadable.close()

    def abort(self) -> None:
        """After a failure: close the consumer, committing nothing (the daemon's transactions hold the offsets)."""
        self.close()
