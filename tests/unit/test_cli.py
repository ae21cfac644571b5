"""The CLI, the file run loop and the README's configuration reference."""

import json
import re
import tomllib
from pathlib import Path

import pytest

from connectors.cli import main
from stream_cl.config import ConfigError, load_config, load_config_dict

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_to_its_summary(tmp_path, capsys):
    report_path = tmp_path / "run.json"
    code = main(["run", "--max-events", "3000", "--report", str(report_path), "--dead-letters", str(tmp_path / "dlq.jsonl"),
                 "--predictions", str(tmp_path / "pred.jsonl")])
    assert code == 0
    out = capsys.readouterr().out
    assert "prequential accuracy" in out and "dead letters: 1 (malformed: 1)" in out
    # run.window unset: chosen as the run went (2,880 labelled: 72 windows of 40), the summary says it thins them
    assert "accuracy per 40 labelled events (every 6th of 72 windows): " in out
    report = json.loads(report_path.read_text())
    assert report["events"] == 2999 and report["dead_letters"] == {"malformed": 1}
    assert report["accuracy"] > 0.8
    assert report["labelled"] + report["predict_only"] == report["events"]
    assert sum(report["class_counts"].values()) == report["labelled"]
    assert report["window"] == 40 and len(report["windowed_accuracy"]) == 72
    predictions = (tmp_path / "pred.jsonl").read_text().splitlines()
    assert len(predictions) == 2999
    dead = json.loads((tmp_path / "dlq.jsonl").read_text())
    assert dead["reason"] == "malformed" and dead["origin"].endswith(":1002")


def test_a_file_source_with_a_config(tmp_path, capsys):
    events = tmp_path / "events.csv"
    rows = ["a,b,label"] + [f"{i % 3},{(i * 7) % 5},{'yes' if i % 3 + (i * 7) % 5 >= 3 else 'no'}" for i in range(300)]
    events.write_text("\n".join(rows) + "\n")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[source]\nkind = "file"\npath = "{events}"\n[mapping]\nfeatures = ["a", "b"]\nlabel = "label"\n'
                   f'[model]\nkind = "analytic"\nforgetting = [1.0]\n[run]\nreport = "{tmp_path / "r.json"}"\ndead_letters = ""\n')
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["events"] == 300 and report["accuracy"] > 0.9
    assert set(report["classes"]) == {"yes", "no"}


def test_model_analytic_from_the_command_line_takes_one_head_unless_the_config_sets_forgetting(tmp_path, capsys):
    from connectors.cli import _config_from_args, _parser

    events = _csv(tmp_path)
    report = tmp_path / "r.json"
    args = ["run", "--source", str(events), "--label", "label", "--model", "analytic", "--quiet", "--dead-letters", ""]
    assert main([*args, "--report", str(report)]) == 0  # not the online model's two default heads: a config error
    assert json.loads(report.read_text())["model"] == "AnalyticClassifier"
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[model]\nforgetting = [0.99]\n")
    assert _config_from_args(_parser().parse_args([*args, "--config", str(cfg)])).model.forgetting == [0.99]
    cfg.write_text("[model]\nforgetting = [1.0, 0.995]\n")  # set, though equal to the default: kept, and refused
    assert main([*args, "--config", str(cfg)]) == 2
    assert "model.forgetting: the analytic model has one head" in capsys.readouterr().err


