"""Review r77: a file run's report after a kill, and its exit after a late signal.

F1: a run killed mid-way left the report of the run before it, ``"complete": true``, beside its own cut
predictions. F2: the report was written in place, so a kill or a failing disk in its write left a file
cut inside its JSON. F3: a SIGTERM during the interpreter's teardown after a finished run (~1.4 s with
torch loaded) was a death by signal (exit 143), not the clean exit 0 of a stop.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import connectors.report_file as report_file
import connectors.run as run_module
from connectors.report_file import clear_report, write_report
from connectors.run import run_file
from stream_cl.config import load_config_dict

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, n: int = 300):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"x": i % 7, "y": "ab"[i % 2]}) + "\n" for i in range(n)))
    return load_config_dict({
        "source": {"kind": "file", "path": str(src)},
        "run": {"report": str(tmp_path / "report.json"), "predictions": str(tmp_path / "pred.jsonl"),
                "batch_size": 50, "progress": False},
    })


def test_a_run_that_dies_midway_leaves_no_earlier_report_saying_complete(tmp_path, monkeypatch):
    config = _config(tmp_path)
    whole = run_file(config, warn=lambda _: None)
    assert whole["complete"] and json.loads((tmp_path / "report.json").read_text())["complete"]

    calls = []

    def dies(self, events):  # the second batch: as a SIGKILL would, after some predictions were written
        calls.append(len(events))
        if len(calls) == 2:
            raise RuntimeError("killed")
        return original(self, events)

    original = run_module.Prequential.process
    monkeypatch.setattr(run_module.Prequential, "process", dies)
    with pytest.raises(RuntimeError, match="killed"):
        run_file(config, warn=lambda _: None)
    assert not (tmp_path / "report.json").exists()  # (was: the first run's, "complete": true)


def test_a_report_write_that_fails_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text('{"complete": true, "events": 1}')

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report_file.os, "fsync", full_disk)
    report = {"complete": True, "events": 2, "big": "x" * 100_000}
    write_report(str(path), report)
    assert json.loads(path.read_text()) == {"complete": True, "events": 1}  # whole, not cut inside its JSON
    assert "No space left on device" in report["output_errors"]["run.report"]
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left


def test_a_report_replaces_the_file_by_a_rename(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("{}")
    before = path.stat().st_ino
    write_report(str(path), {"events": 5})
    assert json.loads(path.read_text()) == {"events": 5}
    assert path.stat().st_ino != before  # a new file renamed over the name, never one cut and rewritten


def test_a_linked_report_is_written_through_its_link(tmp_path):
    target, link = tmp_path / "real.json", tmp_path / "report.json"
    target.write_text('{"complete": true}')
    link.symlink_to(target)
    clear_report(str(link))
    assert link.is_symlink() and target.read_text() == ""  # the link is the user's: its file emptied
    write_report(str(link), {"events": 7})
    assert link.is_symlink() and json.loads(target.read_text()) == {"events": 7}


def test_a_pipe_as_the_report_is_left_alone_at_the_start(tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    clear_report(str(fifo))  # (opening it for writing would block: nothing is opened)
    assert fifo.exists() and not fifo.is_file()


def test_a_folder_that_takes_no_new_file_gets_the_report_in_place(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("{}")
    before = path.stat().st_ino

    def read_only_folder(target, raw, tmp, mode=None):  # (root, as CI runs, may write anywhere: the refusal is simulated)
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp))

    monkeypatch.setattr(report_file, "write_atomically", read_only_folder)
    report = {"events": 9}
    write_report(str(path), report)
    assert json.loads(path.read_text()) == {"events": 9} and "output_errors" not in report
    assert path.stat().st_ino == before  # written in place


def test_a_signal_during_the_teardown_after_a_run_is_not_a_death_by_signal():
    # an atexit hook runs in the teardown after the entry point's exit: a SIGTERM then, as a supervisor's
    # stop that came a moment late, must leave the settled exit code (was: killed, exit 143)
    code = textwrap.dedent("""
        import atexit, os, signal
        import connectors.cli as cli
        cli.main = lambda argv=None: 0
        atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM))
        cli.entry()
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)


def test_the_command_is_the_settled_entry_point():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'stream-cl = "connectors.cli:entry"' in text
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN  # (importing the module changes nothing)


def test_a_signal_after_the_exit_code_is_settled_ends_a_hanging_teardown_with_that_code():
    # review r79: ignored, a signal could not end a teardown that hangs; it now skips the rest of it
    code = textwrap.dedent("""
        import atexit, os, signal
        import connectors.cli as cli
        cli.main = lambda argv=None: 0
        atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), print("the teardown went on", flush=True)))
        cli.entry()
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "went on" not in proc.stdout, (proc.returncode, proc.stdout, proc.stderr)


def test_a_private_report_stays_private_and_a_killed_write_leaves_nothing(tmp_path):
    config = _config(tmp_path)
    report = tmp_path / "report.json"
    report.write_text("{}")
    report.chmod(0o600)
    stale = tmp_path / f".report.json.{os.getpid() + 1}.tmp"  # a write killed before its rename
    stale.write_text('{"comp')
    other = tmp_path / ".other.json.7.tmp"  # not the report's
    other.write_text("")
    run_file(config, warn=lambda _: None)
    assert json.loads(report.read_text())["complete"] and (report.stat().st_mode & 0o777) == 0o600
    assert not stale.exists() and other.exists()

