"""The model changelog topic's policy and lifetime, against the broker (review r10, F3 and F6).

* a changelog topic with ``cleanup.policy=compact,delete`` was accepted: retention dropped the parts
  of partitions that stopped changing, and a member taking one over started it from nothing; the
  start now refuses it (exit 2) saying why;
* a topic at the broker's ``log.cleanup.policy`` was refused quoting ``cleanup.policy=''`` (kafka-python 3
  describes only a topic's own configs by default); the refusal names the broker's default;
* a changelog deleted while a member ran came back at once, created by the table's own consumer
  with the broker's defaults, and the member went on; the table now creates no topic, and the
  member stops (exit 2) whether the topic stays missing or a writer creates it again.

The rules and messages without a broker are in tests/unit/test_changelog_policy.py.
"""

from __future__ import annotations

import json
import random

import pytest
from daemon_kit import event, wait_for
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from connectors import changelog
from connectors.changelog import ChangelogTable, ensure_changelog_topic
from stream_cl.config import ConfigError

LIMIT = 1 << 20


def _lines(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def _failed(daemon) -> str:
    """The detail of the daemon's one ``failed`` line (a configuration error, exit 2)."""
    failed = [d for d in _lines(daemon.log()) if d.get("event") == "failed"]
    assert len(failed) == 1 and failed[0]["exit_code"] == 2, daemon.log()[-3000:]
    assert failed[0]["detail"].startswith("config error: ")
    return failed[0]["detail"].removeprefix("config error: ")


def _described(kafka_kit, topic: str) -> dict:
    """The topic's own configs, ``{name: value}``."""
    answer = kafka_kit.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    return {k: v["value"] for k, v in answer["topic"][topic].items()}


def _changelog_topic(kafka_kit, name: str, **configs) -> str:
    """A topic with ``configs`` of its own, once the broker describes them (its metadata follows the controller's)."""
    topic = f"it-{name}-{kafka_kit.tag}.model"
    kafka_kit.admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)], timeout_ms=10_000)
    kafka_kit.topics.append(topic)
    wait_for(lambda: _described(kafka_kit, topic) == configs, 30, f"{topic}'s configs {configs}")
    return topic


def _exists(kafka_kit, topic: str) -> bool:
    return topic in kafka_kit.admin.list_topics()


def test_a_compact_delete_changelog_is_refused_at_start(kafka_kit):
    events = kafka_kit.topic("cldel-events")
    topic = _changelog_topic(kafka_kit, "cldel", **{"cleanup.policy": "compact,delete"})
    config = kafka_kit.config("cldel", [events], kafka={"stop_at_end": True}, changelog={"topic": topic})
    daemon = kafka_kit.start(config)
    assert daemon.wait(timeout=120) == 2, daemon.log()[-3000:]
    error = _failed(daemon)
    assert error.startswith(f"changelog.topic: '{topic}' exists with cleanup.policy='compact,delete'; the model "
                            "changelog must be compacted and only compacted"), error
    assert "retention (retention.ms, retention.bytes) drops records by age" in error
    assert "stops changing" in error and f"--entity-name {topic} --add-config cleanup.policy=compact" in error


def test_a_changelog_at_the_broker_default_policy_is_refused_naming_the_default(kafka_kit):
    broker = kafka_kit.admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")
    assert broker["broker"]["1"]["log.cleanup.policy"]["value"] == "delete"  # the premise: Kafka's default
    topic = _changelog_topic(kafka_kit, "cldefault")  # no policy of its own
    with pytest.raises(ConfigError) as info:
        ensure_changelog_topic(kafka_kit.admin, topic, 1, 1, LIMIT)
    text = str(info.value)
    assert text.startswith(f"changelog.topic: '{topic}' exists with cleanup.policy='delete', the broker's default "
                           "(log.cleanup.policy, from "), text
    assert "''" not in text and "drops records by age" in text


def test_a_compacted_changelog_is_accepted_and_its_record_limit_raised(kafka_kit):
    topic = _changelog_topic(kafka_kit, "clcompact", **{"cleanup.policy": "compact"})
    assert ensure_changelog_topic(kafka_kit.admin, topic, 1, 1, 40 << 20) is False
    # the policy kept (an incremental alter), once the broker describes the new limit
    wanted = {"cleanup.policy": "compact", "max.message.bytes": str(40 << 20)}
    wait_for(lambda: _described(kafka_kit, topic) == wanted, 30, f"{topic}'s configs {wanted}")


def test_the_table_does_not_recreate_its_deleted_changelog_and_stops_either_way(kafka_kit, monkeypatch):
    monkeypatch.setattr(changelog, "MISSING_GRACE_S", 1.0, raising=False)  # the default 10 s, shorter here
    topic = _changelog_topic(kafka_kit, "clgone", **{"cleanup.policy": "compact"})
    kafka_kit.produce(topic, [(f"events/{p}", b"part") for p in range(3)])
    table = ChangelogTable({"bootstrap_servers": kafka_kit.bootstrap}, topic, LIMIT)
    try:
        assert table.catch_up() == 3
        kafka_kit.admin.delete_topics([topic])
        wait_for(lambda: not _exists(kafka_kit, topic), 60, "the topic deleted")

        def error():
            try:
                table.poll(200)
            except ConfigError as e:
                return str(e)
            return None

        missing = wait_for(error, 60, "the table to stop on its missing changelog")
        assert missing.startswith(f"changelog.topic: '{topic}' was deleted while this member ran (missing from the "
                                  "cluster's metadata for "), missing
        assert "its parts are gone" in missing
        assert not _exists(kafka_kit, topic)  # its consumer's metadata requests did not create it again
        # the member's next changelog write: its producer (kafka-python's default) creates the topic again
        producer = KafkaProducer(bootstrap_servers=kafka_kit.bootstrap)
        producer.send(topic, key=b"events/0", value=b"part").get(timeout=60)
        producer.close()
        again = wait_for(error, 60, "the table to stop on its changelog created again")
        assert again.startswith(f"changelog.topic: '{topic}' was deleted while this member ran and created again "
                                f"(topic id {table.topic_id} is now "), again  # the id it had when the table began
        assert "delete the topic" in again
    finally:
        table.close()


def test_a_member_whose_changelog_is_deleted_while_it_runs_stops(kafka_kit):
    rng = random.Random(6)
    events = kafka_kit.topic("clrun-events")
    kafka_kit.produce(events, [(str(i), event(i, rng)) for i in range(500)])
    config = kafka_kit.config("clrun", [events], changelog={"every_seconds": 1.0, "fold_every_seconds": 0.2})
    group = f"it-clrun-{kafka_kit.tag}"
    topic = f"{group}.model"
    kafka_kit.topics.append(topic)  # created at start: removed with the test's topics (or created again)
    daemon = kafka_kit.start(config)
    wait_for(lambda: daemon.status().get("changelog", {}).get("records", 0) >= 1 or not daemon.alive, 120,
             "a part written to the changelog")
    assert daemon.alive, daemon.log()[-3000:]
    kafka_kit.admin.delete_topics([topic])
    kafka_kit.produce(events, [(str(i), event(i, rng)) for i in range(500, 1000)])  # parts to write
    assert daemon.wait(timeout=120) == 2, daemon.log()[-3000:]
    error = _failed(daemon)
    assert error.startswith(f"changelog.topic: '{topic}' was deleted while this member ran "), error
    assert "its parts are gone" in error
