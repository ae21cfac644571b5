"""Review r97: a file poll's 16 MiB counts the bytes an oversized line discards; a gzip stream
broken inside an oversized line names that line; a CSV with no telling name and an oversized
header is refused as a named .csv is."""

import gzip
import random

import pytest

import connectors.files as files
from connectors.files import FileSource
from stream_cl.config import ConfigError, MappingConfig


def test_a_poll_ends_at_its_budget_counting_discarded_bytes(tmp_path, monkeypatch):
    path = tmp_path / "wide.jsonl"
    path.write_bytes((b"x" * 1000 + b"\n") * 20)  # 20 lines, each over the bound
    monkeypatch.setattr(files, "POLL_BYTES", 4096)
    with FileSource(str(path), MappingConfig(max_event_bytes=64)) as source:
        first = source.poll(1024)
        assert len(first) <= 5  # 4,096 bytes hold four lines and a piece: was all 20 lines, 20,020 bytes
        seen = list(first)
        while not source.exhausted:
            seen += source.poll(1024)
    assert [r.origin.rsplit(":", 1)[1] for r in seen] == [str(i) for i in range(1, 21)]
    assert {r.reason for r in seen} == {"oversized"}


def test_a_gzip_stream_broken_inside_an_oversized_line_names_that_line(tmp_path):
    random.seed(0)
    event = b'{"x": {"a": %d}, "y": "c"}\n'
    data = event % 1 + event % 2 + bytes(random.randrange(97, 123) for _ in range(300_000)) + b"\n" + event % 4
    z = gzip.compress(data)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(z[: len(z) // 2])  # cut inside line 3
    with FileSource(str(path), MappingConfig(max_event_bytes=1000)) as source:
        records = []
        while not source.exhausted:
            records += source.poll(100)
    assert [(type(r).__name__, r.origin.rsplit(":", 1)[1]) for r in records] == [
        ("Event", "1"), ("Event", "2"), ("DeadLetter", "3")]  # was line 4 blamed, line 3 without a record
    assert len(records[2].raw) == 1000 and "broke inside this line" in records[2].detail
    assert "at line 3" in source.error and "2 lines were read before it" in source.error


def test_an_oversized_csv_header_under_no_telling_name_is_refused(tmp_path):
    path = tmp_path / "events.txt"
    path.write_bytes(b"a,b,y," + b"unused_column_" * 5 + b"\n1,2,c\n3,4,d\n")
    with FileSource(str(path), MappingConfig(label="y", max_event_bytes=40)) as source:
        with pytest.raises(ConfigError, match="the CSV header is longer than mapping.max_event_bytes"):
            source.poll(10)  # was a dead letter, and the row 1,2,c read as the header
