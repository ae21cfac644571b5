"""Kafka in and out: a consumer-group source and producer sinks for predictions and dead letters.

The source subscribes a consumer group to the event topics (a list or a pattern) and,
optionally, a labels topic. It only moves bytes: every value goes through
:meth:`stream_cl.decode.EventDecoder.decode_json` (events) or
:class:`stream_cl.pending.LabelDecoder` (labels), so a topic can hold anything and a
bad record becomes a dead letter with origin ``"topic/partition@offset"``.

Offsets are never committed automatically. The source tracks, per partition, the
offset after the last record it returned; the daemon commits those only after its
checkpoint is durable. Rebalances call back into the owner (:class:`RebalanceHooks`):
on revoke, the owner checkpoints and the source commits; on assign, each partition
starts at the larger of the checkpoint's offset and the group's committed offset, so
neither this consumer nor the group learns an event twice after a clean rebalance.

kafka-python runs rebalance callbacks on its IO thread while the caller's thread is
blocked inside ``poll()``: the owner's state is quiescent then, and the callbacks use
the consumer's coroutine APIs (a blocking call there would deadlock the IO loop).

Sinks: predictions are JSON records keyed by event id; dead letters keep the original
bytes (and key) with ``stream-cl.reason``, ``stream-cl.detail``, ``stream-cl.topic``,
``stream-cl.partition`` and ``stream-cl.offset`` headers. Both write asynchronously;
``flush()`` waits for delivery and raises :class:`DeliveryError` if any record failed.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError, UnsupportedCodecError
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

from stream_cl.config import ConfigError, KafkaConfig, MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.events import DeadLetter, Prediction
from stream_cl.mapping_check import FieldCensus
from stream_cl.pending import LabelDecoder

from .logs import log_event
from .publisher import DeliveryError, PredictionWriter, ProducerSink, prediction_row

__all__ = [
    "BackgroundWriter",
    "DeliveryError",
    "KafkaDeadLetterSink",
    "KafkaPredictionSink",
    "KafkaSource",
    "PolledBatch",
    "RebalanceHooks",
    "bootstrap_hint",
    "client_options",
    "make_producer",
    "producer_options",
    "parse_origin",
    "tp_key",
]

log = logging.getLogger("stream_cl.kafka")

HEADER_PREFIX = "stream-cl."
_ORIGIN = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+)/(?P<partition>\d+)@(?P<offset>\d+)$")
_JOIN_POLL_MS = 3_000  # poll timeout while no partition is assigned
_LOOKUP_TIMEOUT_MS = 10_000  # position / end-offset lookups (main thread, blocking)
_HEADER_ROOM = 4096  # bytes kept free in a dead-letter record for key, headers and framing


def tp_key(tp: TopicPartition) -> str:
    """``"topic/partition"``: how partitions are named in metrics and status files."""
    return f"{tp.topic}/{tp.partition}"


def parse_origin(origin: str) -> tuple[str, int, int] | None:
    """``(topic, partition, offset)`` from an origin ``"topic/partition@offset"``, else None.

    >>> parse_origin("events/3@1207"), parse_origin("file.jsonl:3")
    (('events', 3, 1207), None)
    """
    m = _ORIGIN.match(origin)
    return (m["topic"], int(m["partition"]), int(m["offset"])) if m else None


# -- client settings ----------------------------------------------------------------------
def _secret(cfg: KafkaConfig, name: str) -> str | None:
    value = getattr(cfg, name)
    env = getattr(cfg, f"{name}_env")
    if env:
        if env not in os.environ:
            raise ConfigError(f"kafka.{name}_env: environment variable {env!r} is not set; export it or set kafka.{name}")
        value = os.environ[env]
    return value or None


def client_options(cfg: KafkaConfig) -> dict:
    """Options every client (consumer, producer, admin) shares: servers, id, security.

    Secrets named by ``*_env`` keys are read from the environment here.
    """
    servers = [cfg.bootstrap_servers] if isinstance(cfg.bootstrap_servers, str) else list(cfg.bootstrap_servers)
    servers = [s.strip() for item in servers for s in item.split(",") if s.strip()]
    opts: dict = {"bootstrap_servers": servers, "client_id": cfg.client_id,
                  "security_protocol": cfg.security_protocol}
    if cfg.security_protocol in ("SSL", "SASL_SSL"):
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(cfg, key)
            if path:
                if not os.path.isfile(path):
                    raise ConfigError(f"kafka.{key}: no such file {path!r}; give the path of the PEM file")
                opts[key] = path
        opts["ssl_password"] = _secret(cfg, "ssl_password")
        opts["ssl_check_hostname"] = cfg.ssl_check_hostname
    if cfg.security_protocol.startswith("SASL_"):
        opts["sasl_mechanism"] = cfg.sasl_mechanism
        user, password = _secret(cfg, "sasl_plain_username"), _secret(cfg, "sasl_plain_password")
        if not user or password is None:
            raise ConfigError(f"kafka.sasl_plain_username: {cfg.sasl_mechanism} needs a username and a password; "
                              "set sasl_plain_username and sasl_plain_password (or their _env forms)")
        opts["sasl_plain_username"], opts["sasl_plain_password"] = user, password
    return opts


def bootstrap_hint(error: BaseException, cfg: KafkaConfig) -> str | None:
    """What to check when a client could not reach the brokers (``None`` for other errors).

    kafka-python reports "Unable to bootstrap" for a refused connection, rejected SASL
    credentials and a failed TLS handshake alike (the broker often just closes the
    connection), so the hint names the settings that matter for ``cfg``.
    """
    if "Unable to bootstrap" not in str(error) and "NoBrokersAvailable" not in type(error).__name__:
        return None
    hint = f"no broker of kafka.bootstrap_servers = {cfg.bootstrap_servers!r} completed a connection"
    if cfg.security_protocol.startswith("SASL_"):
        hint += (f"; with security_protocol = {cfg.security_protocol!r} a broker closes connections whose SASL "
                 "credentials or mechanism it rejects: check kafka.sasl_mechanism, kafka.sasl_plain_username and "
                 "the password (kafka.sasl_plain_password or the variable kafka.sasl_plain_password_env names)")
    if cfg.security_protocol in ("SSL", "SASL_SSL"):
        hint += ("; a failed TLS handshake looks the same: check kafka.ssl_cafile (the CA that signed the broker's "
                 "certificate) and kafka.ssl_check_hostname")
    if cfg.security_protocol == "PLAINTEXT":
        hint += "; check the address and that the listener there is PLAINTEXT (not SSL or SASL)"
    return hint


def producer_options(cfg: KafkaConfig) -> dict:
    """:class:`KafkaProducer` keyword arguments (idempotent when ``acks = "all"``)."""
    acks = -1 if cfg.acks in ("all", -1) else int(cfg.acks)
    return {
        **client_options(cfg),
        "acks": acks,
        "enable_idempotence": acks == -1,
        "linger_ms": cfg.linger_ms,
        "batch_size": cfg.batch_size,
        "compression_type": None if cfg.compression_type == "none" else cfg.compression_type,
        "max_request_size": cfg.max_message_bytes,
    }


CODECS = ("snappy", "lz4", "zstd")  # gzip is in the standard library


def missing_codecs() -> list[str]:
    """The Kafka compression codecs kafka-python cannot (de)compress in this install."""
    from kafka import codec

    return [name for name in CODECS if not getattr(codec, f"has_{name}")()]


def install_warnings() -> list[str]:
    """What this install of kafka-python lacks, each with its cost and its fix ([] when complete).

    kafka-python verifies the CRC-32C of every record batch it fetches and computes it for
    every batch it builds. Without the C package ``crc32c`` it falls back to pure Python:
    measured on the benchmark machine, ~41 µs per 222-byte event instead of ~0.02 µs, and
    the bare consumer 4x slower (13,013 instead of 51,528 events/s). A topic written with
    snappy, lz4 or zstd compression (a producer's or the topic's ``compression.type``)
    cannot be read at all without that codec's package. stream-cl depends on
    ``kafka-python[crc32c,lz4,snappy,zstd]``; this catches installs that lost one.

    >>> install_warnings()  # everything is installed with stream-cl
    []
    """
    from kafka.record import util

    out = []
    if util.crc32c_c is None:
        out.append("kafka-python is checking record CRCs in pure Python (the C package crc32c is not importable): "
                   "fetching and publishing will be several times slower; install it: "
                   "pip install 'kafka-python[crc32c]'")
    if missing := missing_codecs():
        out.append(f"kafka-python cannot decompress {', '.join(missing)} here: a topic compressed with "
                   f"{'it' if len(missing) == 1 else 'them'} will stop the daemon; install: "
                   f"pip install 'kafka-python[{','.join(missing)}]'")
    return out


class UnreadableBatch(RuntimeError):
    """A fetched record batch this install cannot decompress: nothing of it is returned or committed."""


def _unreadable(error: Exception) -> UnreadableBatch:
    match = re.search(r"for (\w+) compression", str(error))
    extra = match.group(1) if match else ",".join(CODECS)
    return UnreadableBatch(f"a fetched record batch is compressed with a codec kafka-python cannot decompress here "
                           f"({error}); install it: pip install 'kafka-python[{extra}]' and restart: the daemon "
                           "resumes from its last checkpoint, nothing after it was committed")


def make_producer(cfg: KafkaConfig) -> KafkaProducer:
    """A producer for dead letters (and predictions when ``publisher = "thread"``)."""
    return KafkaProducer(**producer_options(cfg))


# -- the source -----------------------------------------------------------------------------
class RebalanceHooks(Protocol):
    """What the owner of a :class:`KafkaSource` does around rebalances (called on the IO thread)."""

    def on_revoke(self, partitions: set[TopicPartition], lost: bool) -> Mapping[TopicPartition, int]:
        """Make the processed state durable; return the offsets to commit (ignored if ``lost``)."""

    def on_assign(self, partitions: set[TopicPartition]) -> Mapping[TopicPartition, int]:
        """The next offset the owner's checkpoint holds for each partition it knows."""


