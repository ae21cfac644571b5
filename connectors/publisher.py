"""Where the daemon's transactional producer runs: a process of its own, or the daemon's.

kafka-python's ``KafkaProducer.send`` is pure Python: about 33 µs per record on the
benchmark machine alone, 59 µs inside the daemon (benchmarks/RESULTS.md, section 4).
In the daemon's process that time competes with fetching, decoding and the model for
one interpreter lock. :class:`ProcessPublisher` runs the producer (a
:class:`~connectors.transaction.TransactionalWriter`) in a child process, fed through a
pipe with batches of plain tuples, so publishing uses a core of its own.
:class:`InlinePublisher` (``kafka.publisher = "thread"``) runs the same writer in the
daemon's process. Both have one interface: ``write`` predictions, ``write_dead``
letters, ``commit`` a transaction, ``close``, ``abort``.

This module imports only the standard library, kafka-python and :mod:`stream_cl.config`
(standard library only), so the child starts in a fraction of a second and never loads torch.

The child answers only ``commit``, ``abort`` and ``close``, so between commits neither
side waits on the other. The daemon's messages go out on a thread of their own
(:class:`PipeWriter`), in order: while the child is busy (committing, or producing a
backlog) and the pipe is full, that thread waits, not the daemon's loop; only when
:data:`QUEUED_MESSAGES` messages are waiting does :meth:`ProcessPublisher.write` block
(backpressure). A commit is two calls, :meth:`~ProcessPublisher.start_commit` and
:meth:`~ProcessPublisher.finish_commit`, so that the daemon can go on with the next
interval's events while the child flushes and commits (the child begins the next
transaction as soon as one commits, and what is written meanwhile waits in the pipe). The child ignores SIGINT and SIGTERM: the daemon owns shutdown and
closes it after the final commit. If the daemon dies, the child reads end-of-file and
aborts the open transaction: what the daemon did since its last commit is never seen,
and a restart does it again, once. If it dies while a commit runs, the commit stands and
the child, whose reply finds no reader, closes its producer and exits 0 all the same.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection, Pipe

from kafka import KafkaProducer
from kafka.errors import RetriableError

from stream_cl.config import ConfigError

from .sinks import DeliveryError, prediction_row
from .transaction import Fenced, TransactionAborted, TransactionalWriter

__all__ = ["BrokerUnreachable", "DeliveryError", "Fenced", "InlinePublisher", "ProcessPublisher", "TransactionAborted"]

log = logging.getLogger("stream_cl.publisher")

# Messages (a micro-batch of predictions each, or a commit with its changelog records) that
# may wait for the pipe before a write blocks: a few hundred milliseconds of the loop's
# output, enough to ride out a commit (the child flushing, a changelog record of megabytes
# crossing the pipe) without letting the child fall further behind than that.
QUEUED_MESSAGES = 8
# how long an abort waits for the child to abort its open transaction itself before it is killed: a
# transaction left open holds read_committed readers of the topics it wrote to until the broker's
# transaction timeout (60 s) where no producer of its id comes again (a daemon that exits 1; review r115)
RELEASE_S = 2.0


class BrokerUnreachable(DeliveryError):
    """The publisher process could not start for want of a broker: its producer failed with one of
    kafka-python's retriable errors, or it did not answer within its time. A daemon rebuilt after a start
    over is then built again rather than stopped (``connectors.daemon_run``; review r118 F6)."""


class InlinePublisher:
    """A :class:`TransactionalWriter` in the daemon's own process (``kafka.publisher = "thread"``).

    ``commit_timeout_s`` is accepted for a common signature; a commit here lasts as long as
    kafka-python's own timeouts let it.
    """

    def __init__(self, producer_options: dict, predictions_topic: str, dead_letter_topic: str = "",
                 commit_timeout_s: float = 60.0):
        producer = KafkaProducer(**producer_options)
        try:
            self.writer = TransactionalWriter(producer, predictions_topic, dead_letter_topic)
        except BaseException:
            producer.close(timeout=5)
            raise
        self.sent = 0
        self._outcome: float | BaseException | None = None  # of the last started commit, until finished

    def write(self, predictions: Sequence) -> None:
        """:class:`~stream_cl.events.TransactionalPublisher`: the predictions into the open transaction."""
        if predictions:
            self.writer.write_rows([prediction_row(p) for p in predictions])

    def write_dead(self, records: Sequence[tuple]) -> None:
        """:class:`~stream_cl.events.TransactionalPublisher`: dead-letter records into the open transaction."""
        self.writer.write_dead(records)

    def commit(self, offsets: Sequence[tuple], group: tuple, records: Sequence[tuple] = ()) -> None:
        """Commit at once: :meth:`start_commit`, then :meth:`finish_commit`."""
        self.start_commit(offsets, group, records)
        self.finish_commit()

    def start_commit(self, offsets: Sequence[tuple], group: tuple, records: Sequence[tuple] = ()) -> None:
        """Commit now, in this thread; :meth:`finish_commit` gives the outcome."""
        t0 = time.monotonic()
        try:
            self.sent = self.writer.commit(offsets, group, records)
            self._outcome = time.monotonic() - t0
        except Exception as e:  # noqa: BLE001 -- raised by finish_commit, as the process publisher does
            self._outcome = e

    def finish_commit(self, wait: bool = True) -> float | None:
        """The seconds the last started commit took; raises what it raised (see :class:`ProcessPublisher`)."""
        outcome, self._outcome = self._outcome, None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def check(self) -> None:
        """Nothing to check: the writer lives in this process."""

    def close(self) -> None:
        """Close the producer (what is not committed is aborted)."""
        self.writer.close()

    def abort(self) -> None:
        """Close the producer within 5 s, committing nothing."""
        self.writer.close(timeout=5)


class ProcessPublisher:
    """The same interface as :class:`InlinePublisher`, with the writer in a child process.

    ``producer_options`` are :class:`kafka.KafkaProducer` keyword arguments, a
    ``transactional_id`` among them (plain values: they travel through the pipe).
    Start-up waits until the child's producer has initialised its transactions and raises
    :class:`DeliveryError` (:class:`Fenced`) with the child's error if it cannot.
    """

    def __init__(self, producer_options: dict, predictions_topic: str, dead_letter_topic: str = "",
                 start_timeout_s: float = 60.0, commit_timeout_s: float = 60.0):
        self.commit_timeout_s = commit_timeout_s
        self.sent = 0  # prediction records of committed transactions
        self._committing = False  # a commit was started and its answer not read yet
        self._commit_started = 0.0  # when (monotonic) the commit under way was started
        self._unanswered = False  # the child did not answer within its time: stuck, not asked again
        ours, theirs = Pipe(duplex=True)
        self._conn: Connection = ours
        fd = theirs.fileno()
        # ``-m`` of this module, not multiprocessing: spawn/forkserver would re-import the
        # daemon's __main__ (and torch) in the child, fork would copy the IO threads' locks.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where ``connectors`` lives
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
        self._proc = subprocess.Popen([sys.executable, "-m", "connectors.publisher", str(fd)], pass_fds=(fd,), env=env)
        theirs.close()
        self._writer = PipeWriter(self._conn)
        from .logs import current_format

        try:
            kafka_level = logging.getLogger("kafka").getEffectiveLevel()  # --kafka-log-level reaches the child too
            self._conn.send(("start", producer_options, predictions_topic, dead_letter_topic, current_format(), kafka_level))
            self._reply(start_timeout_s, "start")
        except BaseException:
            self.abort()
            raise

    @property
    def pid(self) -> int:
        """The publisher process's id."""
        return self._proc.pid

    def _reply(self, timeout_s: float, what: str, limit_s: float | None = None):
        """The child's answer to ``what`` within ``timeout_s`` (``limit_s``: the whole limit, for the error,
        where part of it has passed already)."""
        deadline = time.monotonic() + timeout_s
        while not self._conn.poll(0.2):
            self.check(during=what)
            self._raise_if_send_failed()  # what it waits for never reached the child
            if time.monotonic() > deadline:
                # (the caller kills the child)
                error = {"commit": TransactionAborted, "start": BrokerUnreachable}.get(what, DeliveryError)
                self._unanswered = True
                limit = timeout_s if limit_s is None else limit_s
                raise error(f"the publisher process did not answer {what} within {limit:.0f} s")
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError) as e:
            raise DeliveryError(f"the publisher process went away during {what}: {e!r}") from None
        if kind == "fenced":
            raise Fenced(value)
        if kind == "config":  # a setting the broker refused (kafka.transaction_timeout_ms): exit 2, not a failure
            raise ConfigError(value)
        if kind == "aborted":
            raise TransactionAborted(value)
        if kind == "unreachable":
            raise BrokerUnreachable(value)
        if kind == "error":
            raise DeliveryError(value)
        return value

    def _send(self, message) -> None:
        """Queue ``message`` for the child (sent in order by :class:`PipeWriter`); an error if a send failed."""
        self._writer.put(message)
        self._raise_if_send_failed()

    def _raise_if_send_failed(self) -> None:
        error = self._writer.error
        if error is not None:
            code = self._proc.poll()
            raise DeliveryError(f"the publisher process is gone (exit code {code}): {error!r}") from None

    def check(self, during: str = "") -> None:
        """:class:`DeliveryError` if the child has exited (one ``waitpid``, no I/O)."""
        code = self._proc.poll()
        if code is not None:
            raise DeliveryError(f"the publisher process exited (code {code})" + (f" during {during}" if during else ""))

    def write(self, predictions: Sequence) -> None:
        """:class:`~stream_cl.events.TransactionalPublisher`: the predictions to the child's open transaction."""
        if predictions:
            self._send(("write", [prediction_row(p) for p in predictions]))

    def write_dead(self, records: Sequence[tuple]) -> None:
        """:class:`~stream_cl.events.TransactionalPublisher`: dead-letter records to the child's open transaction."""
        if records:
            self._send(("dead", list(records)))

    def commit(self, offsets: Sequence[tuple], group: tuple, records: Sequence[tuple] = ()) -> None:
        """Commit the open transaction (see :meth:`TransactionalWriter.commit`); returns once it is committed."""
        self.start_commit(offsets, group, records)
        self.finish_commit()

    def start_commit(self, offsets: Sequence[tuple], group: tuple, records: Sequence[tuple] = ()) -> None:
        """Ask the child to commit the open transaction (what was written so far, ``records`` and
        ``offsets``) and to begin the next; returns at once. One commit at a time: call
        :meth:`finish_commit` before the next."""
        if self._committing:
            raise RuntimeError("start_commit: the last commit is not finished (call finish_commit first)")
        # the send time travels with it: the child measures the commit from here (one monotonic clock per host)
        self._commit_started = time.monotonic()
        self._send(("commit", list(offsets), tuple(group), list(records), self._commit_started))
        self._committing = True

    def finish_commit(self, wait: bool = True) -> float | None:
        """The seconds from :meth:`start_commit` until the transaction was committed, once the child
        answers (``wait=False``: ``None`` while it has not answered yet; then no wait at all). Raises
        :class:`TransactionAborted` (:class:`Fenced`) if it could not commit, :class:`DeliveryError`
        if the child is gone; returns ``None`` when no commit was started.

        ``commit_timeout_s`` counts from :meth:`start_commit`, waited for or not: it counted from the wait,
        which the loop begins only when the next commit is due, after new events; a producer stuck after a
        broker restart held a quiet member's partitions 120 s, or 94 s with the broker back 80 s, looking
        healthy (review r115 F2). Past it, ``wait=False`` raises as the wait does."""
        if not self._committing:
            return None
        late = time.monotonic() - self._commit_started > self.commit_timeout_s
        if not wait and not late and not self._conn.poll(0):
            return None
        self._committing = False
        left = max(self._commit_started + self.commit_timeout_s - time.monotonic(), 0.0)
        self.sent, seconds = self._reply(left, "commit", limit_s=self.commit_timeout_s)
        return seconds

    def close(self) -> None:
        """Abort what is not committed, close the producer, end the child (after the commit under way, if any)."""
        if self._proc.poll() is not None:
            return
        self.finish_commit()
        try:
            self._send(("close",))
            self._reply(self.commit_timeout_s, "close")
        finally:
            self._writer.stop()
            self._conn.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def abort(self) -> None:
        """After a failure: stop the child; the open transaction is aborted. The child is asked to abort
        it first, for up to :data:`RELEASE_S` (not while a commit is under way, nor when it left a request
        unanswered); then, or where that fails, by the next producer with the same transactional id, or
        by the broker when its timeout passes."""
        if self._proc.poll() is None:
            if not (self._committing or self._unanswered or self._writer.error is not None):
                try:
                    self._send(("close",))  # after what is queued: it aborts the transaction, then answers
                    self._conn.poll(RELEASE_S)
                except Exception:  # noqa: BLE001 -- best effort: it is killed below either way
                    pass
            self._proc.kill()  # a send blocked on the pipe fails, and the writer stops
            self._proc.wait()
        self._writer.stop()
        self._conn.close()


