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
from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError

from stream_cl.config import ConfigError

from .kafka_assignment import ms_left
from .logs import log_event

__all__ = ["PRODUCER_REQUEST_ROOM", "SOCKET_REQUEST_ROOM", "ChangelogTable", "check_request_limit", "ensure_changelog_topic",
           "read_topic_configs"]

log = logging.getLogger("stream_cl.changelog")


def ensure_changelog_topic(admin: KafkaAdminClient, name: str, partitions: int, replication: int,
                           max_message_bytes: int) -> bool:
    """Create the compacted changelog topic if it is missing; True if it was created.

    An existing topic must be compacted and only compacted (:func:`check_changelog_policy`).
    Its ``max.message.bytes`` is set on it when smaller than ``max_message_bytes`` or not its
    own (a broker default that could change under it); where the broker refuses that and the
    topic's own limit is smaller, a ConfigError names both. A ``max_message_bytes`` the brokers'
    ``socket.request.max.bytes`` cannot take is refused first (:func:`check_request_limit`).
    """
    check_request_limit(admin, max_message_bytes)
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
    current = read_topic_configs(admin, name)
    check_changelog_policy(name, *current.get("cleanup.policy", (None, "")))
    limit, source = current.get("max.message.bytes", ("0", ""))
    if source in BROKER_SOURCES or int(limit or 0) < max_message_bytes:
        answer = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                                     configs={"max.message.bytes": str(max_message_bytes)})])
        # kafka-python answers a refused alter (no AlterConfigs ACL, a managed cluster's policy capping
        # max.message.bytes) with an error string, and raises nothing: the member went on believing the topic
        # took records of max_message_bytes, and every transaction holding a larger part than the topic's own
        # limit aborted (MessageSizeTooLargeError), the member starting over for ever (review r145)
        refused = _alter_refused(answer, name)
        if refused is not None and int(limit or 0) < max_message_bytes:
            raise ConfigError(
                f"changelog.max_message_bytes: the changelog topic {name!r} takes records of at most {limit} bytes "
                f"(its max.message.bytes), and raising that to {max_message_bytes} was refused ({refused}); raise it "
                f"yourself (kafka-configs.sh --alter --entity-type topics --entity-name {name} --add-config "
                f"max.message.bytes={max_message_bytes}), or lower changelog.max_message_bytes to at most {limit} "
                "if the model's parts fit there")
        if refused is not None:  # the topic's limit is large enough as it is: only not set as its own
            log.warning("changelog topic %r: max.message.bytes not set on the topic (%s); it keeps the broker's %s",
                        name, refused, limit)
    return False


def _alter_refused(answer, name: str) -> str | None:
    """The error kafka-python's ``alter_configs`` answered for topic ``name`` (it raises none), or None where
    it took the change (``'OK'``) or its answer does not say."""
    result = answer.get("topic", {}).get(name) if isinstance(answer, dict) else None
    return None if result is None or result == "OK" else str(result)


# The daemon's producer sends requests of up to changelog.max_message_bytes + this (its max_request_size,
# connectors.daemon_build: a part and the interval's other batches)
PRODUCER_REQUEST_ROOM = 65_536
# what a broker must take in one request beyond changelog.max_message_bytes: the above, and the request's own header
SOCKET_REQUEST_ROOM = PRODUCER_REQUEST_ROOM + 4_096