class _Listener(AsyncConsumerRebalanceListener):
    def __init__(self, source: "KafkaSource"):
        self.source = source

    async def on_partitions_revoked(self, revoked):
        await self.source._on_revoked(set(revoked), lost=False)

    async def on_partitions_assigned(self, assigned):
        await self.source._on_assigned(set(assigned))

    async def on_partitions_lost(self, lost):
        await self.source._on_revoked(set(lost), lost=True)


@dataclass
class PolledBatch:
    """One poll's records, decoded, in consumer order."""

    items: list  # Event | DeadLetter | stream_cl.pending.LabelUpdate
    raw: dict  # origin -> (key, value) of every record, for dead letters


class KafkaSource:
    """Decoded records from a consumer group (see the module docstring)."""

    exhausted = False  # a topic never ends; see at_end() for stop_at_end

    def __init__(self, cfg: KafkaConfig, mapping: MappingConfig, label_policy: str = "optional",
                 hooks: RebalanceHooks | None = None, consumer: KafkaConsumer | None = None):
        if not cfg.topics and not cfg.topic_pattern:
            raise ConfigError("kafka.topics: no topics to consume; set kafka.topics = [\"events\"] or kafka.topic_pattern")
        outputs = {t for t in (cfg.predictions_topic, cfg.dead_letter_topic) if t}
        inputs = set(cfg.topics) | ({cfg.labels_topic} if cfg.labels_topic else set())
        loop = (outputs & inputs) or {t for t in outputs if cfg.topic_pattern and re.match(cfg.topic_pattern, t)}
        if loop:
            raise ConfigError(f"kafka.topics: {sorted(loop)[0]!r} is both consumed and produced to; "
                              "the daemon would learn from its own output; use separate topics")
        self.cfg = cfg
        self.hooks = hooks
        # without a labels topic an event's label must be in the event: check that its field appears
        self.decoder = EventDecoder(mapping, label_policy, census=FieldCensus(mapping, check_label=not cfg.labels_topic))
        self.labels = LabelDecoder(mapping)
        self.labels_topic = cfg.labels_topic
        self.positions: dict[TopicPartition, int] = {}  # next offset after the records returned
        self.assigned: set[TopicPartition] = set()
        self.committed: dict[TopicPartition, int] = {}  # last offsets committed by this source
        self.skipped = 0  # records returned again below a known position (not processed twice)
        self.rebalances = 0
        self.commit_failures = 0
        self.consumer = consumer if consumer is not None else KafkaConsumer(
            **client_options(cfg),
            group_id=cfg.group_id,
            group_instance_id=cfg.group_instance_id or None,
            enable_auto_commit=False,
            auto_offset_reset=cfg.auto_offset_reset,
            isolation_level=cfg.isolation_level,
            max_poll_records=cfg.max_poll_records,
            fetch_max_bytes=cfg.fetch_max_bytes,
            max_partition_fetch_bytes=cfg.max_partition_fetch_bytes,
            session_timeout_ms=cfg.session_timeout_ms,
            max_poll_interval_ms=cfg.max_poll_interval_ms,
            # never below a record the broker may hold: oversized records are decoded into dead letters
            receive_message_max_bytes=max(100_000_000, 2 * cfg.fetch_max_bytes),
        )
        listener = _Listener(self)
        if cfg.topic_pattern:
            pattern = cfg.topic_pattern
            if cfg.labels_topic:
                pattern = f"(?:{pattern})|{re.escape(cfg.labels_topic)}$"
            self.consumer.subscribe(pattern=pattern, listener=listener)
        else:
            topics = list(dict.fromkeys([*cfg.topics, *([cfg.labels_topic] if cfg.labels_topic else [])]))
            self.consumer.subscribe(topics=topics, listener=listener)
            self._check_topics(topics)

    def _check_topics(self, topics: list[str]) -> None:
        """Fetch the subscribed topics' metadata before the first poll joins the group, and say
        which do not exist.

        With the metadata at hand the first assignment already holds every partition
        (without it the group leader assigns nothing, kafka-python warns "No partition
        metadata", and a second rebalance follows). After subscribe(), so that the
        consumer's coordinator sees the update (before it, the coordinator keeps an empty
        snapshot, and the first metadata refresh after joining forces a rebalance).
        """
        for topic in topics:
            if self.consumer.partitions_for_topic(topic):
                continue
            key = "kafka.labels_topic" if topic == self.labels_topic else "kafka.topics"
            log_event(log, "topic_missing", level=logging.WARNING, topic=topic, key=key,
                      detail=f"{key}: topic {topic!r} does not exist (yet); a broker with auto.create.topics.enable "
                             "(the dev broker) creates it now, most production brokers do not: create it, e.g. "
                             f"kafka-topics.sh --bootstrap-server HOST:PORT --create --topic {topic} --partitions 6")

    # -- polling ---------------------------------------------------------------------------
    def poll(self, max_records: int) -> PolledBatch:
        """Up to ``max_records`` decoded records; positions advance past every one returned."""
        # Without partitions the group is (re)joining: give the join round trip time to finish
        # inside one poll (kafka-python restarts a join that completes between two polls).
        timeout = self.cfg.poll_timeout_ms if self.assigned else max(self.cfg.poll_timeout_ms, _JOIN_POLL_MS)
        try:
            batches = self.consumer.poll(timeout_ms=timeout, max_records=max_records)
        except UnsupportedCodecError as e:
            raise _unreadable(e) from e
        items: list = []
        raw: dict = {}
        append = items.append
        decode_event, decode_label = self.decoder.decode_json, self.labels.decode
        positions, assigned = self.positions, self.assigned
        for tp, records in batches.items():
            if tp not in assigned:  # defensive: a record of a partition this consumer gave up
                continue
            expected = positions.get(tp, -1)
            decode = decode_label if tp.topic == self.labels_topic else decode_event
            prefix = f"{tp.topic}/{tp.partition}@"
            for r in records:
                offset = r.offset
                if offset < expected:  # seen and processed already
                    self.skipped += 1
                    continue
                value = r.value if r.value is not None else b""
                origin = prefix + str(offset)
                raw[origin] = (r.key, value)
                append(decode(value, origin))
                expected = offset + 1
            if expected >= 0:
                positions[tp] = expected
        return PolledBatch(items, raw)

    def take_warnings(self) -> list[str]:
        """Named fields none of the first events had (see :class:`FieldCensus`), once."""
        return self.decoder.census.take()

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
                position = self.consumer.position(tp, timeout_ms=_LOOKUP_TIMEOUT_MS)
            except Exception as e:  # not resolvable yet (no leader): try at the next checkpoint
                log.debug("position of %s not known yet: %s", tp_key(tp), e)
                continue
            if position is not None and position > self.positions.get(tp, -1):
                self.positions[tp] = position

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` of assigned partitions (blocking; main thread only)."""
        mine = {tp: OffsetAndMetadata(int(o), "", -1) for tp, o in offsets.items() if tp in self.assigned}
        if mine:
            self.consumer.commit(mine)
            self.committed.update((tp, om.offset) for tp, om in mine.items())

    def at_end(self) -> bool:
        """True when partitions are assigned and every one is consumed to its end offset (blocking)."""
        if not self.assigned:
            return False
        self.fill_positions()
        parts = list(self.assigned)
        try:
            ends = self.consumer.end_offsets(parts, timeout_ms=_LOOKUP_TIMEOUT_MS)
        except KafkaTimeoutError:  # a busy broker: ask again after the next poll
            return False
        return all(tp in self.positions and self.positions[tp] >= ends.get(tp, 0) for tp in parts)

    def lag(self) -> dict[TopicPartition, int | None]:
        """Records behind the partition's high watermark (as of the last fetch), per assigned partition."""
        out = {}
        for tp in list(self.assigned):  # a snapshot: rebalance callbacks change the set
            hw = self.consumer.highwater(tp)
            pos = self.positions.get(tp)
            out[tp] = None if hw is None or pos is None else max(hw - pos, 0)
        return out

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.consumer.highwater(tp)

    def close(self) -> None:
        """Leave the group (a last revoke callback runs first) and close the consumer."""
        self.consumer.close(autocommit=False)

    # -- rebalance callbacks (IO thread, caller blocked in poll/close) -----------------------
    async def _on_revoked(self, partitions: set[TopicPartition], lost: bool) -> None:
        mine = partitions & self.assigned
        offsets = dict(self.hooks.on_revoke(mine, lost)) if self.hooks is not None and mine else {}
        if offsets and not lost:
            try:
                await self._commit_async({tp: o for tp, o in offsets.items() if tp in mine})
            except Exception as e:  # the checkpoint is durable: resuming is exact anyway
                self.commit_failures += 1
                log.warning("offset commit on revoke failed (%s: %s); the checkpoint holds the offsets",
                            type(e).__name__, e)
        for tp in partitions:
            self.positions.pop(tp, None)
            self.assigned.discard(tp)
        if partitions:  # kafka-python revokes the empty set before the first join: nothing to say
            log.info("partitions %s: %s", "lost" if lost else "revoked", sorted(map(tp_key, partitions)))

    async def _on_assigned(self, partitions: set[TopicPartition]) -> None:
        self.rebalances += 1  # assignments received (the first one included)
        committed = await self._committed_async(partitions)
        saved = dict(self.hooks.on_assign(partitions)) if self.hooks is not None else {}
        for tp in partitions:
            candidates = [o for o in (saved.get(tp), committed.get(tp)) if o is not None and o >= 0]
            if candidates:
                pos = max(candidates)
                self.consumer.seek(tp, pos)
                self.positions[tp] = pos
            else:
                self.positions.pop(tp, None)  # auto_offset_reset decides; read at the next checkpoint
        self.assigned |= partitions
        log.info("partitions assigned: %s", sorted(f"{tp_key(tp)}@{self.positions.get(tp, '?')}" for tp in partitions))

    async def _commit_async(self, offsets: Mapping[TopicPartition, int]) -> None:
        meta = {tp: OffsetAndMetadata(int(o), "", -1) for tp, o in offsets.items()}
        if not meta:
            return
        coordinator = self.consumer._coordinator
        commit = getattr(coordinator, "_commit_offsets_sync_async", None)
        if commit is not None:  # retries retriable errors until request_timeout_ms
            await commit(meta)
        else:
            await self.consumer.commit_async(meta)
        self.committed.update((tp, om.offset) for tp, om in meta.items())

    async def _committed_async(self, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        fetch = getattr(self.consumer._coordinator, "fetch_committed_offsets_async", None)
        if fetch is None:
            log.warning("this kafka-python cannot read committed offsets in a rebalance callback; "
                        "partitions start from the checkpoint or auto_offset_reset")
            return {}
        result = await fetch(partitions, self.cfg.session_timeout_ms)
        return {tp: om.offset for tp, om in (result or {}).items() if om is not None and om.offset >= 0}


# -- sinks ------------------------------------------------------------------------------------
class KafkaPredictionSink(PredictionWriter):
    """One JSON record per prediction, keyed by the event id: see :class:`PredictionWriter`."""

    def write(self, predictions: Sequence[Prediction]) -> None:
        self.send_rows(map(prediction_row, predictions))


class BackgroundWriter:
    """Runs a sink's ``write`` on a worker thread behind a bounded queue.

    Serialising and handing records to kafka-python is pure Python; on a worker it
    overlaps with the model's numeric work (which releases the GIL). ``write`` blocks
    when ``max_batches`` writes are waiting (backpressure); ``flush`` waits until every
    queued write is done, then flushes the sink, and raises any error the worker met.
    """

    def __init__(self, sink, max_batches: int = 8, name: str = "stream-cl-publisher"):
        self.sink = sink
        self._queue: queue.Queue = queue.Queue(maxsize=max_batches)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    self.sink.write(*item)
            except BaseException as e:  # reported by the next write/flush, in the caller's thread
                self._error = e
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            raise DeliveryError(f"publishing failed: {type(self._error).__name__}: {self._error}") from self._error

    def write(self, *args) -> None:
        self._raise()
        self._queue.put(args)

    def flush(self) -> None:
        self._queue.join()
        self._raise()
        self.sink.flush()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self.sink.close()

    def abort(self) -> None:
        """After a failure: the worker ends; queued records are dropped."""
        self._queue.put(None)


class KafkaDeadLetterSink(ProducerSink):
    """Dead letters as records holding the original bytes (and key), explained in headers.

    Headers: ``stream-cl.reason`` (a code of :data:`stream_cl.events.REASONS`),
    ``stream-cl.detail``, ``stream-cl.origin`` and, for records that came from Kafka,
    ``stream-cl.topic``, ``stream-cl.partition`` and ``stream-cl.offset``. A value too
    large for ``max_message_bytes`` is cut to fit, with ``stream-cl.truncated-from``
    holding its original size.
    """

    def __init__(self, producer: KafkaProducer, topic: str, max_message_bytes: int = 1_048_576,
                 owns_producer: bool = False):
        super().__init__(producer, topic, owns_producer)
        self.max_message_bytes = max_message_bytes
        self.truncated = 0

    def write(self, letters: Sequence[DeadLetter], keys: Mapping[str, bytes | None] | None = None) -> None:
        for d in letters:
            self.write_one(d, None if keys is None else keys.get(d.origin))

    def write_one(self, letter: DeadLetter, key: bytes | None = None) -> None:
        headers = [(HEADER_PREFIX + "reason", letter.reason.encode()),
                   (HEADER_PREFIX + "detail", letter.detail.encode("utf-8", "replace")[:1000]),
                   (HEADER_PREFIX + "origin", letter.origin.encode("utf-8", "replace")[:1000])]
        where = parse_origin(letter.origin)
        if where is not None:
            headers += [(HEADER_PREFIX + "topic", where[0].encode()),
                        (HEADER_PREFIX + "partition", str(where[1]).encode()),
                        (HEADER_PREFIX + "offset", str(where[2]).encode())]
        value = bytes(letter.raw)
        room = self.max_message_bytes - _HEADER_ROOM - (len(key) if key else 0)
        if len(value) > room:
            headers.append((HEADER_PREFIX + "truncated-from", str(len(value)).encode()))
            value = value[: max(room, 0)]
            self.truncated += 1
        try:
            self._futures.append(self.producer.send(self.topic, key=key, value=value, headers=headers))
        except KafkaTimeoutError as e:
            raise self.no_metadata(e) from e
        self.sent += 1

