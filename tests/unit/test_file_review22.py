"""File-connector defects a review found: outputs on a pipe crashed at fsync, a CSV cell over
the csv module's 128 KiB limit was malformed under ``mapping.max_event_bytes``, a blank CSV
label was the class ``' '``, and a pipe as the source was "no such file"."""

import csv
import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from connectors.cli import main
from connectors.csv_records import CsvRecords
from connectors.files import FileSource, JsonlDeadLetterSink, JsonlPredictionSink, open_source
from stream_cl.config import ConfigError, MappingConfig, SourceConfig
from stream_cl.decode import EventDecoder
from stream_cl.events import DeadLetter, Event, Prediction
from file_kit import poll_until  # tests/unit/file_kit.py

ROOT = Path(__file__).resolve().parents[2]
CSV_DEFAULT_LIMIT = 131_072  # the csv module's own field_size_limit


def _events(n: int) -> bytes:
    return b"".join(b'{"x": {"a": %d}, "y": %d, "id": %d}\n' % (i, i % 2, i) for i in range(n))


@contextmanager
def _drained(fifo: Path):
    """A thread reading ``fifo`` to its end; yields the list its bytes go to (one item, once read).

    Opening a FIFO blocks until the other end is opened too: on the way out a reader still
    waiting (the writer never came) is let go by opening the FIFO read-write, which never blocks."""
    got: list[bytes] = []

    def read():
        with open(fifo, "rb") as f:
            got.append(f.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        if thread.is_alive() and not got:
            os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))
        thread.join(timeout=10)
        assert not thread.is_alive()


# -- F1: a pipe, FIFO or tty as an output --------------------------------------------
@pytest.mark.parametrize("sink_type", [JsonlPredictionSink, JsonlDeadLetterSink])
def test_a_sink_on_a_fifo_flushes_and_closes_without_fsync(tmp_path, monkeypatch, sink_type):
    fsynced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd)))
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    record = (Prediction(y_pred="a", proba=0.5, y_true="a", id="1", origin="e:1") if sink_type is JsonlPredictionSink
              else DeadLetter(b"x", "malformed", "bad", "e:1"))
    with _drained(fifo) as got:
        sink = sink_type(fifo)
        sink.write([record])
        sink.flush()  # fsync(2) on a pipe is EINVAL: it used to raise here
        sink.write([record])
        sink.close()
    assert fsynced == []
    lines = got[0].decode().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["origin"] == "e:1"


def test_a_sink_on_a_regular_file_still_fsyncs_at_each_flush(tmp_path, monkeypatch):
    fsynced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd)))
    with JsonlPredictionSink(tmp_path / "p.jsonl") as sink:
        sink.write([Prediction(y_pred="a", proba=0.5, y_true="a", id="1", origin="e:1")])
        sink.flush()
    assert len(fsynced) == 2  # the flush, and the close's


