"""Review 30: a file run stopped part-way, a full disk, and a NUL in a path.

F6: a run stopped by SIGINT/SIGTERM wrote a report and a summary that read like a whole run of a shorter stream.
F9: a full disk at a write of the predictions, the dead letters or the report was an OSError traceback (exit 1),
and with ``--report`` the whole run's result was lost. F8: a NUL in a path reached ``os.stat`` (ValueError
traceback); the config refuses it as it reads a file, a Config made in code reached the run.

Signals are raised by the process itself at a known point (after the first batch's progress update), and a full
disk is a patched write raising ENOSPC (``/dev/full`` where the system has it): no sleeps.
"""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest

import connectors.report_file as report_file
import connectors.run as run_module
from connectors.cli import main
from stream_cl.config import Config, ConfigError, RunConfig, SourceConfig

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _events(tmp_path, n: int = 50) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({"x": {"a": i % 3}, "y": i % 2}) + "\n" for i in range(n)))
    return path


def _signal_after_first_batch(monkeypatch, sig) -> None:
    """The first progress update (after the first batch) raises ``sig`` in this process: a Ctrl-C part-way."""
    original = run_module.Progress.update
    raised = []

    def update(self, *args, **kwargs):
        if not raised:
            raised.append(sig)
            signal.raise_signal(sig)  # the run's handler has run when this returns
        return original(self, *args, **kwargs)

    monkeypatch.setattr(run_module.Progress, "update", update)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_run_stopped_part_way_says_so_in_report_and_summary(tmp_path, monkeypatch, capsys, sig):
    _signal_after_first_batch(monkeypatch, sig)
    report = tmp_path / "r.json"
    code = main(["run", "--source", str(_events(tmp_path)), "--batch-size", "10", "--report", str(report),
                 "--dead-letters", ""])
    assert code == 0  # a clean stop
    data = json.loads(report.read_text())
    assert data["complete"] is False and data["stopped_by"] == sig.name and data["records_read"] == 10
    assert data["events"] == 10
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (f"stopped by {sig.name} before the end of the source: the report and this summary "
                                   "cover the 10 records read")


def test_a_quiet_stopped_run_says_so_on_stderr(tmp_path, monkeypatch, capsys):
    _signal_after_first_batch(monkeypatch, signal.SIGINT)
    code = main(["run", "--source", str(_events(tmp_path)), "--batch-size", "10", "--dead-letters", "", "--quiet"])
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    # --quiet prints no summary: the line names the report alone (review r111 D3)
    assert "stopped by SIGINT before the end of the source: the report covers the 10 records read" in captured.err


@pytest.mark.parametrize("max_events", [None, 20])
def test_a_whole_run_and_one_cut_at_max_events_are_complete(tmp_path, max_events):
    config = Config(source=SourceConfig(kind="file", path=str(_events(tmp_path))),
                    run=RunConfig(batch_size=10, max_events=max_events, dead_letters="", progress=False))
    report = run_module.run_file(config)
    assert report["complete"] is True and "stopped_by" not in report and "records_read" not in report
    assert run_module.stopped_line(report) is None
    assert "stopped" not in run_module.summary(report)


def test_a_report_of_older_code_reads_as_complete():
    assert run_module.stopped_line({"events": 3}) is None  # no "complete" key: it ran to its end


def test_a_stop_flag_set_by_the_caller_is_named_as_a_stop(tmp_path):
    import threading

    stop = threading.Event()
    stop.set()
    config = Config(source=SourceConfig(kind="file", path=str(_events(tmp_path))),
                    run=RunConfig(dead_letters="", progress=False))
    report = run_module.run_file(config, stop=stop)
    assert (report["complete"], report["stopped_by"], report["records_read"]) == (False, "stop", 0)


def _full_disk(monkeypatch, cls) -> None:
    def write(self, items):
        raise ENOSPC

    monkeypatch.setattr(cls, "write", write)


@pytest.mark.parametrize("flag,key,cls", [("--predictions", "run.predictions", "JsonlPredictionSink"),
                                          ("--dead-letters", "run.dead_letters", "JsonlDeadLetterSink")])
