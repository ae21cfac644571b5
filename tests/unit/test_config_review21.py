"""Config/CLI defects found by review r3 (D1-D3, D5, D7, D8): each was accepted, or refused only late
(by the learner, after a broker answered) or by the wrong rule; each is now the config's, naming the key."""

import json

import pytest

from connectors.cli import _config_from_args, _parser, main
from stream_cl.config import MAX_WIDTH, ConfigError, ModelConfig, load_config_dict, to_toml
from stream_cl.factory import build_learner

from client_kit import no_clients  # noqa: F401 -- a fixture (tests/unit/client_kit.py)


# -- D1: one field read as two parts of an event (the label as the timestamp leaked it into the features) ---------
@pytest.mark.parametrize("mapping, message", [
    ({"timestamp": "y"}, "mapping.timestamp: names 'y', the label field (mapping.label); name the event-time field"),
    ({"id": "y"}, "mapping.id: names 'y', the label field (mapping.label)"),
    ({"task": "y"}, "mapping.task: names 'y', the label field (mapping.label)"),
    ({"id": "task"}, "mapping.task: names 'task', the event id field (mapping.id)"),
    ({"timestamp": "id"}, "mapping.timestamp: names 'id', the event id field (mapping.id)"),
    ({"label": "ts"}, "mapping.timestamp: names 'ts', the label field (mapping.label)"),  # the default timestamp
], ids=str)
def test_label_id_task_and_timestamp_must_name_different_fields(mapping, message):
    with pytest.raises(ConfigError) as e:
        load_config_dict({"mapping": mapping})
    assert str(e.value).startswith(message)
    assert 'or ' in str(e.value) and '= "" if events have none' in str(e.value)  # the fix


def test_empty_id_task_and_timestamp_name_no_field_so_never_clash():
    m = load_config_dict({"mapping": {"id": "", "task": "", "timestamp": ""}}).mapping
    assert (m.id, m.task, m.timestamp) == ("", "", "")


def test_the_cli_label_flag_is_checked_against_the_other_fields(tmp_path, capsys):
    events = tmp_path / "e.jsonl"
    events.write_text(json.dumps({"x": {"a": 1}, "y": "p", "ts": 1}) + "\n")
    assert main(["run", "--source", str(events), "--label", "ts", "--quiet", "--dead-letters", ""]) == 2
    assert "config error: mapping.timestamp: names 'ts', the label field" in capsys.readouterr().err


# -- D2: trainable.hidden bounded like model.width (a huge layer was a torch allocation traceback) ----------------
@pytest.mark.parametrize("hidden", [[MAX_WIDTH + 1], [64, 1_000_000_000]], ids=str)
def test_trainable_hidden_widths_are_bounded_like_model_width(hidden):
    with pytest.raises(ConfigError, match=r"^trainable\.hidden: widths must be in \[1, 1_000_000\]"):
        load_config_dict({"trainable": {"hidden": hidden}})


def test_trainable_hidden_at_the_bound_and_none_are_accepted():
    assert load_config_dict({"trainable": {"hidden": [MAX_WIDTH]}}).trainable.hidden == [MAX_WIDTH]
    assert load_config_dict({"trainable": {"hidden": []}}).trainable.hidden == []
    with pytest.raises(ConfigError, match=r"^trainable\.hidden: widths must be in"):
        load_config_dict({"trainable": {"hidden": [0]}})


# -- D3: model.forgetting's default depends on model.kind, resolved by the config alone --------------------------
def test_analytic_in_a_config_file_takes_its_one_head_default(tmp_path):
    cfg = load_config_dict({"model": {"kind": "analytic"}})
    assert cfg.model.forgetting == [1.0]
    assert type(build_learner(cfg)).__name__ == "AnalyticClassifier"
    assert load_config_dict({}).model.forgetting == [1.0, 0.995]
    assert load_config_dict({"model": {"kind": "trainable"}}).model.forgetting == [1.0, 0.995]
    assert ModelConfig(kind="analytic").forgetting == [1.0]  # built in Python too


def test_analytic_config_file_runs_from_the_cli(tmp_path):
    events = tmp_path / "e.jsonl"
    events.write_text("".join(json.dumps({"x": {"a": i % 3}, "y": "ab"[i % 2]}) + "\n" for i in range(50)))
    cfg = tmp_path / "c.toml"
    cfg.write_text(to_toml({"model": {"kind": "analytic"}}))
    report = tmp_path / "r.json"
    assert main(["run", "--config", str(cfg), "--source", str(events), "--quiet", "--dead-letters", "",
                 "--report", str(report)]) == 0
    assert json.loads(report.read_text())["model"] == "AnalyticClassifier"


