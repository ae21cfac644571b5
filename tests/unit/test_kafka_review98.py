"""Review r98: kafka-python's configuration dump at DEBUG is dropped, and a secret is masked as a
repr writes it too; the config refuses a transaction timeout the takeover wait cannot outlast; an
idle commit_timeout_ms and a CA directory are named."""

from __future__ import annotations

import json
import logging

import pytest
from test_secrets_review24 import log_lines  # noqa: F401 -- the daemon's logging, kafka-python at DEBUG

from connectors.kafka_settings import client_options
from connectors.logs import log_event
from stream_cl.config import ConfigError, KafkaConfig, load_config_dict
from stream_cl.config.unread import unread_keys


def test_the_admin_clients_configuration_dump_is_dropped_and_a_reprd_secret_masked(log_lines, monkeypatch):
    secret = "Pw\\Secret-r98"  # a backslash: a dict's repr doubles it
    monkeypatch.setenv("R98_PW", secret)
    opts = client_options(KafkaConfig(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                                      sasl_plain_username="alice-r98", sasl_plain_password_env="R98_PW"))
    # what kafka/admin/client.py logs at DEBUG when the daemon makes an admin client
    logging.getLogger("kafka.admin.client").debug("Starting KafkaAdminClient with configuration: %s", opts)
    logging.getLogger("stream_cl.daemon").error("options %r", opts)  # any other line holding the repr
    log_event("stream_cl.daemon", "failed", level=logging.ERROR, detail=repr(opts))
    lines = log_lines()
    assert "Secret-r98" not in json.dumps(lines)
    assert not [line for line in lines if "KafkaAdminClient" in line["event"]]  # was printed, password and all
    assert "<redacted>" in lines[0]["event"] and "<redacted>" in lines[1]["detail"]


def test_a_transaction_timeout_the_takeover_wait_cannot_outlast_is_refused():
    with pytest.raises(ConfigError, match=r"kafka.max_poll_interval_ms: 300000 .* at least 1022223"):
        KafkaConfig(transaction_timeout_ms=900_000)
    KafkaConfig(transaction_timeout_ms=900_000, max_poll_interval_ms=1_022_223)
    KafkaConfig()  # the defaults: 60 s + 20 s within 270 s


def test_commit_timeout_is_named_idle_with_the_thread_publisher():
    tables = {"source": {"kind": "kafka"}, "kafka": {"topics": ["e"], "publisher": "thread", "commit_timeout_ms": 5000}}
    warnings = unread_keys(load_config_dict(tables), tables)
    assert any(w.startswith("kafka.commit_timeout_ms: set, but") for w in warnings), warnings


def test_a_ca_directory_is_named_as_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="is a directory, not a PEM file"):
        client_options(KafkaConfig(security_protocol="SSL", ssl_cafile=str(tmp_path)))


def test_a_commit_timeout_two_revocation_waits_cannot_fit_in_the_rebalance_is_refused():
    """Review r110: a revocation waits for the commit under way and for its own, each up to commit_timeout_ms,
    and the group waits for the member's rebalance max_poll_interval_ms (90% of it kept for such waits)."""
    with pytest.raises(ConfigError, match=r"kafka.commit_timeout_ms: .* 2 x 150000 ms.* at most 135000 or raise "
                                          r"kafka.max_poll_interval_ms to at least 333334"):
        KafkaConfig(commit_timeout_ms=150_000)
    KafkaConfig(commit_timeout_ms=135_000)  # 270 s: 90% of the default 300 s
    KafkaConfig(commit_timeout_ms=150_000, max_poll_interval_ms=333_334)
    KafkaConfig(commit_timeout_ms=150_000, publisher="thread")  # the key is unread there (no publisher to give up)


def test_a_file_runs_progress_and_append_are_named_idle_in_a_daemons_config():
    """Review r100's left-out item: run.progress and run.append are a file run's (its progress line, its output
    files); the daemon read neither and said nothing of them. The shipped daemon config set progress = false."""
    tables = {"source": {"kind": "kafka"}, "kafka": {"topics": ["e"]}, "run": {"progress": False, "append": True}}
    warnings = unread_keys(load_config_dict(tables), tables)
    assert [w.split(":")[0] for w in warnings] == ["run.progress", "run.append"], warnings
    assert all('does not read it' in w and 'set source.kind = "file" for a file run' in w for w in warnings)
    file_run = {"source": {"kind": "file", "path": "e.jsonl"}, "run": {"progress": False, "append": True}}
    assert unread_keys(load_config_dict(file_run), file_run) == []


def test_the_shipped_daemon_config_sets_no_key_it_leaves_unread():
    from pathlib import Path

    from stream_cl.config import read_toml

    path = Path(__file__).resolve().parents[2] / "deploy" / "config" / "daemon.toml"
    tables = read_toml(path)
    assert unread_keys(load_config_dict(tables), tables) == []
