"""Review 30 (F4): a password variable that is set but empty (a Kubernetes Secret or an environment
file mounted empty) is a config error naming the variable and the key that names it. It was read as
no password: with SASL the error blamed ``kafka.sasl_plain_username`` and asked to set keys that were
set; with an encrypted TLS key it asked to set ``kafka.ssl_password_env``, which was set. An empty
``group_instance_id_env`` variable already got such an error.

The TLS files are made with ``openssl``, as in test_secrets_review24.py.
"""

from __future__ import annotations

import json
import logging
import threading

import pytest

import connectors.daemon_run as daemon_run
from connectors.kafka_settings import check_kafka_config, client_options
from connectors.logs import JsonFormatter
from stream_cl.config import ConfigError, KafkaConfig, load_config_dict

from client_kit import no_clients  # noqa: F401 -- a fixture (tests/unit/client_kit.py)
from pem_kit import make_pem, tls  # tests/unit/pem_kit.py

KEY_PASSWORD = "key-pass-30c1"


def _sasl(mechanism="PLAIN", **kafka) -> KafkaConfig:
    return KafkaConfig(bootstrap_servers="127.0.0.1:1", topics=["events"], security_protocol="SASL_PLAINTEXT",
                       sasl_mechanism=mechanism, **kafka)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_an_empty_password_variable_is_named_with_its_key(monkeypatch, mechanism):
    monkeypatch.setenv("R30_KAFKA_PASSWORD", "")
    cfg = _sasl(mechanism, sasl_plain_username="alice", sasl_plain_password_env="R30_KAFKA_PASSWORD")
    with pytest.raises(ConfigError) as e:
        client_options(cfg)
    assert str(e.value) == (f"kafka.sasl_plain_password_env: environment variable 'R30_KAFKA_PASSWORD' is empty, and "
                            f"{mechanism} needs a password; put the password in it")


def test_an_empty_username_variable_is_named_with_its_key(monkeypatch):
    monkeypatch.setenv("R30_KAFKA_USER", "")
    monkeypatch.setenv("R30_KAFKA_PASSWORD", "pw-30a7")
    with pytest.raises(ConfigError, match=r"^kafka\.sasl_plain_username_env: environment variable 'R30_KAFKA_USER' "
                                          r"is empty, and PLAIN needs a username; put the username in it$"):
        client_options(_sasl(sasl_plain_username_env="R30_KAFKA_USER", sasl_plain_password_env="R30_KAFKA_PASSWORD"))


@pytest.mark.parametrize("given, missing", [({"sasl_plain_username": "alice"}, "sasl_plain_password"),
                                            ({"sasl_plain_password": "pw-30b2"}, "sasl_plain_username")])
def test_a_missing_sasl_value_blames_the_key_that_lacks_it(given, missing):
    with pytest.raises(ConfigError) as e:
        client_options(_sasl(**given))
    what = missing.rsplit("_", 1)[1]
    assert str(e.value) == (f"kafka.{missing}: PLAIN needs a username and a password, and no {what} is set; set "
                            f"kafka.{missing} (or kafka.{missing}_env to the name of the variable that holds it)")
    assert "pw-30b2" not in str(e.value)


def test_set_sasl_variables_still_give_the_clients_their_values(monkeypatch):
    monkeypatch.setenv("R30_KAFKA_USER", "alice")
    monkeypatch.setenv("R30_KAFKA_PASSWORD", "pw-30c9")
    opts = client_options(_sasl(sasl_plain_username_env="R30_KAFKA_USER", sasl_plain_password_env="R30_KAFKA_PASSWORD"))
    assert (opts["sasl_plain_username"], opts["sasl_plain_password"]) == ("alice", "pw-30c9")


def test_the_daemon_says_it_in_its_one_failed_line_before_any_client(tmp_path, monkeypatch, caplog, no_clients):
    monkeypatch.setenv("R30_KAFKA_PASSWORD", "")
    config = load_config_dict({"kafka": {"topics": ["events"], "bootstrap_servers": "127.0.0.1:1",
                                         "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                                         "sasl_plain_username": "alice", "sasl_plain_password_env": "R30_KAFKA_PASSWORD"},
                               "checkpoint": {"dir": str(tmp_path / "ckpt")}})
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        code, _ = daemon_run._build_and_run_once(config, threading.Event(), None, None, None)
    assert code == 2 and no_clients == []
    (line,) = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.levelno >= logging.ERROR]
    assert line["event"] == "failed" and line["exit_code"] == 2
    assert line["detail"] == ("config error: kafka.sasl_plain_password_env: environment variable 'R30_KAFKA_PASSWORD' "
                              "is empty, and PLAIN needs a password; put the password in it")


# -- an encrypted TLS key ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    """A self-signed certificate with its key, plain and encrypted."""
    return make_pem(tmp_path_factory.mktemp("pem"), KEY_PASSWORD)


def test_an_empty_key_password_variable_is_named_with_its_key(pem, monkeypatch):
    monkeypatch.setenv("R30_KEY_PASSWORD", "")
    with pytest.raises(ConfigError) as e:
        check_kafka_config(tls(ssl_certfile=pem["cert"], ssl_keyfile=pem["enc"], ssl_password_env="R30_KEY_PASSWORD"))
    assert str(e.value) == (f"kafka.ssl_password_env: environment variable 'R30_KEY_PASSWORD' is empty, and the key in "
                            f"{pem['enc']!r} is encrypted; put the key's password in it")


def test_an_empty_key_password_variable_is_no_error_where_the_key_needs_none(pem, monkeypatch):
    monkeypatch.setenv("R30_KEY_PASSWORD", "")  # (a template that always sets it): nothing asks for it
    check_kafka_config(tls(ssl_certfile=pem["cert"], ssl_keyfile=pem["key"], ssl_password_env="R30_KEY_PASSWORD"))


def test_an_encrypted_key_without_any_password_setting_is_said_as_before(pem):
    with pytest.raises(ConfigError, match=r"^kafka\.ssl_password: the key in .* is encrypted and no password is set; "
                                          r"set kafka\.ssl_password_env"):
        check_kafka_config(tls(ssl_certfile=pem["cert"], ssl_keyfile=pem["enc"]))
