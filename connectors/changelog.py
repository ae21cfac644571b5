"""The model changelog: a compacted Kafka topic holding the latest learned state of every source partition.

Each record is keyed by a source partition (``"topic/partition"``) and holds that
partition's contribution (:meth:`learner.contribution`, encoded as a checkpoint: arrays
and JSON, no code) with the source offset it covers. A compacted topic keeps at least the
latest record per key, so the topic *is* a table: the learned state of the whole group,
partition by partition. This is how Kafka Streams keeps a state store's changelog. The
daemon writes the records of the partitions it owns inside its transaction (with the
outputs and offsets they go with, :mod:`connectors.commit`), and reads the whole topic
``read_committed``: to restore a partition it takes over, and to fold the other members'
partitions into the model it serves.

A contribution of a wide model is megabytes (``X'X`` of a head with 365 inputs is about
1 MB), more than Kafka's default record limit. The topic is created with
``max.message.bytes`` large enough for the model (``changelog.max_message_bytes``), and the
producer's ``max_request_size`` and the reader's fetch sizes follow it: one record per
partition and write, no chunking to reassemble (a chunk lost to compaction would corrupt
a state; a record is whole or absent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from stream_cl.config import ConfigError

from .logs import log_event

__all__ = ["ChangelogTable", "ensure_changelog_topic"]

log = logging.getLogger("stream_cl.changelog")


def ensure_changelog_topic(admin: KafkaAdminClient, name: str, partitions: int, replication: int,
                           max_message_bytes: int) -> bool:
    """Create the compacted changelog topic if it is missing; True if it was created.

    An existing topic must be compacted (``cleanup.policy=compact``): a deleting one would
    drop states by age, and the group would lose what it learned. Its ``max.message.bytes``
    is raised when smaller than ``max_message_bytes``.
    """
    configs = {"cleanup.policy": "compact", "max.message.bytes": str(max_message_bytes),
               # compact soon, but keep a freshly written state uncompacted for a while (readers catching up)
               "min.compaction.lag.ms": "60000", "segment.ms": "3600000"}
    try:
        admin.create_topics([NewTopic(name, partitions, replication, topic_configs=configs)], timeout_ms=30_000)
        log_event(log, "changelog_created", topic=name, partitions=partitions, replication=replication,
                  max_message_bytes=max_message_bytes)
        return True
    except TopicAlreadyExistsError:
        pass
    resource = ConfigResource(ConfigResourceType.TOPIC, name)
    described = admin.describe_configs([resource])
    current = _topic_configs(described, name)
    policy = current.get("cleanup.policy", "")
    if "compact" not in policy.split(","):
        raise ConfigError(f"changelog.topic: {name!r} exists with cleanup.policy={policy!r}; the model changelog must be "
                          "compacted (it is the table of every partition's latest state): set cleanup.policy=compact "
                          "on it, or name another topic")
    if int(current.get("max.message.bytes", "0") or 0) < max_message_bytes:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                            configs={"max.message.bytes": str(max_message_bytes)})])
    return False


def _topic_configs(described, name: str) -> dict:
    """``{config: value}`` of a topic from kafka-python's describe_configs answer (its shapes vary by version)."""
    if isinstance(described, dict):
        entry = described.get("topic", described).get(name, {})
        return {k: (v.get("value") if isinstance(v, dict) else v) for k, v in entry.items()}
    out = {}
    for response in described if isinstance(described, list) else [described]:
        for resource in getattr(response, "resources", []):
            for entry in resource[4]:
                out[entry[0]] = entry[1]
    return out


class ChangelogTable:
    """The latest record per key of the changelog topic, read ``read_committed`` from its start.

    ``catch_up()`` reads up to the end offsets as of the call; ``changed()`` returns the
    keys whose value changed since it was last called (what a fold must merge).
    """

    def __init__(self, client_options: dict, topic: str, max_message_bytes: int):
        self.topic = topic
        fetch = max(2 * max_message_bytes, 52_428_800)
        self.consumer = KafkaConsumer(**client_options, group_id=None, enable_auto_commit=False,
                                      isolation_level="read_committed", max_partition_fetch_bytes=fetch,
                                      fetch_max_bytes=fetch, receive_message_max_bytes=max(100_000_000, 2 * fetch))
        parts = self.consumer.partitions_for_topic(topic) or set()
        if not parts:
            raise ConfigError(f"changelog.topic: no metadata for {topic!r}; it should have been created at start")
        self.partitions = [TopicPartition(topic, p) for p in sorted(parts)]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)
        self.values: dict[str, bytes] = {}
        self._changed: set[str] = set()
        self.records = 0
        self.bytes = 0

    def catch_up(self, timeout_s: float = 60.0) -> int:
        """Read everything committed up to the topic's end as of now; returns the records read."""
        ends = self.consumer.end_offsets(self.partitions)
        deadline = time.monotonic() + timeout_s
        n = 0
        while any(self.consumer.position(tp) < ends[tp] for tp in self.partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the changelog {self.topic!r} was not read to its end within {timeout_s:.0f} s")
            n += self.poll(500)
        return n

    def poll(self, timeout_ms: int = 0) -> int:
        """Read what has arrived (no waiting beyond ``timeout_ms``); returns the records read."""
        n = 0
        for records in self.consumer.poll(timeout_ms=timeout_ms).values():
            for r in records:
                key = r.key.decode() if r.key is not None else ""
                if r.value is None:  # a tombstone: the partition's state was deleted
                    self.values.pop(key, None)
                else:
                    self.values[key] = r.value
                    self.bytes += len(r.value)
                self._changed.add(key)
                n += 1
        self.records += n
        return n

    def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    def changed(self) -> set[str]:
        """Keys written since the last call."""
        out, self._changed = self._changed, set()
        return out

    def keys(self) -> Iterable[str]:
        return list(self.values)

    def close(self) -> None:
        self.consumer.close()