def test_the_cli_model_flag_resolves_the_same_default_and_keeps_an_explicit_value(tmp_path):
    args = ["run", "--model", "analytic"]
    assert _config_from_args(_parser().parse_args(args)).model.forgetting == [1.0]
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nkind = \"online\"\n")  # the file's kind, replaced by the flag: the default follows it
    assert _config_from_args(_parser().parse_args([*args, "--config", str(cfg)])).model.forgetting == [1.0]
    cfg.write_text("[model]\nforgetting = [0.99]\n")
    assert _config_from_args(_parser().parse_args([*args, "--config", str(cfg)])).model.forgetting == [0.99]
    cfg.write_text("[model]\nforgetting = [1.0, 0.995]\n")  # set explicitly: kept, and refused for one head
    with pytest.raises(ConfigError, match=r"^model\.forgetting: the analytic model has one head"):
        _config_from_args(_parser().parse_args([*args, "--config", str(cfg)]))


def test_a_checkpoint_keeps_the_resolved_forgetting_so_an_explicit_one_still_matches():
    # connectors/state.py saves dataclasses.asdict(config.model) and compares it on restore
    import dataclasses

    for kind, explicit in (("online", [1.0, 0.995]), ("analytic", [1.0])):
        written = dataclasses.asdict(load_config_dict({"model": {"kind": kind, "forgetting": explicit}}).model)
        now = dataclasses.asdict(load_config_dict({"model": {"kind": kind}}).model)
        assert written == now and now["forgetting"] == explicit


# -- D8: gamma and the forgetting factors are the config's rules, with the key named -----------------------------
@pytest.mark.parametrize("model, message", [
    ({"gamma": float("inf")}, "model.gamma: must be a finite number >= 1e-300 (got inf)"),
    ({"kind": "analytic", "forgetting": [1.5]}, "model.forgetting: each factor must be in [0.5, 1.0] (got [1.5])"),
    ({"forgetting": [1.5]}, "model.forgetting: each factor must be in [0.5, 1.0] (got [1.5])"),
    ({"forgetting": [float("nan")]}, "model.forgetting: each factor must be in [0.5, 1.0]"),
    ({"input_forgetting": [0.2]}, "model.input_forgetting: each factor must be in [0.5, 1.0] (got [0.2])"),
    ({"hash_width": 0}, "model.hash_width: must be >= 1 (got 0)"),
    ({"hash_width": -5}, "model.hash_width: must be >= 1 (got -5)"),
    ({"forgetting": [], "input_forgetting": []}, "model.forgetting: no heads at all"),
], ids=str)
def test_model_factors_are_refused_at_load_naming_the_key(model, message):
    with pytest.raises(ConfigError) as e:
        load_config_dict({"model": model})
    assert str(e.value).startswith(message)


# -- D7: [source] keys only a file source reads ------------------------------------------------------------------
@pytest.mark.parametrize("source, key", [
    ({"kind": "kafka", "path": "events.jsonl"}, "path"),
    ({"kind": "kafka", "format": "csv"}, "format"),
    ({"kind": "kafka", "follow": True}, "follow"),
    ({"kind": "kafka", "follow_idle_timeout_s": 5.0}, "follow_idle_timeout_s"),
    ({"kind": "demo", "follow": True}, "follow"),
    ({"kind": "demo", "format": "csv"}, "format"),
], ids=str)
def test_source_keys_a_non_file_source_does_not_read_are_refused(source, key):
    with pytest.raises(ConfigError, match=rf'^source\.kind: {key} is set \(got .*\) but kind is "{source["kind"]}"'):
        load_config_dict({"source": source})


def test_follow_and_format_flags_without_a_file_are_refused_and_the_plain_demo_still_runs(tmp_path, capsys):
    assert main(["run", "--follow"]) == 2
    assert 'config error: source.kind: follow is set (got True) but kind is "demo"' in capsys.readouterr().err
    assert main(["run", "--format", "csv"]) == 2
    assert _config_from_args(_parser().parse_args(["run"])).source.kind == "demo"  # `stream-cl run` as before
    f = tmp_path / "e.jsonl"
    cfg = _config_from_args(_parser().parse_args(["run", "--source", str(f), "--follow", "--format", "jsonl"]))
    assert (cfg.source.kind, cfg.source.follow, cfg.source.format) == ("file", True, "jsonl")


# -- D5: [kafka] errors before any client bootstraps (an unreachable broker hid them: exit 1, not 2) -------------
@pytest.mark.parametrize("kafka_keys, message", [
    ({}, "kafka.topics: no topics to consume"),
    ({"topics": ["events"], "group_instance_id_env": "STREAM_CL_REVIEW21_UNSET"},
     "kafka.group_instance_id_env: environment variable 'STREAM_CL_REVIEW21_UNSET' is not set"),
], ids=["no topics", "group_instance_id_env unset"])
def test_kafka_config_errors_come_before_any_client_is_made(kafka_keys, message, monkeypatch, tmp_path, no_clients):
    from connectors import daemon as daemon_module

    monkeypatch.delenv("STREAM_CL_REVIEW21_UNSET", raising=False)
    config = load_config_dict({"kafka": {"bootstrap_servers": "127.0.0.1:1", "bootstrap_timeout_ms": 100, **kafka_keys},
                               "checkpoint": {"dir": str(tmp_path)}})
    with pytest.raises(ConfigError) as e:
        daemon_module.Daemon.from_config(config)
    assert str(e.value).startswith(message)
    assert no_clients == []
