"""Review 24's configuration findings (r15 F1, F2, F4, F6, F12, F13, F14; r16 F5): each bad value is a
ConfigError naming the key and the fix, at load, not a traceback from kafka-python, numpy or a thread."""

from __future__ import annotations

import dataclasses
import math
import threading

import pytest

from connectors.state import check_settings
from stream_cl.config import Config, ConfigError, KafkaConfig, load_config_dict, read_toml, unread_keys
from stream_cl.factory import build_learner
from stream_cl.events import Event
from stream_cl.pending import LabelUpdate, PendingLabels


DAY_S = 86_400.0  # kafka.shutdown_timeout_s's ceiling (stream_cl.config.MAX_SHUTDOWN_S)


def _refused(tables: dict, message: str) -> str:
    with pytest.raises(ConfigError) as e:
        load_config_dict(tables)
    assert str(e.value).startswith(message), str(e.value)
    return str(e.value)


# -- F1: kafka.bootstrap_servers is a list of host[:port] ------------------------------------------------------------
@pytest.mark.parametrize("servers", ["kafka:${KAFKA_PORT}", "localhost:", "b:0", "b:65536", "b:x", "${HOST}:9092",
                                     "::1:x", "[::1]:", "[]:9092", "a:1,b:", ["a:1", "b:nope"]])
def test_a_bootstrap_entry_that_is_not_host_port_names_the_key_and_an_example(servers):
    message = _refused({"kafka": {"bootstrap_servers": servers}}, "kafka.bootstrap_servers: ")
    assert "is not host[:port]" in message and '"localhost:9092"' in message and '"[::1]:9092"' in message


@pytest.mark.parametrize("servers", [",", " , ", "", [], ["a:1", " "]])
def test_bootstrap_servers_with_no_entry_is_empty(servers):
    message = _refused({"kafka": {"bootstrap_servers": servers}}, "kafka.bootstrap_servers: empty")
    assert '"localhost:9092"' in message


@pytest.mark.parametrize("servers", ["localhost:9092", "a:1, b:2", ["k-1.example.com:9092", "k_2:9093"], "10.0.0.1",
                                     "[::1]:9092", "[fe80::1]", "SASL_SSL://b:9093", "b:65535", "b:1",
                                     # bare IPv6 addresses (no port), as kafka-python reads them, and a zone id
                                     "::1", "2001:db8::10", "[fe80::1%eth0]:9092"])
def test_the_bootstrap_forms_the_clients_read_still_load(servers):
    assert load_config_dict({"kafka": {"bootstrap_servers": servers}}).kafka.bootstrap_servers == servers


# -- F2: TLS and SASL keys the protocol does not use --------------------------------------------------------------------
_TLS = {"ssl_cafile": "ca.pem", "ssl_certfile": "c.pem", "ssl_keyfile": "k.pem", "ssl_password": "pw-7f3a",
        "ssl_password_env": "NOT_SET_ANYWHERE", "ssl_check_hostname": False}
_SASL = {"sasl_plain_username": "alice-91", "sasl_plain_username_env": "U", "sasl_plain_password": "pw-2c8e",
         "sasl_plain_password_env": "P"}


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
@pytest.mark.parametrize("key", list(_TLS))
def test_a_tls_key_without_tls_is_refused(protocol, key):
    extra = {"sasl_mechanism": "PLAIN"} if protocol.startswith("SASL_") else {}
    message = _refused({"kafka": {"security_protocol": protocol, key: _TLS[key], **extra}}, f"kafka.{key}: set to ")
    assert f"security_protocol is {protocol!r}" in message and "use SSL or SASL_SSL, or remove" in message


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
@pytest.mark.parametrize("key", list(_SASL))
def test_a_sasl_credential_without_sasl_is_refused(protocol, key):
    message = _refused({"kafka": {"security_protocol": protocol, key: _SASL[key]}}, f"kafka.{key}: set to ")
    assert f"security_protocol is {protocol!r}" in message and "use SASL_SSL (or SASL_PLAINTEXT)" in message


@pytest.mark.parametrize("key", ["ssl_password", "sasl_plain_username", "sasl_plain_password"])
def test_the_refusal_of_a_secret_does_not_quote_it(key):
    value = {**_TLS, **_SASL}[key]
    message = _refused({"kafka": {key: value}}, f"kafka.{key}: set to <redacted> but")
    assert value not in message


