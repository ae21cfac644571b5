"""The Kafka daemon's start-up checks that need no broker: topics it must not consume, the static
member id from the environment, and how a configuration error at start is logged (one ``failed``
line, exit 2)."""

from __future__ import annotations

import json
import logging
import threading
from types import SimpleNamespace

import pytest

import connectors.daemon as daemon_module
import connectors.daemon_cli as daemon_cli
import connectors.daemon_exits as daemon_exits
import connectors.daemon_run as daemon_run
import connectors.kafka as kafka_module
from connectors.kafka import KafkaSource
from connectors.kafka_assignment import WAIT_TRY_MS, CommittedOffsetsUnreadable
from connectors.kafka_settings import group_instance_id, transactional_id
from connectors.logs import JsonFormatter, teardown_logging
from stream_cl.config import ConfigError, KafkaConfig, MappingConfig, load_config_dict, to_toml
from stream_cl.config.daemon_schema import longest_idle_turn_s


class _Consumer:
    """Stands in for kafka-python's consumer: records its options and subscription, connects nowhere."""

    def __init__(self, **options):
        self.options = options

    def subscribe(self, topics=(), pattern=None, listener=None):
        self.pattern = pattern


# -- the daemon's own changelog is an output: never consumed --------------------------------
@pytest.mark.parametrize("kafka, key", [
    ({"topic_pattern": "events-.*"}, "kafka.topic_pattern"),
    ({"topics": ["events-learner.model"]}, "kafka.topics"),
])
def test_a_subscription_that_takes_in_the_changelog_topic_is_refused(kafka, key):
    # found by review: 'events-.*' with group 'events-learner' consumed its own changelog, each write a dead letter
    cfg = KafkaConfig(group_id="events-learner", **kafka)
    with pytest.raises(ConfigError, match=rf"^{key}: 'events-learner\.model' is both consumed .*and produced to "
                                          r"\(changelog\.topic.*\); the daemon would learn from its own output"):
        KafkaSource(cfg, MappingConfig(), consumer=_Consumer(), changelog_topic="events-learner.model")


def test_a_pattern_that_spares_the_changelog_topic_or_no_changelog_is_accepted():
    source = KafkaSource(KafkaConfig(topic_pattern=r"events-[^.]*$"), MappingConfig(), consumer=_Consumer(),
                         changelog_topic="events-learner.model")
    assert source.consumer.pattern == r"events-[^.]*$"
    KafkaSource(KafkaConfig(topic_pattern="events-.*"), MappingConfig(), consumer=_Consumer())  # no changelog written


def test_a_start_refused_for_a_pattern_matching_the_changelog_creates_no_changelog_topic(monkeypatch, tmp_path):
    # left over by the last review: the refusal came from the source, after the changelog topic was created
    import kafka.admin

    made = []
    monkeypatch.setattr(kafka.admin, "KafkaAdminClient", lambda **options: made.append(options))
    config = load_config_dict({"kafka": {"group_id": "events-learner", "topic_pattern": "events-.*"},
                               "checkpoint": {"dir": str(tmp_path)}})
    with pytest.raises(ConfigError, match=r"^kafka\.topic_pattern: 'events-learner\.model' is both consumed"):
        daemon_module.Daemon.from_config(config)
    assert made == []  # no admin client: no topic made


# -- kafka.group_instance_id_env: one member id per pod from one shared config ----------------
def test_the_static_member_id_comes_from_the_variable_group_instance_id_env_names(monkeypatch, tmp_path):
    monkeypatch.setenv("POD_NAME", "stream-cl-2")
    monkeypatch.setattr(kafka_module, "KafkaConsumer", _Consumer)
    config = load_config_dict({"kafka": {"group_id": "g", "topic_pattern": "events", "group_instance_id_env": "POD_NAME"},
                               "checkpoint": {"dir": str(tmp_path)}})
    assert group_instance_id(config.kafka) == "stream-cl-2"
    assert transactional_id(config) == "stream-cl.g.stream-cl-2"  # unique per pod, so replicas never fence each other
    source = KafkaSource(config.kafka, MappingConfig())
    assert source.consumer.options["group_instance_id"] == "stream-cl-2"
    assert group_instance_id(KafkaConfig(group_instance_id="fixed")) == "fixed"
    assert group_instance_id(KafkaConfig()) == ""


@pytest.mark.parametrize("value, said", [(None, "is not set"), ("", "is empty")])
def test_a_missing_or_empty_group_instance_id_variable_is_a_config_error(monkeypatch, value, said):
    if value is None:
        monkeypatch.delenv("POD_NAME", raising=False)
    else:
        monkeypatch.setenv("POD_NAME", value)
    with pytest.raises(ConfigError, match=rf"^kafka\.group_instance_id_env: environment variable 'POD_NAME' {said}; "):
        group_instance_id(KafkaConfig(group_instance_id_env="POD_NAME"))


