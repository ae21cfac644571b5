"""One Kafka transaction per commit interval: outputs, offsets and state records, all or nothing.

:class:`TransactionalWriter` owns one transactional :class:`kafka.KafkaProducer`. Between
two commits it sends the interval's predictions and dead letters; :meth:`commit` then sends
the state records (the model changelog), adds the consumer offsets that all of this covers
to the transaction (``send_offsets_to_transaction`` with the consumer's group metadata,
so the broker refuses a member of a stale generation: KIP-447), and commits. A reader
with ``isolation_level = "read_committed"`` sees an interval's records exactly when the
offsets that produced them are committed: never half, never twice.

A commit that fails raises :class:`TransactionAborted`: nothing of the transaction will
ever be visible, and the owner must drop the state it built since the last commit (and
start over from its last committed state). Its subclass :class:`Fenced` says why in the
one case that needs no other explanation: another producer with this
``transactional.id`` started, or the group moved on without this member (its generation
is stale: it was frozen past its session timeout, say).

This module imports only the standard library, kafka-python and :mod:`stream_cl.config`
(itself standard library only), so the publisher child process (:mod:`connectors.publisher`)
that runs it starts quickly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from kafka import KafkaProducer, TopicPartition
from kafka.errors import (CommitFailedError, FencedInstanceIdError, InvalidTransactionTimeoutError, KafkaConnectionError,
                          KafkaError, KafkaTimeoutError, MessageSizeTooLargeError, ProducerFencedError, UnknownError)
from kafka.structs import ConsumerGroupMetadata, OffsetAndMetadata

from stream_cl.config import ConfigError

from .logs import named
from .sinks import DeliveryError, PredictionWriter, no_metadata

__all__ = ["DeadLetterRefused", "Fenced", "TransactionAborted", "TransactionalWriter", "dead_letter_refused",
           "out_of_group"]

log = logging.getLogger("stream_cl.transaction")

_FENCED = (ProducerFencedError, CommitFailedError, FencedInstanceIdError)


class TransactionAborted(DeliveryError):
    """The transaction could not be committed: none of its records or offsets will be visible, unless its
    commit was sent and only the answer was lost (a request that timed out while the broker froze; review
    r115): then the coordinator may still commit it. The daemon starts over from the group's committed
    offsets, which the coordinator settles either way, so nothing is lost or published twice."""


class Fenced(TransactionAborted):
    """This member may no longer commit: a newer producer or group generation took over."""


class DeadLetterRefused(TransactionAborted):
    """The dead-letter topic refused a dead letter as too large: every transaction holding it would abort,
    and every start over meet it again (the record is re-read), so the owner stops on it (a setting to
    change). Its message begins with :attr:`MARK`, which the publisher process passes on as it is: the
    daemon tells it apart from other aborts by that (:func:`dead_letter_refused`)."""

    MARK = "kafka.max_message_bytes: the dead-letter topic refused a dead letter as too large"

    @classmethod
    def of(cls, topic: str, error: BaseException) -> "DeadLetterRefused":
        """The error for a dead letter ``topic`` refused as too large (``error``: the producer's), naming both fixes."""
        return cls(f"{cls.MARK} ({type(error).__name__}): dead letters are cut to fit kafka.max_message_bytes, or "
                   f"the max.message.bytes of {topic!r} where the daemon could read that at start, and this one is "
                   f"still over the topic's max.message.bytes; raise the topic's max.message.bytes (kafka-configs.sh "
                   f"--alter --entity-type topics --entity-name {topic} --add-config max.message.bytes=<bytes>) or "
                   "lower kafka.max_message_bytes to the topic's max.message.bytes less 4096")


def dead_letter_refused(error: BaseException) -> bool:
    """Whether ``error`` is, or reports from the publisher process, a :class:`DeadLetterRefused`."""
    return isinstance(error, DeadLetterRefused) or str(error).startswith(DeadLetterRefused.MARK)


def out_of_group(group: tuple) -> str | None:
    """Why offsets must not be committed with consumer group metadata ``group`` (``None``: they may).
    kafka-python resets an expelled member's metadata to generation -1 and member id "", and the broker
    checks nothing in a transactional offset commit that names no generation, member or instance (the
    pre-KIP-447 form): it would take the commit over the partitions' new owner (review r104)."""
    if int(group[1]) < 0 or not group[2]:
        return (f"the consumer has no group generation (generation {group[1]}, member id {group[2]!r}): it fell out "
                "of the group, and the broker would take such a commit unchecked")
    return None


class TransactionalWriter:
    """Predictions, dead letters and state records of one commit interval, committed with their offsets.

    ``producer`` must have a ``transactional_id``; it is initialised here (which aborts a
    transaction an earlier producer with the same id left open) and a transaction is
    begun at once, and again after every commit.
    """

    def __init__(self, producer: KafkaProducer, predictions_topic: str = "", dead_letter_topic: str = ""):
        self.producer = producer
        self.predictions = PredictionWriter(producer, predictions_topic) if predictions_topic else None
        self.dead_letter_topic = dead_letter_topic
        self.sent = 0  # prediction records of committed transactions
        self.commits = 0
        self._futures: list = []  # dead letters and state records of the open transaction
        self._dead: list = []  # the dead letters' futures among them: a refusal of one is told apart
        # a send refused because a record of the open transaction failed: raised at the commit, once the
        # flush has settled every record, so the commit can tell which record failed, and why
        self._held: KafkaError | None = None
        keep_transactional_requests(producer)
        try:
            producer.init_transactions()
            producer.begin_transaction()
        except _FENCED as e:
            raise Fenced(f"another producer with this transactional id is active: {e}") from e
        except KafkaError as e:
            if _timeout_refused(e):  # a setting to change, not a failure to retry: the CLI exits 2
                got = getattr(producer, "config", {}).get("transaction_timeout_ms")
                raise ConfigError(f"kafka.transaction_timeout_ms: the broker refuses it, as over its "
                                  f"transaction.max.timeout.ms (got {got!r}); lower kafka.transaction_timeout_ms "
                                  "to at most the broker's transaction.max.timeout.ms (900000 by default), "
                                  "or raise that broker setting") from e
            raise

    def write_rows(self, rows: Iterable[tuple]) -> None:
        """Prediction rows (:func:`connectors.sinks.prediction_row`) into the open transaction."""
        if self.predictions is None:
            raise DeliveryError("no predictions topic to write to (kafka.predictions_topic)")
        if self._held is None:
            try:
                self.predictions.send_rows(rows)
            except KafkaTimeoutError:
                raise
            except KafkaError as e:  # nothing more goes into this transaction: the commit raises it
                self._held = e

    def write_dead(self, records: Iterable[tuple]) -> None:
        """Dead letters as ``(key, value, headers)`` into the open transaction."""
        send, topic = self.producer.send, self.dead_letter_topic
        if self._held is not None:
            return
        try:
            for key, value, headers in records:
                future = send(topic, key=key, value=value, headers=headers)
                self._futures.append(future)
                self._dead.append(future)
        except KafkaTimeoutError as e:
            raise no_metadata(topic, e) from e
        except KafkaError as e:  # (kafka-python refuses sends once a record of the transaction failed)
            self._held = e

    def commit(self, offsets: Sequence[tuple], group: tuple, records: Sequence[tuple] = ()) -> int:
        """Commit the open transaction with ``offsets`` and ``records``; begin the next one.

        ``offsets``: ``(topic, partition, next offset)`` for the consumer group of
        ``group`` (the fields of :class:`kafka.structs.ConsumerGroupMetadata`, as
        ``KafkaConsumer.group_metadata()`` gives them). ``records``: ``(topic, key, value)``
        state records. Returns the prediction records committed so far. Raises
        :class:`TransactionAborted` (:class:`Fenced`); the transaction is then aborted.
        """
        producer = self.producer
        try:
            for topic, key, value in records:
                self._futures.append(producer.send(topic, key=key, value=value))
            _flush(producer)
            self._raise_failed()
            if offsets:
                why = out_of_group(group)
                if why is not None:
                    raise CommitFailedError(why)
                meta = {TopicPartition(t, int(p)): OffsetAndMetadata(int(o), "", -1) for t, p, o in offsets}
                producer.send_offsets_to_transaction(meta, ConsumerGroupMetadata(*group))
            producer.commit_transaction()
        except _FENCED as e:
            self._abort_quietly()
            raise Fenced(f"fenced: {named(e)}") from e
        except DeadLetterRefused:
            self._abort_quietly()
            raise
        except (KafkaError, DeliveryError) as e:
            # (the producer may raise the transaction's error itself, before the futures are looked at)
            refused = self._refused_dead_letter()
            self._abort_quietly()
            failed = TransactionAborted(f"the transaction failed and was aborted: {named(e)}")
            raise refused or failed from e
        self.commits += 1
        if self.predictions is not None:
            self.sent += self.predictions.take_sent()
        producer.begin_transaction()
        return self.sent

    def abort(self) -> None:
        """Abort the open transaction: none of its records will ever be visible."""
        self._abort_quietly()
        self.producer.begin_transaction()

    def close(self, timeout: float = 10) -> None:
        """Close the producer; an open transaction is aborted (by the broker, at the latest on timeout)."""
        self._abort_quietly()
        self.producer.close(timeout=timeout)

    def _raise_failed(self) -> None:
        futures, self._futures = self._futures, []
        refused = self._refused_dead_letter()
        if refused is not None:  # first: it stops the owner, where another failure starts it over
            raise refused
        held, self._held = self._held, None
        if held is not None:
            raise held
        if self.predictions is not None:
            futures += self.predictions.take_futures()
        for f in futures:
            if f.failed():
                raise DeliveryError(f"a record could not be delivered: {type(f.exception).__name__}: {f.exception}")

    def _refused_dead_letter(self) -> DeadLetterRefused | None:
        """A dead letter of the open transaction that its topic refused as too large, if one was."""
        dead, self._dead = self._dead, []
        for f in dead:
            if f.failed() and isinstance(f.exception, MessageSizeTooLargeError):
                return DeadLetterRefused.of(self.dead_letter_topic, f.exception)
        return None

    def _abort_quietly(self) -> None:
        self._futures, self._dead, self._held = [], [], None
        if self.predictions is not None:
            self.predictions.take_futures()
            self.predictions.take_sent()
        try:
            self.producer.abort_transaction()
        except Exception as e:  # noqa: BLE001 -- a fenced or failed producer may not abort; the broker will
            log.debug("abort_transaction: %s: %s", type(e).__name__, e)


class _ReadyOrNot:
    """The client of a producer's sender thread, whose ``await_ready`` says False where kafka-python 3.0.12's
    raises ``KafkaConnectionError("Node 1 not ready after 30000 ms")``; everything else is the client's.

    The sender (``Sender._maybe_send_pending_request``) takes the next transactional request off its queue,
    then waits for the transaction coordinator with ``await_ready``: on False it looks the coordinator up
    again and queues the request again; on the exception (the coordinator's connection refused or timed
    out: a broker restart) it looks the coordinator up but never queues the request again. The request
    is lost: an AddPartitionsToTxn's partitions never join the transaction and their batches are never
    sent (``flush()`` waits for the delivery timeout, 120 s), an EndTxn's ``commit_transaction()`` waits
    for ever. That was the producer "stuck after a broker restart" until ``kafka.commit_timeout_ms``
    (review r115 F4; r118: the warning "Got an exception when trying to find a node to send a
    transactional request to" came before each hang)."""

    def __init__(self, client):
        self._client = client

    def await_ready(self, node_id, timeout_ms=30000):
        try:
            return self._client.await_ready(node_id, timeout_ms=timeout_ms)
        except KafkaConnectionError:
            return False

    def __getattr__(self, name):
        return getattr(self._client, name)


def keep_transactional_requests(producer) -> None:
    """Give ``producer``'s sender thread a client whose ``await_ready`` cannot lose a transactional request
    (:class:`_ReadyOrNot`); nothing where the producer has no such sender (a stub, another kafka-python)."""
    sender = getattr(producer, "_sender", None)
    client = getattr(sender, "_client", None)
    if client is None or isinstance(client, _ReadyOrNot) or not hasattr(client, "await_ready"):
        return
    sender._client = _ReadyOrNot(client)


SPLITS = 20  # a flush is retried for this many halvings of a batch (2**20 records are cut down to single ones)


def _flush(producer: KafkaProducer) -> None:
    """``producer.flush()``, again where kafka-python 3.0.12's gives up on a record batch it split.

    A batch over its topic's ``max.message.bytes`` (many dead letters to a topic whose limit is below
    the producer's ``batch_size``, where the daemon could not read that limit) is refused with
    MESSAGE_TOO_LARGE, and the producer's IO thread sends its records again in two halves; but a flush
    waiting on the batch it split wakes, finds it never completed, and raises UnknownError("Future not
    done"): the transaction was aborted every time. The halves are in flight then, and a flush again
    waits for them (a record too large on its own fails with MessageSizeTooLargeError, a dead letter's
    with :class:`DeadLetterRefused`). The pause lets the IO thread finish the split (it drops the old
    batch from the ones a flush waits for just after waking it).
    """
    for split in range(SPLITS + 1):
        try:
            producer.flush()
            return
        except UnknownError as e:
            if "Future not done" not in str(e) or split == SPLITS:
                raise
            time.sleep(0.01)


def _timeout_refused(error: KafkaError) -> bool:
    """The broker refused the producer's transaction timeout (INVALID_TRANSACTION_TIMEOUT).

    kafka-python 3.0 raises it as a plain KafkaError that names it ("Unexpected error in
    InitProducerIdResponse: [Error 50] InvalidTransactionTimeoutError"); the typed error is taken too.
    """
    return isinstance(error, InvalidTransactionTimeoutError) or InvalidTransactionTimeoutError.__name__ in str(error)
