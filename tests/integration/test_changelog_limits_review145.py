"""The changelog topic's record limits against the broker (review r145).

* F2: a ``changelog.max_message_bytes`` above the broker's ``socket.request.max.bytes`` (100 MiB by
  default) was accepted, and the topic made to take such records; a record that large never reaches
  the broker (it closes the connection: ``InvalidReceiveException`` in its log), so the member's
  transactions timed out and it started over for ever. A default learner with ``hash_width = 512``
  makes a 183 MiB part, and the refusal of a part over the limit says to raise this setting. A start
  now refuses it (exit 2) naming the broker's setting, before the topic is made.
* F1's premise: kafka-python 3.0.12 answers a refused config change with an error string and raises
  nothing (here a value the broker refuses as invalid; an ACL or a managed cluster's policy answers
  alike), which ``ensure_changelog_topic`` used to drop. The rule is in
  tests/unit/test_changelog_limits_review145.py.
"""

from __future__ import annotations

import json

from daemon_kit import wait_for
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from connectors.changelog import ensure_changelog_topic

SOCKET = 104_857_600  # the dev broker's socket.request.max.bytes, Kafka's default


def test_a_record_limit_the_broker_cannot_take_in_a_request_stops_the_start(kafka_kit):
    broker = kafka_kit.admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")
    assert broker["broker"]["1"]["socket.request.max.bytes"]["value"] == str(SOCKET)  # the premise
    events = kafka_kit.topic("cllimit-events")
    config = kafka_kit.config("cllimit", [events], kafka={"stop_at_end": True},
                              changelog={"max_message_bytes": 200 << 20})
    topic = f"it-cllimit-{kafka_kit.tag}.model"
    kafka_kit.topics.append(topic)  # (removed afterwards should a start make it)
    daemon = kafka_kit.start(config)
    assert daemon.wait(timeout=120) == 2, daemon.log()[-3000:]
    failed = [d for d in map(json.loads, filter(lambda s: s.startswith("{"), daemon.log().splitlines()))
              if d.get("event") == "failed"]
    assert len(failed) == 1, daemon.log()[-3000:]
    detail = failed[0]["detail"]
    assert detail.startswith(f"config error: changelog.max_message_bytes: {200 << 20} bytes does not fit the "
                             f"producer's requests within broker 1's socket.request.max.bytes ({SOCKET} bytes)"), detail
    assert topic not in kafka_kit.admin.list_topics()  # refused before the topic is made


def test_kafka_python_answers_a_refused_config_change_without_raising(kafka_kit):
    topic = f"it-clalter-{kafka_kit.tag}.model"
    kafka_kit.admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})],
                                  timeout_ms=10_000)
    kafka_kit.topics.append(topic)
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    # (kafka-python describes the topic before it alters it: wait until the broker describes it)
    wait_for(lambda: kafka_kit.admin.describe_configs([resource])["topic"].get(topic), 30, f"{topic}'s configs")
    answer = kafka_kit.admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                           configs={"max.message.bytes": "-5"})])
    assert answer["topic"][topic].startswith("[Error 40] InvalidConfigurationError"), answer
    # and a raise the broker takes still goes through (the start's own path)
    assert ensure_changelog_topic(kafka_kit.admin, topic, 1, 1, 8 << 20) is False
