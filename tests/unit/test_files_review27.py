"""FileSource follow-ups of review 27.

F4: a gzip source cut short (an interrupted copy) or corrupt stopped reading at the break, yet the
run exited 0 with nothing on stderr or in the report's warnings: one ``malformed`` dead letter among
bad lines was the only trace of the lost rest of the file. Now a warning names the file, the line and
byte reached and the error, the report says the run was cut short, and the run exits 1.

F3 (follow-up): the warning for a rotated path that cannot be opened went only to a logger, never to
the report's ``warnings``. F5 (follow-up): an over-``max_event_bytes`` CR-only CSV was told to raise
``mapping.max_event_bytes`` (the source did not hand the header's first bytes to the check).

No sleeps: a followed source waits only inside its own polls (``eof_wait_s``, the idle timeout).
"""

from __future__ import annotations

import gzip
import json

import pytest

import connectors.run as run_module
from connectors.cli import main
from connectors.files import FileSource
from stream_cl.config import ConfigError, MappingConfig
from stream_cl.events import DeadLetter, Event

LINES = b"".join(b'{"x": {"a": %d}, "y": "%s"}\n' % (i % 3, b"ab"[i % 2 : i % 2 + 1]) for i in range(2_000))


def _cut(tmp_path):
    """A .gz of LINES cut in half, and how many whole lines the half holds."""
    data = gzip.compress(LINES, mtime=0)
    path = tmp_path / "half.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


def _bad_crc(tmp_path):
    """A whole .gz of LINES whose CRC-32 (the trailer's first 4 bytes) is wrong."""
    data = bytearray(gzip.compress(LINES, mtime=0))
    data[-8] ^= 0xFF
    path = tmp_path / "crc.jsonl.gz"
    path.write_bytes(bytes(data))
    return path


def _read(path):
    records, warnings = [], []
    with FileSource(str(path), MappingConfig()) as source:
        for _ in range(1_000):
            if source.exhausted:
                break
            records += source.poll(256)
            warnings += source.take_warnings()
        warnings += source.take_warnings()
        return records, warnings, source.error


# -- F4 ----------------------------------------------------------------------------------------
def test_a_cut_gzip_is_a_warning_naming_the_file_line_and_error(tmp_path):
    path = _cut(tmp_path)
    records, warnings, error = _read(path)
    events = [r for r in records if type(r) is Event]
    dead = [r for r in records if type(r) is DeadLetter]
    assert 0 < len(events) < 2_000
    assert len(dead) == 1 and dead[0].reason == "malformed" and "gzip" in dead[0].detail  # as before
    assert warnings == [error]
    assert error.startswith(f"stopped reading {path} at line {len(events) + 1:,} (decompressed byte ")
    assert "the gzip stream ends early, the file cut short" in error
    assert "Compressed file ended before the end-of-stream marker was reached" in error
    assert f"{len(events):,} lines were read before it, the rest of the file was not" in error


def test_a_gzip_with_a_bad_crc_is_said_to_be_corrupt(tmp_path):
    records, warnings, error = _read(_bad_crc(tmp_path))
    assert sum(type(r) is Event for r in records) == 2_000  # every line read, then the trailer fails
    assert warnings == [error] and "the gzip stream is corrupt: CRC check failed" in error


def test_a_whole_gzip_has_no_error(tmp_path):
    path = tmp_path / "whole.jsonl.gz"
    path.write_bytes(gzip.compress(LINES, mtime=0))
    records, warnings, error = _read(path)
    assert len(records) == 2_000 and warnings == [] and error is None


@pytest.mark.parametrize("make", [_cut, _bad_crc], ids=["cut", "bad_crc"])
def test_a_run_of_a_broken_gzip_says_so_and_exits_1(tmp_path, capsys, make):
    path, report = make(tmp_path), tmp_path / "r.json"
    code = main(["run", "--source", str(path), "--report", str(report), "--dead-letters", "", "--quiet"])
    err = capsys.readouterr().err
    data = json.loads(report.read_text())
    assert code == 1
    assert data["complete"] is False and data["stopped_by"] == "source_error"
    assert data["source_error"] in data["warnings"] and data["source_error"].startswith(f"stopped reading {path}")
    assert f"warning: {data['source_error']}" in err
    assert "stopped by a source file that could not be read to its end (the error follows) before the end of the source" in err
    assert f"error: the source {path} was not read to its end" in err


