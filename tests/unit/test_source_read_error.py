"""A source file whose read fails (``EIO`` from a failing disk, ``ESTALE`` on NFS; review r133's left-out
item): the run ended in a traceback, with no report. Now the source ends as at a corrupt gzip stream:
the lines before are learned, the warning and the report's ``source_error`` say where and why, exit 1."""

from __future__ import annotations

import errno
import json

from connectors.bounded_lines import BoundedLines
from connectors.cli import main
from connectors.files import FileSource
from stream_cl.config import MappingConfig
from stream_cl.events import Event

LINES = b"".join(b'{"x": {"a": %d}, "y": "%s"}\n' % (i, b"ab"[i % 2 : i % 2 + 1]) for i in range(10))


def _failing_after(monkeypatch, good: int) -> None:
    """BoundedLines.read gives ``good`` lines, then fails as a failing disk does."""
    read, calls = BoundedLines.read, [0]

    def failing(self, *args):
        calls[0] += 1
        if calls[0] > good:
            raise OSError(errno.EIO, "Input/output error")
        return read(self, *args)

    monkeypatch.setattr(BoundedLines, "read", failing)


def test_a_failed_read_ends_the_source_with_its_error(tmp_path, monkeypatch):
    path = tmp_path / "e.jsonl"
    path.write_bytes(LINES)
    _failing_after(monkeypatch, 4)
    with FileSource(path, MappingConfig()) as source:
        records = source.poll(100)
        assert source.exhausted and source.poll(100) == []
        warnings = source.take_warnings()
    assert [type(r) for r in records] == [Event] * 4  # nothing made up for the unread rest: no dead letter
    assert warnings == [source.error]
    assert source.error.startswith(f"stopped reading {path} after line 4: reading it failed ([Errno 5] Input/output")


def test_a_run_whose_source_read_fails_reports_it_and_exits_1(tmp_path, monkeypatch, capsys):
    path, report = tmp_path / "e.jsonl", tmp_path / "r.json"
    path.write_bytes(LINES)
    _failing_after(monkeypatch, 6)
    code = main(["run", "--source", str(path), "--report", str(report), "--dead-letters", "", "--quiet"])
    err = capsys.readouterr().err
    data = json.loads(report.read_text())
    assert code == 1 and data["events"] == 6 and data["dead_letters_total"] == 0
    assert data["complete"] is False and data["stopped_by"] == "source_error"
    assert data["source_error"] in data["warnings"] and "reading it failed" in data["source_error"]
    assert f"error: the source {path} was not read to its end" in err