def test_group_instance_id_and_its_env_form_are_not_both_set():
    with pytest.raises(ConfigError, match="kafka.group_instance_id_env: both kafka.group_instance_id and "
                                          "kafka.group_instance_id_env are set; keep one"):
        KafkaConfig(group_instance_id="a", group_instance_id_env="POD_NAME")


# -- a configuration error at start: one `failed` line with exit_code 2 -----------------------
def _failed_lines(records) -> list[dict]:
    return [json.loads(JsonFormatter().format(r)) for r in records if r.levelno >= logging.ERROR]


def test_a_config_error_met_while_the_daemon_is_built_is_one_failed_line(tmp_path, monkeypatch, caplog):
    # found by review: logged as log.error("%s", e), so `event` was the message, and alerts on event="failed" missed it
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    config = load_config_dict({"kafka": {"topics": ["events"], "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                                         "sasl_plain_username": "alice", "sasl_plain_password_env": "NOT_SET_ANYWHERE"},
                               "checkpoint": {"dir": str(tmp_path / "ckpt")}})
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):  # raised before any client connects
        code, _ = daemon_run._build_and_run_once(config, threading.Event(), None, None, None)
    assert code == daemon_exits.EXIT_CONFIG == 2
    (line,) = _failed_lines(caplog.records)
    assert line["event"] == "failed" and line["exit_code"] == 2
    assert line["detail"].startswith("config error: kafka.sasl_plain_password_env: environment variable 'NOT_SET_ANYWHERE'")


@pytest.mark.parametrize("sections, said", [
    ({"kafka": {"topics": ["events"]}, "model": {"kind": "nope"}}, "config error: model.kind"),
    ({"kafka": {"topics": ["events"]}, "run": {"report": "run.json"}}, "config error: run.report: "),
])
def test_a_config_the_daemon_entry_point_refuses_is_one_failed_line(tmp_path, capsys, sections, said):
    path = tmp_path / "d.toml"
    # (no broker, no port: a check that let it through would fail fast, not hang the suite)
    unreachable = {"metrics": {"enabled": False}, "kafka": {**sections["kafka"], "bootstrap_timeout_ms": 1000},
                   "checkpoint": {"dir": str(tmp_path / "ckpt")}}
    path.write_text(to_toml({"source": {"kind": "kafka"}, **sections, **unreachable}))
    try:
        assert daemon_cli.main(["--config", str(path), "--log-format", "json"]) == 2
    finally:
        teardown_logging()
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    (line,) = [x for x in lines if x["level"] == "ERROR"]
    assert line["event"] == "failed" and line["exit_code"] == 2 and line["detail"].startswith(said), line


def test_the_statefulset_gives_each_pod_its_name_as_the_variable_the_example_config_names():
    import re
    from pathlib import Path

    import yaml

    deploy = Path(__file__).resolve().parents[2] / "deploy"
    docs = list(yaml.safe_load_all((deploy / "k8s" / "statefulset.yaml").read_text()))
    (container,) = [d for d in docs if d["kind"] == "StatefulSet"][0]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    (named,) = re.findall(r'^# group_instance_id_env = "(\w+)"$', (deploy / "config" / "daemon.toml").read_text(), re.M)
    assert env[named]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


# -- committed offsets held by a departed member's open transaction ----------------------------
class _Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _fetch_timing_out(clock, times: int, answer):
    """kafka-python's fetch of committed offsets, answered UNSTABLE_OFFSET_COMMIT until it times
    out ``times`` times (as while a dead member's transaction holds offsets), then ``answer``."""
    from kafka.errors import KafkaTimeoutError

    calls = []

    async def fetch(partitions, timeout_ms):
        calls.append(timeout_ms)
        if len(calls) <= times:
            clock.t += timeout_ms / 1000.0
            raise KafkaTimeoutError("Timeout waiting for future")
        return answer

    return fetch, calls


def _assigned_source(monkeypatch, hooks=None, **kafka):
    clock = _Clock()
    monkeypatch.setattr(kafka_module.time, "monotonic", clock)
    source = KafkaSource(KafkaConfig(topic_pattern="events$", **kafka), MappingConfig(), consumer=_Consumer(),
                         hooks=hooks)
    return source, clock


