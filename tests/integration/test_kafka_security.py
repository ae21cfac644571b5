"""The daemon's security settings against the dev broker's SASL and SSL listeners.

deploy/kafka/dev-broker.sh opens a SASL_PLAINTEXT listener for the test user "alice"
with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, and an SSL listener with a self-signed
certificate for 127.0.0.1. Every client of the daemon connects there: the consumer group
(fetches and commits), the predictions publisher process and the dead-letter producer;
the SASL password comes from the environment (``*_env``), TLS is verified against the
broker's CA file with host-name checking on.
"""

from __future__ import annotations

import os
import random

import pytest
from daemon_kit import event

SASL_USER, SASL_PASSWORD = "alice", "alice-secret"  # the dev broker's test user


@pytest.fixture(scope="session")
def kafka_sasl_bootstrap() -> str:
    bootstrap = os.environ.get("STREAM_CL_KAFKA_SASL_BOOTSTRAP", "").strip()
    if not bootstrap:
        pytest.fail("STREAM_CL_KAFKA_SASL_BOOTSTRAP is not set; export "
                    "STREAM_CL_KAFKA_SASL_BOOTSTRAP=$(deploy/kafka/dev-broker.sh sasl-bootstrap)", pytrace=False)
    return bootstrap


@pytest.fixture(scope="session")
def kafka_ssl() -> dict:
    bootstrap = os.environ.get("STREAM_CL_KAFKA_SSL_BOOTSTRAP", "").strip()
    cafile = os.environ.get("STREAM_CL_KAFKA_SSL_CAFILE", "").strip()
    if not bootstrap or not cafile:
        pytest.fail("STREAM_CL_KAFKA_SSL_BOOTSTRAP / STREAM_CL_KAFKA_SSL_CAFILE are not set; export them from "
                    "deploy/kafka/dev-broker.sh ssl-bootstrap and ssl-cafile", pytrace=False)
    return {"bootstrap_servers": bootstrap, "security_protocol": "SSL", "ssl_cafile": cafile,
            "ssl_check_hostname": True}


def _sasl(bootstrap: str, mechanism: str) -> dict:
    return {"bootstrap_servers": bootstrap, "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
            "sasl_plain_username": SASL_USER, "sasl_plain_password_env": "IT_SASL_PASSWORD"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "TLS"])
def test_the_daemon_consumes_commits_and_publishes_over_sasl_or_tls(kafka_kit, mechanism, monkeypatch, request):
    rng = random.Random(3)
    name = f"sec-{mechanism.lower()}"
    if mechanism == "TLS":
        security = request.getfixturevalue("kafka_ssl")
    else:
        security = _sasl(request.getfixturevalue("kafka_sasl_bootstrap"), mechanism)
    events_topic, preds_topic, dead_topic = (kafka_kit.topic(f"{name}{suffix}") for suffix in ("", "-pred", "-dead"))
    docs = [event(i, rng) for i in range(500)]
    kafka_kit.produce(events_topic, [*((d["id"], d) for d in docs), ("bad", b"{not json")])
    monkeypatch.setenv("IT_SASL_PASSWORD", SASL_PASSWORD)  # the daemon reads it at start
    config = kafka_kit.config(name, [events_topic], kafka={
        **security, "predictions_topic": preds_topic, "dead_letter_topic": dead_topic,
        "stop_at_end": True})
    daemon = kafka_kit.start(config)
    assert daemon.wait(timeout=120) == 0, daemon.log()[-3000:]

    preds = kafka_kit.reader(preds_topic)  # the kit's readers use the PLAINTEXT listener
    preds.until(lambda recs: len(recs) >= 500, 60, "500 predictions")
    assert sorted(r.key.decode() for r in preds.records) == sorted(d["id"] for d in docs)
    dead = kafka_kit.reader(dead_topic)
    dead.until(lambda recs: len(recs) >= 1, 60, "the dead letter")
    assert dead.records[0].value == b"{not json"
    assert dict(dead.records[0].headers)["stream-cl.reason"] == b"malformed"
    assert kafka_kit.committed(f"it-{name}-{kafka_kit.tag}", events_topic) == {0: 501}


def test_rejected_credentials_stop_the_daemon_with_the_settings_to_check(kafka_kit, kafka_sasl_bootstrap, monkeypatch):
    events_topic = kafka_kit.topic("sasl-wrong")
    monkeypatch.setenv("IT_SASL_PASSWORD", "not-the-password")
    config = kafka_kit.config("sasl-wrong", [events_topic], kafka={
        **_sasl(kafka_sasl_bootstrap, "SCRAM-SHA-256"), "predictions_topic": kafka_kit.topic("sasl-wrong-pred")})
    daemon = kafka_kit.start(config)
    assert daemon.wait(timeout=120) == 1  # kafka-python gives up bootstrapping after about 30 s
    log = daemon.log()
    assert "daemon could not start" in log and "kafka.sasl_mechanism" in log and "sasl_plain_password_env" in log
    assert "not-the-password" not in log  # the secret never reaches the log
    assert kafka_kit.committed(f"it-sasl-wrong-{kafka_kit.tag}", events_topic) == {}


def test_the_bootstrap_hint_names_the_settings_of_the_protocol_in_use():
    from connectors.kafka import bootstrap_hint
    from stream_cl.config import KafkaConfig

    unreachable = RuntimeError("KafkaTimeoutError: Unable to bootstrap from ['b:9093']")
    ssl = bootstrap_hint(unreachable, KafkaConfig(bootstrap_servers="b:9093", security_protocol="SSL"))
    assert "kafka.ssl_cafile" in ssl and "sasl" not in ssl
    sasl_ssl = bootstrap_hint(unreachable, KafkaConfig(bootstrap_servers="b:9093", security_protocol="SASL_SSL",
                                                       sasl_mechanism="PLAIN"))
    assert "kafka.ssl_cafile" in sasl_ssl and "kafka.sasl_mechanism" in sasl_ssl
    plain = bootstrap_hint(unreachable, KafkaConfig(bootstrap_servers="b:9093"))
    assert "listener there is PLAINTEXT" in plain
    assert bootstrap_hint(ValueError("something else"), KafkaConfig()) is None