def test_config_errors_name_the_key_and_exit_2(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[model]\nforgeting = [1.0]\n")
    assert main(["run", "--config", str(cfg)]) == 2
    assert "model.forgeting: unknown key; did you mean 'forgetting'?" in capsys.readouterr().err
    assert main(["run", "--source", str(tmp_path / "missing.jsonl")]) == 2
    assert "source.path: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "data, message",
    [
        ({"run": {"batch_size": 0}}, "run.batch_size: must be > 0"),
        ({"model": {"kind": "forest"}}, "model.kind: must be one of"),
        ({"model": {"forgetting": "0.99"}}, "model.forgetting: expected a list"),
        ({"source": {"follow": "yes"}}, "source.follow: expected true or false"),
        ({"mapping": 3}, "mapping: expected a table"),
        ({"kafka": {"topics": ["events"], "predictions_topic": "bad topic!"}},
         "kafka.predictions_topic: 'bad topic!' is not a legal Kafka topic name"),
        ({"kafka": {"topics": ["ok", "x" * 250]}}, "kafka.topics: 'xxx"),
        ({"kafka": {"topics": ["events"], "dead_letter_topic": ".."}}, "kafka.dead_letter_topic: '..' is not"),
        # the broker would abort every transaction before its commit: the daemon would start over forever
        ({"kafka": {"commit_interval_ms": 20_000, "transaction_timeout_ms": 5_000}},
         "kafka.commit_interval_ms: must be below kafka.transaction_timeout_ms (got 20000 >= 5000)"),
        ({"kafka": {"commit_interval_ms": 60_000}}, "kafka.commit_interval_ms: must be below kafka.transaction_timeout_ms"),
        # refused where the file is read, naming the key (the learner's own check came mid-stream or unnamed)
        ({"replay": {"seed": -1}}, "replay.seed: must be >= 0 (got -1)"),
        ({"homeostasis": {"lr_sensitivity": [0.25, float("nan")]}}, "homeostasis.lr_sensitivity: must be finite numbers"),
        ({"homeostasis": {"z": float("inf")}}, "homeostasis.z: must be a finite number >= 0 (got inf)"),
        ({"homeostasis": {"max_need": float("inf")}}, "homeostasis.max_need: must be a finite number >= 1e-300 (got inf)"),
        ({"model": {"max_columns": -1}}, "model.max_columns: must be >= 0 (got -1)"),
        # a run that read nothing said "the source held no events"; an empty list dead-lettered every event
        ({"run": {"max_events": 0}}, "run.max_events: must be > 0 (got 0)"),
        ({"run": {"max_events": -5}}, "run.max_events: must be > 0 (got -5)"),
        ({"mapping": {"features": []}}, "mapping.features: an empty list names no feature"),
        # the label learned as a feature: 0.9987 accuracy on random labels
        ({"mapping": {"features": ["a", "y"]}}, "mapping.features: names 'y', the label field (mapping.label)"),
        ({"mapping": {"features": ["a", "target"], "label": "target"}}, "mapping.features: names 'target', the label"),
        ({"mapping": {"features": ["key", "a"], "id": "key"}}, "mapping.features: names 'key', the id field (mapping.id)"),
    ],
)
def test_config_validation_messages(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config_dict(data)


def test_the_readme_configuration_reference_is_a_valid_config(tmp_path):
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Configuration reference.*?```toml\n(.*?)```", readme, re.S).group(1)
    config = load_config_dict(tomllib.loads(block))
    assert config.model.forgetting == [1.0, 0.995]
    path = tmp_path / "c.toml"
    path.write_text(block)
    assert load_config(path) == config


def test_every_config_key_is_documented():
    """Each key of each section appears in the README's reference or the daemon/observability docs."""
    import dataclasses

    from stream_cl.config import Config

    docs = {name: (ROOT / name).read_text() for name in ("README.md", "docs/daemon.md", "docs/observability.md")}
    readme_blocks = [tomllib.loads(b) for b in re.findall(r"```toml\n(.*?)```", docs["README.md"], re.S)
                     if b.lstrip().startswith("[") and "TOML" not in b]
    documented = {(section, key) for block in readme_blocks for section, table in block.items() for key in table}
    missing = []
    for section in dataclasses.fields(Config):
        for key in dataclasses.fields(section.type if isinstance(section.type, type) else getattr(Config(), section.name)):
            in_readme = (section.name, key.name) in documented or f"# {key.name} =" in docs["README.md"]
            in_docs = f"`{key.name}`" in docs["docs/daemon.md"] or f"{key.name} =" in docs["docs/observability.md"]
            if not (in_readme or in_docs):
                missing.append(f"{section.name}.{key.name}")
    assert not missing, f"undocumented config keys: {missing}"
    for block in readme_blocks:  # and what the README shows is a valid config
        load_config_dict(block)


def test_the_metrics_doc_says_an_aborted_transaction_starts_over_in_the_same_process():
    """As the daemon does (Daemon.run resets on TransactionAborted; run_daemon rebuilds it), and docs/daemon.md says."""
    row = next(line for line in (ROOT / "docs/observability.md").read_text().splitlines()
               if line.startswith("| `stream_cl_transactions_total`"))
    aborted = row.split("`aborted`", 1)[1].split("`fenced`", 1)[0]
    assert "starts over in the same process" in aborted and "exits" not in aborted


# -- mapping mistakes a new user makes: said, named, never silent --------------------------------
def _csv(tmp_path, header="a,b,c,label", n=400) -> Path:
    rows = [header] + [f"{i % 3},{(i * 7) % 5},{i % 2},{'red' if i % 3 + (i * 7) % 5 >= 3 else 'blue'}" for i in range(n)]
    path = tmp_path / "events.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_misspelled_feature_column_is_a_config_error(tmp_path, capsys):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[source]\nkind = "file"\npath = "{_csv(tmp_path)}"\n[mapping]\nfeatures = ["a", "bb", "c"]\nlabel = "label"\n')
    assert main(["run", "--config", str(cfg), "--quiet", "--dead-letters", ""]) == 2
    err = capsys.readouterr().err
    assert "mapping.features: no column 'bb' in the header of" in err and "(its columns: a, b, c, label)" in err
    assert "did you mean 'b'?" in err


def test_an_unusable_csv_header_is_a_config_error_and_the_output_files_are_closed(tmp_path, capsys, monkeypatch):
    import connectors.run

    opened = []

    class Sink(connectors.run.JsonlPredictionSink):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(connectors.run, "JsonlPredictionSink", Sink)
    path = tmp_path / "dup.csv"
    path.write_text("a,a,y\n1,2,x\n3,4,y\n")
    code = main(["run", "--source", str(path), "--quiet", "--predictions", str(tmp_path / "p.jsonl"), "--dead-letters", ""])
    assert code == 2
    assert f"config error: source.path: {path}:1: the CSV header repeats column 'a'" in capsys.readouterr().err
    assert len(opened) == 1 and opened[0]._file is None  # closed, though the run ended in an error


def test_a_misspelled_feature_field_in_json_is_warned_with_the_fields_seen(tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({"a": i % 3, "b": i % 5, "y": i % 2}) + "\n" for i in range(50)))
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[source]\nkind = "file"\npath = "{path}"\n[mapping]\nfeatures = ["a", "bb"]\n'
                   f'[run]\nreport = "{tmp_path / "r.json"}"\ndead_letters = ""\n')
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0  # it learns on "a": a warning, not an error
    err = capsys.readouterr().err
    assert "mapping.features: field 'bb' was in none of the first 50 events (fields seen: a, b, y); did you mean 'b'?" in err
    assert json.loads((tmp_path / "r.json").read_text())["warnings"] == [err.strip().removeprefix("warning: ")]


