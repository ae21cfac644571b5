"""r32 F2: kafka-python's admin client waits up to 30 s between attempts to reach a broker, and its
bootstrap backs off 4x per refused attempt: attempts at 0, 0.1, 0.5, 2.2 and 9.5 s, then none within a
30 s kafka.bootstrap_timeout_ms, so a broker up 10 s after the daemon began to wait was never tried and
the start failed. Every client now waits at most 1 s, the Java client's default (measured with
/tmp/h26/r32/repro/probe_h_backoff.py: an attempt about every second until the deadline)."""

from __future__ import annotations

from connectors.kafka_settings import RECONNECT_BACKOFF_MAX_MS, client_options
from stream_cl.config import KafkaConfig


def test_every_client_tries_a_broker_that_is_down_at_least_once_a_second():
    assert RECONNECT_BACKOFF_MAX_MS == 1_000
    assert client_options(KafkaConfig(topics=["events"]))["reconnect_backoff_max_ms"] == 1_000
