"""The topics a Kafka source subscribes: checked before it joins its group.

:func:`refuse_own_outputs` refuses a subscription that would read what the daemon writes, and two
outputs written to one topic;
:func:`check_subscribed_topics` says which subscribed topics do not exist and refuses a labels
topic that cannot be co-partitioned with the events (a label must reach its event's member).
"""

from __future__ import annotations

import logging
import re

from kafka import KafkaConsumer

from stream_cl.config import ConfigError, KafkaConfig

from .logs import log_event

__all__ = ["check_subscribed_topics", "refuse_own_outputs"]

log = logging.getLogger("stream_cl.kafka")  # the source's logger: these lines are its start


def refuse_own_outputs(cfg: KafkaConfig, changelog_topic: str) -> None:
    """Refuse a subscription that takes in a topic the daemon writes: it would learn from its own
    output (the changelog's binary model parts would come back as dead letters). And refuse two
    outputs on one topic: the changelog's catch-up would read predictions or dead letters as model
    parts, and its compaction would keep one prediction a key; a reader of the predictions would
    meet the dead letters' raw records among them."""
    outputs = {"kafka.predictions_topic": cfg.predictions_topic, "kafka.dead_letter_topic": cfg.dead_letter_topic,
               'changelog.topic, by default "<kafka.group_id>.model"': changelog_topic}
    named = [(output, topic) for output, topic in outputs.items() if topic]
    for i, (first, topic) in enumerate(named):
        for second, other in named[i + 1:]:
            if other == topic:
                raise ConfigError(f"{second.split(',')[0]}: {topic!r} is {first} too; give each output its own topic")
    for output, topic in outputs.items():
        if not topic:
            continue
        if topic in cfg.topics or topic == cfg.labels_topic:
            key, how = ("kafka.topics" if topic in cfg.topics else "kafka.labels_topic"), ""
        elif cfg.topic_pattern and re.match(cfg.topic_pattern, topic):  # as the consumer matches it
            key, how = "kafka.topic_pattern", f" (it matches {cfg.topic_pattern!r})"
        else:
            continue
        raise ConfigError(f"{key}: {topic!r} is both consumed{how} and produced to ({output}); the daemon would learn "
                          f"from its own output; change {key} or {output.split(',')[0]} so they do not meet")


def check_subscribed_topics(consumer: KafkaConsumer, cfg: KafkaConfig, topics: list[str]) -> None:
    """Fetch the subscribed ``topics``' metadata before the first poll joins the group, and say
    which do not exist; refuse a labels topic whose partitions cannot match the events' (or an events
    topic missing beside a labels topic of several partitions).

    With the metadata at hand the first assignment already holds every partition
    (without it the group leader assigns nothing, kafka-python warns "No partition
    metadata", and a second rebalance follows). After subscribe(), so that the
    consumer's coordinator sees the update (before it, the coordinator keeps an empty
    snapshot, and the first metadata refresh after joining forces a rebalance).
    """
    counts = {}
    for topic in topics:
        counts[topic] = len(consumer.partitions_for_topic(topic) or ())
        if counts[topic]:
            continue
        key = "kafka.labels_topic" if topic == cfg.labels_topic else "kafka.topics"
        log_event(log, "topic_missing", level=logging.WARNING, topic=topic, key=key,
                  detail=f"{key}: topic {topic!r} does not exist (yet); a broker with auto.create.topics.enable "
                         "(the dev broker) creates it now, most production brokers do not: create it, e.g. "
                         f"kafka-topics.sh --bootstrap-server HOST:PORT --create --topic {topic} --partitions 6")
    if cfg.labels_topic and not counts.get(cfg.labels_topic):
        # created on first use, it would get the broker's default count (num.partitions), and the
        # labels of every other events partition would reach no member: lost, unjoined
        wide = [t for t in cfg.topics if counts.get(t, 0) > 1]
        if wide:
            n = counts[wide[0]]
            raise ConfigError(
                f"kafka.labels_topic: {cfg.labels_topic!r} does not exist and {wide[0]!r} has {n} partitions: "
                "created on first use it would get the broker's default partition count, and a label must reach "
                f"the member that holds its event's partition; create it first with {n} partitions, e.g. "
                f"kafka-topics.sh --bootstrap-server HOST:PORT --create --topic {cfg.labels_topic} --partitions {n}")
    if cfg.labels_topic and counts.get(cfg.labels_topic, 0) > 1:
        # the mirror case: an events topic created on first use gets the broker's default count (1 on the dev
        # broker) beside a labels topic of several partitions, and the labels of every partition past the
        # events' count never joined, silently (review r151)
        missing = [t for t in cfg.topics if not counts.get(t)]
        if missing:
            n = counts[cfg.labels_topic]
            raise ConfigError(
                f"kafka.topics: {missing[0]!r} does not exist and the labels topic {cfg.labels_topic!r} has {n} "
                "partitions: created on first use it would get the broker's default partition count, and a label "
                f"must reach the member that holds its event's partition; create it first with {n} partitions, e.g. "
                f"kafka-topics.sh --bootstrap-server HOST:PORT --create --topic {missing[0]} --partitions {n}")
    if cfg.labels_topic and counts.get(cfg.labels_topic):
        for topic in cfg.topics:
            if counts.get(topic) and counts[topic] != counts[cfg.labels_topic]:
                raise ConfigError(
                    f"kafka.labels_topic: {cfg.labels_topic!r} has {counts[cfg.labels_topic]} partitions and "
                    f"{topic!r} {counts[topic]}: a label must reach the member that holds its event's partition, so "
                    "both topics need the same partition count and both must be keyed by event id (Kafka's default "
                    f"partitioner then puts a label in its event's partition number); e.g. kafka-topics.sh "
                    f"--bootstrap-server HOST:PORT --alter --topic {cfg.labels_topic} --partitions {counts[topic]} "
                    "(only grows a topic), or a new labels topic with that count")
