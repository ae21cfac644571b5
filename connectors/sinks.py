"""The records the daemon writes to Kafka: predictions keyed by event id, and dead letters with headers.

Both are built here and sent by a :class:`~connectors.transaction.TransactionalWriter`
(in the publisher process, or in the daemon's own). This module imports only the
standard library and kafka-python.

>>> from stream_cl.events import DeadLetter
>>> key, value, headers = dead_letter_record(DeadLetter(b"{oops", "malformed", "invalid JSON", "events/3@17"), b"e1")
>>> key, value, dict(headers)["stream-cl.reason"], dict(headers)["stream-cl.offset"]
(b'e1', b'{oops', b'malformed', b'17')
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable

import orjson
from kafka.errors import KafkaTimeoutError
from kafka.partitioner.default import murmur2

__all__ = ["DeliveryError", "HEADER_PREFIX", "PredictionWriter", "dead_letter_record", "kept_headers", "parse_origin",
           "prediction_row"]

HEADER_PREFIX = "stream-cl."
_HEADER_ROOM = 4096  # bytes kept free in a dead-letter record for key, headers and framing
_ORIGIN = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+)/(?P<partition>\d+)@(?P<offset>\d+)$")
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode
_fast_dumps = orjson.dumps  # compact UTF-8 JSON, as _encode_json writes it, ~5x faster (prediction_json)


def prediction_json(value: dict) -> bytes:
    """A prediction record's value as compact UTF-8 JSON.

    orjson writes it where it gives what the standard library's encoder (compact, UTF-8,
    ``default=str``) means: the same values (an exponent may be written ``1e-7`` for
    ``1e-07``). A value orjson refuses (a numpy scalar, an integer beyond 64 bits) and a float
    label (the standard library writes infinity as ``Infinity``, orjson as ``null``) take the
    standard library, as every value did before.

    >>> prediction_json({"id": "1", "y_pred": "cat", "proba": 0.75, "ts": 1.5e-07})
    b'{"id":"1","y_pred":"cat","proba":0.75,"ts":1.5e-7}'
    >>> prediction_json({"id": "1", "y_pred": float("inf")}) == _encode_json({"id": "1", "y_pred": float("inf")}).encode()
    True
    """
    if type(value.get("y_pred")) is not float and type(value.get("y_true")) is not float:
        try:
            return _fast_dumps(value)
        except TypeError:  # orjson.JSONEncodeError: a type it does not write as we do
            pass
    return _encode_json(value).encode()


class DeliveryError(RuntimeError):
    """A record the producer could not deliver (after its retries)."""


def parse_origin(origin: str) -> tuple[str, int, int] | None:
    """``(topic, partition, offset)`` from an origin ``"topic/partition@offset"``, else None.

    >>> parse_origin("events/3@1207"), parse_origin("file.jsonl:3")
    (('events', 3, 1207), None)
    """
    m = _ORIGIN.match(origin)
    return (m["topic"], int(m["partition"]), int(m["offset"])) if m else None


def prediction_row(p) -> tuple:
    """A :class:`stream_cl.events.Prediction` as the plain tuple the pipe carries."""
    return (p.id, p.y_pred, p.proba, p.y_true, p.task, p.ts, p.origin)


def no_metadata(topic: str, error: KafkaTimeoutError) -> DeliveryError:
    """The error for a topic kafka-python found no metadata for within ``max_block_ms``."""
    return DeliveryError(f"no metadata for topic {topic!r} ({error}): create the topic (a broker with "
                         "auto.create.topics.enable=false does not create it) and check that the broker is reachable")


def _header_text(text: str, limit: int = 1000) -> bytes:
    """``text`` as UTF-8 of at most ``limit`` bytes, cut between characters (a header a consumer can decode)."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return data
    return data[:limit].decode("utf-8", "ignore").encode("utf-8")