def check_request_limit(admin: KafkaAdminClient, max_message_bytes: int) -> None:
    """Refuse (a ConfigError) a ``changelog.max_message_bytes`` whose producer requests the brokers cannot take.

    A broker closes the connection of a request over its ``socket.request.max.bytes`` (100 MiB by default;
    ``InvalidReceiveException`` in its log) whatever the topic's ``max.message.bytes`` says: the producer
    tries again until the transaction times out, and the member starts over and meets it again, for ever
    (review r145: a default learner with ``hash_width = 512`` makes a 183 MiB part, and the refusal of
    a part over the limit says to raise ``changelog.max_message_bytes``). Best effort: where the brokers'
    settings cannot be read (no DescribeConfigs on the cluster), nothing is checked."""
    try:
        brokers = [str(b.get("broker_id", b.get("node_id"))) for b in admin.describe_cluster().get("brokers", [])]
        described = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, b) for b in brokers],
                                           config_filter="all")
        limits = {b: int(described["broker"][b]["socket.request.max.bytes"]["value"]) for b in brokers}
    except Exception as e:  # noqa: BLE001 -- a check that cannot be made is no reason to refuse a start
        log.debug("socket.request.max.bytes not read: %s: %s", type(e).__name__, e)
        return
    if not limits:
        return
    broker, least = min(limits.items(), key=lambda kv: kv[1])
    if max_message_bytes + SOCKET_REQUEST_ROOM > least:
        raise ConfigError(
            f"changelog.max_message_bytes: {max_message_bytes} bytes does not fit the producer's requests within "
            f"broker {broker}'s socket.request.max.bytes ({least} bytes), which closes the connection of a larger "
            f"request whatever the topic's max.message.bytes says, so a changelog record that large could never be "
            f"written; lower changelog.max_message_bytes to at most {least - SOCKET_REQUEST_ROOM} (a part that does not "
            "fit there needs a narrower model: fewer inputs, a smaller hash_width or width, or model.kind = "
            "\"analytic\"), or raise socket.request.max.bytes on every broker")


# where a topic's config comes from when the topic has no value of its own (kafka-python's
# ConfigSourceType names): the broker's setting behind it (log.cleanup.policy for cleanup.policy)
BROKER_SOURCES = {"DEFAULT_CONFIG": "Kafka's default", "STATIC_BROKER_CONFIG": "the broker's server.properties",
                  "DYNAMIC_BROKER_CONFIG": "this broker's dynamic config",
                  "DYNAMIC_DEFAULT_BROKER_CONFIG": "the cluster's dynamic broker default"}


def check_changelog_policy(name: str, policy: str | None, source: str = "") -> None:
    """Refuse a changelog topic whose ``cleanup.policy`` is not exactly ``compact`` (a ConfigError).

    ``policy`` is the topic's effective value (None: not in the broker's answer), ``source`` where
    it comes from (:data:`BROKER_SOURCES`, or the topic's own). Compaction keeps the latest record
    of every key, so the topic is the table of every partition's latest state. ``delete``, alone or
    beside ``compact``, also drops records by age (``retention.ms``, ``retention.bytes``); a
    partition's part is written only when the partition changes, so the part of one that stops
    changing would age out, and the member that takes that partition over would start it from
    nothing, silently.

    >>> check_changelog_policy("g.model", "compact")
    >>> check_changelog_policy("g.model", "compact", "DYNAMIC_DEFAULT_BROKER_CONFIG")  # compacted by the broker
    >>> check_changelog_policy("g.model", "compact,delete")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stream_cl.config.ConfigError: changelog.topic: 'g.model' exists with cleanup.policy='compact,delete'; ...
    """
    kinds = {p.strip() for p in (policy or "").split(",") if p.strip()}
    if kinds == {"compact"}:
        return
    if policy is None:
        has = ("no cleanup.policy in the broker's answer (a topic without one of its own has the broker's "
               "log.cleanup.policy, \"delete\" unless the broker sets another; a principal without DescribeConfigs "
               "on the topic is answered no configs at all: grant it)")
    elif source in BROKER_SOURCES:
        has = (f"cleanup.policy={policy!r}, the broker's default (log.cleanup.policy, from {BROKER_SOURCES[source]}), "
               "none of its own")
    else:
        has = f"cleanup.policy={policy!r}"
    if "delete" in kinds or policy is None:
        why = ("with \"delete\", retention (retention.ms, retention.bytes) drops records by age, and a partition's "
               "part is written only when the partition changes: the part of a partition that stops changing would "
               "be dropped, and the member that takes that partition over would start it from nothing")
    else:
        why = "it is the table of every partition's latest state"
    raise ConfigError(f"changelog.topic: {name!r} exists with {has}; the model changelog must be compacted and only "
                      f"compacted: {why}. Set cleanup.policy=compact on it (kafka-configs.sh --alter --entity-type "
                      f"topics --entity-name {name} --add-config cleanup.policy=compact), or name another topic")


