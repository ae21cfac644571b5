"""Review r150: a file run's start removed another run's report write under way.

F1 (low): :func:`connectors.report_file.clear_report` removes the temporary files a killed report
write left (``.NAME.<pid>.tmp``), but matched ``.NAME.*.tmp``: a run with ``run.report = runs/run``
starting in the folder where another run was writing ``runs/run.json`` (``.run.json.<pid>.tmp``)
deleted that file between its write and its rename, and the other run lost its report (exit 1,
``cannot write run.report ... (No such file or directory)``) after all its work. Only this path's
own temporary files (a pid) are removed now.
"""

from __future__ import annotations

import json
import os

from connectors.report_file import clear_report, write_report


def test_a_start_removes_its_own_leftovers_not_another_reports(tmp_path):
    other = tmp_path / ".run.json.4242.tmp"  # run.json's write, under way in another run
    own = tmp_path / ".run.4243.tmp"  # this path's, left by a run killed in its report write
    other.write_text("{")
    own.write_text("{")
    clear_report(str(tmp_path / "run"))
    assert other.exists()
    assert not own.exists()


def test_a_report_written_while_another_run_starts_beside_it_is_kept(tmp_path, monkeypatch):
    real_replace = os.replace

    def another_run_starts(src, dst):  # between the temporary file's fsync and its rename
        clear_report(str(tmp_path / "run"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", another_run_starts)
    report = {"complete": True, "events": 3}
    write_report(str(tmp_path / "run.json"), report)
    assert "output_errors" not in report
    assert json.loads((tmp_path / "run.json").read_text()) == {"complete": True, "events": 3}
