"""Review 30: ``stream-cl report`` on what is not a readable run report, and on reports whose plots had no bound.

F2: an unreadable report was a PermissionError traceback (exit 1). F7: the daemon's status file
(``kafka.status_file``) passed as a report: exit 0, empty plots, notes that contradicted the file. F5: the task
matrix figure grew 0.7 in a task (100 tasks: a 7370 x 7250 PNG, 2.1 GB to draw; 1000: a MemoryError traceback),
and a huge value (1e308 events) was a ValueError traceback.

Running as root, a file with mode 000 stays readable: the refusals are raised by a patched ``Path`` method.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from connectors.cli import main
from connectors.status import DaemonMetrics, jsonable_report

from test_report import png_size, written


def _denied(monkeypatch, method: str, target: Path) -> None:
    """``Path.<method>`` raises EACCES for ``target``, as for an ordinary user without read permission."""
    original = getattr(Path, method)

    def refused(self, *args, **kwargs):
        if self == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, method, refused)


@pytest.mark.parametrize("method", ["read_text", "is_dir"])  # the file itself; a folder on the way (stat fails)
def test_an_unreadable_report_is_an_error_naming_it(tmp_path, monkeypatch, capsys, method):
    report = tmp_path / "run.json"
    report.write_text(json.dumps({"events": 1}))
    _denied(monkeypatch, method, report)
    assert main(["report", str(report)]) == 2
    err = capsys.readouterr().err
    assert err == f"report error: {report}: cannot read the report (Permission denied); fix its permissions or the path\n"


def _status_file(path: Path) -> Path:
    """The daemon's status file as StatusReporter.write makes it: the metrics, then the learner's report."""
    metrics = DaemonMetrics()
    metrics.records = 12_003
    metrics.events.update(learned=11_520, predicted=480)
    metrics.lag = {"events/0": 12}
    data = metrics.to_dict()
    data["report"] = jsonable_report({"events": 12_000, "accuracy": 0.9, "windowed_accuracy": [],
                                      "alarms": [{"t": 4_000, "detector": "adwin", "response": "forget"}]})
    path.write_text(json.dumps(data, default=str))
    return path


def test_a_daemon_status_file_is_refused_as_what_it_is(tmp_path, capsys):
    status = _status_file(tmp_path / "status.json")
    assert main(["report", str(status), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"report error: {status}: a daemon status file (kafka.status_file), not a run report")
    assert "/metrics" in err
    assert not (tmp_path / "o").exists()  # no empty plots


@pytest.mark.parametrize("events", [{"learned": 3}, True, "12", 1.5, None])
def test_a_json_whose_events_is_not_a_count_is_not_a_report(tmp_path, capsys, events):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"events": events, "windowed_accuracy": []}))
    assert main(["report", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"report error: {path}: not a stream-cl report (events is ") and "a count" in err


def _matrix_report(n: int) -> dict:
    return {"events": 10, "tasks": {"tasks": [f"task {i}" for i in range(n)],
                                    "accuracy_matrix": [[0.5 + 0.4 * ((i + j) % 2) for j in range(n)] for i in range(n)]}}


def test_the_task_matrix_figure_has_a_bounded_size(tmp_path, capsys):
    path = tmp_path / "tasks.json"  # a run's report keeps at most 100 tasks: 7370 x 7250 px before
    path.write_text(json.dumps(_matrix_report(100)))
    assert main(["report", str(path), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "accuracy_matrix.png: the matrix has" not in out  # drawn whole
    width, height = png_size(tmp_path / "o" / "accuracy_matrix.png")
    assert width <= 1520 and height <= 1400  # 14 in a side (and 1.2 in of colour bar) at 100 dpi, as documented


def test_a_larger_matrix_is_drawn_in_part_and_said(tmp_path, capsys):
    from connectors.report import DPI, MATRIX_MAX_SIDE_IN, MATRIX_MAX_TASKS

    n = MATRIX_MAX_TASKS + 100  # (1000 was a 33 GiB MemoryError traceback)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(_matrix_report(n)))
    assert main(["report", str(path), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert (f"accuracy_matrix.png: the matrix has {n} x {n} tasks; drawn: the first {MATRIX_MAX_TASKS} x "
            f"{MATRIX_MAX_TASKS}") in out
    assert "accuracy_matrix.png" in {p.name for p in written(out)}
    width, height = png_size(tmp_path / "o" / "accuracy_matrix.png")
    assert height <= MATRIX_MAX_SIDE_IN * DPI and width <= (MATRIX_MAX_SIDE_IN + 1.2) * DPI


HUGE = [
    {"events": 10, "windowed_accuracy": [{"events": 1e308, "accuracy": 0.5}]},  # "arange: cannot compute length"
    {"events": 10, "accuracy": 0.5, "elapsed_s": 1e308,  # each axis with one huge value: overflow warnings
     "windowed_accuracy": [{"events": 1e308, "accuracy": 0.5, "t": 1.0}, {"events": 5, "accuracy": 0.6}],
     "alarms": [{"t": 1e300, "detector": "adwin", "response": "forget"}],
     "throughput": [{"t": 1e300, "events_per_s": 5.0}, {"t": 1.0, "events_per_s": 1e300}],
     "lag": [{"t": 1.0, "lag": 1e308}, {"t": 2.0, "lag": 3}]},
]


@pytest.mark.parametrize("report", HUGE, ids=["one-window", "every-axis"])
def test_huge_values_are_skipped_as_damaged(tmp_path, capsys, report):
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(report))
    assert main(["report", str(path), "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in written(capsys.readouterr().out)) == ["accuracy.png", "throughput.png"]


@pytest.mark.parametrize("error", [MemoryError("Unable to allocate 33.1 GiB"), ValueError("arange: cannot compute length")])
def test_a_figure_that_cannot_be_drawn_is_an_error_naming_it(tmp_path, monkeypatch, capsys, error):
    import connectors.report as report_module

    def fails(*args):
        raise error

    monkeypatch.setattr(report_module, "_accuracy_matrix", fails)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_matrix_report(2)))
    assert main(["report", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"report error: accuracy_matrix.png: cannot plot the report's values ({type(error).__name__}: ")


def test_a_report_with_an_integer_python_cannot_read_is_an_error_naming_it(tmp_path, capsys):
    """r32 F5: json.loads raises a plain ValueError (not JSONDecodeError) past 4,300 digits: a traceback."""
    path = tmp_path / "big.json"
    path.write_text('{"events": ' + "9" * 5000 + "}")
    assert main(["report", str(path)]) == 2
    assert "not a JSON report (Exceeds the limit (4300 digits)" in capsys.readouterr().err


def test_a_tasks_entry_of_the_wrong_shape_is_an_error_naming_the_figure(tmp_path, capsys):
    """r32 F5: a "tasks" that is no list ended in a TypeError traceback from the task-matrix figure."""
    report = tmp_path / "tasks.json"
    data = _matrix_report(3)
    data["tasks"]["tasks"] = 5
    report.write_text(json.dumps(data))
    assert main(["report", str(report), "--out", str(tmp_path / "plots")]) == 2
    assert "accuracy_matrix.png: cannot plot the report's values (TypeError" in capsys.readouterr().err
