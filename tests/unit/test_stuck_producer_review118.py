"""Review r118 (r115 F4): kafka-python 3.0.12's sender lost a transactional request when the transaction
coordinator's connection failed (a broker restart): ``await_ready`` raised instead of saying False, and the
request, already taken off the queue, was never queued again. The producer then hung in ``flush()`` (an
AddPartitionsToTxn lost) or ``commit_transaction()`` (an EndTxn lost) until ``kafka.commit_timeout_ms``.
:func:`connectors.transaction.keep_transactional_requests` gives the sender a client that says False.
No broker: kafka-python's own Sender and TransactionManager, with a client whose coordinator is down."""
from __future__ import annotations

from kafka.errors import KafkaConnectionError
from kafka.producer.sender import Sender
from kafka.producer.transaction_manager import TransactionManager

from connectors.transaction import _ReadyOrNot, keep_transactional_requests


class _CoordinatorDown:
    """The sender's client: the coordinator (node 1) is known, its connection fails as after a restart."""

    def __init__(self):
        self.sent = []

    def await_ready(self, node_id, timeout_ms=30000):
        raise KafkaConnectionError(f"Node {node_id} not ready after {timeout_ms} ms")

    def send(self, node_id, request, **kwargs):  # (never reached: the node is not ready)
        self.sent.append((node_id, request))
        raise AssertionError("sent to a node that is not ready")


class _NoBatches:
    has_incomplete = False


def _sender_with_a_pending_request(client):
    manager = TransactionManager(transactional_id="t", transaction_timeout_ms=60_000, api_version=(2, 5))
    manager.initialize_transactions()  # queues InitProducerId, a request for the transaction coordinator
    manager._transaction_coordinator = 1  # (looked up before the broker went away)
    sender = object.__new__(Sender)
    sender._transaction_manager, sender._accumulator, sender._client = manager, _NoBatches(), client
    sender._running, sender._force_close = True, False
    sender.config = {"request_timeout_ms": 30_000, "retry_backoff_ms": 100, "client_id": "c", "transactional_id": "t"}
    return sender, manager


def _queued(manager) -> list[str]:
    return sorted(type(handler).__name__ for _, _, handler in manager._pending_requests)


def test_kafka_python_alone_loses_the_request_when_the_coordinator_is_down():
    """The defect itself (if kafka-python fixes it, this fails, and the guard can go)."""
    sender, manager = _sender_with_a_pending_request(_CoordinatorDown())
    sender._maybe_send_pending_request()
    assert _queued(manager) == ["FindCoordinatorHandler"]  # InitProducerId is gone: nothing will send it


def test_with_the_guard_the_request_is_queued_again_behind_the_coordinator_lookup():
    sender, manager = _sender_with_a_pending_request(_ReadyOrNot(_CoordinatorDown()))
    sender._maybe_send_pending_request()
    assert _queued(manager) == ["FindCoordinatorHandler", "InitProducerIdHandler"]
    assert not sender._client.sent


class _Producer:
    def __init__(self, client):
        self._sender = type("S", (), {"_client": client})()


def test_the_guard_is_put_on_once_and_passes_everything_else_through():
    client = _CoordinatorDown()
    producer = _Producer(client)
    keep_transactional_requests(producer)
    keep_transactional_requests(producer)
    guarded = producer._sender._client
    assert isinstance(guarded, _ReadyOrNot) and guarded._client is client
    assert guarded.await_ready(1) is False and guarded.sent is client.sent
    keep_transactional_requests(object())  # no sender (a stub producer): nothing to do
