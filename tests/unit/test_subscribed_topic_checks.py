"""connectors.kafka_topics: the checks a Kafka source makes of its topics before it joins its group.

The consumer here answers only ``partitions_for_topic`` (its metadata); the real consumer's
behaviour is held by tests/integration/test_daemon_startup.py against the broker.
"""

from __future__ import annotations

import logging

import pytest

from connectors.kafka_topics import check_subscribed_topics, refuse_own_outputs
from stream_cl.config import ConfigError, KafkaConfig
from topic_kit import Metadata  # tests/unit/topic_kit.py


def cfg(**kafka) -> KafkaConfig:
    return KafkaConfig(bootstrap_servers="127.0.0.1:1", **kafka)


def test_topics_that_exist_with_matching_labels_pass_silently(caplog):
    config = cfg(topics=["events"], labels_topic="labels")
    with caplog.at_level(logging.WARNING, logger="stream_cl.kafka"):
        check_subscribed_topics(Metadata({"events": 3, "labels": 3}), config, ["events", "labels"])
    assert caplog.records == []


def test_a_missing_topic_is_a_warning_that_names_it_and_the_command(caplog):
    with caplog.at_level(logging.WARNING, logger="stream_cl.kafka"):
        check_subscribed_topics(Metadata({}), cfg(topics=["events"]), ["events"])
    [record] = caplog.records
    said = record.stream_cl_fields  # log_event's fields
    assert record.getMessage() == "topic_missing" and (said["topic"], said["key"]) == ("events", "kafka.topics")
    assert "kafka-topics.sh --bootstrap-server HOST:PORT --create --topic events" in said["detail"]


def test_a_missing_labels_topic_beside_a_wide_events_topic_is_refused():
    config = cfg(topics=["events"], labels_topic="labels")
    with pytest.raises(ConfigError, match=r"^kafka.labels_topic: 'labels' does not exist and 'events' has 4 partitions"):
        check_subscribed_topics(Metadata({"events": 4}), config, ["events", "labels"])


def test_a_missing_labels_topic_beside_a_one_partition_topic_is_only_a_warning(caplog):
    config = cfg(topics=["events"], labels_topic="labels")
    with caplog.at_level(logging.WARNING, logger="stream_cl.kafka"):
        check_subscribed_topics(Metadata({"events": 1}), config, ["events", "labels"])
    assert [(r.getMessage(), r.stream_cl_fields["key"]) for r in caplog.records] == [("topic_missing", "kafka.labels_topic")]


def test_labels_with_another_partition_count_are_refused_with_the_fix():
    config = cfg(topics=["events"], labels_topic="labels")
    with pytest.raises(ConfigError, match=r"'labels' has 2 partitions and 'events' 6.*--partitions 6"):
        check_subscribed_topics(Metadata({"events": 6, "labels": 2}), config, ["events", "labels"])


@pytest.mark.parametrize("kafka, key", [
    (dict(topics=["events", "preds"], predictions_topic="preds"), "kafka.topics"),
    (dict(topics=["events"], labels_topic="dead", dead_letter_topic="dead"), "kafka.labels_topic"),
    (dict(topic_pattern=r"ev.*", predictions_topic="ev-preds"), "kafka.topic_pattern"),
])
def test_a_topic_both_consumed_and_produced_is_refused_naming_the_key(kafka, key):
    with pytest.raises(ConfigError, match=rf"^{key}: .* is both consumed"):
        refuse_own_outputs(cfg(**kafka), "")


def test_the_changelog_is_an_output_too_and_outputs_apart_pass():
    with pytest.raises(ConfigError, match=r"changelog.topic"):
        refuse_own_outputs(cfg(topics=["events", "g.model"]), "g.model")
    refuse_own_outputs(cfg(topics=["events"], predictions_topic="preds", dead_letter_topic="dead"), "g.model")


@pytest.mark.parametrize("kafka, changelog, key, other", [
    (dict(predictions_topic="out", dead_letter_topic="out"), "", "kafka.dead_letter_topic", "kafka.predictions_topic"),
    (dict(predictions_topic="g.model"), "g.model", "changelog.topic", "kafka.predictions_topic"),
    (dict(dead_letter_topic="g.model"), "g.model", "changelog.topic", "kafka.dead_letter_topic"),
])
def test_two_outputs_on_one_topic_are_refused_naming_both(kafka, changelog, key, other):
    # review r135's left-out item: the changelog's catch-up would read predictions as model parts, and a
    # predictions reader would meet raw dead letters
    with pytest.raises(ConfigError, match=rf"^{key}: .* is {other} too; give each output its own topic"):
        refuse_own_outputs(cfg(topics=["events"], **kafka), changelog)
