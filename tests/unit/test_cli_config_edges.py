"""Edges of the CLI and the config loader: values that passed validation and then ran the wrong
thing (the demo instead of a file, a model poisoned by inf) or failed late with a misleading
message or a traceback. Each is refused where the config is read, naming the key."""

import json
import re
import tomllib

import pytest

from connectors.cli import main
from stream_cl.config import ConfigError, load_config_dict, to_toml


@pytest.mark.parametrize(
    "data, message",
    [
        # inf passed `>= 0` / `> 0` and the run exited 0 with accuracy 0.0 (sgd_lr, trainable.lr) or 0.73
        ({"model": {"sgd_lr": float("inf")}}, "model.sgd_lr: must be 0 (no SGD head) or a finite number >= 1e-300 (got inf); use 0 for no SGD"),
        ({"model": {"temperature": float("inf")}}, "model.temperature: must be a finite number >= 1e-300 (got inf)"),
        ({"trainable": {"lr": float("inf")}}, "trainable.lr: must be a finite number >= 1e-300 (got inf)"),
        ({"trainable": {"weight_decay": float("inf")}}, "trainable.weight_decay: must be a finite number >= 0 (got inf)"),
        # a negative seed: "model: expected non-negative integer", or every event a dead letter (trainable)
        ({"model": {"seed": -1}}, "model.seed: must be >= 0 (got -1); use a seed such as 0"),
        ({"model": {"kind": "trainable", "seed": -1}}, "model.seed: must be >= 0 (got -1)"),
        ({"drift": {"seed": -3}}, "drift.seed: must be >= 0 (got -3)"),
        # a path the demo would ignore
        ({"source": {"path": "events.jsonl"}}, 'source.kind: path is set (got \'events.jsonl\') but kind is "demo"'),
        ({"source": {"kind": "demo", "path": "e.csv"}}, 'set kind = "file"'),
        # empty field names: the whole stream read, then exit 1
        ({"mapping": {"features": ""}}, "mapping.features: an empty field name (got '')"),
        ({"mapping": {"features": ["a", ""]}}, "mapping.features: an empty field name (got ['a', ''])"),
        ({"mapping": {"label": ""}}, "mapping.label: empty (got '')"),
        # tracebacks before: a 745 GiB allocation, and thread exhaustion read as a missing libllvmlite.so
        ({"model": {"width": 100_000_000_000}}, "model.width: must be in [0, 1_000_000] (got 100000000000)"),
        ({"run": {"threads": 100_000}}, "run.threads: must be in [1, 256] (got 100000)"),
        ({"run": {"threads": 0}}, "run.threads: must be in [1, 256] (got 0)"),
    ],
)
def test_config_edges_are_refused_by_key(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config_dict(data)


def test_the_bounds_and_defaults_still_load():
    config = load_config_dict({"model": {"width": 1_000_000, "seed": 0, "sgd_lr": 0.0, "temperature": 1e-3},
                               "run": {"threads": 256}, "drift": {"seed": 7},
                               "trainable": {"lr": 0.5, "weight_decay": 0.0},
                               "source": {"kind": "file", "path": "e.jsonl"}, "mapping": {"features": ["a", "b"]}})
    assert config.model.width == 1_000_000 and config.run.threads == 256 and config.source.path == "e.jsonl"
    assert load_config_dict({"source": {"kind": "demo", "path": ""}}).source.kind == "demo"  # the README's block


@pytest.mark.parametrize("flag, message", [
    ("--source", "source.path: required for kind = \"file\" (got '')"),
    ("--config", "config path: empty (got ''); pass --config PATH"),
])
def test_an_empty_source_or_config_flag_is_refused_not_ignored(tmp_path, capsys, flag, message):
    """`--source "$FILE"` with the variable unset ran the bundled demo and exited 0."""
    report = tmp_path / "r.json"
    assert main(["run", flag, "", "--quiet", "--report", str(report), "--dead-letters", ""]) == 2
    assert message in capsys.readouterr().err
    assert not report.exists()


def test_a_path_in_the_file_with_kind_left_at_demo_exits_2(tmp_path, capsys):
    events = tmp_path / "s.jsonl"
    events.write_text('{"x": {"a": 1}, "y": "p"}\n')
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[source]\npath = "{events}"\n')
    report = tmp_path / "r.json"
    assert main(["run", "--config", str(cfg), "--quiet", "--report", str(report), "--dead-letters", ""]) == 2
    assert 'config error: source.kind: path is set' in capsys.readouterr().err
    assert not report.exists()


@pytest.mark.parametrize("flag", ["--features", "--label"])
def test_an_empty_features_or_label_flag_exits_2_before_reading(tmp_path, capsys, flag):
    assert main(["run", flag, "", "--quiet", "--dead-letters", "", "--max-events", "10"]) == 2
    assert f"config error: mapping.{flag[2:]}: " in capsys.readouterr().err


def test_every_event_refused_by_the_model_points_at_model_not_mapping(tmp_path, capsys):
    """Every labelled event over max_columns: rejected_by_model, and the message said "check [mapping]" (a
    tiny gamma did this before its Gram matrix got an inverse robust to rounding), or, with the stream's few
    unlabelled events predicted, "no event had a label"."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nmax_columns = 260\n")  # 257 columns without inputs; each input adds 9
    report, dead = tmp_path / "r.json", tmp_path / "dl.jsonl"
    assert main(["run", "--config", str(cfg), "--max-events", "2000", "--quiet", "--report", str(report),
                 "--dead-letters", str(dead)]) == 1
    err = capsys.readouterr().err
    first = next(d for d in map(json.loads, dead.read_text().splitlines()) if d["reason"] == "rejected_by_model")
    assert "(most: rejected_by_model" in err and "check [model]" in err and "[mapping]" not in err
    assert f"the model refused them (the first: {first['detail']})" in err
    assert json.loads(report.read_text())["dead_letter_examples"]["rejected_by_model"] == first["detail"]


def test_a_mapping_failure_still_points_at_mapping():
    from connectors.run import failure

    report = {"events": 0, "dead_letters_total": 3, "dead_letters": {"missing_features": 3}, "labelled": 0,
              "dead_letter_examples": {"missing_features": "no field 'x'"}}
    assert failure(report).endswith("check [mapping]")
    rejected = {**report, "dead_letters": {"rejected_by_model": 3}, "dead_letter_examples": {}}
    assert "check [model]" in failure(rejected) and "the first:" not in failure(rejected)  # an older report


@pytest.mark.parametrize("text", ["y\U0001F600", "caf\u00e9", "tab\there", "del\x7fx", 'q"b\\s', "nl\nx"])
def test_to_toml_round_trips_any_string(text):
    """A non-BMP character was written as JSON surrogate escapes, which TOML refuses."""
    assert tomllib.loads(to_toml({"mapping": {"label": text}})) == {"mapping": {"label": text}}


def test_report_of_a_directory_says_it_is_one(tmp_path, capsys):
    folder = tmp_path / "adir"
    folder.mkdir()
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "is a directory; pass the report's JSON file" in err and "no such report" not in err
