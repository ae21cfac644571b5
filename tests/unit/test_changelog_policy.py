"""The model changelog topic's policy and lifetime, without a broker (review r10, F3 and F6).

* F3: an existing changelog topic must be compacted and only compacted. ``compact,delete`` was
  accepted (``"compact" in policy.split(",")``): retention then dropped the parts of partitions
  that stopped changing, and a member that took one over started it from nothing, silently.
* F6: kafka-python 3's ``describe_configs`` answers only a topic's own configs by default, so a
  topic at the broker's ``log.cleanup.policy`` was refused quoting ``cleanup.policy=''``; the
  refusal now names the broker's default.
* F6: the table's consumer creates no topic (kafka-python 3.0.12 drops ``allow_auto_create_topics``
  on its way to the metadata requests, so the table also sets it there), and a changelog deleted,
  or deleted and created again, while the member runs stops the member with a ConfigError.
* F3: a partition with no state (no checkpoint, no changelog part) but a committed offset, whose
  first records were deleted, is re-learned from its first remaining record with the
  ``checkpoint_below_log_start`` warning, as a checkpoint below the log start is.

The broker's side is in tests/integration/test_changelog_policy_broker.py.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from types import SimpleNamespace

import pytest
from kafka import TopicPartition
from kafka.errors import TopicAlreadyExistsError

from connectors import changelog
from connectors.changelog import ChangelogTable, ensure_changelog_topic
from stream_cl.config import ConfigError

NAME = "g.model"
LIMIT = 33_554_432


# -- the policy rule and its messages ---------------------------------------------------------------
@pytest.mark.parametrize("policy", ["compact", " compact", "compact,compact"])
def test_a_compacted_changelog_is_accepted(policy):
    changelog.check_changelog_policy(NAME, policy, "DYNAMIC_TOPIC_CONFIG")


@pytest.mark.parametrize("policy", ["compact,delete", "delete,compact", "compact, delete", "delete"])
def test_a_changelog_policy_that_deletes_is_refused_saying_why(policy):
    with pytest.raises(ConfigError) as info:
        changelog.check_changelog_policy(NAME, policy, "DYNAMIC_TOPIC_CONFIG")
    text = str(info.value)
    assert text.startswith(f"changelog.topic: 'g.model' exists with cleanup.policy={policy!r}; ")
    assert "must be compacted and only compacted" in text
    assert "retention (retention.ms, retention.bytes) drops records by age" in text
    assert "the part of a partition that stops changing would be dropped" in text
    assert "start it from nothing" in text
    assert "--entity-name g.model --add-config cleanup.policy=compact" in text and "name another topic" in text


@pytest.mark.parametrize("source, where", [("DEFAULT_CONFIG", "Kafka's default"),
                                           ("STATIC_BROKER_CONFIG", "the broker's server.properties"),
                                           ("DYNAMIC_DEFAULT_BROKER_CONFIG", "the cluster's dynamic broker default")])
def test_a_changelog_at_the_broker_default_policy_is_named_so(source, where):
    with pytest.raises(ConfigError) as info:
        changelog.check_changelog_policy(NAME, "delete", source)
    text = str(info.value)
    assert text.startswith("changelog.topic: 'g.model' exists with cleanup.policy='delete', the broker's default "
                           f"(log.cleanup.policy, from {where}), none of its own; ")
    assert "''" not in text and "drops records by age" in text


def test_a_policy_the_broker_did_not_give_is_not_quoted_as_empty():
    with pytest.raises(ConfigError) as info:
        changelog.check_changelog_policy(NAME, None)
    text = str(info.value)
    assert "cleanup.policy=''" not in text
    assert "no cleanup.policy in the broker's answer" in text and "log.cleanup.policy" in text


# -- ensure_changelog_topic against a fake admin that answers as kafka-python 3.0.12 does ---------
class FakeAdmin:
    """An existing topic's configs as ``{name: (value, source)}``; ``describe_configs`` filters them as
    kafka-python 3 does (its default ``config_filter="modified"`` leaves out the broker's defaults)."""

    BROKER = {"DYNAMIC_DEFAULT_BROKER_CONFIG", "STATIC_BROKER_CONFIG", "DEFAULT_CONFIG"}

    def __init__(self, configs):
        self.configs = configs
        self.altered = []

    def create_topics(self, topics, timeout_ms=None):
        raise TopicAlreadyExistsError(NAME)

    def describe_configs(self, resources, include_synonyms=False, config_filter="modified"):
        (resource,) = resources
        shown = {k: {"value": v, "config_source": src, "read_only": False}
                 for k, (v, src) in self.configs.items() if config_filter == "all" or src not in self.BROKER}
        return {"topic": {resource.name: shown}}

    def alter_configs(self, resources):
        self.altered += [dict(r.configs) for r in resources]
        return {}


def _topic(policy, policy_source, limit="52428800", limit_source="DYNAMIC_TOPIC_CONFIG"):
    return {"cleanup.policy": (policy, policy_source), "max.message.bytes": (limit, limit_source),
            "retention.ms": ("604800000", "DEFAULT_CONFIG")}


def test_ensure_refuses_an_existing_compact_delete_changelog():
    admin = FakeAdmin(_topic("compact,delete", "DYNAMIC_TOPIC_CONFIG"))
    with pytest.raises(ConfigError, match=r"^changelog\.topic: 'g\.model' exists with cleanup\.policy='compact,del"):
        ensure_changelog_topic(admin, NAME, 1, 1, LIMIT)
    assert admin.altered == []  # refused before anything is changed


def test_ensure_names_the_broker_default_policy_instead_of_an_empty_one():
    admin = FakeAdmin(_topic("delete", "DEFAULT_CONFIG"))
    with pytest.raises(ConfigError) as info:
        ensure_changelog_topic(admin, NAME, 1, 1, LIMIT)
    assert "cleanup.policy='delete', the broker's default (log.cleanup.policy, from Kafka's default)" in str(info.value)


def test_ensure_accepts_a_changelog_compacted_by_the_broker_default():
    admin = FakeAdmin(_topic("compact", "DYNAMIC_DEFAULT_BROKER_CONFIG"))
    assert ensure_changelog_topic(admin, NAME, 1, 1, LIMIT) is False
    assert admin.altered == []  # its own max.message.bytes is large enough


@pytest.mark.parametrize("limit, source, altered", [
    ("1048588", "DYNAMIC_TOPIC_CONFIG", True),  # its own, too small
    ("67108864", "STATIC_BROKER_CONFIG", True),  # large enough, but the broker's: set on the topic
    ("67108864", "DYNAMIC_TOPIC_CONFIG", False),
])
def test_ensure_sets_the_record_limit_on_the_topic(limit, source, altered):
    admin = FakeAdmin(_topic("compact", "DYNAMIC_TOPIC_CONFIG", limit, source))
    ensure_changelog_topic(admin, NAME, 1, 1, LIMIT)
    assert admin.altered == ([{"max.message.bytes": str(LIMIT)}] if altered else [])


# -- the table's consumer: no auto-creation, and a changelog deleted under it stops the member ------
class FakeCluster:
    def __init__(self, topic_id):
        self.config = {"allow_auto_create_topics": True}  # what kafka-python 3.0.12 leaves there
        self.id = topic_id

    def topic_id(self, topic):
        return self.id


class FakeConsumer:
    """What ChangelogTable uses of a KafkaConsumer; the topic's id in its metadata is ``_cluster.id``."""

    def __init__(self, **options):
        self.options = options
        self._cluster = FakeCluster(uuid.UUID(int=7))
        self.end_offsets_asked = 0

    def partitions_for_topic(self, topic):
        return {0}

    def assign(self, partitions):
        self.assigned = partitions

    def seek_to_beginning(self, *partitions):
        pass

    def poll(self, timeout_ms=0):
        return {}

    def end_offsets(self, partitions):
        self.end_offsets_asked += 1
        return {tp: 0 for tp in partitions}

    def position(self, tp):
        return 0

    def close(self):
        pass


class Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


@pytest.fixture
def table(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(changelog, "KafkaConsumer", FakeConsumer)
    monkeypatch.setattr(changelog, "time", clock)
    t = ChangelogTable({"bootstrap_servers": "fake:9092"}, NAME, LIMIT)
    t.clock = clock
    return t


def test_the_tables_consumer_creates_no_topic(table):
    assert table.consumer.options["allow_auto_create_topics"] is False
    # kafka-python 3.0.12 does not pass the option on to the metadata its requests are built from
    assert table.consumer._cluster.config["allow_auto_create_topics"] is False
    assert table.topic_id == uuid.UUID(int=7)


def test_a_changelog_created_again_under_the_member_stops_it(table):
    table.poll(0)  # the same topic: nothing to say
    table.consumer._cluster.id = uuid.UUID(int=8)  # deleted, and made again by a client's auto-creation
    with pytest.raises(ConfigError) as info:
        table.poll(0)
    text = str(info.value)
    assert text.startswith("changelog.topic: 'g.model' was deleted while this member ran and created again")
    assert str(uuid.UUID(int=7)) in text and str(uuid.UUID(int=8)) in text and "cleanup.policy delete" in text
    assert "delete the topic" in text and "kafka.group_id" in text


def test_a_changelog_created_again_stops_the_catch_up_before_it_reads(table):
    table.consumer._cluster.id = uuid.UUID(int=8)
    with pytest.raises(ConfigError, match="created again"):
        table.catch_up()
    assert table.consumer.end_offsets_asked == 0


@pytest.mark.parametrize("missing", [None, uuid.UUID(int=0)])  # kafka-python's answers for a topic that is gone
def test_a_changelog_missing_past_the_grace_stops_the_member(table, missing):
    table.consumer._cluster.id = missing
    table.poll(0)  # missing for the first time: a broker that has not caught up may not know it yet
    table.clock.now += changelog.MISSING_GRACE_S - 0.5
    table.poll(0)
    table.clock.now += 0.5
    with pytest.raises(ConfigError) as info:
        table.poll(0)
    text = str(info.value)
    assert text.startswith("changelog.topic: 'g.model' was deleted while this member ran (missing from the "
                           f"cluster's metadata for {changelog.MISSING_GRACE_S:.0f} s): its parts are gone")


def test_a_changelog_that_comes_back_within_the_grace_is_not_missing(table):
    table.consumer._cluster.id = None
    table.poll(0)
    table.consumer._cluster.id = uuid.UUID(int=7)  # the same topic, known again
    table.clock.now += 1.0
    table.poll(0)
    table.consumer._cluster.id = None
    table.clock.now += changelog.MISSING_GRACE_S - 0.5  # a new absence counts from its own start
    table.poll(0)


def test_without_topic_ids_nothing_is_checked(monkeypatch):
    class OldBroker(FakeConsumer):  # before Kafka 2.8: no topic ids in the metadata
        def __init__(self, **options):
            super().__init__(**options)
            self._cluster.id = None

    monkeypatch.setattr(changelog, "KafkaConsumer", OldBroker)
    t = ChangelogTable({"bootstrap_servers": "fake:9092"}, NAME, LIMIT)
    assert t.topic_id is None
    t.consumer._cluster.id = uuid.UUID(int=9)
    t.poll(0)


# -- a partition with no state and a committed offset: records below the log start are said -------
def test_resume_offset_of_a_partition_with_no_state(caplog):
    from connectors.kafka_assignment import resume_offset

    tp = TopicPartition("events", 2)
    with caplog.at_level(logging.WARNING, logger="stream_cl.kafka"):
        assert resume_offset(tp, None, 600, 0) == 0  # nothing deleted: re-learned from its start, silently
        assert not caplog.records
        assert resume_offset(tp, None, 600, 250) == 250
        assert resume_offset(tp, None, 600, 900) == 900  # the committed offset below the log start too
    below, past = (r.stream_cl_fields for r in caplog.records)
    assert [r.getMessage() for r in caplog.records] == ["checkpoint_below_log_start"] * 2
    assert {k: below[k] for k in ("partition", "checkpoint_offset", "log_start", "committed", "not_learned")} == {
        "partition": "events/2", "checkpoint_offset": None, "log_start": 250, "committed": 600,
        "not_learned": "0..249"}
    assert "never_handled" not in below
    assert (past["not_learned"], past["never_handled"]) == ("0..599", "600..899")
    assert below["detail"].startswith("records 0..249 of events/2 were deleted (retention or delete-records) before "
                                      "this member, which has no state of the partition (no checkpoint, no "
                                      "changelog part), could learn them: resuming at 250")
    assert "cleanup.policy=compact" in below["detail"] and "600..899 were never predicted either" in past["detail"]


class FakeGroupConsumer:
    """The consumer a KafkaSource's rebalance callbacks use: committed offsets, log starts, seeks."""

    def __init__(self, committed, starts):
        self.seeks = {}

        async def fetch_committed(partitions, timeout_ms):
            return {tp: SimpleNamespace(offset=o) for tp, o in committed.items() if tp in partitions}

        async def fetch_starts(timestamps, timeout_ms):
            self.looked_up = set(timestamps)
            return {tp: SimpleNamespace(offset=starts[tp]) for tp in timestamps if tp in starts}

        self._coordinator = SimpleNamespace(fetch_committed_offsets_async=fetch_committed)
        self._fetcher = SimpleNamespace(_fetch_offsets_by_times_async=fetch_starts)

    def seek(self, tp, offset):
        self.seeks[tp] = offset

    def group_metadata(self):  # the join's generation, read at the assignment (review r108)
        return ("g", 1, "m", None)

    def seek_to_beginning(self, *partitions):
        for tp in partitions:
            self.seeks[tp] = "beginning"


def _assign(committed, starts, saved):
    from connectors.kafka_assignment import RebalanceCallbacks

    source = RebalanceCallbacks()
    source.consumer = FakeGroupConsumer(committed, starts)
    source.cfg = SimpleNamespace(session_timeout_ms=6000, transaction_timeout_ms=10_000, max_poll_interval_ms=300_000)
    source.hooks = SimpleNamespace(on_assign=lambda partitions: saved, on_wait=lambda: None)
    source.assigned, source.positions, source.replay_until, source.committed = set(), {}, {}, {}
    source.rebalances = 0
    asyncio.run(source._on_assigned(set(committed) | set(starts) | set(saved)))
    return source


def test_a_partition_taken_over_with_no_state_says_what_retention_deleted(caplog):
    lost, whole, fresh, kept = (TopicPartition("events", p) for p in range(4))
    committed = {lost: 600, whole: 400, kept: 500}
    starts = {lost: 300, whole: 0, fresh: 50, kept: 100}
    with caplog.at_level(logging.WARNING, logger="stream_cl.kafka"):
        source = _assign(committed, starts, saved={kept: 450})
    # the no-state partitions with committed offsets are looked up too (a partition with neither is not)
    assert source.consumer.looked_up == {lost, whole, kept}
    # re-learned from the beginning (what remains of it) up to the committed offset, as before
    assert source.consumer.seeks == {lost: "beginning", whole: "beginning", kept: 450}
    assert (source.replay_until[lost], source.replay_until[whole], source.replay_until[kept]) == (600, 400, 500)
    warned = [r.stream_cl_fields for r in caplog.records if r.getMessage() == "checkpoint_below_log_start"]
    fields = ("partition", "checkpoint_offset", "log_start", "committed", "not_learned")
    assert [tuple(w[f] for f in fields) for w in warned] == [("events/0", None, 300, 600, "0..299")]
