"""What a user reads when the daemon starts: our lines, once; kafka-python's start-up chatter held back."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys

from daemon_kit import REPO, event

from stream_cl.config import to_toml


def _lines(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def test_no_broker_is_one_clear_error_without_a_traceback(tmp_path):
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "d.toml"
    config.write_text(to_toml({
        # kafka-python retries for bootstrap_timeout_ms (30 s by default) before giving up
        "kafka": {"bootstrap_servers": f"127.0.0.1:{port}", "topics": ["events"], "predictions_topic": "predictions",
                  "bootstrap_timeout_ms": 4000},
        "checkpoint": {"dir": str(tmp_path / "ckpt")}, "metrics": {"port": 0}}))
    done = subprocess.run([sys.executable, "-m", "connectors.daemon", "--config", str(config), "--log-format", "json"],
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-3000:]
    assert "Traceback" not in out
    lines = _lines(out)
    assert len(lines) == len(out.strip().splitlines())  # every line is a JSON log line
    errors = [d for d in lines if d["level"] == "ERROR"]
    assert len(errors) == 1 and errors[0]["logger"] == "stream_cl.daemon", out[-3000:]
    assert f"no broker of kafka.bootstrap_servers = '127.0.0.1:{port}'" in errors[0]["detail"]
    assert "ECONNREFUSED" in errors[0].get("client_error", "")  # the cause kafka-python logged, in our line
    assert not [d for d in lines if d["logger"].startswith("kafka")]  # its retries were held back


def test_start_up_on_existing_topics_is_quiet_and_assigns_at_once(kafka_kit):
    rng = random.Random(16)
    topic = kafka_kit.topic("quiet", partitions=3)
    kafka_kit.produce(topic, ((str(i), event(i, rng)) for i in range(600)))
    # a label field that no event has (they carry "y"): said once, naming the key and the fields seen, of all 600
    # events (fewer than the census's sample of 1,000: judged when the daemon stops, here at the topic's end)
    config = kafka_kit.config("quiet", [topic], kafka={"stop_at_end": True}, mapping={"label": "class"})
    daemon = kafka_kit.start(config)
    assert daemon.wait(timeout=120) == 0, daemon.log()[-3000:]
    lines = _lines(daemon.log())
    assert not [d for d in lines if d["logger"].startswith("kafka")], daemon.log()[-3000:]
    assignments = [d for d in lines if d["event"] == "assignment"]
    assert len(assignments) == 1 and len(assignments[0]["partitions"]) == 3  # no empty first assignment
    warnings = [d for d in lines if d["event"] == "mapping_warning"]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"
    assert warnings[0]["detail"].startswith("mapping.label: field 'class' was in none of the first 600 events "
                                            "(fields seen: id, x, y)")
    assert not [d for d in lines if d["event"] == "topic_missing"]


def _refused_at_start(kafka_kit, name: str, events: str, labels: str) -> str:
    """The one ERROR line of a daemon with labels topic ``labels`` beside ``events``, which must
    stop with a configuration error (exit 2) before anything is consumed."""
    return _config_error_at_start(kafka_kit, kafka_kit.config(name, [events], kafka={"labels_topic": labels}))


def _config_error_at_start(kafka_kit, config) -> str:
    """The message of the one `failed` line (exit_code 2) of a daemon that must stop with a
    configuration error (exit 2) before anything is consumed."""
    daemon = kafka_kit.start(config)
    assert daemon.wait(timeout=120) == 2, daemon.log()[-3000:]
    error = [d for d in _lines(daemon.log()) if d["level"] == "ERROR"]
    assert len(error) == 1 and error[0]["event"] == "failed" and error[0]["exit_code"] == 2, error
    assert error[0]["detail"].startswith("config error: ")
    return error[0]["detail"].removeprefix("config error: ")


def test_a_labels_topic_not_co_partitioned_with_the_events_is_refused(kafka_kit):
    events, labels = kafka_kit.topic("copart", partitions=4), kafka_kit.topic("copart-labels", partitions=2)
    error = _refused_at_start(kafka_kit, "copart", events, labels)
    assert error.startswith(f"kafka.labels_topic: '{labels}' has 2 partitions and '{events}' 4: a label must reach the member")
    assert "--partitions 4" in error


def test_a_missing_labels_topic_beside_a_partitioned_events_topic_is_refused(kafka_kit):
    # created on first use with the broker's default count (1), it silently lost the labels of every
    # event outside partition 0: they never joined
    events = kafka_kit.topic("nolabels", partitions=2)
    labels = f"{events}-labels"
    error = _refused_at_start(kafka_kit, "nolabels", events, labels)
    assert error.startswith(f"kafka.labels_topic: '{labels}' does not exist and '{events}' has 2 partitions")
    assert "--partitions 2" in error


def test_a_topic_pattern_that_matches_the_daemons_own_changelog_topic_is_refused(kafka_kit):
    # found by review: "events-.*" beside the group "events-learner" took in the group's own changelog
    # ("<group_id>.model"): each changelog record came back as a malformed dead letter
    rng = random.Random(19)
    events = kafka_kit.topic("own-changelog")
    kafka_kit.produce(events, ((str(i), event(i, rng)) for i in range(200)))
    group = f"{events}-learner"
    kafka_kit.topics.append(f"{group}.model")  # created at start, before the check: removed with the test's topics
    pattern = f"{events}.*"
    config = kafka_kit.config("own-changelog", [], kafka={"topic_pattern": pattern, "group_id": group, "stop_at_end": True})
    error = _config_error_at_start(kafka_kit, config)
    assert error.startswith(f"kafka.topic_pattern: '{group}.model' is both consumed (it matches '{pattern}') and "
                            "produced to (changelog.topic"), error