def test_offsets_held_by_an_open_transaction_are_waited_for_past_the_session_timeout(monkeypatch, caplog):
    # found by review: a member that took over partitions whose dead owner had sent offsets to a
    # transaction it never committed gave up at session_timeout_ms (45 s) and exited 1; the broker
    # answers UNSTABLE_OFFSET_COMMIT until it aborts that transaction, transaction_timeout_ms (60 s) later
    import asyncio

    from kafka import TopicPartition

    source, clock = _assigned_source(monkeypatch)
    tp = TopicPartition("events", 0)
    fetch, calls = _fetch_timing_out(clock, times=15, answer={tp: "om"})
    with caplog.at_level(logging.WARNING, logger="stream_cl.kafka"):
        assert asyncio.run(source._fetch_committed(fetch, {tp})) == {tp: "om"}
    assert calls == [3_000] * 16  # tries of 3 s (WAIT_TRY_MS), past the session timeout (45 s), up to 60 s + 20 s
    # one line at the first try that timed out (review r120 F9-2: 45 s of silence before), then one a session timeout
    lines = [r for r in caplog.records]
    assert [r.getMessage() for r in lines] == ["committed_offsets_waiting"] * 2
    assert [vars(r)["stream_cl_fields"]["waited_s"] for r in lines] == [3.0, 45.0]


def test_offsets_never_readable_fail_after_the_wait_naming_the_cause(monkeypatch, caplog):
    import asyncio

    from kafka import TopicPartition

    source, clock = _assigned_source(monkeypatch, session_timeout_ms=6_000, transaction_timeout_ms=10_000)
    fetch, calls = _fetch_timing_out(clock, times=10**6, answer=None)
    with caplog.at_level(logging.WARNING, logger="stream_cl.kafka"), pytest.raises(CommittedOffsetsUnreadable):
        asyncio.run(source._fetch_committed(fetch, {TopicPartition("events", 0)}))
    assert sum(calls) == 30_000 and clock.t == 1030.0  # 10 s + 20 s, in steps of the session timeout
    events = [r.getMessage() for r in caplog.records]
    assert events == ["committed_offsets_waiting"] * 5 + ["committed_offsets_unreadable"]  # at 3 s, then each 6 s
    failed = caplog.records[-1]
    assert failed.levelno == logging.ERROR and "kafka.transaction_timeout_ms (10000 ms)" in json.dumps(vars(failed), default=str)


def test_the_wait_stays_within_the_poll_interval(monkeypatch):
    import asyncio

    from kafka import TopicPartition

    source, clock = _assigned_source(monkeypatch, max_poll_interval_ms=300_000)
    # a departed member configured with a longer transaction than this one (the config refuses one that
    # does not fit this member's own poll interval: review r98); the wait still stops within the interval
    object.__setattr__(source.cfg, "transaction_timeout_ms", 900_000)
    fetch, calls = _fetch_timing_out(clock, times=10**6, answer=None)
    with pytest.raises(CommittedOffsetsUnreadable):
        asyncio.run(source._fetch_committed(fetch, {TopicPartition("events", 0)}))
    assert sum(calls) == 270_000  # 90% of the poll interval: the group would drop a member waiting longer


def test_a_member_waiting_for_held_offsets_stays_alive_for_healthz(monkeypatch):
    # found by review: the wait (up to transaction_timeout_ms + 20 s) runs inside poll(), where the
    # loop's heartbeat stood still: past metrics.stall_timeout_s (120 s) /healthz said "stalled" and a
    # liveness probe would have killed a member that was rightly waiting
    import asyncio

    from kafka import TopicPartition

    from connectors.daemon import Daemon

    beats = []
    hooks = SimpleNamespace(on_wait=lambda: beats.append(kafka_module.time.monotonic()))
    source, clock = _assigned_source(monkeypatch, hooks=hooks, transaction_timeout_ms=300_000,
                                     max_poll_interval_ms=400_000)
    tp = TopicPartition("events", 0)
    fetch, calls = _fetch_timing_out(clock, times=5, answer={tp: "om"})
    assert asyncio.run(source._fetch_committed(fetch, {tp})) == {tp: "om"}
    # at each try of 3 s (review r80: it was each session timeout, 45 s, longer than a stall_timeout_s the
    # config takes, whose least is the longest idle turn, at least 3 s, + 2 s)
    # and once before the first try: the poll() that runs the callback spent some of the budget already
    assert beats == [1000.0, 1003.0, 1006.0, 1009.0, 1012.0, 1015.0]
    # a try is never longer than the shortest idle turn the least stall_timeout_s (that turn + 2 s) allows for
    assert WAIT_TRY_MS <= 1000 * longest_idle_turn_s(KafkaConfig(poll_timeout_ms=1))
    metrics = SimpleNamespace(beat=lambda: beats.append("beat"))
    Daemon.on_wait(SimpleNamespace(metrics=metrics))  # the daemon's hook: the loop's heartbeat
    assert beats[-1] == "beat"
