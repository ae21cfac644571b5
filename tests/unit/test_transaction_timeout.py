"""A transaction timeout the broker refuses is a configuration error (the CLI exits 2), in both publishers.

No broker here: a stub producer's ``init_transactions`` raises what kafka-python raises when
the broker answers InitProducerId with INVALID_TRANSACTION_TIMEOUT (error 50): kafka-python
3.0 wraps it in a plain KafkaError that names it; the typed error is taken too. The real
broker's answer was seen with ``transaction_timeout_ms = 1000000`` against a default broker
(transaction.max.timeout.ms = 900000).
"""

import logging
from multiprocessing.connection import Pipe

import pytest
from kafka.errors import InvalidTransactionTimeoutError, KafkaError

from connectors import publisher
from connectors.transaction import TransactionalWriter
from stream_cl.config import ConfigError

WRAPPED = KafkaError("Unexpected error in InitProducerIdResponse: [Error 50] InvalidTransactionTimeoutError")


class _Producer:
    """A KafkaProducer whose init_transactions fails with ``error``."""

    error: Exception = WRAPPED

    def __init__(self, **options):
        self.config = options
        self.closed = False

    def init_transactions(self):
        raise self.error

    def begin_transaction(self):
        raise AssertionError("not reached: init_transactions failed")

    def close(self, timeout=None):
        self.closed = True


@pytest.mark.parametrize("error", [WRAPPED, InvalidTransactionTimeoutError()], ids=["kafka-python-3.0", "typed"])
def test_a_refused_transaction_timeout_names_the_key_and_the_broker_setting(error):
    producer = _Producer(transaction_timeout_ms=1_000_000)
    producer.error = error
    with pytest.raises(ConfigError, match=r"^kafka\.transaction_timeout_ms: .*\(got 1000000\).*transaction\.max\.timeout\.ms"):
        TransactionalWriter(producer, "predictions")


def test_other_start_up_errors_are_not_config_errors():
    producer = _Producer(transaction_timeout_ms=60_000)
    producer.error = KafkaError("Unexpected error in InitProducerIdResponse: [Error 53] TransactionalIdAuthorizationFailed")
    with pytest.raises(KafkaError) as raised:
        TransactionalWriter(producer, "predictions")
    assert not isinstance(raised.value, ConfigError)


class _Alive:
    """The child process and the pipe writer of a ProcessPublisher, both well."""

    error = None

    def poll(self):
        return None


def test_the_publisher_process_hands_the_config_error_to_the_daemon(monkeypatch):
    """The child (``_serve``, run here in-process) answers "config"; the daemon side raises ConfigError."""
    monkeypatch.setattr(publisher, "KafkaProducer", _Producer)
    monkeypatch.setattr(publisher.signal, "signal", lambda *args: None)  # the child's own handlers, not pytest's
    monkeypatch.setattr("connectors.logs.setup_logging", lambda *args, **kwargs: None)
    ours, theirs = Pipe(duplex=True)
    ours.send(("start", {"transaction_timeout_ms": 1_000_000}, "predictions", "", "text", logging.WARNING))
    assert publisher._serve(theirs) == 1
    parent = object.__new__(publisher.ProcessPublisher)  # its start-up, without spawning a child
    parent._conn, parent._proc, parent._writer = ours, _Alive(), _Alive()
    with pytest.raises(ConfigError, match=r"^kafka\.transaction_timeout_ms: .*transaction\.max\.timeout\.ms"):
        parent._reply(5.0, "start")