@pytest.mark.parametrize("label_args", [["--label", "lable"], []])  # a typo, or the default "y" on a "label" column
def test_a_wrong_label_column_is_named_and_the_run_fails(tmp_path, capsys, label_args):
    code = main(["run", "--source", str(_csv(tmp_path)), *label_args, "--quiet", "--dead-letters", str(tmp_path / "d.jsonl")])
    err = capsys.readouterr().err
    wrong = label_args[1] if label_args else "y"
    assert f"mapping.label: no column '{wrong}' in the header of" in err and "(its columns: a, b, c, label)" in err
    assert code == 1 and "error: " in err  # nothing could be learned: not a success


def test_output_files_start_anew_unless_appending(tmp_path):
    args = ["run", "--max-events", "500", "--quiet", "--predictions", str(tmp_path / "p.jsonl"),
            "--dead-letters", str(tmp_path / "d.jsonl")]
    assert main(args) == 0 and main(args) == 0
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 500  # not 1,000: the second run started anew
    cfg = tmp_path / "append.toml"
    cfg.write_text("[run]\nappend = true\n")
    assert main([*args, "--config", str(cfg)]) == 0
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 1000


@pytest.mark.parametrize("flag", ["--predictions", "--dead-letters", "--report"])
def test_an_output_that_is_the_source_is_a_config_error_and_the_source_is_kept(tmp_path, capsys, flag):
    source = _csv(tmp_path)
    before = source.read_bytes()
    args = ["run", "--source", str(source), "--features", "a,b,c", "--label", "label", "--quiet"]
    assert main([*args, flag, str(source)]) == 2
    assert "is the source file (source.path); writing it would destroy the input" in capsys.readouterr().err
    link = tmp_path / "link.csv"
    link.symlink_to(source)  # another name for the same file
    assert main([*args, flag, str(link)]) == 2
    assert source.read_bytes() == before