def read_topic_configs(admin: KafkaAdminClient, name: str) -> dict[str, tuple[str | None, str]]:
    """Every config of topic ``name`` as ``{config: (value, source)}`` (:func:`_topic_configs`); ``{}`` where
    the broker describes none (a missing topic, or one this principal may not describe: kafka-python drops
    the answer's error)."""
    resource = ConfigResource(ConfigResourceType.TOPIC, name)
    # every config, not only the topic's own ("modified", kafka-python 3's default): a topic left at the
    # broker's cleanup.policy has none of its own, and was read as ''
    return _topic_configs(admin.describe_configs([resource], config_filter="all"), name)


def _topic_configs(described, name: str) -> dict[str, tuple[str | None, str]]:
    """``{config: (value, source)}`` of a topic from kafka-python's describe_configs answer (its shapes vary by
    version); ``source`` is a ConfigSourceType name, or "" where the answer does not say."""
    if isinstance(described, dict):
        entry = described.get("topic", described).get(name, {})
        return {k: (v.get("value"), v.get("config_source") or "") if isinstance(v, dict) else (v, "")
                for k, v in entry.items()}
    out = {}
    for response in described if isinstance(described, list) else [described]:
        for resource in getattr(response, "resources", []):
            for entry in resource[4]:
                out[entry[0]] = (entry[1], "")
    return out


MISSING_GRACE_S = 10.0  # how long the changelog may be missing from the metadata before the member stops
# what to do once the changelog was deleted under a running member ({delete}: the recreated topic's part)
_RESTART = ("its parts are gone. Stop the group's members{delete} and start them again: the topic is created "
            "compacted, each member writes the parts of its partitions again from its checkpoint, and a partition "
            "with neither is re-learned from its first record; to start the group's model over instead, use a new "
            "kafka.group_id")


def _no_auto_create(consumer: KafkaConsumer) -> None:
    """Keep ``consumer``'s metadata requests from creating a missing topic.

    kafka-python 3.0.12 accepts ``allow_auto_create_topics`` but never hands it to the cluster
    metadata its requests are built from (``ClusterMetadata`` is made without it), so every
    metadata request asks the broker to create a missing topic. Where that metadata holds the
    setting, it is set there as well.
    """
    config = getattr(getattr(consumer, "_cluster", None), "config", None)
    if isinstance(config, dict):
        config["allow_auto_create_topics"] = False


