"""Prediction records for Kafka, and a publisher that sends them from a process of its own.

kafka-python's ``KafkaProducer.send`` is pure Python: about 33 µs per record on the
benchmark machine alone, 59 µs inside the daemon (benchmarks/RESULTS.md, section 4).
In the daemon's process that time competes with fetching, decoding and the model for
one interpreter lock. :class:`ProcessPublisher` runs the producer in a child process,
fed through a pipe with batches of plain tuples, so publishing uses a core of its own.

This module imports only the standard library and kafka-python, so the child starts in
a fraction of a second and never loads torch.

The child answers only ``flush`` and ``close`` requests, so neither side ever waits on
the other except at a flush; a full pipe blocks :meth:`ProcessPublisher.write`
(backpressure). The child ignores SIGINT and SIGTERM: the daemon owns shutdown and
closes it after the final checkpoint. If the daemon dies, the child reads end-of-file,
delivers what it holds (at worst duplicates of events after the last checkpoint,
which a restart predicts again) and exits.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from multiprocessing.connection import Connection, Pipe

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from kafka.partitioner.default import murmur2

__all__ = ["DeliveryError", "PredictionWriter", "ProcessPublisher", "ProducerSink", "prediction_row"]

log = logging.getLogger("stream_cl.publisher")

_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


class DeliveryError(RuntimeError):
    """A record the producer could not deliver (after its retries)."""


def prediction_row(p) -> tuple:
    """A :class:`stream_cl.events.Prediction` as the plain tuple the pipe carries."""
    return (p.id, p.y_pred, p.proba, p.y_true, p.task, p.ts, p.origin)


class ProducerSink:
    """Records sent through a :class:`KafkaProducer` to one topic; :meth:`flush` waits for
    their delivery and raises :class:`DeliveryError` if one failed."""

    def __init__(self, producer: KafkaProducer, topic: str, owns_producer: bool = False):
        self.producer = producer
        self.topic = topic
        self.owns_producer = owns_producer
        self._futures: list = []
        self.sent = 0

    def flush(self) -> None:
        """Wait until every record sent so far is acknowledged; :class:`DeliveryError` if one failed."""
        futures, self._futures = self._futures, []
        if not futures:
            return
        self.producer.flush()
        for f in futures:
            if f.failed():
                raise DeliveryError(f"could not deliver to {self.topic!r}: {type(f.exception).__name__}: {f.exception}")

    def no_metadata(self, error: KafkaTimeoutError) -> DeliveryError:
        """The error for a topic kafka-python found no metadata for within ``max_block_ms``."""
        return DeliveryError(f"no metadata for topic {self.topic!r} ({error}): create the topic (a broker with "
                             "auto.create.topics.enable=false does not create it) and check that the broker is "
                             "reachable")

    def close(self) -> None:
        self.flush()
        if self.owns_producer:
            self.producer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PredictionWriter(ProducerSink):
    """Sends prediction rows as JSON records keyed by event id (unkeyed when it has none).

    The value is ``{"id", "y_pred", "proba", "y_true", "task", "ts", "origin"}``, the same
    fields as the JSONL file sink; ``origin`` is ``"topic/partition@offset"`` of the event.
    Keyed records go to the partition Kafka's default partitioner would choose
    (murmur2 of the key); computing it here, with the partition count cached, saves a
    quarter of kafka-python's per-record cost.
    """

    PARTITIONS_TTL_S = 30.0

    def __init__(self, producer: KafkaProducer, topic: str, owns_producer: bool = False):
        super().__init__(producer, topic, owns_producer)
        self._parts: list[int] = []
        self._parts_at = -math.inf
        self._rr = 0

    def _partitions(self) -> list[int]:
        now = time.monotonic()
        if now - self._parts_at > self.PARTITIONS_TTL_S:
            try:
                self._parts = sorted(self.producer.partitions_for(self.topic))
            except KafkaTimeoutError as e:
                raise self.no_metadata(e) from e
            self._parts_at = now
        return self._parts

    def send_rows(self, rows: Iterable[tuple]) -> None:
        send, topic, encode, futures = self.producer.send, self.topic, _encode_json, self._futures
        parts = self._partitions()
        n = len(parts)
        count = 0
        for id_, y_pred, proba, y_true, task, ts, origin in rows:
            proba = proba if math.isfinite(proba) else None
            ts = ts if ts is None or math.isfinite(ts) else None
            value = encode({"id": id_, "y_pred": y_pred, "proba": proba, "y_true": y_true,
                            "task": task, "ts": ts, "origin": origin}).encode()
            if id_ is None:
                key = None
                self._rr += 1
                part = parts[self._rr % n]
            else:
                key = id_.encode()
                part = parts[0] if n == 1 else parts[(murmur2(key) & 0x7FFFFFFF) % n]
            futures.append(send(topic, key=key, value=value, partition=part))
            count += 1
        self.sent += count


class ProcessPublisher:
    """A prediction sink (``write``/``flush``/``close``) whose producer runs in a child process.

    ``producer_options`` are :class:`kafka.KafkaProducer` keyword arguments (plain values:
    they travel through the pipe). Start-up waits until the child's producer exists and
    raises :class:`DeliveryError` with the child's error if it cannot be made.
    """

    def __init__(self, producer_options: dict, topic: str, start_timeout_s: float = 60.0,
                 flush_timeout_s: float = 300.0):
        self.topic = topic
        self.flush_timeout_s = flush_timeout_s
        self.sent = 0  # acknowledged by the child at the last flush
        ours, theirs = Pipe(duplex=True)
        self._conn: Connection = ours
        fd = theirs.fileno()
        # ``-m`` of this module, not multiprocessing: spawn/forkserver would re-import the
        # daemon's __main__ (and torch) in the child, fork would copy the IO threads' locks.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where ``connectors`` lives
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
        self._proc = subprocess.Popen([sys.executable, "-m", "connectors.publisher", str(fd)], pass_fds=(fd,), env=env)
        theirs.close()
        from .logs import current_format

        try:
            self._conn.send(("start", producer_options, topic, current_format()))
            self._reply(start_timeout_s, "start")
        except BaseException:
            self.abort()
            raise

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _reply(self, timeout_s: float, what: str):
        deadline = time.monotonic() + timeout_s
        while not self._conn.poll(0.2):
            self.check(during=what)
            if time.monotonic() > deadline:
                raise DeliveryError(f"the publisher process did not answer {what} within {timeout_s:.0f} s")
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError) as e:
            raise DeliveryError(f"the publisher process went away during {what}: {e!r}") from None
        if kind == "error":
            raise DeliveryError(value)
        return value

    def _send(self, message) -> None:
        try:
            self._conn.send(message)
        except (BrokenPipeError, OSError) as e:
            code = self._proc.poll()
            raise DeliveryError(f"the publisher process is gone (exit code {code}): {e!r}") from None

    def check(self, during: str = "") -> None:
        """:class:`DeliveryError` if the child has exited (one ``waitpid``, no I/O)."""
        code = self._proc.poll()
        if code is not None:
            raise DeliveryError(f"the publisher process exited (code {code})" + (f" during {during}" if during else ""))

    def write(self, predictions: Sequence) -> None:
        self.write_rows([prediction_row(p) for p in predictions])

    def write_rows(self, rows: list[tuple]) -> None:
        """Rows as :func:`prediction_row` makes them."""
        if rows:
            self._send(("write", rows))

    def flush(self) -> None:
        """Returns once every prediction written so far is acknowledged by the broker."""
        self._send(("flush",))
        self.sent = self._reply(self.flush_timeout_s, "flush")

    def close(self) -> None:
        if self._proc.poll() is not None:
            return
        try:
            self._send(("close",))
            self.sent = self._reply(self.flush_timeout_s, "close")
        finally:
            self._conn.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def abort(self) -> None:
        """After a failure: stop the child at once; what it still holds is dropped."""
        self._conn.close()
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


# -- the child ---------------------------------------------------------------------------------
def _serve(conn: Connection) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon owns shutdown: it closes us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from .logs import setup_logging, startup_done

    try:
        _, options, topic, log_format = conn.recv()
        # kafka-python's warnings, in the daemon's log format; those of the start-up are held back
        # ("Unable to bootstrap" hides its cause in them: the last telling one goes into the error)
        setup_logging("WARNING", fmt=log_format, hold_until_started=True)
        producer = KafkaProducer(**options)
    except Exception as e:  # noqa: BLE001 -- reported to the daemon, which raises it
        held = startup_done()
        cause = f"; the client's last error: {held.last_error}" if held is not None and held.last_error else ""
        conn.send(("error", f"cannot start the predictions producer: {type(e).__name__}: {e}{cause}"))
        return 1
    startup_done()
    writer = PredictionWriter(producer, topic)
    conn.send(("ok", 0))
    error: str | None = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the daemon is gone: deliver what we hold, then leave
            message = ("eof",)
        kind = message[0]
        try:
            if kind == "write":
                if error is None:
                    writer.send_rows(message[1])
                continue
            if error is None:
                writer.flush()
        except Exception as e:  # noqa: BLE001 -- held until the daemon asks (flush/close)
            error = error or (str(e) if isinstance(e, DeliveryError) else f"publishing failed: {type(e).__name__}: {e}")
        if kind == "eof":
            producer.close(timeout=10)
            return 0
        conn.send(("error", error) if error else ("ok", writer.sent))
        if kind == "close":
            producer.close(timeout=10)
            return 0 if error is None else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return _serve(Connection(int(argv[0])))


if __name__ == "__main__":
    sys.exit(main())