def test_the_keys_each_protocol_reads_still_load():
    load_config_dict({"kafka": {"security_protocol": "SSL", **{k: v for k, v in _TLS.items() if k != "ssl_password"}}})
    load_config_dict({"kafka": {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
                                **{k: v for k, v in _TLS.items() if k != "ssl_password_env"},
                                "sasl_plain_username": "u", "sasl_plain_password_env": "P"}})
    load_config_dict({"kafka": {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                                "sasl_plain_username_env": "U", "sasl_plain_password": "p"}})
    load_config_dict({"kafka": {"ssl_check_hostname": True}})  # its default, under PLAINTEXT


# -- F4: [homeostasis] control_every, read by kind "online" only ------------------------------------------------------
@pytest.mark.parametrize("kind", ["analytic", "trainable"])
def test_control_every_is_warned_of_as_unread_by_the_other_kinds(kind):
    tables = {"model": {"kind": kind}, "homeostasis": {"control_every": 64}}
    assert unread_keys(load_config_dict(tables), tables) == [
        f'homeostasis.control_every: set, but model.kind = "{kind}" does not read it (kind "online" does): '
        "remove it, or choose a kind that reads it"]


def test_control_every_is_not_warned_of_for_the_online_kind():
    tables = {"homeostasis": {"control_every": 64}}
    assert unread_keys(load_config_dict(tables), tables) == []


def _checkpoint_of(config: Config) -> dict:
    """What CheckpointState.snapshot keeps of the settings (the model and the learner's sections)."""
    sections = ("replay", "drift", "homeostasis", "imbalance", "trainable")
    return {"group_id": config.kafka.group_id, "model_config": dataclasses.asdict(config.model),
            "learner_config": {name: dataclasses.asdict(getattr(config, name)) for name in sections}}


@pytest.mark.parametrize("kind, homeostasis", [("analytic", False), ("trainable", False), ("trainable", True)])
def test_a_kind_that_does_not_read_control_every_resumes_after_it_changed(kind, homeostasis):
    saved = _checkpoint_of(load_config_dict({"model": {"kind": kind},
                                             "homeostasis": {"enabled": homeostasis, "control_every": 32}}))
    check_settings(load_config_dict({"model": {"kind": kind},
                                     "homeostasis": {"enabled": homeostasis, "control_every": 64}}), saved, "ckpt")


def test_the_online_kind_still_refuses_a_changed_control_every():
    saved = _checkpoint_of(load_config_dict({"homeostasis": {"control_every": 32}}))
    with pytest.raises(ConfigError, match=r"^homeostasis\.control_every: the checkpoint ckpt was written with "
                                          r"control_every = 32, the config says 64"):
        check_settings(load_config_dict({"homeostasis": {"control_every": 64}}), saved, "ckpt")


def test_a_trainable_checkpoint_still_compares_the_other_homeostasis_keys():
    saved = _checkpoint_of(load_config_dict({"model": {"kind": "trainable"}, "homeostasis": {"enabled": True}}))
    with pytest.raises(ConfigError, match=r"^homeostasis\.max_need: "):
        check_settings(load_config_dict({"model": {"kind": "trainable"},
                                         "homeostasis": {"enabled": True, "max_need": 8.0}}), saved, "ckpt")


# -- F5 (r16): a secret's value is never quoted, nor in a repr ---------------------------------------------------------
@pytest.mark.parametrize("key, value", [("sasl_plain_password", 98765432123), ("ssl_password", ["s3cr3t-list"]),
                                        ("sasl_plain_password", True), ("sasl_plain_username", 4242424242)])