def test_outputs_that_cannot_be_written_are_config_errors_before_the_run(tmp_path, capsys):
    args = ["run", "--max-events", "50", "--quiet"]
    (tmp_path / "dir").mkdir()
    assert main([*args, "--report", str(tmp_path / "dir")]) == 2  # used to fail after the whole run
    assert f"run.report: cannot write {str(tmp_path / 'dir')!r} (it is a directory)" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main([*args, "--predictions", str(tmp_path / "file" / "p.jsonl")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    same = str(tmp_path / "out.jsonl")
    assert main([*args, "--predictions", same, "--dead-letters", same]) == 2
    assert "run.dead_letters: " in capsys.readouterr().err


def test_a_followed_file_writes_its_output_while_it_is_followed(tmp_path):
    """Predictions and dead letters of a followed file reached their files only at the close."""
    import threading

    from connectors.run import run_file

    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps({"x": {"a": float(i)}, "y": i % 2, "id": str(i)}) + "\n" for i in range(20))
                      + "{bad\n")
    cfg = load_config_dict({"source": {"kind": "file", "path": str(source), "follow": True},
                            "run": {"predictions": str(tmp_path / "p.jsonl"), "dead_letters": str(tmp_path / "d.jsonl"),
                                    "progress": False, "batch_size": 8}})
    stop, result = threading.Event(), {}
    worker = threading.Thread(target=lambda: result.update(run_file(cfg, stop)))
    worker.start()
    try:
        # each line waits for its output file (no sleeping: the test polls the files it waits for)
        _wait_until(lambda: _lines(tmp_path / "p.jsonl") == 20 and _lines(tmp_path / "d.jsonl") == 1)
    finally:
        stop.set()
        worker.join(60)
    assert result["events"] == 20


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _wait_until(condition, timeout_s: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- the command line itself ----------------------------------------------------------------------
def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, contextlib, io\nfrom connectors.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n    main(['run', '--help'])\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"  # torch (seconds to import) only when a model is built


def test_run_help_lists_the_daemon_flags_and_how_to_name_several_columns(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--kafka-log-level" in text and "--features a,b,c" in text


def test_features_flag_takes_several_columns(tmp_path):
    from connectors.cli import _config_from_args, _parser

    config = _config_from_args(_parser().parse_args(["run", "--features", "a, b,c", "--label", "label"]))
    assert config.mapping.features == ["a", "b", "c"] and config.mapping.label == "label"
    assert _config_from_args(_parser().parse_args(["run", "--features", "x"])).mapping.features == "x"


def test_pyproject_license_is_an_spdx_expression():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"  # a table makes setuptools warn (deprecated)
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])  # PEP 639 support


def test_the_command_chooses_openblas_avx512_kernels_where_the_cpu_has_them():
    """OpenBLAS picked its AVX2 kernels on this AVX-512 VM (RESULTS.md 9s); the command sets
    OPENBLAS_CORETYPE before numpy loads, where the CPU has every subset those kernels use."""
    import os
    import subprocess
    import sys

    from stream_cl.blas_kernels import AVX512_SUBSETS, cpu_flags

    probe = ("import connectors.daemon\n"  # python -m connectors.daemon; the stream-cl command imports connectors.cli
             "import os, numpy\nfrom threadpoolctl import threadpool_info\n"
             "print(os.environ.get('OPENBLAS_CORETYPE'), sorted({i.get('architecture') for i in threadpool_info()}))")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "STREAM_CL_BLAS_KERNELS")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT,
                         check=True).stdout.split("\n")[-2]
    if all(f in cpu_flags() for f in AVX512_SUBSETS):
        assert out.startswith("SkylakeX") and "Haswell" not in out, out
    else:
        assert out.startswith("None"), out
    opted_out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True,
                               env={**env, "STREAM_CL_BLAS_KERNELS": "default"}).stdout.split("\n")[-2]
    assert opted_out.startswith("None"), opted_out


