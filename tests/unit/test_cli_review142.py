"""Review r142: the ``stream-cl`` command line as a user meets it for file runs.

F1 (low): ``--report /dev/stdout --quiet`` whose reader had left exited 1 with "cannot write run.report
'/dev/stdout' (Broken pipe)", where the README gives a reader of stdout that leaves exit 141 (as
``--predictions /dev/stdout`` has): the report's write took the closed pipe for a failed disk.
F2 (low): an output path ending in "/" that did not exist yet (``--report out/``, a folder meant) was written
as a file named ``out``; one that existed was refused. Now both are refused by name (exit 2).
F3 (low): ``stream-cl report`` of a run stopped early (``"complete": false``) drew and named its plots as a
whole run's: nothing said they cover only the records read before the stop.
F4 (low): with an output on stdout (``--predictions /dev/stdout | jq``), the summary was printed after the
JSON lines on stdout, a line no JSON reader parses; it now goes to stderr there, as ``--quiet``'s lines do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from connectors.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _events(path: Path, n: int = 20) -> Path:
    path.write_text("".join(json.dumps({"x": [i % 3, 1.0], "y": str(i % 2)}) + "\n" for i in range(n)))
    return path


def _cli(tmp_path: Path, *args: str, close_stdout: bool = False) -> tuple[int, str, str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    run = subprocess.Popen([sys.executable, "-m", "connectors.cli", *args], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if close_stdout:  # the reader left before anything was written (`| true`)
        run.stdout.close()
        out = ""
    else:
        out = run.stdout.read().decode()
    err = run.stderr.read().decode()
    return run.wait(timeout=300), out, err


def test_a_report_written_to_a_stdout_whose_reader_left_exits_141(tmp_path):
    src = _events(tmp_path / "e.jsonl")
    code, _, err = _cli(tmp_path, "run", "--source", str(src), "--quiet", "--dead-letters", "",
                        "--report", "/dev/stdout", close_stdout=True)
    assert code == 141, err
    assert "Traceback" not in err and "cannot write run.report" not in err


def test_an_output_path_ending_in_a_slash_is_refused_not_written_as_a_file(tmp_path, capsys):
    src = _events(tmp_path / "e.jsonl")
    for flag in ("--report", "--predictions", "--dead-letters"):
        target = tmp_path / f"out{flag}"
        assert main(["run", "--source", str(src), "--quiet", flag, f"{target}/"]) == 2
        assert f"run.{flag[2:].replace('-', '_')}" in capsys.readouterr().err
        assert not target.exists()  # no file named as the folder meant


def test_the_plots_of_a_run_stopped_early_say_so(tmp_path, capsys):
    report = {"source": "file", "model": "OnlineContinualLearner", "complete": False, "stopped_by": "SIGINT",
              "records_read": 2048, "events": 2040, "accuracy": 0.9, "window": 100,
              "windowed_accuracy": [{"events": 100 * i, "accuracy": 0.9, "t": float(i)} for i in range(1, 20)]}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(report))
    assert main(["report", str(path), "--out", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "stopped by SIGINT" in out and "2,048 records read" in out
    from PIL import Image

    described = Image.open(tmp_path / "plots" / "accuracy.png").info.get("Description", "")
    assert "stopped by SIGINT" in described


def test_a_whole_run_s_plots_say_nothing_of_a_stop(tmp_path, capsys):
    report = {"complete": True, "events": 10, "accuracy": 0.5, "windowed_accuracy": []}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(report))
    assert main(["report", str(path)]) == 0
    assert "stopped" not in capsys.readouterr().out


def test_the_summary_goes_to_stderr_when_stdout_carries_the_predictions(tmp_path):
    src = _events(tmp_path / "e.jsonl")
    code, out, err = _cli(tmp_path, "run", "--source", str(src), "--dead-letters", "", "--predictions", "/dev/stdout")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 20 and all(json.loads(line)["origin"].endswith(f"e.jsonl:{i}") for i, line in
                                    enumerate(lines, 1))
    assert "events: 20 (20 labelled, 0 predict-only)" in err


def test_the_summary_stays_on_stdout_when_no_output_is_there(tmp_path):
    src = _events(tmp_path / "e.jsonl")
    code, out, _ = _cli(tmp_path, "run", "--source", str(src), "--dead-letters", "", "--predictions",
                        str(tmp_path / "p.jsonl"))
    assert code == 0 and out.startswith("events: 20 (20 labelled")
    assert os.path.getsize(tmp_path / "p.jsonl") > 0