class PipeWriter:
    """Sends messages on ``conn`` from a thread of its own, in the order :meth:`put` queued them.

    The daemon's loop queues and goes on; pickling and a pipe write that waits for the child
    happen here (a blocked write releases the interpreter lock). After a failed send it keeps
    taking messages off the queue (so that no :meth:`put` waits forever) and sends nothing.
    """

    def __init__(self, conn: Connection, max_queued: int = QUEUED_MESSAGES):
        self._conn = conn
        self._queue: queue.Queue = queue.Queue(max_queued)
        self.error: BaseException | None = None  # of the first failed send
        self._thread = threading.Thread(target=self._run, name="stream-cl-publisher-pipe", daemon=True)
        self._thread.start()

    def put(self, message) -> None:
        """Queue ``message`` (blocks while ``max_queued`` are waiting); nothing once a send failed
        or the writer stopped (:attr:`error`)."""
        if self.error is None and not self._thread.is_alive():
            self.error = BrokenPipeError("the publisher's pipe writer has stopped")
        if self.error is None:
            self._queue.put(message)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (unless a send failed), then end the thread."""
        if self._thread.is_alive():
            try:
                self._queue.put(None, timeout=timeout_s)
            except queue.Full:  # a send that never returns: the thread is a daemon thread, left behind
                return
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            message = self._queue.get()
            if message is None:
                return
            if self.error is None:
                try:
                    self._conn.send(message)
                except (OSError, ValueError) as e:  # the child is gone (or the connection closed)
                    self.error = e


# -- the child ---------------------------------------------------------------------------------
def _serve(conn: Connection) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon owns shutdown: it closes us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from .logs import hide_secret, named, setup_logging, startup_done

    try:
        _, options, predictions_topic, dead_topic, log_format, kafka_level = conn.recv()
        # this process's log masks the passwords too (the daemon's knows them from reading the config)
        hide_secret(options.get("sasl_plain_password"), options.get("ssl_password"))
        # kafka-python's warnings, in the daemon's log format; those of the start-up are held back
        # ("Unable to bootstrap" hides its cause in them: the last telling one goes into the error)
        setup_logging(min(kafka_level, logging.WARNING), fmt=log_format, hold_until_started=True)
        producer = KafkaProducer(**options)
        try:
            writer = TransactionalWriter(producer, predictions_topic, dead_topic)
        except BaseException:
            producer.close(timeout=5)
            raise
    except Exception as e:  # noqa: BLE001 -- reported to the daemon, which raises it
        held = startup_done()
        cause = f"; the client's last error: {held.last_error}" if held is not None and held.last_error else ""
        if isinstance(e, ConfigError):  # the message names the key; the daemon raises it as it is
            conn.send(("config", str(e)))
            return 1
        kind = "fenced" if isinstance(e, Fenced) else "unreachable" if isinstance(e, RetriableError) else "error"
        conn.send((kind, f"cannot start the predictions producer: {named(e)}{cause}"))
        return 1
    startup_done()
    try:
        conn.send(("ok", 0))
    except OSError:  # the daemon went away while this producer started (a stop during a rebuild)
        writer.close(timeout=10)
        return 0
    error: Exception | None = None  # a failed send, held until the daemon commits
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the daemon is gone: what it did since its last commit never happened
            writer.close(timeout=10)
            return 0
        kind = message[0]
        if kind in ("write", "dead"):
            if error is None:
                try:
                    (writer.write_rows if kind == "write" else writer.write_dead)(message[1])
                except Exception as e:  # noqa: BLE001 -- reported at the next commit
                    error = e
            continue
        if kind == "close":  # what is not committed is aborted
            writer.close(timeout=10)
            _reply(conn, ("ok", writer.sent))
            return 0
        try:  # "commit"
            if error is not None:
                raise error
            sent = writer.commit(*message[1:4])
            reply = ("ok", (sent, time.monotonic() - message[4]))
        except Exception as e:  # noqa: BLE001 -- the transaction is aborted; the daemon decides what follows
            error = None
            try:
                writer.abort()
            except Exception:  # noqa: BLE001 -- a fenced producer cannot begin again; the daemon replaces it
                pass
            reason = str(e) if isinstance(e, DeliveryError) else f"publishing failed: {type(e).__name__}: {e}"
            reply = ("fenced" if isinstance(e, Fenced) else "aborted", reason)
        # a reply the daemon cannot take: it died while the commit ran (which stands, or was aborted), and
        # this child ends as at the pipe's end; the failed reply was read as a failed commit, then the second
        # reply failed too, two tracebacks in the supervisor's log and an exit without closing (review r81)
        if not _reply(conn, reply):
            writer.close(timeout=10)
            return 0


def _reply(conn, message) -> bool:
    """Send ``message`` to the daemon; False where it is gone (the pipe closed)."""
    try:
        conn.send(message)
    except OSError:  # BrokenPipeError, ConnectionResetError: no reader at the other end
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return _serve(Connection(int(argv[0])))


if __name__ == "__main__":
    sys.exit(main())