def test_a_secret_of_the_wrong_type_is_named_not_quoted(key, value):
    message = _refused({"kafka": {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", key: value}},
                       f"kafka.{key}: expected a string (got <redacted>); put the value in quotes")
    assert str(value) not in message and "s3cr3t" not in message


def test_the_kafka_config_repr_holds_no_secret():
    config = load_config_dict({"kafka": {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
                                         "sasl_plain_username": "user-5e1d", "sasl_plain_password": "hunter2-in-file",
                                         "ssl_password": "key-pass-in-file"}})
    for text in (repr(config), repr(config.kafka), str(config)):
        assert "user-5e1d" not in text and "hunter2-in-file" not in text and "key-pass-in-file" not in text
    assert config.kafka.sasl_plain_password == "hunter2-in-file"  # only hidden from reprs
    assert "security_protocol='SASL_SSL'" in repr(config.kafka)


def test_other_keys_still_quote_the_value():
    _refused({"kafka": {"client_id": 7}}, "kafka.client_id: expected a string (got 7); put the value in quotes")


# -- F6: a config file that is not UTF-8 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("data, why", [
    ("[run]\nmax_events = 100\n".encode("utf-16"), "it begins with a UTF-16 byte-order mark"),
    (b"\xef\xbb\xbf[run]\nmax_events = 100\n", "it begins with a UTF-8 byte-order mark"),
    ("# caf\u00e9\n[run]\nmax_events = 100\n".encode("latin-1"), "byte 5: invalid continuation byte"),
], ids=["utf-16", "utf-8-bom", "latin-1"])
def test_a_config_that_is_not_utf8_names_the_file_and_the_fix(tmp_path, data, why):
    path = tmp_path / "cfg.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as e:
        read_toml(path)
    assert str(e.value) == (f"{path}: not UTF-8 text without a byte-order mark ({why}); save the file as UTF-8 "
                            "(without a byte-order mark)")


