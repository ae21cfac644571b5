"""Review 24 (r16 F3) against the real broker: a dead-letter topic whose own ``max.message.bytes`` is below
``kafka.max_message_bytes``.

Before, a dead letter over the topic's limit aborted every transaction that held it: the daemon started
over every 2 s forever and committed nothing (0 predictions). Now the daemon reads the topic's limit at
start and cuts dead letters to it; where it cannot read it, the refusal stops the daemon (exit 2) naming
both limits. The authorisation errors (r16 F4) need a broker with an authorizer, which the dev broker has
not: tests/unit/test_daemon_review24.py meets them with kafka-python's own errors.
"""

from __future__ import annotations

import json
import logging
import random

import pytest
from daemon_kit import event
from kafka.admin import NewTopic

import connectors.daemon_build as daemon_build
import connectors.daemon_run as daemon_run
from connectors.logs import JsonFormatter
from stream_cl.config import load_config

LIMIT = 100_000  # the dead-letter topic's max.message.bytes; kafka.max_message_bytes stays at 1 MiB
BIG = 500_000


def _topics(kit, name: str, big: bool = True) -> tuple[str, str, str]:
    """Events (20 good, a malformed record of 500 kB unless not ``big``, 300 malformed ones of 1 kB, 20 good),
    predictions, and a dead-letter topic of max.message.bytes = LIMIT."""
    events, preds = kit.topic(f"{name}-ev"), kit.topic(f"{name}-pred")
    dead = f"it-{name}-dl-{kit.tag}"
    kit.admin.create_topics([NewTopic(dead, 1, 1, topic_configs={"max.message.bytes": str(LIMIT)})],
                            timeout_ms=10_000)
    kit.topics.append(dead)  # removed with the others
    rng = random.Random(24)
    good = [(str(i), event(i, rng)) for i in range(40)]
    small = [(f"s{i}", b"{" + b"y" * 1_000) for i in range(300)]  # many to a batch: over LIMIT together
    kit.produce(events, [*good[:20], *([("big", b"{" + b"x" * (BIG - 1))] if big else []), *small, *good[20:]])
    return events, preds, dead


def _read(kit, topic: str) -> list:
    """Every committed record of ``topic`` (read_committed, as a consumer of the daemon's output reads it)."""
    reader = kit.reader(topic)
    reader.read_to_end(60)
    return reader.records


def _not_read(kcfg, topic):
    """The dead-letter topic's limit, not read (a principal without DescribeConfigs on it, say)."""
    return None


def test_dead_letters_are_cut_to_the_dead_letter_topics_own_limit(kafka_kit):
    events, preds, dead = _topics(kafka_kit, "dlcut")
    config = kafka_kit.config("dlcut", [events], kafka={"predictions_topic": preds, "dead_letter_topic": dead,
                                                       "stop_at_end": True})
    daemon = kafka_kit.start(config)
    assert daemon.wait(timeout=120) == 0, daemon.log()[-3000:]
    assert '"fenced"' not in daemon.log()
    assert len(_read(kafka_kit, preds)) == 40
    letters = _read(kafka_kit, dead)
    assert len(letters) == 301  # the 1 kB ones too: batches of them over LIMIT are split and sent again
    (big,) = [r for r in letters if r.key == b"big"]
    headers = dict(big.headers)
    assert headers["stream-cl.truncated-from"] == str(BIG).encode() and len(big.value) < LIMIT
    assert all(len(r.value) == 1_001 and "stream-cl.truncated-from" not in dict(r.headers)
               for r in letters if r.key != b"big")


def test_batches_of_dead_letters_over_the_topics_limit_are_split_and_committed(kafka_kit, monkeypatch):
    """Where the limit is not known, the producer's batches (kafka.batch_size, 256 KiB) of small dead letters
    are over it: the broker refuses them, and kafka-python splits them and sends them again. Its flush raised
    UnknownError("Future not done") then, and every transaction holding them was aborted."""
    events, preds, dead = _topics(kafka_kit, "dlsplit", big=False)
    # (batches go out at the commit's flush, not before: the flush is waiting when the broker refuses them)
    path, _ = kafka_kit.config("dlsplit", [events], metrics={"enabled": False},
                               kafka={"predictions_topic": preds, "dead_letter_topic": dead, "stop_at_end": True,
                                      "linger_ms": 5000})
    monkeypatch.setattr(daemon_build, "topic_max_message_bytes", _not_read)
    assert daemon_run.run_daemon(load_config(path)) == 0
    assert len(_read(kafka_kit, preds)) == 40
    assert sorted(r.key for r in _read(kafka_kit, dead)) == sorted(f"s{i}".encode() for i in range(300))  # once each


@pytest.mark.parametrize("publisher", ["process", "thread"])
def test_a_limit_not_read_and_a_dead_letter_refused_stop_the_daemon_naming_both(kafka_kit, monkeypatch, caplog,
                                                                                publisher):
    events, preds, dead = _topics(kafka_kit, f"dlref{publisher[0]}")
    path, _ = kafka_kit.config(f"dlref{publisher[0]}", [events], metrics={"enabled": False},
                               kafka={"predictions_topic": preds, "dead_letter_topic": dead, "stop_at_end": True,
                                      "publisher": publisher})
    # dead letters cut to kafka.max_message_bytes (1 MiB) alone: the one of 500 kB is over the topic's limit
    monkeypatch.setattr(daemon_build, "topic_max_message_bytes", _not_read)
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        assert daemon_run.run_daemon(load_config(path)) == 2
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "stream_cl.daemon"]
    ends = [x for x in lines if x["event"] in ("failed", "fenced")]
    assert [x["event"] for x in ends] == ["failed"], caplog.text[-3000:]  # at once: no start over
    assert ends[0]["exit_code"] == 2 and ends[0]["detail"].startswith("config error: kafka.max_message_bytes: ")
    assert f"max.message.bytes of '{dead}'" in ends[0]["detail"]
    assert _read(kafka_kit, dead) == []  # nothing of the refused transaction is visible
