"""The daemon's security settings against the dev broker's secured listeners.

deploy/kafka/dev-broker.sh listens with SASL_PLAINTEXT (test user "alice": PLAIN,
SCRAM-SHA-256, SCRAM-SHA-512), SSL (a self-signed certificate for 127.0.0.1), SASL_SSL,
and SSL requiring a client certificate. Every client of the daemon connects there: the
consumer group (fetches and commits), the predictions publisher process and the
dead-letter producer. Secrets come from the environment (``*_env``); TLS is verified
against the broker's CA file with host-name checking on.
"""

from __future__ import annotations

import os
import random
import socket
import ssl

import pytest
from daemon_kit import event

SASL_USER, SASL_PASSWORD = "alice", "alice-secret"  # the dev broker's test user


ENV = ("STREAM_CL_KAFKA_SASL_BOOTSTRAP", "STREAM_CL_KAFKA_SSL_BOOTSTRAP", "STREAM_CL_KAFKA_SASL_SSL_BOOTSTRAP",
       "STREAM_CL_KAFKA_MTLS_BOOTSTRAP", "STREAM_CL_KAFKA_SSL_CAFILE", "STREAM_CL_KAFKA_SSL_CERTFILE",
       "STREAM_CL_KAFKA_SSL_KEYFILE", "STREAM_CL_KAFKA_SSL_KEY_PASSWORD")


@pytest.fixture(scope="session")
def broker_security() -> dict:
    """The dev broker's secured listeners and TLS files (``dev-broker.sh env``)."""
    missing = [k for k in ENV if not os.environ.get(k, "").strip()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not set; run: eval \"$(bash deploy/kafka/dev-broker.sh env)\"", pytrace=False)
    return {k.removeprefix("STREAM_CL_KAFKA_").lower(): os.environ[k].strip() for k in ENV}


@pytest.fixture(scope="session")
def kafka_sasl_bootstrap(broker_security) -> str:
    return broker_security["sasl_bootstrap"]


def _sasl(bootstrap: str, mechanism: str, protocol: str = "SASL_PLAINTEXT") -> dict:
    return {"bootstrap_servers": bootstrap, "security_protocol": protocol, "sasl_mechanism": mechanism,
            "sasl_plain_username": SASL_USER, "sasl_plain_password_env": "IT_SASL_PASSWORD"}


def _security(case: str, b: dict) -> dict:
    """[kafka] settings of one case: the password and the key's passphrase come from the environment."""
    tls = {"ssl_cafile": b["ssl_cafile"], "ssl_check_hostname": True}
    if case == "TLS":
        return {"bootstrap_servers": b["ssl_bootstrap"], "security_protocol": "SSL", **tls}
    if case == "SASL_SSL":
        return {**_sasl(b["sasl_ssl_bootstrap"], "SCRAM-SHA-512", "SASL_SSL"), **tls}
    if case == "mutual TLS":
        return {"bootstrap_servers": b["mtls_bootstrap"], "security_protocol": "SSL", **tls,
                "ssl_certfile": b["ssl_certfile"], "ssl_keyfile": b["ssl_keyfile"], "ssl_password_env": "IT_KEY_PASSWORD"}
    return _sasl(b["sasl_bootstrap"], case)


@pytest.mark.parametrize("case", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "TLS", "SASL_SSL", "mutual TLS"])
def test_the_daemon_consumes_commits_and_publishes_over_each_security_setting(kafka_kit, broker_security, case,
                                                                               monkeypatch):
    rng = random.Random(3)
    name = "sec-" + case.lower().replace(" ", "-").replace("_", "-")
    events_topic, preds_topic, dead_topic = (kafka_kit.topic(f"{name}{suffix}") for suffix in ("", "-pred", "-dead"))
    docs = [event(i, rng) for i in range(500)]
    kafka_kit.produce(events_topic, [*((d["id"], d) for d in docs), ("bad", b"{not json")])
    monkeypatch.setenv("IT_SASL_PASSWORD", SASL_PASSWORD)  # the daemon reads them at start
    monkeypatch.setenv("IT_KEY_PASSWORD", broker_security["ssl_key_password"])
    config = kafka_kit.config(name, [events_topic], kafka={
        **_security(case, broker_security), "predictions_topic": preds_topic, "dead_letter_topic": dead_topic,
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


def test_the_mutual_tls_listener_refuses_a_client_without_a_certificate(broker_security):
    """Else the mutual-TLS case above would not show that the client certificate was sent."""
    host, port = broker_security["mtls_bootstrap"].rsplit(":", 1)
    context = ssl.create_default_context(cafile=broker_security["ssl_cafile"])
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            # TLS 1.3: the broker checks the client's (missing) certificate after the
            # handshake; its alert arrives on the first read. (A listener that does not
            # require one just closes the connection on these 4 bytes: no SSLError.)
            with pytest.raises(ssl.SSLError, match="(?i)certificate"):
                tls.sendall(b"\x00\x00\x00\x00")
                tls.recv(1)


def test_rejected_credentials_stop_the_daemon_with_the_settings_to_check(kafka_kit, kafka_sasl_bootstrap, monkeypatch):
    events_topic = kafka_kit.topic("sasl-wrong")
    monkeypatch.setenv("IT_SASL_PASSWORD", "not-the-password")
    config = kafka_kit.config("sasl-wrong", [events_topic], kafka={
        **_sasl(kafka_sasl_bootstrap, "SCRAM-SHA-256"), "predictions_topic": kafka_kit.topic("sasl-wrong-pred"),
        "bootstrap_timeout_ms": 4000})
    daemon = kafka_kit.start(config)
    assert daemon.wait(timeout=120) == 1  # kafka-python gives up bootstrapping after kafka.bootstrap_timeout_ms
    log = daemon.log()
    assert "daemon could not start" in log and "kafka.sasl_mechanism" in log and "sasl_plain_password_env" in log
    assert "not-the-password" not in log  # the secret never reaches the log
    assert kafka_kit.committed(f"it-sasl-wrong-{kafka_kit.tag}", events_topic) == {}


def test_the_bootstrap_hint_names_the_settings_of_the_protocol_in_use():
    from connectors.kafka_bootstrap import bootstrap_hint
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
