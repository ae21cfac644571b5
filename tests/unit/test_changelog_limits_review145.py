"""The changelog topic's record limits at start, without a broker (review r145).

* F1: a refused raise of the changelog topic's ``max.message.bytes`` went unnoticed. kafka-python
  3.0.12's ``alter_configs`` answers a refusal (no AlterConfigs ACL, a managed cluster's policy
  that caps ``max.message.bytes``) with an error string and raises nothing, and
  ``ensure_changelog_topic`` dropped the answer: the member went on sizing its records to
  ``changelog.max_message_bytes``, the topic refused every part above its own limit, and each
  transaction holding one aborted, the member starting over for ever. The start now stops with a
  ConfigError naming both limits where the topic's own is the smaller.
* F2: a ``changelog.max_message_bytes`` above what a broker takes in one request
  (``socket.request.max.bytes``, 100 MiB by default) was accepted: such a record is never written
  (the broker closes the connection, the producer tries again until the transaction times out, the
  member starts over and meets it again). The start now refuses it where the brokers' setting can be
  read. The broker's side is in tests/integration/test_changelog_limits_review145.py.
"""

from __future__ import annotations

import pytest
from kafka.errors import TopicAlreadyExistsError

from connectors.changelog import ensure_changelog_topic
from stream_cl.config import ConfigError

NAME = "g.model"
LIMIT = 33_554_432
SOCKET = 104_857_600  # Kafka's default socket.request.max.bytes
ROOM = 65_536 + 4_096  # the producer's request beyond the largest record, and its header


class Admin:
    """What ensure_changelog_topic asks of kafka-python 3.0.12's admin client, answered as it answers:
    ``alter_configs`` returns ``{"topic": {name: "OK" or the error's text}}`` and raises nothing."""

    def __init__(self, topic_limit="1048588", limit_source="DYNAMIC_TOPIC_CONFIG", alter_answer="OK",
                 socket_limit=SOCKET, exists=True):
        self.topic_limit, self.limit_source, self.alter_answer = topic_limit, limit_source, alter_answer
        self.socket_limit, self.exists = socket_limit, exists
        self.altered, self.created = [], []

    def describe_cluster(self):
        return {"brokers": [{"broker_id": 1, "host": "127.0.0.1", "port": 9092}]}

    def create_topics(self, topics, timeout_ms=None):
        if self.exists:
            raise TopicAlreadyExistsError(NAME)
        self.created += topics

    def describe_configs(self, resources, include_synonyms=False, config_filter="modified"):
        (resource,) = resources
        if resource.resource_type.name == "BROKER":
            return {"broker": {resource.name: {"socket.request.max.bytes": {
                "value": str(self.socket_limit), "config_source": "STATIC_BROKER_CONFIG"}}}}
        return {"topic": {resource.name: {
            "cleanup.policy": {"value": "compact", "config_source": "DYNAMIC_TOPIC_CONFIG"},
            "max.message.bytes": {"value": self.topic_limit, "config_source": self.limit_source}}}}

    def alter_configs(self, resources):
        self.altered += [dict(r.configs) for r in resources]
        return {"topic": {r.name: self.alter_answer for r in resources}}


POLICY = ("[Error 44] PolicyViolationError: Config property 'max.message.bytes' with value '33554432' exceeded max "
          "limit of 8388608.")


def test_a_refused_raise_of_a_smaller_topic_limit_stops_the_start_naming_both_limits():
    admin = Admin(topic_limit="8388608", alter_answer=POLICY)
    with pytest.raises(ConfigError) as info:
        ensure_changelog_topic(admin, NAME, 1, 1, LIMIT)
    text = str(info.value)
    assert text.startswith("changelog.max_message_bytes: the changelog topic 'g.model' takes records of at most "
                           "8388608 bytes"), text
    assert "PolicyViolationError" in text and f"max.message.bytes={LIMIT}" in text
    assert "lower changelog.max_message_bytes to at most 8388608" in text


def test_a_refused_alter_of_a_topic_whose_limit_is_large_enough_is_no_reason_to_stop():
    admin = Admin(topic_limit="67108864", limit_source="STATIC_BROKER_CONFIG",
                  alter_answer="[Error 29] TopicAuthorizationFailedError: ")
    assert ensure_changelog_topic(admin, NAME, 1, 1, LIMIT) is False
    assert admin.altered == [{"max.message.bytes": str(LIMIT)}]


def test_a_raise_the_broker_takes_goes_on_as_before():
    admin = Admin(topic_limit="1048588")
    assert ensure_changelog_topic(admin, NAME, 1, 1, LIMIT) is False
    assert admin.altered == [{"max.message.bytes": str(LIMIT)}]


@pytest.mark.parametrize("exists", [True, False])
def test_a_record_limit_over_the_brokers_request_limit_is_refused(exists):
    wanted = 200 << 20  # a default learner with hash_width = 512 makes a 183 MiB part
    admin = Admin(topic_limit=str(wanted), exists=exists)
    with pytest.raises(ConfigError) as info:
        ensure_changelog_topic(admin, NAME, 1, 1, wanted)
    text = str(info.value)
    assert text.startswith(f"changelog.max_message_bytes: {wanted} bytes does not fit the producer's requests within "
                           f"broker 1's socket.request.max.bytes ({SOCKET} bytes)"), text
    assert f"lower changelog.max_message_bytes to at most {SOCKET - ROOM}" in text
    assert admin.created == [] and admin.altered == []  # refused before the topic is made or changed


def test_the_largest_record_limit_the_brokers_take_is_accepted():
    admin = Admin(topic_limit="0", exists=False)
    assert ensure_changelog_topic(admin, NAME, 1, 1, SOCKET - ROOM) is True


def test_brokers_whose_settings_cannot_be_read_are_not_checked():
    class Denied(Admin):
        def describe_cluster(self):
            raise RuntimeError("ClusterAuthorizationFailedError")

    assert ensure_changelog_topic(Denied(exists=False), NAME, 1, 1, 200 << 20) is True