def dead_letter_record(letter, key: bytes | None = None, max_message_bytes: int = 1_048_576,
                       headers: Iterable[tuple[str, bytes]] = ()) -> tuple:
    """``(key, value, headers)`` of a dead letter: the original bytes, key and headers, explained in headers of ours.

    ``headers`` are the input record's own (trace ids, schema ids): they come first, in their order, less
    any named ``stream-cl.*`` (a dead letter read again and refused again is explained anew, not twice), and
    as many as fit a quarter of the record (:func:`kept_headers`). Ours: ``stream-cl.reason`` (a code of
    :data:`stream_cl.events.REASONS`), ``stream-cl.detail``, ``stream-cl.origin`` and, for records that
    came from Kafka, ``stream-cl.topic``, ``stream-cl.partition`` and ``stream-cl.offset``. A value too
    large for ``max_message_bytes`` is cut to fit, with ``stream-cl.truncated-from``
    holding its original size; so is a key over half of what the headers leave (``stream-cl.key-truncated-from``),
    and ``stream-cl.headers-dropped`` counts the record's own headers left out:
    a record the dead-letter topic refuses would abort every transaction that holds it.

    >>> from stream_cl.events import DeadLetter
    >>> k, v, h = dead_letter_record(DeadLetter(b"x" * 900, "malformed", "bad"), key=b"k" * 900, max_message_bytes=20000)
    >>> len(k) + len(v), dict(h)["stream-cl.reason"]
    (1800, b'malformed')
    >>> k, v, h = dead_letter_record(DeadLetter(b"x" * 900, "malformed", "bad"), key=b"k" * 19900, max_message_bytes=20000)
    >>> len(k) + len(v) + sum(len(a) + len(b) for a, b in h) <= 20000, dict(h)["stream-cl.key-truncated-from"]
    (True, b'19900')
    >>> dead_letter_record(DeadLetter(b"{", "malformed", "bad"), key=b"k1", max_message_bytes=8192)[0]  # a small limit
    b'k1'
    >>> h = dead_letter_record(DeadLetter(b"{", "malformed", "bad"), headers=[("traceparent", b"00-ab"),
    ...                        ("stream-cl.reason", b"too_deep")])[2]
    >>> h[0], [v for k, v in h if k == "stream-cl.reason"]  # the record's own first; ours explain it
    (('traceparent', b'00-ab'), [b'malformed'])
    """
    own, dropped, own_bytes = kept_headers(headers, max(max_message_bytes - _HEADER_ROOM, 0) // 4)
    headers = own + [(HEADER_PREFIX + "reason", letter.reason.encode()),
               (HEADER_PREFIX + "detail", _header_text(letter.detail)),
               (HEADER_PREFIX + "origin", _header_text(letter.origin))]
    where = parse_origin(letter.origin)
    if where is not None:
        headers += [(HEADER_PREFIX + "topic", where[0].encode()),
                    (HEADER_PREFIX + "partition", str(where[1]).encode()),
                    (HEADER_PREFIX + "offset", str(where[2]).encode())]
    if dropped:
        headers.append((HEADER_PREFIX + "headers-dropped", str(dropped).encode()))
    # a tombstone's dead letter is a null value too, where it has a key: a record with neither is refused by the
    # producer ("Need at least one: key or value"), and the transaction holding it would abort at every start over
    value = (None if key is not None else b"") if letter.raw is None else bytes(letter.raw)
    key_room = max(max_message_bytes - _HEADER_ROOM, 0) // 2
    if key is not None and len(key) > key_room:
        headers.append((HEADER_PREFIX + "key-truncated-from", str(len(key)).encode()))
        key = bytes(key[:key_room])
    room = max_message_bytes - _HEADER_ROOM - (len(key) if key else 0) - own_bytes
    if value is not None and len(value) > room:
        headers.append((HEADER_PREFIX + "truncated-from", str(len(value)).encode()))
        value = value[: max(room, 0)]
    return key, value, headers


def kept_headers(headers: Iterable[tuple[str, bytes]], room: int) -> tuple[list, int, int]:
    """``(kept, dropped, size)``: an input record's headers for its dead letter, in order, less those named
    ``stream-cl.*``, while their size (names, values and ~10 bytes of framing each) fits ``room``; the count
    of those that did not, and the kept ones' size. A header with a null value is kept empty: kafka-python's
    producer takes only bytes.

    >>> kept_headers([("a", b"1"), ("stream-cl.reason", b"x"), ("b", b"22"), ("c", None)], 40)
    ([('a', b'1'), ('b', b'22'), ('c', b'')], 0, 36)
    >>> kept_headers([("a", b"1" * 20), ("b", b"2" * 9), ("c", b"3")], 40)  # past the room: the rest are counted
    ([('a', b'11111111111111111111')], 2, 31)
    """
    kept, dropped, size = [], 0, 0
    for name, value in headers or ():
        if name.startswith(HEADER_PREFIX):
            continue
        value = b"" if value is None else bytes(value)
        cost = len(name.encode("utf-8", "replace")) + len(value) + 10
        if dropped or size + cost > room:
            dropped += 1
            continue
        kept.append((name, value))
        size += cost
    return kept, dropped, size


class PredictionWriter:
    """Sends prediction rows as JSON records keyed by event id (unkeyed when it has none).

    The value is ``{"id", "y_pred", "proba", "y_true", "task", "ts", "origin"}``, the same
    fields as the JSONL file sink; ``origin`` is ``"topic/partition@offset"`` of the event.
    Keyed records go to the partition Kafka's default partitioner would choose
    (murmur2 of the key); computing it here, with the partition count cached, saves a
    quarter of kafka-python's per-record cost. The owner flushes (a transaction commit)
    and then collects the sends' futures and count with :meth:`take_futures` / :meth:`take_sent`.
    """

    PARTITIONS_TTL_S = 30.0

    def __init__(self, producer, topic: str):
        self.producer = producer
        self.topic = topic
        self._futures: list = []
        self._sent = 0
        self._parts: list[int] = []
        self._parts_at = -math.inf
        self._rr = 0

    def _partitions(self) -> list[int]:
        now = time.monotonic()
        if now - self._parts_at > self.PARTITIONS_TTL_S:
            try:
                self._parts = sorted(self.producer.partitions_for(self.topic))
            except KafkaTimeoutError as e:
                raise no_metadata(self.topic, e) from e
            self._parts_at = now
        return self._parts

    def send_rows(self, rows: Iterable[tuple]) -> None:
        """Send prediction rows ``(id, y_pred, proba, y_true, task, ts, origin)`` as JSON, keyed by id (partitioned
        as Kafka's default partitioner does; no id: round robin); non-finite ``proba`` and ``ts`` become null."""
        send, topic, encode, futures = self.producer.send, self.topic, prediction_json, self._futures
        parts = self._partitions()
        n = len(parts)
        count = 0
        for id_, y_pred, proba, y_true, task, ts, origin in rows:
            proba = proba if math.isfinite(proba) else None
            ts = ts if ts is None or math.isfinite(ts) else None
            value = encode({"id": id_, "y_pred": y_pred, "proba": proba, "y_true": y_true,
                            "task": task, "ts": ts, "origin": origin})
            if id_ is None:
                key = None
                self._rr += 1
                part = parts[self._rr % n]
            else:
                key = id_.encode()
                part = parts[0] if n == 1 else parts[(murmur2(key) & 0x7FFFFFFF) % n]
            futures.append(send(topic, key=key, value=value, partition=part))
            count += 1
        self._sent += count

    def take_futures(self) -> list:
        """The send futures since the last call (the caller waits on them before it commits)."""
        futures, self._futures = self._futures, []
        return futures

    def take_sent(self) -> int:
        """How many rows were sent since the last call."""
        sent, self._sent = self._sent, 0
        return sent