def test_a_run_of_a_whole_gzip_exits_0_with_no_source_error(tmp_path):
    path, report = tmp_path / "whole.jsonl.gz", tmp_path / "r.json"
    path.write_bytes(gzip.compress(LINES, mtime=0))
    assert main(["run", "--source", str(path), "--report", str(report), "--dead-letters", "", "--quiet"]) == 0
    data = json.loads(report.read_text())
    assert data["complete"] is True and "source_error" not in data and "stopped_by" not in data


def test_the_failure_of_a_report_with_a_source_error_comes_first():
    report = {"path": "e.jsonl.gz", "source_error": "x", "dead_letters_total": 0, "events": 0, "labelled": 0,
              "dead_letters": {}}
    assert run_module.failure(report).startswith("the source e.jsonl.gz was not read to its end")
    assert run_module.failure({**report, "source_error": None}) == "the source held no events"


# -- F3 follow-up --------------------------------------------------------------------------------
def test_a_rotated_path_that_cannot_be_opened_is_one_of_the_sources_warnings(tmp_path):
    path = tmp_path / "app.jsonl"
    path.write_bytes(LINES[:30])
    with FileSource(str(path), MappingConfig(), follow=True, eof_wait_s=0.01) as source:
        assert len(source.poll(10)) == 1
        assert source.take_warnings() == []  # (taken before: later warnings must still come)
        path.rename(tmp_path / "app.jsonl.1")
        path.mkdir()  # no regular file: never opened
        source.poll(10)
        warnings = source.take_warnings()
    assert len(warnings) == 1
    assert f"{path} names a new file (rotated) that cannot be opened" in warnings[0]


def test_that_warning_reaches_the_run_report(tmp_path, monkeypatch):
    path, report = tmp_path / "app.jsonl", tmp_path / "r.json"
    path.write_bytes(LINES[:30])
    original, rotated = run_module.Progress.update, []

    def update(self, *args, **kwargs):  # after the first batch: rotated, and the new path a directory
        if not rotated:
            rotated.append(True)
            path.rename(tmp_path / "app.jsonl.1")
            path.mkdir()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(run_module.Progress, "update", update)
    config = tmp_path / "c.toml"
    config.write_text(f'[source]\nkind = "file"\npath = "{path}"\nfollow = true\nfollow_idle_timeout_s = 0.3\n')
    main(["run", "--config", str(config), "--report", str(report), "--dead-letters", "", "--quiet"])
    warnings = json.loads(report.read_text())["warnings"]
    assert any("names a new file (rotated) that cannot be opened" in w for w in warnings)


# -- F5 follow-up --------------------------------------------------------------------------------
def test_an_oversized_header_without_a_cr_is_still_told_to_raise_the_bound(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_bytes(b",".join(b"c%d" % i for i in range(100)) + b",y\n1,c\n")
    with pytest.raises(ConfigError, match="raise mapping.max_event_bytes or shorten the header"):
        with FileSource(str(path), MappingConfig(max_event_bytes=64)) as source:
            source.poll(100)



def test_a_plain_file_named_gz_is_said_to_need_renaming(tmp_path):
    """r32 F6: a JSONL file named .gz was called corrupt, 'get a whole copy', where only its name is wrong."""
    path = tmp_path / "plain.jsonl.gz"
    path.write_bytes(b'{"x": {"a": 1}, "y": 1}\n')
    with FileSource(str(path), MappingConfig()) as source:
        source.poll(100)
        (warning,) = source.take_warnings()
    assert warning.startswith(f"{path} is not gzip-compressed") and warning.endswith("rename it without .gz, or compress it")
    assert source.error == warning