@pytest.mark.parametrize("section, text, said", [
    ("checkpoint", 'dir = "{tmp}/ckpt"', "a file run keeps no state between runs"),
    ("kafka", 'labels_topic = "labels"', "a file run reads no topic"),
    ("labels", "max_age_s = 60.0", "an event without a label is predicted, never learned"),
    ("metrics", "port = 0", "a file run serves no /metrics"),
    ("changelog", 'topic = "model-changelog"', "a file run writes no model changelog"),
])
def test_a_file_run_names_each_daemon_only_section_its_config_sets(tmp_path, capsys, section, text, said):
    # found by review: these sections were accepted for a file run and silently did nothing: a
    # restarted --follow run learned its file again ([checkpoint]); the unlabelled events of a config
    # meant for delayed labels were never learned ([kafka] labels_topic, [labels]); exit status 0
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({"x": {"a": i % 3}, "y": i % 2}) + "\n" for i in range(50)))
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[source]\nkind = "file"\npath = "{path}"\n[{section}]\n{text.format(tmp=tmp_path)}\n'
                   f'[run]\nreport = "{tmp_path / "r.json"}"\ndead_letters = ""\n')
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {section}: " in err and said in err and f"[{section}] applies to the Kafka daemon" in err
    assert json.loads((tmp_path / "r.json").read_text())["warnings"] == [err.strip().removeprefix("warning: ")]
    cfg.write_text(f'[source]\nkind = "file"\npath = "{path}"\n[run]\ndead_letters = ""\n')
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0 and "warning" not in capsys.readouterr().err


@pytest.fixture
def daemon_runs(monkeypatch):
    """Stands in for run_daemon (no broker): the configs the CLI would run the daemon with."""
    import connectors.daemon_run as daemon_run
    from connectors.logs import teardown_logging

    ran = []
    monkeypatch.setattr(daemon_run, "run_daemon", lambda config: ran.append(config) or 0)
    yield ran
    teardown_logging()  # the CLI set the daemon's logging up


@pytest.mark.parametrize("flag, instead", [
    ("--predictions", "kafka.predictions_topic"), ("--report", "kafka.status_file"), ("--dead-letters", "kafka.dead_letter_topic"),
])
def test_a_kafka_daemon_refuses_the_file_run_output_flags(tmp_path, capsys, daemon_runs, flag, instead):
    # found by review: the daemon accepted them, wrote none of the files, said nothing and exited 0
    cfg = tmp_path / "d.toml"
    cfg.write_text('[source]\nkind = "kafka"\n[kafka]\ntopics = ["events"]\n')
    assert main(["run", "--config", str(cfg), flag, str(tmp_path / "out")]) == 2 and not daemon_runs
    err = capsys.readouterr().err
    assert err.startswith(f"config error: {flag}: the Kafka daemon writes no ") and f"set {instead} " in err
    assert err.rstrip().endswith(f"and remove {flag}")
    assert main(["run", "--config", str(cfg)]) == 0 and len(daemon_runs) == 1  # without the flag it runs
    # an empty value turns the file off (README's --dead-letters ""): nothing to refuse, as in a config
    assert main(["run", "--config", str(cfg), flag, ""]) == 0 and len(daemon_runs) == 2


@pytest.mark.parametrize("run, refused", [
    ('report = "run.json"', "run.report"), ('predictions = "p.jsonl"', "run.predictions"),
    ('dead_letters = "dl.jsonl"', "run.dead_letters"), ('dead_letters = ""', None),
    ('dead_letters = "runs/dead-letters.jsonl"', None),  # the default: an explicit one cannot be told apart
])
def test_a_kafka_daemon_config_with_file_run_outputs_is_refused(tmp_path, capsys, daemon_runs, run, refused):
    cfg = tmp_path / "d.toml"
    cfg.write_text(f'[source]\nkind = "kafka"\n[kafka]\ntopics = ["events"]\n[run]\n{run}\n')
    code = main(["run", "--config", str(cfg)])
    if refused is None:
        assert code == 0 and len(daemon_runs) == 1
    else:
        assert code == 2 and not daemon_runs
        assert capsys.readouterr().err.startswith(f"config error: {refused}: the Kafka daemon writes no ")
