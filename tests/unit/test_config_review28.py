"""metrics.stall_timeout_s against the loop's longest idle turn (review r28, F4): a healthy idle daemon must never
answer /healthz 503 "stalled", so the config refuses a stall timeout its own idle polls outlast."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from kafka import TopicPartition

from connectors.http import DaemonStatus
from connectors.kafka import KafkaSource
from connectors.status import DaemonMetrics
from stream_cl.config import ConfigError, KafkaConfig, MappingConfig, load_config_dict, longest_idle_turn_s


LOWER_POLL = ", or lower kafka.poll_timeout_ms (e.g. 500)"
NO_PARTITIONS = " (a member without partitions polls 3000 ms, whatever kafka.poll_timeout_ms)"


@pytest.mark.parametrize("sections, idle_s, least, fix", [
    ({"kafka": {"poll_timeout_ms": 300_000}}, 300, 302, LOWER_POLL),  # "wait for data" on a quiet topic, 120 s
    ({"metrics": {"stall_timeout_s": 2.0}}, 3, 5, NO_PARTITIONS),  # a member without partitions polls 3 s
    ({"kafka": {"poll_timeout_ms": 10_000}, "metrics": {"stall_timeout_s": 11.5}}, 10, 12, LOWER_POLL),
])
def test_a_stall_timeout_an_idle_turn_outlasts_is_refused_naming_both_keys(sections, idle_s, least, fix):
    # review r28 F4: both configs were accepted, and /healthz answered 503 during an idle poll
    with pytest.raises(ConfigError) as e:
        load_config_dict(sections)
    message = str(e.value)
    assert message.startswith("metrics.stall_timeout_s: must be at least 2 s above the longest idle loop turn, "
                              f"max(kafka.poll_timeout_ms, 3000 ms) = {idle_s} s (got ")
    assert message.endswith(f"raise metrics.stall_timeout_s to {least} or more{fix}")


@pytest.mark.parametrize("sections", [
    {},  # the defaults: 120 s against 3 s
    {"metrics": {"stall_timeout_s": 5}},  # the least with the default poll timeout
    {"kafka": {"poll_timeout_ms": 300_000}, "metrics": {"stall_timeout_s": 302}},
    {"kafka": {"poll_timeout_ms": 300_000}, "metrics": {"enabled": False}},  # no /healthz: nothing to refuse
    {"source": {"kind": "kafka"}, "kafka": {"topics": ["events"], "poll_timeout_ms": 200}},
])
def test_a_stall_timeout_above_the_longest_idle_turn_is_accepted(sections):
    load_config_dict(sections)


def test_replace_checks_the_rule_too():
    config = load_config_dict({"metrics": {"stall_timeout_s": 10}})
    with pytest.raises(ConfigError, match=re.escape("metrics.stall_timeout_s: must be at least 2 s above")):
        config.replace("kafka", poll_timeout_ms=9_000)
    assert config.replace("kafka", poll_timeout_ms=8_000).kafka.poll_timeout_ms == 8_000


class IdleConsumer:
    """A consumer whose polls return nothing; keeps each poll's timeout."""

    def __init__(self):
        self.timeouts: list[int] = []

    def subscribe(self, topics=(), pattern=None, listener=None):
        pass

    def partitions_for_topic(self, topic):
        return {0}

    def poll(self, timeout_ms=0, max_records=500):
        self.timeouts.append(timeout_ms)
        return {}

    def group_metadata(self):
        return ("g", 1, "m", None)

    def close(self, autocommit=True):
        pass


@pytest.mark.parametrize("poll_timeout_ms", [200, 500, 3_000, 300_000])
def test_the_sources_idle_polls_last_at_most_the_longest_idle_turn(poll_timeout_ms):
    # the bound the config checks is the daemon's own: a member with partitions polls kafka.poll_timeout_ms, one
    # without (beyond the partition count, rejoining) at least 3 s
    cfg = KafkaConfig(topics=["events"], poll_timeout_ms=poll_timeout_ms)
    consumer = IdleConsumer()
    source = KafkaSource(cfg, MappingConfig(), consumer=consumer)
    source.poll(100)  # no partitions
    source.assigned = {TopicPartition("events", 0)}
    source.poll(100)
    assert consumer.timeouts == [longest_idle_turn_s(cfg) * 1000, poll_timeout_ms]


def test_with_the_least_stall_timeout_accepted_an_idle_daemon_stays_healthy():
    config = load_config_dict({"metrics": {"stall_timeout_s": 5}})
    clock = SimpleNamespace(t=1000.0)
    status = DaemonStatus(config.metrics.stall_timeout_s, clock=lambda: clock.t)
    m = DaemonMetrics()
    m.state, m.heartbeat = "running", clock.t  # the loop beat, then went into an idle poll without partitions
    status.attach(SimpleNamespace(metrics=m, source=SimpleNamespace(assigned=set())))
    clock.t += longest_idle_turn_s(config.kafka)  # the poll returns now
    ok, body = status.health()
    assert ok and body["status"] == "ok"