def test_a_run_with_both_outputs_on_fifos_ends_with_exit_0_and_writes_its_report(tmp_path, capsys):
    source = tmp_path / "ev.jsonl"
    source.write_bytes(_events(50) + b"not json\n")
    pred_fifo, dead_fifo, report = tmp_path / "p.fifo", tmp_path / "d.fifo", tmp_path / "rep.json"
    os.mkfifo(pred_fifo)
    os.mkfifo(dead_fifo)
    with _drained(pred_fifo) as predictions, _drained(dead_fifo) as dead:
        code = main(["run", "--source", str(source), "--predictions", str(pred_fifo), "--dead-letters", str(dead_fifo),
                     "--report", str(report), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert len(predictions[0].splitlines()) == 50
    assert [json.loads(line)["origin"] for line in dead[0].splitlines()] == [f"{source}:51"]
    assert json.loads(report.read_text())["path"] == str(source)


def test_a_run_with_predictions_on_dev_stdout_piped_ends_with_exit_0_and_writes_its_report(tmp_path):
    source, report = tmp_path / "ev.jsonl", tmp_path / "rep.json"
    source.write_bytes(_events(30))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "connectors.cli", "run", "--source", str(source), "--predictions", "/dev/stdout",
         "--dead-letters", "", "--report", str(report), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert len(done.stdout.splitlines()) == 30
    assert report.exists()


# -- F2: a CSV cell longer than the csv module's own limit -----------------------------
@pytest.fixture
def default_csv_limit():
    """The csv module's limit is the process's: start from its default, and put back what it was."""
    saved = csv.field_size_limit(CSV_DEFAULT_LIMIT)
    yield
    csv.field_size_limit(saved)


def _read(path, mapping=MappingConfig(), **kwargs):
    with FileSource(path, mapping, **kwargs) as source:
        records = []
        while not source.exhausted:
            records += source.poll(10)
    return records


def test_a_csv_cell_over_128_kib_within_max_event_bytes_is_an_event(tmp_path, default_csv_limit):
    big = "z" * 200_000
    path = tmp_path / "e.csv"
    path.write_text(f"a,b,y\n1,{big},c\n2,3,d\n")
    first, second = _read(path)
    assert type(first) is Event and first.x["b"] == big and first.y == "c"
    assert type(second) is Event and second.x == {"a": 2.0, "b": 3.0}


def test_a_csv_header_cell_over_128_kib_is_read_and_refused_by_the_name_bound(tmp_path, default_csv_limit):
    """csv's own 128 KiB field limit does not stop the header (raised to max_event_bytes); the feature-name
    bound does, with its own reason."""
    name = "h" * 140_000
    path = tmp_path / "e.csv"
    path.write_text(f"a,{name},y\n1,2,c\n")
    with pytest.raises(ConfigError, match="a name of 140,000 characters, over 1,024"):
        _read(path)


def test_a_csv_row_over_max_event_bytes_is_still_oversized(tmp_path, default_csv_limit):
    path = tmp_path / "e.csv"
    path.write_text(f"a,b,y\n1,{'z' * 300_000},c\n2,3,d\n")
    letter, event = _read(path, MappingConfig(max_event_bytes=200_000))
    assert type(letter) is DeadLetter and letter.reason == "oversized"
    assert type(event) is Event and event.y == "d"


def test_the_csv_limit_is_only_ever_raised(default_csv_limit):
    mapping = MappingConfig(max_event_bytes=500_000)
    CsvRecords("a.csv", mapping, "optional", EventDecoder(mapping))
    assert csv.field_size_limit() == 500_000
    small = MappingConfig(max_event_bytes=1_000)  # another reader with a lower bound lowers nothing
    CsvRecords("b.csv", small, "optional", EventDecoder(small))
    assert csv.field_size_limit() == 500_000
    huge = MappingConfig(max_event_bytes=2**70)  # beyond a C long: kept within one
    CsvRecords("c.csv", huge, "optional", EventDecoder(huge))
    assert csv.field_size_limit() == 2**31 - 1


# -- F3: whitespace-only label, id, task and time cells ---------------------------------
def test_a_whitespace_only_label_id_task_or_time_cell_is_empty_and_other_text_is_verbatim(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("a,b,y,id,task,ts\n1, ,cat ,  , \t,\n2,3, , 7 ,t1,   \n4,5,,,,\n")
    first, second, third = _read(path)
    assert (first.x, first.y, first.id, first.task, first.ts) == ({"a": 1.0, "b": None}, "cat ", None, None, None)
    assert (second.y, second.id, second.task, second.ts) == (None, " 7 ", "t1", None)  # a blank ts is no bad_timestamp
    assert (third.y, third.id, third.task, third.ts) == (None, None, None, None)


def test_a_whitespace_only_label_is_missing_when_labels_are_required():
    decoder = EventDecoder(MappingConfig(), "required")
    letter = decoder.decode_csv_row({"a": "1", "y": "  "}, b"1,  ", "e.csv:2")
    assert type(letter) is DeadLetter and letter.reason == "missing_label"
    assert decoder.decode_csv_row({"a": "1", "y": " x"}, b"1, x", "e.csv:3").y == " x"


# -- F6: a pipe as the source ------------------------------------------------------------
def test_a_fifo_source_is_named_as_not_a_regular_file_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo("fifo.jsonl")
    with pytest.raises(ConfigError) as e:
        open_source(SourceConfig(kind="file", path="fifo.jsonl"), MappingConfig())
    message = str(e.value)
    assert message.startswith("source.path: is not a regular file (a pipe")
    assert "no such file" not in message and "write the stream to a file first" in message
    assert "'fifo.jsonl'" in message


def test_a_missing_source_and_a_directory_source_keep_their_messages(tmp_path):
    with pytest.raises(ConfigError, match=r"^source\.path: no such file \(got .*point it at a \.jsonl or \.csv file"):
        open_source(SourceConfig(kind="file", path=str(tmp_path / "missing.jsonl")), MappingConfig())
    with pytest.raises(ConfigError, match=r"^source\.path: is a directory \(got "):
        open_source(SourceConfig(kind="file", path=str(tmp_path)), MappingConfig())


def test_the_cli_on_a_fifo_source_exits_2_saying_it_is_not_a_regular_file(tmp_path, capsys):
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    assert main(["run", "--source", str(fifo), "--quiet", "--dead-letters", ""]) == 2
    err = capsys.readouterr().err
    assert "source.path: is not a regular file" in err and "write the stream to a file first" in err


# -- F5: a followed CSV rotated to a file whose header cannot be used ----------------------------------


def test_a_rotation_to_a_file_whose_header_cannot_be_used_is_dead_letters_not_the_end_of_the_run(tmp_path):
    """Found by review: a followed CSV rotated to a file whose header lacks a named column (or repeats one)
    raised the configuration error that belongs to the start of a run, so a long tail died (exit 2, no
    report). Its header and rows are dead letters now, with a warning, and the next rotation reads on."""
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b,y\n1,2,c0\n")
    mapping = MappingConfig(features=["a", "b"])
    with FileSource(str(path), mapping, follow=True, eof_wait_s=0.01) as source:
        assert [r.x for r in poll_until(source, 1)] == [{"a": 1.0, "b": 2.0}]
        path.rename(tmp_path / "f.csv.1")
        path.write_bytes(b"a,c,y\n3,4,c1\n5,6,c0\n")  # no column b
        dead = poll_until(source, 3)
        assert all(isinstance(r, DeadLetter) and r.reason == "malformed" for r in dead)
        assert [r.origin for r in dead] == [f"{path}:1", f"{path}:2", f"{path}:3"]
        assert "mapping.features: no column 'b'" in dead[0].detail
        warnings = source.take_warnings()
        assert len(warnings) == 1 and "mapping.features: no column 'b'" in warnings[0]
        (tmp_path / "f.csv.1").unlink()
        path.rename(tmp_path / "f.csv.2")
        path.write_bytes(b"b,a,y\n8,7,c1\n")  # rotated again, to a usable header
        assert [(r.x, r.y) for r in poll_until(source, 1)] == [({"b": 8.0, "a": 7.0}, "c1")]


@pytest.mark.parametrize("header", [b"a,a,y", b"a,c,y"], ids=["repeated", "missing"])
def test_a_header_that_cannot_be_used_is_still_a_config_error_at_the_start(tmp_path, header):
    path = tmp_path / "f.csv"
    path.write_bytes(header + b"\n1,2,c0\n")
    with pytest.raises(ConfigError):
        with FileSource(str(path), MappingConfig(features=["a", "b"]), follow=True, eof_wait_s=0.01) as source:
            source.poll(10)