def test_a_utf8_config_with_accents_still_loads(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_bytes('# caf\u00e9\n[mapping]\nlabel = "\u00e9tiquette"\n'.encode())
    assert read_toml(path) == {"mapping": {"label": "\u00e9tiquette"}}


# -- F12: durations: finite where inf has no meaning, inf = "never" where it has ---------------------------------------
@pytest.mark.parametrize("value", [math.inf, 1e10, DAY_S + 1, math.nan, 0])
def test_shutdown_timeout_must_be_finite_and_at_most_a_day(value):
    _refused({"kafka": {"shutdown_timeout_s": value}}, "kafka.shutdown_timeout_s: must be a number in (0, 86_400] (got ")


def test_the_largest_shutdown_timeout_is_one_a_timer_thread_can_wait():
    # the watchdog waits on a threading.Event (a lock); past TIMEOUT_MAX the wait raised OverflowError in its thread
    assert load_config_dict({"kafka": {"shutdown_timeout_s": DAY_S}}).kafka.shutdown_timeout_s == DAY_S
    assert DAY_S <= threading.TIMEOUT_MAX


@pytest.mark.parametrize("section, key, message", [
    ("metrics", "stall_timeout_s", "metrics.stall_timeout_s: must be > 0 and finite (got inf)"),
    ("changelog", "fold_every_seconds", "changelog.fold_every_seconds: must be a finite number >= 1e-300 (got inf)")])
def test_durations_without_a_never_are_finite(section, key, message):
    _refused({section: {key: math.inf}}, message)


@pytest.mark.parametrize("section, key", [("checkpoint", "every_seconds"), ("changelog", "every_seconds"),
                                          ("labels", "max_age_s")])
def test_durations_documented_as_never_take_inf(section, key):
    assert getattr(getattr(load_config_dict({section: {key: math.inf}}), section), key) == math.inf


def test_labels_max_age_inf_expires_nothing():
    labels = load_config_dict({"labels": {"max_age_s": math.inf}}).labels
    store = PendingLabels(labels.max_pending, labels.max_age_s, clock=lambda: 0.0, max_early=labels.max_early)
    store.add(Event({"a": 1.0}, id="e1"))
    store.join(LabelUpdate("e2", "cat"))  # a label waiting for its event
    assert store.expire(now=1e18) == 0 and store.counters()["unknown"] == 0
    assert store.join(LabelUpdate("e1", "dog")).x == {"a": 1.0}


# -- F13: Kafka's dotted property names ----------------------------------------------------------------------------------
@pytest.mark.parametrize("tables, message", [
    ({"kafka": {"sasl": {"mechanism": "PLAIN"}}}, "kafka.sasl.mechanism: unknown key (TOML reads the dots in a key as "
                                                  "nested tables); did you mean 'sasl_mechanism'?"),
    ({"kafka": {"auto": {"offset": {"reset": "earliest"}}}}, "kafka.auto.offset.reset: unknown key (TOML reads the "
                                                             "dots in a key as nested tables); did you mean "
                                                             "'auto_offset_reset'?"),
    ({"kafka": {"security": {"protocol": "SSL"}}}, "kafka.security.protocol: unknown key (TOML reads the dots in a "
                                                   "key as nested tables); did you mean 'security_protocol'?"),
    ({"model": {"input": {"forgetting": [1.0]}}}, "model.input.forgetting: unknown key (TOML reads the dots in a key "
                                                  "as nested tables); did you mean 'input_forgetting'?"),
])
def test_a_dotted_key_is_named_whole_with_the_underscore_key(tables, message):
    _refused(tables, message)


def test_dotted_keys_parsed_from_toml_are_named_whole(tmp_path):
    path = tmp_path / "k.toml"
    path.write_text('[kafka]\nsasl.mechanism = "PLAIN"\n')
    _refused(read_toml(path), "kafka.sasl.mechanism: unknown key (TOML reads the dots in a key as nested tables); "
                              "did you mean 'sasl_mechanism'?")


def test_a_table_with_no_close_key_keeps_the_old_message():
    _refused({"kafka": {"zzz": {"qqq": 1}}}, "kafka.zzz: unknown key; valid keys: bootstrap_servers, ")
    _refused({"modle": {"gamma": 1.0}}, "modle: unknown key; did you mean 'model'?")


# -- F14: limits checked where the key is named --------------------------------------------------------------------------
@pytest.mark.parametrize("tables, message", [
    ({"replay": {"policy": "reservoir", "ratio": math.inf}}, "replay.ratio: must be a number in [0, 100] (got inf)"),
    ({"replay": {"policy": "reservoir", "ratio": 1e300}}, "replay.ratio: must be a number in [0, 100] (got 1e+300)"),
    ({"replay": {"policy": "reservoir", "ratio": math.nan}}, "replay.ratio: must be a number in [0, 100] (got nan)"),
    ({"replay": {"policy": "power_law", "alpha": math.inf}}, "replay.alpha: must be a finite number >= 0 (got inf)"),
    ({"model": {"key_units": 10**20}}, "model.key_units: must be in [0, 1_000] (got 100000000000000000000)"),
    ({"model": {"key_units": 1001}}, "model.key_units: must be in [0, 1_000] (got 1001)"),
    ({"mapping": {"max_event_bytes": 2**63 - 1}},
     "mapping.max_event_bytes: must be at most 2_147_483_647 (got 9223372036854775807); use a positive byte limit"),
    ({"mapping": {"max_features": 2**31}}, "mapping.max_features: must be at most 2_147_483_647 (got 2147483648)"),
    ({"kafka": {"poll_timeout_ms": 2**31}}, "kafka.poll_timeout_ms: must be at most 2_147_483_647 (got 2147483648)"),
    ({"replay": {"max_samples": 10**19}}, "replay.max_samples: must be at most 2_147_483_647"),
    ({"model": {"seed": 2**32}}, "model.seed: must be at most 4_294_967_295 (got 4294967296); use a seed such as 0"),
    ({"drift": {"seed": 2**64}}, "drift.seed: must be at most 4_294_967_295"),
    ({"run": {"max_events": 2**53 + 1}}, "run.max_events: must be at most 9_007_199_254_740_992"),
])
def test_a_value_past_its_limit_names_the_key(tables, message):
    _refused(tables, message)


@pytest.mark.parametrize("tables", [
    {"replay": {"policy": "reservoir", "ratio": 100.0, "max_bytes": 2**40}}, {"model": {"key_units": 1000}},
    {"model": {"seed": 2**32 - 1}}, {"run": {"max_events": 2**40}}, {"mapping": {"max_event_bytes": 2**31 - 1}}])
def test_values_within_the_limits_load(tables):
    load_config_dict(tables)


def test_the_replay_ratio_error_is_the_configs_not_the_buffers():
    # the buffer's own check stays as a library guard; the config path names replay.ratio first
    with pytest.raises(ConfigError, match=r"^replay\.ratio: "):
        build_learner(load_config_dict({"replay": {"policy": "reservoir", "ratio": math.inf},
                                        "model": {"device": "cpu"}}))


def test_the_cli_flags_pass_the_same_limits():
    with pytest.raises(ConfigError, match=r"^run\.max_events: must be at most 9_007_199_254_740_992"):
        Config().replace("run", max_events=2**60)
    assert KafkaConfig().shutdown_timeout_s == 30.0
