"""Review 22 (r3), the user docs read as a new user would: where the docs said more than the code
checked, or an error pointed the wrong way.

1. every field the mapping names is checked against the data (not only features and label);
2. the hint of a bad ``model.hash_width`` is a value the other defaults accept;
3. a key the chosen ``model.kind`` does not read is warned of, in a file run and by the daemon;
4. the README says which CSV text reads as a number (``nan``/``inf``) and what becomes of it;
5. ``--features NAME`` on JSON: the dead letter says how to learn one top-level field;
6. ``one_event_breakdown --n`` below ``--warm`` is refused by argparse, not a ZeroDivisionError.
"""

import io
import json
import re
from pathlib import Path

import pytest

from connectors.cli import main
from connectors.logs import setup_logging, teardown_logging
import stream_cl.config as config_module
import stream_cl.mapping_check as mapping_check
from stream_cl.config import ConfigError, MappingConfig, load_config_dict
from stream_cl.decode import EventDecoder
from stream_cl.factory import build_learner
from stream_cl.mapping_check import FieldCensus, check_columns

ROOT = Path(__file__).resolve().parents[2]


def _csv(tmp_path, header: str, rows: list[str], name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _jsonl(tmp_path, events: list[dict], name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def _run(tmp_path, args: list[str], config: str | None = None) -> tuple[int, dict | None]:
    """``stream-cl run`` with ``args`` (and a config file holding ``config``): the exit code and the report."""
    report = tmp_path / "report.json"
    extra = []
    if config is not None:
        cfg = tmp_path / "cfg.toml"
        cfg.write_text(config)
        extra = ["--config", str(cfg)]
    code = main(["run", *args, *extra, "--quiet", "--dead-letters", "", "--report", str(report)])
    return code, (json.loads(report.read_text()) if report.exists() else None)


# -- 1: every field the mapping names --------------------------------------------------------------
def _timed_rows(n: int = 40) -> list[str]:
    return [f"{i % 3},{i % 5},2024-05-01T{i % 24:02d}:00:00Z,{'p' if i % 2 else 'q'}" for i in range(n)]


@pytest.mark.parametrize("key", ["timestamp", "id", "task"])
def test_a_named_id_task_or_time_column_the_csv_header_lacks_is_a_config_error(tmp_path, capsys, key):
    path = _csv(tmp_path, "a,b,when_ts,y", _timed_rows())
    config = f'[mapping]\n{key} = "when"\n[model]\ntime_features = true\n'
    code, _ = _run(tmp_path, ["--source", str(path), "--features", "a,b"], config)
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"config error: mapping.{key}: no column 'when' in the header of {path} (its columns: a, b, when_ts, y)" in err
    assert "did you mean 'when_ts'?" in err


def test_a_named_column_without_a_close_match_says_how_to_fix_it():
    with pytest.raises(ConfigError, match=r"^mapping\.task: no column 'stage' in the header of d\.csv \(its columns: a, y\); "
                                          r"name one of its columns, or leave mapping\.task out$"):
        check_columns(MappingConfig(task="stage"), ["a", "y"], "d.csv")


def test_a_csv_without_id_task_or_ts_columns_is_fine_at_the_defaults(tmp_path, capsys):
    """Guard: the defaults name parts an event may lack; a CSV without them runs, unwarned."""
    path = _csv(tmp_path, "a,b,y", [f"{i % 3},{i % 5},{'p' if i % 2 else 'q'}" for i in range(60)])
    code, report = _run(tmp_path, ["--source", str(path), "--features", "a,b"])
    assert code == 0 and report["warnings"] == [], capsys.readouterr().err


def test_a_named_json_time_field_no_event_has_is_a_warning_naming_the_key(tmp_path, capsys):
    path = _jsonl(tmp_path, [{"x": {"a": i % 3}, "y": "pq"[i % 2], "when_ts": 1714601643 + 3600 * i} for i in range(30)])
    code, report = _run(tmp_path, ["--source", str(path)], '[mapping]\ntimestamp = "when"\n[model]\ntime_features = true\n')
    err = capsys.readouterr().err
    assert code == 0
    want = ("mapping.timestamp: field 'when' was in none of the first 30 events (fields seen: x, y, when_ts): "
            "those events have no time; did you mean 'when_ts'?")
    assert f"warning: {want}" in err and want in report["warnings"]


def test_the_id_is_checked_at_its_default_where_labels_come_apart():
    """A Kafka labels topic joins labels by id (FieldCensus(check_label=False)): events without one never learn."""
    census = FieldCensus(MappingConfig(), sample=2, check_label=False)
    census.observe({"x": {"a": 1}, "event_id": "e1"}), census.observe({"x": {"a": 2}, "event_id": "e2"})
    assert census.take() == ["mapping.id: field 'id' was in none of the first 2 events (fields seen: x, event_id): those "
                             "events have no id, so no delayed label (the labels topic) can be joined to them"]
    plain = FieldCensus(MappingConfig(), sample=1)  # labels in the events: an id is optional
    plain.observe({"x": {"a": 1}, "y": 0})
    assert plain.take() == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_time_features_without_any_event_time_are_a_warning(tmp_path, capsys, fmt):
    """model.time_features on, mapping.timestamp left at "ts", and the data has no "ts": the model had no time
    features and nothing said so."""
    if fmt == "csv":
        path = _csv(tmp_path, "a,b,when_ts,y", _timed_rows())
    else:
        path = _jsonl(tmp_path, [{"a": i % 3, "b": i % 5, "when_ts": 1714601643 + 3600 * i, "y": "pq"[i % 2]}
                                 for i in range(40)])
    code, report = _run(tmp_path, ["--source", str(path), "--features", "a,b"], "[model]\ntime_features = true\n")
    want = ("model.time_features: none of the first 40 events had a time in field 'ts' (mapping.timestamp): the model "
            "gets no time features; set mapping.timestamp to the field or column holding the event time")
    assert code == 0 and report["warnings"] == [want]
    assert f"warning: {want}" in capsys.readouterr().err
    # named: the time features are there, and nothing is said
    code, report = _run(tmp_path, ["--source", str(path), "--features", "a,b"],
                        '[mapping]\ntimestamp = "when_ts"\n[model]\ntime_features = true\n')
    assert code == 0 and report["warnings"] == []


def test_the_time_census_says_nothing_once_an_event_has_a_time():
    from stream_cl.events import Event

    census = mapping_check.TimeCensus(MappingConfig(), time_features=True, sample=3)
    census.observe([Event({"a": 1.0}, "p"), Event({"a": 1.0}, "p", ts=1714601643.0)])
    assert census.take(final=True) == []
    off = mapping_check.TimeCensus(MappingConfig(), time_features=False, sample=1)
    off.observe([Event({"a": 1.0}, "p")])
    assert off.take(final=True) == []


# -- 2: the hash_width hint works with the other defaults ------------------------------------------
@pytest.mark.parametrize("kind", ["online", "analytic", "trainable"])
def test_the_hash_width_hint_is_a_value_the_defaults_accept(kind):
    with pytest.raises(ConfigError) as refused:
        load_config_dict({"model": {"hash_width": 0}})
    hint = re.search(r"use e\.g\. (\d+) \(", str(refused.value))
    assert hint, str(refused.value)
    assert "1 + width + (1 + key_units) x hash_width" in str(refused.value) and "model.max_columns" in str(refused.value)
    build_learner(load_config_dict({"model": {"kind": kind, "hash_width": int(hint.group(1)), "device": "cpu"}}))


def test_the_largest_hash_width_the_online_defaults_take_is_881():
    """1 + width + (1 + key_units) x hash_width <= max_columns: 1 + 256 + 9 x 881 = 8,186 <= 8,192."""
    build_learner(load_config_dict({"model": {"hash_width": 881, "device": "cpu"}}))
    with pytest.raises(ConfigError, match="8,195 design columns, over max_columns"):
        build_learner(load_config_dict({"model": {"hash_width": 882, "device": "cpu"}}))


# -- 3: keys the model kind does not read ----------------------------------------------------------
def test_a_file_run_warns_of_each_key_its_model_kind_does_not_read(tmp_path, capsys):
    # width and seed at their default values: written, so still said
    config = ('[model]\nkind = "analytic"\nwidth = 256\nsgd_lr = 0.9\nseed = 0\ngamma = 2.0\n'
              '[trainable]\nlr = 5.0\n')
    code, report = _run(tmp_path, ["--max-events", "300"], config)
    err = capsys.readouterr().err
    assert code == 0
    want = [f'model.{key}: set, but model.kind = "analytic" does not read it (kind "online" does): remove it, or '
            "choose a kind that reads it" for key in ("width", "sgd_lr")]
    want.append('model.seed: set, but model.kind = "analytic" does not read it (kinds "online" and "trainable" do): '
                "remove it, or choose a kind that reads it")
    want.append('trainable.lr: set, but model.kind = "analytic" does not read [trainable] (kind "trainable" does): '
                "remove it, or choose a kind that reads it")
    assert report["warnings"] == want  # gamma: read by the analytic model, not said
    for w in want:
        assert f"warning: {w}" in err


def test_the_kind_from_the_command_line_counts(tmp_path, capsys):
    code, report = _run(tmp_path, ["--max-events", "300", "--model", "analytic"], "[model]\ninput_forgetting = [1.0]\n")
    assert code == 0 and report["warnings"] == [
        'model.input_forgetting: set, but model.kind = "analytic" does not read it (kind "online" does): remove it, '
        "or choose a kind that reads it"]
    code, report = _run(tmp_path, ["--max-events", "300"], "[model]\ninput_forgetting = [1.0]\nwidth = 64\n")
    assert code == 0 and report["warnings"] == []  # the online model reads every [model] key


def test_the_trainable_kind_names_the_kinds_that_read_its_idle_keys():
    tables = {"model": {"kind": "trainable", "gamma": 1.0, "temperature": 5.0, "forgetting": [0.5], "seed": 3}}
    notes = config_module.unread_keys(load_config_dict(tables), tables)
    assert notes == [f'model.{key}: set, but model.kind = "trainable" does not read it (kinds "online" and "analytic" '
                     "do): remove it, or choose a kind that reads it" for key in ("gamma", "temperature", "forgetting")]


def _daemon_lines(monkeypatch, start) -> list[dict]:
    """The JSON log lines of a daemon start (``start()``, returning its exit code) that stops before any client."""
    import connectors.daemon_cli as daemon_cli
    import connectors.daemon_run as daemon_run

    monkeypatch.setattr(daemon_run, "_build_and_run", lambda *args: 0)  # no broker: only the start-up warnings
    buf = io.StringIO()
    monkeypatch.setattr(daemon_cli, "setup_logging", lambda *a, **k: setup_logging("INFO", fmt="json", stream=buf))
    setup_logging("INFO", fmt="json", stream=buf)
    try:
        assert start() == 0
    finally:
        teardown_logging()
    return [json.loads(line) for line in buf.getvalue().splitlines()]


DAEMON_TOML = ('[source]\nkind = "kafka"\n[kafka]\ntopics = ["events"]\n[metrics]\nenabled = false\n'
               '[model]\nkind = "trainable"\ngamma = 1.0\n')
DAEMON_NOTE = ('model.gamma: set, but model.kind = "trainable" does not read it (kinds "online" and "analytic" do): '
               "remove it, or choose a kind that reads it")


@pytest.mark.parametrize("entry", ["daemon", "cli"])
def test_the_daemon_logs_the_same_warning_once_at_start(tmp_path, monkeypatch, entry):
    import connectors.cli
    import connectors.daemon_cli as daemon_cli

    cfg = tmp_path / "daemon.toml"
    cfg.write_text(DAEMON_TOML)
    if entry == "daemon":
        lines = _daemon_lines(monkeypatch, lambda: daemon_cli.main(["--config", str(cfg), "--log-format", "json"]))
    else:
        monkeypatch.setattr("connectors.logs.setup_logging", lambda *a, **k: None)  # the test's handler stays
        lines = _daemon_lines(monkeypatch, lambda: connectors.cli.main(["run", "--config", str(cfg)]))
    warnings = [d for d in lines if d["event"] == "config_warning"]
    assert [(d["level"], d["logger"], d["detail"]) for d in warnings] == [("WARNING", "stream_cl.daemon", DAEMON_NOTE)]


def test_a_daemon_config_whose_keys_are_all_read_logs_no_config_warning(tmp_path, monkeypatch):
    import connectors.daemon_cli as daemon_cli

    cfg = tmp_path / "daemon.toml"
    cfg.write_text(DAEMON_TOML.replace('kind = "trainable"', 'kind = "online"'))  # the online model reads gamma
    lines = _daemon_lines(monkeypatch, lambda: daemon_cli.main(["--config", str(cfg), "--log-format", "json"]))
    assert not [d for d in lines if d["event"] == "config_warning"]


# -- 4: nan / inf in a CSV cell ----------------------------------------------------------------------
def test_the_readme_says_nan_and_inf_text_is_a_number_in_a_csv_and_what_becomes_of_it():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "`nan`, `inf` and `infinity` in any case" in readme
    assert ('a NaN cell makes the row a `non_finite` dead letter (`"reject"`, the default) or is read as null '
            '(`"missing"`), and an infinity always makes it a `non_finite` dead letter') in readme
    # what the README says is what the decoder does
    for policy, nan_becomes in (("reject", "non_finite"), ("missing", None)):
        decoder = EventDecoder(MappingConfig(nan_policy=policy))
        for cell in ("NaN", "nan", " NAN "):
            out = decoder.decode_csv_row({"name": cell, "y": "p"}, b"", "d.csv:2")
            assert (out.reason if nan_becomes else out.x["name"]) == nan_becomes
        for cell in ("Inf", "-inf", "Infinity", "iNfInItY"):
            assert decoder.decode_csv_row({"name": cell, "y": "p"}, b"", "d.csv:2").reason == "non_finite"
        assert decoder.decode_csv_row({"name": "nano", "y": "p"}, b"", "d.csv:2").x == {"name": "nano"}


# -- 5: --features NAME on JSON ---------------------------------------------------------------------
def test_one_json_field_named_as_the_features_field_says_how_to_learn_it_itself(tmp_path, capsys):
    path = _jsonl(tmp_path, [{"amount": float(i % 7), "y": "pq"[i % 2]} for i in range(40)])
    dead = tmp_path / "dl.jsonl"
    code = main(["run", "--source", str(path), "--features", "amount", "--quiet", "--dead-letters", str(dead)])
    assert code == 1  # every record a dead letter: documented meaning (the field holding the features) kept
    letter = json.loads(dead.read_text().splitlines()[0])
    assert letter["reason"] == "bad_features"
    assert letter["detail"] == ("field 'amount': expected an object or a list, got float 0.0; to learn the top-level "
                                "field 'amount' itself, name it in a list: features = [\"amount\"] (command line: "
                                "--features amount,)")
    capsys.readouterr()
    code, report = _run(tmp_path, ["--source", str(path), "--features", "amount,"])  # following the hint works
    assert code == 0 and report["events"] == 40 and report["dead_letters_total"] == 0


def test_the_features_flag_help_documents_one_top_level_field(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "one top-level JSON field learned itself takes a trailing comma: --features amount," in help_text


# -- 6: one_event_breakdown --n below --warm ----------------------------------------------------------
@pytest.mark.parametrize("n", ["100", "2000"])
def test_one_event_breakdown_refuses_no_timed_events(capsys, n):
    from benchmarks import one_event_breakdown

    with pytest.raises(SystemExit) as done:
        one_event_breakdown.main(["--n", n, "--warm", "2000"])
    assert done.value.code == 2
    assert f"error: --n ({int(n):,}) must be greater than --warm (2,000)" in capsys.readouterr().err
