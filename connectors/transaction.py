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
from collections.abc import Iterable, Sequence

from kafka import KafkaProducer, TopicPartition
from kafka.errors import (CommitFailedError, FencedInstanceIdError, InvalidTransactionTimeoutError, KafkaError,
                          KafkaTimeoutError, ProducerFencedError)
from kafka.structs import ConsumerGroupMetadata, OffsetAndMetadata

from stream_cl.config import ConfigError

from .sinks import DeliveryError, PredictionWriter, no_metadata

__all__ = ["Fenced", "TransactionAborted", "TransactionalWriter"]

log = logging.getLogger("stream_cl.transaction")

_FENCED = (ProducerFencedError, CommitFailedError, FencedInstanceIdError)


class TransactionAborted(DeliveryError):
    """The transaction could not be committed: none of its records or offsets will ever be visible."""


class Fenced(TransactionAborted):
    """This member may no longer commit: a newer producer or group generation took over."""


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
        self.predictions.send_rows(rows)

    def write_dead(self, records: Iterable[tuple]) -> None:
        """Dead letters as ``(key, value, headers)`` into the open transaction."""
        send, topic = self.producer.send, self.dead_letter_topic
        try:
            for key, value, headers in records:
                self._futures.append(send(topic, key=key, value=value, headers=headers))
        except KafkaTimeoutError as e:
            raise no_metadata(topic, e) from e

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
            producer.flush()
            self._raise_failed()
            if offsets:
                meta = {TopicPartition(t, int(p)): OffsetAndMetadata(int(o), "", -1) for t, p, o in offsets}
                producer.send_offsets_to_transaction(meta, ConsumerGroupMetadata(*group))
            producer.commit_transaction()
        except _FENCED as e:
            self._abort_quietly()
            raise Fenced(f"fenced: {type(e).__name__}: {e}") from e
        except (KafkaError, DeliveryError) as e:
            self._abort_quietly()
            raise TransactionAborted(f"the transaction failed and was aborted: {type(e).__name__}: {e}") from e
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
        if self.predictions is not None:
            futures += self.predictions.take_futures()
        for f in futures:
            if f.failed():
                raise DeliveryError(f"a record could not be delivered: {type(f.exception).__name__}: {f.exception}")

    def _abort_quietly(self) -> None:
        self._futures = []
        if self.predictions is not None:
            self.predictions.take_futures()
            self.predictions.take_sent()
        try:
            self.producer.abort_transaction()
        except Exception as e:  # noqa: BLE001 -- a fenced or failed producer may not abort; the broker will
            log.debug("abort_transaction: %s: %s", type(e).__name__, e)


def _timeout_refused(error: KafkaError) -> bool:
    """The broker refused the producer's transaction timeout (INVALID_TRANSACTION_TIMEOUT).

    kafka-python 3.0 raises it as a plain KafkaError that names it ("Unexpected error in
    InitProducerIdResponse: [Error 50] InvalidTransactionTimeoutError"); the typed error is taken too.
    """
    return isinstance(error, InvalidTransactionTimeoutError) or InvalidTransactionTimeoutError.__name__ in str(error)