class ChangelogTable:
    """The latest record per key of the changelog topic, read ``read_committed`` from its start.

    ``catch_up()`` reads up to the end offsets as of the call; ``changed()`` returns the
    keys whose value changed since it was last called (what a fold must merge).
    """

    def __init__(self, client_options: dict, topic: str, max_message_bytes: int):
        self.topic = topic
        fetch = max(2 * max_message_bytes, 52_428_800)
        # never create the topic: a changelog deleted while the group runs came back at the next metadata
        # request, with the broker's defaults (cleanup.policy delete), and the member went on writing to it
        self.consumer = KafkaConsumer(**client_options, group_id=None, enable_auto_commit=False,
                                      isolation_level="read_committed", max_partition_fetch_bytes=fetch,
                                      fetch_max_bytes=fetch, receive_message_max_bytes=max(100_000_000, 2 * fetch),
                                      allow_auto_create_topics=False)
        _no_auto_create(self.consumer)
        parts = self.consumer.partitions_for_topic(topic) or set()
        if not parts:
            raise ConfigError(f"changelog.topic: no metadata for {topic!r}; it should have been created at start")
        # the topic as created: one deleted and made again (by any client's auto-creation) has another id
        self.topic_id = self._topic_id()
        self._missing_since: float | None = None
        self.partitions = [TopicPartition(topic, p) for p in sorted(parts)]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)
        self.values: dict[str, bytes] = {}
        self._changed: set[str] = set()
        self.records = 0
        self.bytes = 0

    def catch_up(self, timeout_s: float = 60.0) -> int:
        """Read everything committed up to the topic's end as of now; returns the records read.

        A ``TimeoutError`` naming the topic when that takes longer than ``timeout_s``, a broker that
        does not answer included (kafka-python's own lookups time out otherwise: a ``KafkaTimeoutError``,
        or a position of ``None``), so the caller can tell a slow read from a failed one."""
        self._check_topic()
        deadline = time.monotonic() + timeout_s

        def late(what: str) -> TimeoutError:
            return TimeoutError(f"the changelog {self.topic!r} was not read to its end within {timeout_s:.0f} s ({what})")

        try:
            ends = self.consumer.end_offsets(self.partitions, timeout_ms=ms_left(deadline))
        except KafkaTimeoutError:
            raise late("its end offsets were not answered; is the broker reachable?") from None
        n = 0
        while True:
            try:
                positions = [self.consumer.position(tp, timeout_ms=ms_left(deadline)) for tp in self.partitions]
                if None in positions:  # kafka-python's other answer to a lookup that timed out
                    raise KafkaTimeoutError("a position lookup timed out")
            except KafkaTimeoutError:
                raise late("its positions were not answered; is the broker reachable?") from None
            if all(p >= ends[tp] for p, tp in zip(positions, self.partitions)):
                return n
            if time.monotonic() > deadline:
                raise late(f"{n} records read")
            n += self.poll(500)

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
        self._check_topic()
        return n

    def _check_topic(self) -> None:
        """Stop the member (a ConfigError) when its changelog was deleted, or deleted and created again.

        Its parts are gone then, and the member would go on silently: writing its next parts to a
        topic that retention empties (created with the broker's defaults), folding nothing from the
        others, and a member taking a partition over would start it from nothing. A topic missing
        from the metadata counts after :data:`MISSING_GRACE_S` (a broker that has not caught up
        may not know it yet); another id counts at once. Brokers older than Kafka 2.8 give no topic
        ids: nothing is checked there.
        """
        if self.topic_id is None:
            return
        now_id = self._topic_id()
        if now_id == self.topic_id:
            self._missing_since = None
            return
        if now_id is not None:
            delete = ", delete the topic (a start refuses it unless its cleanup.policy is compact)"
            raise ConfigError(f"changelog.topic: {self.topic!r} was deleted while this member ran and created again "
                              f"(topic id {self.topic_id} is now {now_id}; a client's auto-creation makes it with the "
                              f"broker's defaults, cleanup.policy delete): {_RESTART.format(delete=delete)}")
        now = time.monotonic()
        if self._missing_since is None:
            self._missing_since = now
        elif now - self._missing_since >= MISSING_GRACE_S:
            gone = f"missing from the cluster's metadata for {now - self._missing_since:.0f} s"
            raise ConfigError(f"changelog.topic: {self.topic!r} was deleted while this member ran ({gone}): "
                              f"{_RESTART.format(delete='')}")

    def _topic_id(self):
        """The topic's id in the consumer's metadata (None: unknown, or missing from the cluster)."""
        topic_id = getattr(getattr(self.consumer, "_cluster", None), "topic_id", None)
        found = topic_id(self.topic) if topic_id is not None else None
        return found if found is not None and getattr(found, "int", 1) != 0 else None  # the zero id: no such topic

    def get(self, key: str) -> bytes | None:
        """The latest committed value of ``key`` read so far (None: none, or deleted)."""
        return self.values.get(key)

    def changed(self) -> set[str]:
        """Keys written since the last call."""
        out, self._changed = self._changed, set()
        return out

    def keys(self) -> Iterable[str]:
        """The keys that have a value, as a list."""
        return list(self.values)

    def close(self) -> None:
        """Close the table's consumer."""
        self.consumer.close()