def test_a_full_disk_at_an_output_is_an_error_naming_it_and_the_report_is_written(tmp_path, monkeypatch, capsys,
                                                                                  flag, key, cls):
    _full_disk(monkeypatch, getattr(run_module, cls))
    events = _events(tmp_path)
    events.write_text("{not json\n" + events.read_text())  # a dead letter in the first batch
    out_path, report = tmp_path / "out.jsonl", tmp_path / "r.json"
    args = ["run", "--source", str(events), "--batch-size", "10", "--report", str(report), "--dead-letters", ""]
    code = main(args + [flag, str(out_path)])
    assert code == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert (f"error: cannot write {key} {str(out_path)!r} (No space left on device); free space there or choose "
            "another path") in captured.err
    assert captured.out.startswith("stopped by a failed output write")  # the summary, still printed
    data = json.loads(report.read_text())  # the run stopped there, and its report says so
    assert data["complete"] is False and data["stopped_by"] == "output_error" and key in data["output_errors"]


def _report_write_fails(monkeypatch, target: Path) -> None:
    original = Path.write_text

    def write_text(self, *args, **kwargs):
        if self == target:
            raise ENOSPC
        return original(self, *args, **kwargs)

    def replace(path, text, mode=None):  # the report's atomic write (connectors.report_file) meets the full disk first
        if Path(path) == target:
            raise ENOSPC
        return original_replace(path, text, mode)

    original_replace = report_file._replace
    monkeypatch.setattr(Path, "write_text", write_text)
    monkeypatch.setattr(report_file, "_replace", replace)


@pytest.mark.parametrize("quiet", [False, True])
def test_a_report_that_cannot_be_written_leaves_the_summary(tmp_path, monkeypatch, capsys, quiet):
    report = tmp_path / "r.json"
    _report_write_fails(monkeypatch, report)
    code = main(["run", "--source", str(_events(tmp_path)), "--report", str(report), "--dead-letters", ""]
                + ["--quiet"] * quiet)
    assert code == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert (f"error: cannot write run.report {str(report)!r} (No space left on device); free space there or choose "
            "another path") in captured.err
    # the summary is the run's only result now: on stdout, or with --quiet on stderr (stdout may be the predictions)
    where = captured.err if quiet else captured.out
    assert "events: 50 (50 labelled, 0 predict-only)" in where
    if quiet:
        assert captured.out == ""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_predictions_to_dev_full_exit_1_without_a_traceback(tmp_path, capsys):
    code = main(["run", "--source", str(_events(tmp_path)), "--predictions", "/dev/full", "--dead-letters", "",
                 "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error: cannot write run.predictions '/dev/full' (No space left on device)" in err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_sink_whose_last_flush_fails_is_closed_anyway():
    from stream_cl.events import DeadLetter

    sink = run_module.JsonlDeadLetterSink("/dev/full")
    sink.write([DeadLetter(b"x", "malformed", "bad", "e.jsonl:1")])  # buffered: the disk is full at the flush
    file = sink._file
    with pytest.raises(OSError) as raised:
        sink.close()
    assert raised.value.errno == errno.ENOSPC
    assert file.closed  # not left for the collector, which would fail the same flush again
    sink.close()  # closing again does nothing


@pytest.mark.parametrize("where", ["report", "source"])
def test_a_nul_in_a_path_of_a_config_made_in_code_is_a_config_error(tmp_path, where):
    source = str(_events(tmp_path))
    run = RunConfig(dead_letters="", progress=False)
    if where == "report":
        run = RunConfig(report=str(tmp_path / "r\x00.json"), dead_letters="", progress=False)
    else:
        source = source + "\x00"
    config = Config(source=SourceConfig(kind="file", path=source), run=run)
    key = "run.report" if where == "report" else "source.path"
    with pytest.raises(ConfigError, match=f"^{key}: a path with a NUL character in it"):
        run_module.run_file(config)
