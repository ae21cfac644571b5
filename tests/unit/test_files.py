"""File source and sinks: bad input becomes dead letters with their line, and reading goes on."""

import base64
import builtins
import gzip
import json
import tracemalloc

import numpy as np
import pytest

from connectors.files import FileSource, JsonlDeadLetterSink, JsonlPredictionSink, open_source
from stream_cl.config import ConfigError, MappingConfig, SourceConfig
from stream_cl.events import DeadLetter, Event, Prediction

GOOD = b'{"x": {"a": 1}, "y": "cat"}'


def read_all(path, mapping=MappingConfig(), batch=3, **kwargs):
    """Every record of ``path`` (small polls, to cross batch boundaries), then the
    dead letters as written to, and read back from, a JSONL dead-letter file."""
    records = []
    with FileSource(path, mapping, **kwargs) as source:
        for _ in range(10_000):
            if source.exhausted:
                break
            records += source.poll(batch)
        assert source.exhausted
    events = [r for r in records if isinstance(r, Event)]
    letters = [r for r in records if isinstance(r, DeadLetter)]
    assert len(events) + len(letters) == len(records)
    dead_path = path.parent / "out" / "dead.jsonl"
    dead_path.unlink(missing_ok=True)
    with JsonlDeadLetterSink(dead_path) as sink:
        sink.write(letters)
    return events, [json.loads(line) for line in dead_path.read_text().splitlines()]


def write_lines(path, *lines: bytes):
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def assert_dead(entry, path, line, reason):
    assert entry["reason"] == reason, entry
    assert entry["origin"] == f"{path}:{line}"


def test_malformed_json_line(tmp_path):
    path = write_lines(tmp_path / "e.jsonl", GOOD, b'{"x": {"a": 1', GOOD, GOOD)
    events, dead = read_all(path)
    assert len(events) == 3 and len(dead) == 1
    assert_dead(dead[0], path, 2, "malformed")
    assert dead[0]["raw"] == '{"x": {"a": 1'
    assert [e.origin for e in events] == [f"{path}:1", f"{path}:3", f"{path}:4"]


def test_missing_label_when_required(tmp_path):
    path = write_lines(tmp_path / "e.jsonl", GOOD, b'{"x": {"a": 2}}', b'{"x": {"a": 3}, "y": null}', GOOD)
    events, dead = read_all(path, label_policy="required")
    assert len(events) == 2
    assert_dead(dead[0], path, 2, "missing_label")
    assert_dead(dead[1], path, 3, "missing_label")
    # optional (the default): unlabelled events
    events, dead = read_all(path)
    assert len(events) == 4 and not dead and events[1].y is None


def test_nan_and_inf_json_literals(tmp_path):
    path = write_lines(tmp_path / "e.jsonl", b'{"x": {"a": NaN}}', GOOD, b'{"x": [1, Infinity]}', b'{"x": [-Infinity]}')
    events, dead = read_all(path)
    assert len(events) == 1
    for entry, line in zip(dead, (1, 3, 4)):
        assert_dead(entry, path, line, "non_finite")


def test_nan_and_inf_csv_text(tmp_path):
    path = write_lines(tmp_path / "e.csv", b"a,b,y", b"1,2,cat", b"nan,2,dog", b"1,inf,dog", b"1,-Infinity,cat", b"3,4,cat")
    events, dead = read_all(path)
    assert [e.x for e in events] == [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]
    for entry, line in zip(dead, (3, 4, 5)):
        assert_dead(entry, path, line, "non_finite")
    assert "feature 'a'" in dead[0]["detail"] and "feature 'b'" in dead[1]["detail"]


def test_strings_nulls_and_nesting_are_features_not_dead_letters(tmp_path):
    path = write_lines(
        tmp_path / "e.jsonl",
        b'{"x": {"age": "4x"}, "y": 1}',  # a category
        b'{"x": {"age": [1, 2], "geo": {"cc": "FR"}, "n": null}, "y": 1}',  # an array, an object, a null
        b'{"x": {"age": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "y": 1}',  # 5 levels: deeper than mapping.max_depth
        b'{"x": {"age": 3}, "y": 1.5}',  # float label
        GOOD,
    )
    events, dead = read_all(path)
    assert [e.x for e in events] == [{"age": "4x"}, {"age[0]": 1.0, "age[1]": 2.0, "geo.cc": "FR", "n": None}, {"a": 1.0}]
    assert len(dead) == 2
    assert_dead(dead[0], path, 3, "too_deep")
    assert dead[0]["detail"].startswith("feature 'age.a.b.c.d': nested deeper than 4 levels")
    assert_dead(dead[1], path, 4, "bad_label")
    assert "floats are not allowed as class labels" in dead[1]["detail"]


def test_text_cells_in_csv_are_categories(tmp_path):
    path = write_lines(tmp_path / "e.csv", b"a,b,y", b"4x,,1", b"2,red,1")
    events, dead = read_all(path)
    assert not dead
    assert [(e.x, e.y) for e in events] == [({"a": "4x", "b": None}, "1"), ({"a": 2.0, "b": "red"}, "1")]  # labels stay text


@pytest.mark.parametrize("name", ["e.jsonl", "e.csv", "e.jsonl.gz", "e.txt"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wb"):
            pass
    else:
        path.write_bytes(b"")
    with FileSource(path, MappingConfig()) as source:
        assert source.poll(10) == []
        assert source.exhausted
        assert source.poll(10) == []


def test_blank_lines_and_crlf_are_fine(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\n" + GOOD + b"\r\n   \n\r\n" + GOOD)  # no final newline either
    events, dead = read_all(path)
    assert not dead
    assert [e.origin for e in events] == [f"{path}:2", f"{path}:5"]


def test_a_10_mb_line_is_skipped_with_bounded_memory(tmp_path):
    limit = 1 << 20
    path = tmp_path / "e.jsonl"
    with open(path, "wb") as f:
        f.write(GOOD + b"\n")
        f.write(b'{"x": [' + b"1, " * (10 * limit // 3) + b"1]}\n")  # ~10 MiB on one line
        f.write(GOOD + b"\n")
    mapping = MappingConfig(max_event_bytes=limit)
    tracemalloc.start()
    try:
        with FileSource(path, mapping) as source:
            records = source.poll(10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit, f"peak {peak} bytes while skipping a 10 MiB line"
    assert [type(r) for r in records] == [Event, DeadLetter, Event]
    letter = records[1]
    assert letter.reason == "oversized" and letter.origin == f"{path}:2"
    assert len(letter.raw) == limit and letter.raw.startswith(b'{"x": [1, 1, ')
    assert "raw holds only its first 1048576 bytes" in letter.detail
    assert records[2].origin == f"{path}:3"
    # and through the dead-letter file
    events, dead = read_all(path, mapping)
    assert len(events) == 2
    assert_dead(dead[0], path, 2, "oversized")
    assert len(dead[0]["raw"]) == limit


def test_a_poll_discards_at_most_its_bytes_of_an_oversized_line_so_that_a_stop_is_read_between(tmp_path):
    """A line of gigabytes (a copytruncate's hole in a followed file, a file without line ends) was discarded
    in one poll, and SIGTERM, read between polls, waited ~40 s (review r66 F2). Now each poll discards at most
    POLL_BYTES of it; the dead letter and the lines after it come as before."""
    from connectors.files import POLL_BYTES

    path = tmp_path / "e.jsonl"
    with open(path, "wb") as f:
        f.write(b'{"x": [1], "y": "a"}\n')
        f.truncate(f.tell() + 3 * POLL_BYTES + 5)  # a hole: NUL bytes, no line end
        f.seek(0, 2)
        f.write(b'\n{"x": [2], "y": "b"}\n')
    polls = []
    with FileSource(path, MappingConfig(max_event_bytes=1024)) as source:
        while not source.exhausted:
            polls.append(source.poll(10))
            assert len(polls) < 10
    # 16 MiB discarded after the first event, 16 more, then the rest, the dead letter and the event after it
    assert [[type(r).__name__ for r in p] for p in polls] == [["Event"], [], ["DeadLetter", "Event"]]
    letter = polls[2][0]
    assert letter.reason == "oversized" and letter.origin == f"{path}:2" and len(letter.raw) == 1024


def test_a_line_just_over_the_limit(tmp_path):
    path = write_lines(tmp_path / "e.jsonl", b'{"x": [1, 2, 3]}', b'{"x": [1, 2, 3, 4]}', b"{" + b" " * 40 + b"}")
    events, dead = read_all(path, MappingConfig(max_event_bytes=16))
    assert len(events) == 1
    assert_dead(dead[0], path, 2, "oversized")
    assert_dead(dead[1], path, 3, "oversized")


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
@pytest.mark.parametrize("over", [1, 2, 3, 5000])  # 1: the limited read stops between "\r" and "\n"
def test_an_oversized_lines_size_counts_its_own_bytes_whatever_its_line_end(tmp_path, eol, over):
    line = b'{"x": "' + b"a" * (16 + over - 9) + b'"}'  # 16 + over bytes
    path = tmp_path / "e.jsonl"
    path.write_bytes(line + eol + b'{"x": {"a": 1}}' + eol)
    with FileSource(str(path), MappingConfig(max_event_bytes=16)) as source:
        records = source.poll(10)
    assert [type(r) for r in records] == [DeadLetter, Event]
    assert f"{16 + over} bytes, over mapping.max_event_bytes (16)" in records[0].detail


@pytest.mark.parametrize("name", ["e.jsonl.gz", "e.jsonl"])  # by suffix, or by magic bytes alone
def test_gzip_jsonl(tmp_path, name):
    path = tmp_path / name
    with gzip.open(path, "wb") as f:
        f.write(b"\n".join([GOOD, b"not json", GOOD]) + b"\n")
    events, dead = read_all(path)
    assert len(events) == 2
    assert_dead(dead[0], path, 2, "malformed")


def test_gzip_csv(tmp_path):
    path = tmp_path / "e.csv.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"a,b,y\n1,2,x\n1,inf,y\n5,zz,z\n")
    events, dead = read_all(path)
    assert [e.x for e in events] == [{"a": 1.0, "b": 2.0}, {"a": 5.0, "b": "zz"}]
    assert_dead(dead[0], path, 3, "non_finite")


def test_truncated_gzip_ends_with_a_dead_letter(tmp_path):
    path = tmp_path / "e.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(GOOD + b"\n" for _ in range(50)))[:-12])
    events, dead = read_all(path)
    assert dead[-1]["reason"] == "malformed" and "gzip" in dead[-1]["detail"]


def test_csv_with_empty_cells(tmp_path):
    path = write_lines(tmp_path / "e.csv", b"id,a,b,c,y", b"r1,1,,3,cat", b"r2,,,,dog", b"r3,1,2,3,", b"r4,1,2")
    events, dead = read_all(path)
    assert [(e.id, e.x, e.y) for e in events] == [
        ("r1", {"a": 1.0, "b": None, "c": 3.0}, "cat"),  # an empty cell is null
        ("r2", {"a": None, "b": None, "c": None}, "dog"),
        ("r3", {"a": 1.0, "b": 2.0, "c": 3.0}, None),
    ]
    assert_dead(dead[0], path, 5, "malformed")  # too few cells
    assert "3 cells" in dead[0]["detail"]


@pytest.mark.parametrize("header, problem", [
    (b"a,a,y", "repeats column 'a'; give each column its own name"),
    (b"a,\xff,y", "is not valid UTF-8 (byte 2)"),
    (b'a,"b"c,y', "is not valid CSV"),
    (b"a," + b"b" * 100 + b",y", "is longer than mapping.max_event_bytes (64)"),
], ids=["repeated", "not-utf8", "not-csv", "oversized"])
def test_csv_header_problems_are_config_errors_naming_the_source(tmp_path, header, problem):
    """No row of the file could be read: the CLI's configuration error (exit 2), not a traceback."""
    path = write_lines(tmp_path / "e.csv", header, b"1,2,3")
    with FileSource(path, MappingConfig(max_event_bytes=64)) as source, pytest.raises(ConfigError) as raised:
        source.poll(10)
    assert str(raised.value).startswith(f"source.path: {path}:1: the CSV header {problem}")


def test_a_csv_column_name_over_the_feature_name_bound_is_a_config_error(tmp_path):
    """The bound JSON records' feature names are held to (stream_cl.field_values.long_name): every checkpoint and
    changelog part names each input, so a 2,000-character column would weigh on all of them."""
    long = b"b" * 1025
    path = write_lines(tmp_path / "e.csv", b"a," + long + b",y", b"1,2,3")
    with FileSource(path, MappingConfig()) as source, pytest.raises(ConfigError) as raised:
        source.poll(10)
    assert str(raised.value).startswith(f"source.path: {path}:1: the CSV header has a column name too long: feature "
                                        f"'{'b' * 40}'...: a name of 1,025 characters, over 1,024")
    ok = write_lines(tmp_path / "ok.csv", b"a," + long[:1024] + b",y", b"1,2,3")
    events, dead = read_all(ok)
    assert [e.x for e in events] == [{"a": 1.0, "b" * 1024: 2.0}] and not dead


def test_unknown_fields_rejected(tmp_path):
    mapping = MappingConfig(unknown_fields="reject")
    path = write_lines(tmp_path / "e.jsonl", GOOD, b'{"x": {"a": 1}, "y": "cat", "note": "hi"}', GOOD)
    events, dead = read_all(path, mapping)
    assert len(events) == 2
    assert_dead(dead[0], path, 2, "unknown_field")
    assert "'note'" in dead[0]["detail"]
    csv_path = write_lines(tmp_path / "e.csv", b"a,y,note", b"1,2,3")
    events, dead = read_all(csv_path, MappingConfig(features=["a"], unknown_fields="reject"))
    assert not events
    assert_dead(dead[0], csv_path, 2, "unknown_field")


def poll_until(source, n, max_polls=500):
    """Poll until ``n`` records came (each poll waits at most eof_wait_s): no sleeps."""
    records = []
    for _ in range(max_polls):
        records += source.poll(100)
        if len(records) >= n:
            return records
    raise AssertionError(f"only {len(records)} of {n} records after {max_polls} polls")


def test_follow_sees_appended_lines(tmp_path):
    path = write_lines(tmp_path / "e.jsonl", GOOD)
    with FileSource(path, MappingConfig(), follow=True, eof_wait_s=0.01) as source:
        assert [r.origin for r in poll_until(source, 1)] == [f"{path}:1"]
        assert source.poll(10) == [] and not source.exhausted  # at EOF: nothing, not finished
        with open(path, "ab") as f:
            f.write(b'{"x": [2]}\nnot json\n{"x": [3')  # the last line is still being written
        records = poll_until(source, 2)
        assert [r.origin for r in records] == [f"{path}:2", f"{path}:3"]
        assert records[1].reason == "malformed"
        assert source.poll(10) == []  # the partial line is held
        with open(path, "ab") as f:
            f.write(b", 4]}\n")
        (event,) = poll_until(source, 1)
        assert event.x == {0: 3.0, 1: 4.0} and event.origin == f"{path}:4"
        assert not source.exhausted


def test_follow_idle_timeout_ends_the_stream(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(GOOD + b'\n{"x": [9]}')  # the last line never gets its newline
    with FileSource(path, MappingConfig(), follow=True, idle_timeout_s=0.05, eof_wait_s=0.01) as source:
        records = []
        for _ in range(1000):
            if source.exhausted:
                break
            records += source.poll(10)
        assert source.exhausted
    assert [r.x for r in records] == [{"a": 1.0}, {0: 9.0}]


def test_follow_oversized_line_written_in_pieces(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"x": [' + b"1, " * 20)
    with FileSource(path, MappingConfig(max_event_bytes=32), follow=True, eof_wait_s=0.01) as source:
        assert source.poll(10) == []
        with open(path, "ab") as f:
            f.write(b"1, " * 20 + b"1]}\n" + GOOD + b"\n")
        letter, event = poll_until(source, 2)
    assert letter.reason == "oversized" and letter.origin == f"{path}:1" and len(letter.raw) == 32
    assert event.origin == f"{path}:2"


def test_follow_restarts_after_truncation(tmp_path):
    path = write_lines(tmp_path / "e.jsonl", GOOD, GOOD)
    with FileSource(path, MappingConfig(), follow=True, eof_wait_s=0.01) as source:
        assert len(poll_until(source, 2)) == 2
        path.write_bytes(b'{"x": [7]}\n')  # truncated and rewritten in place
        (event,) = poll_until(source, 1)
    assert event.x == {0: 7.0} and event.origin == f"{path}:1"


def test_gzip_cannot_be_followed(tmp_path):
    path = tmp_path / "e.jsonl.gz"
    path.write_bytes(gzip.compress(GOOD))
    with pytest.raises(ValueError, match="follow=True is not supported for gzip"):
        FileSource(path, MappingConfig(), follow=True)


def test_open_source(tmp_path):
    path = write_lines(tmp_path / "e.jsonl", GOOD)
    with open_source(SourceConfig(kind="file", path=str(path)), MappingConfig()) as source:
        assert len(source.poll(10)) == 1
    with pytest.raises(ConfigError, match=r"^source\.path: required"):
        open_source(SourceConfig(kind="file"), MappingConfig())
    with pytest.raises(ConfigError, match=r"^source\.path: no such file .*; point it at"):
        open_source(SourceConfig(kind="file", path=str(tmp_path / "nope.jsonl")), MappingConfig())
    with pytest.raises(ConfigError, match=r"^source\.path: is a directory"):
        open_source(SourceConfig(kind="file", path=str(tmp_path)), MappingConfig())
    gz = tmp_path / "e.jsonl.gz"
    gz.write_bytes(gzip.compress(GOOD))
    with pytest.raises(ConfigError, match=r"^source\.follow: .*set follow = false"):
        open_source(SourceConfig(kind="file", path=str(gz), follow=True), MappingConfig())
    with pytest.raises(ConfigError, match=r"^source\.kind"):
        open_source(SourceConfig(kind="kafka", path=str(path)), MappingConfig())


def test_dead_letter_sink_keeps_any_bytes(tmp_path):
    path = tmp_path / "deep" / "dir" / "dead.jsonl"
    sink = JsonlDeadLetterSink(path)
    sink.write([DeadLetter(b"\xff\xfe{", "malformed", "invalid UTF-8 at byte 0", "f:1"), DeadLetter("é".encode(), "malformed", "d", "f:2")])
    sink.flush()
    first, second = [json.loads(line) for line in path.read_text().splitlines()]
    assert first == {"reason": "malformed", "detail": "invalid UTF-8 at byte 0", "origin": "f:1", "raw": "//57", "raw_encoding": "base64"}
    assert base64.b64decode(first["raw"]) == b"\xff\xfe{"
    assert second["raw"] == "é" and "raw_encoding" not in second
    sink.close()
    sink.close()  # idempotent
    with JsonlDeadLetterSink(path, append=True) as again:  # appends
        again.write([DeadLetter(b"", "oversized", "d", "f:3")])
    assert len(path.read_text().splitlines()) == 3
    with JsonlDeadLetterSink(path) as anew:  # by default a sink starts its file anew
        anew.write([DeadLetter(b"", "oversized", "d", "f:4")])
    assert [json.loads(line)["origin"] for line in path.read_text().splitlines()] == ["f:4"]


def test_prediction_sink(tmp_path):
    path = tmp_path / "out" / "predictions.jsonl"
    with JsonlPredictionSink(path) as sink:
        sink.write([Prediction("e1", np.int64(2), np.float64(0.75), 2, "t", 1.5, "f:1"), Prediction(None, "cat", float("nan"))])
        sink.close()
    first, second = [json.loads(line) for line in path.read_text().splitlines()]
    assert first == {"id": "e1", "y_pred": 2, "proba": 0.75, "y_true": 2, "task": "t", "ts": 1.5, "origin": "f:1"}
    assert second["proba"] is None and second["y_pred"] == "cat"


# -- CSV rows whose quoted fields span lines (RFC 4180) ------------------------------
@pytest.mark.parametrize("name", ["e.csv", "e.csv.gz"])
def test_csv_quoted_field_spanning_lines_is_one_row(tmp_path, name):
    data = (b'id,"no\r\nte",amount,y\r\n'  # the header too
            b'1,"first line\r\n\r\nsecond, ""part""",3.5,cat\r\n'  # a blank line and quotes inside the field
            b'2,plain,1.0,dog\r\n'
            b'"3\nx","a\nb\nc",2.5,cow\n')  # two fields spanning lines, then a second one opened on a next line
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    events, dead = read_all(path, MappingConfig(features=["no\r\nte", "amount"]))
    assert not dead
    assert [(e.id, e.x, e.y, e.origin) for e in events] == [
        ("1", {"no\r\nte": 'first line\r\n\r\nsecond, "part"', "amount": 3.5}, "cat", f"{path}:3"),  # its first line
        ("2", {"no\r\nte": "plain", "amount": 1.0}, "dog", f"{path}:6"),
        ("3\nx", {"no\r\nte": "a\nb\nc", "amount": 2.5}, "cow", f"{path}:7"),
    ]


@pytest.mark.parametrize("end", [b"\n", b""])
def test_csv_quote_the_file_never_closes_is_one_dead_letter(tmp_path, end):
    path = tmp_path / "e.csv"
    path.write_bytes(b'a,b,y\n1,2,x\n3,"open\n4,5,z\n6,7,w' + end)
    events, dead = read_all(path)
    assert [e.origin for e in events] == [f"{path}:2"]  # no line inside the open quote is a row
    (letter,) = dead
    assert_dead(letter, path, 3, "malformed")
    assert letter["raw"] == '3,"open\n4,5,z\n6,7,w' + end.decode()
    assert "quoted field opened on line 3 is not closed at the end of the file" in letter["detail"]


def test_csv_row_spanning_lines_is_bounded_by_max_event_bytes(tmp_path):
    rows = [b"%d,%d,z" % (i, i) for i in range(20)]
    path = write_lines(tmp_path / "e.csv", b"a,b,y", b'1,"stray', *rows, b'2,"x', b"y" * 100 + b'",q', b"3,4,w")
    events, dead = read_all(path, MappingConfig(max_event_bytes=40))
    # the quote never closes: its row is one dead letter of at most 40 bytes, and reading goes on after it
    assert_dead(dead[0], path, 2, "oversized")
    assert dead[0]["raw"].startswith('1,"stray\n0,0,z\n') and len(dead[0]["raw"]) == 40
    assert dead[0]["detail"].startswith("lines 2-8: a quoted field opened on line 2 is not closed within "
                                        "mapping.max_event_bytes (40); raw holds only its first 40 bytes; "
                                        "reading goes on at line 9")
    assert [(e.x, e.origin) for e in events[:2]] == [({"a": 6.0, "b": 6.0}, f"{path}:9"), ({"a": 7.0, "b": 7.0}, f"{path}:10")]
    # a row with an oversized line: one dead letter, and the next line is the next row
    assert_dead(dead[1], path, 23, "oversized")
    assert "lines 23-24: a quoted field opened on line 23" in dead[1]["detail"]
    assert (events[-1].x, events[-1].origin) == ({"a": 3.0, "b": 4.0}, f"{path}:25")
    assert len(dead) == 2 and len(events) == 14 + 1


def test_follow_csv_row_whose_next_lines_come_later(tmp_path):
    path = tmp_path / "e.csv"
    path.write_bytes(b'a,note,y\n1,"first')
    with FileSource(path, MappingConfig(), follow=True, eof_wait_s=0.01) as source:
        assert source.poll(10) == []
        with open(path, "ab") as f:
            f.write(b"\nsecond")
        assert source.poll(10) == [] and source.poll(10) == []  # the quoted field is still open
        with open(path, "ab") as f:
            f.write(b' part",x\n2,plain,y\n')
        first, second = poll_until(source, 2)
    assert (first.x, first.origin) == ({"a": 1.0, "note": "first\nsecond part"}, f"{path}:2")
    assert (second.x, second.origin) == ({"a": 2.0, "note": "plain"}, f"{path}:4")


# -- rotation while followed ----------------------------------------------------------
def test_follow_goes_on_with_the_new_file_after_a_rename_rotation(tmp_path):
    path = write_lines(tmp_path / "e.csv", b"a,y", b"1,x")
    with FileSource(path, MappingConfig(), follow=True, eof_wait_s=0.01) as source:
        assert [r.x for r in poll_until(source, 1)] == [{"a": 1.0}]
        with open(path, "ab") as old:
            old.write(b"2,x\n3,")  # written before the rotation, not read yet: the last line has no newline
        path.rename(tmp_path / "e.csv.1")
        write_lines(path, b"b,y", b"7,z")  # a new file, with its header
        records = poll_until(source, 3)
        assert [(r.x, r.origin) for r in records] == [
            ({"a": 2.0}, f"{path}:3"), ({"a": 3.0}, f"{path}:4"),  # the rest of the old file first
            ({"b": 7.0}, f"{path}:2"),  # then the new one from its start
        ]
        (tmp_path / "e.csv.1").unlink()
        with open(path, "ab") as new:
            new.write(b"8,z\n")
        assert [r.x for r in poll_until(source, 1)] == [{"b": 8.0}]


def test_a_poll_ends_at_a_rotation_so_each_kept_text_is_its_own_events(tmp_path):
    """The rotated file's last lines and the new file's first ones share line numbers: had one poll
    held both, ``raw`` (keyed by origin) would give an old event's dead letter a new line's text."""
    path = write_lines(tmp_path / "k.jsonl", b'{"x": {"a": 1}, "y": "p"}')
    with FileSource(str(path), MappingConfig(), follow=True, eof_wait_s=0.01) as source:
        assert len(poll_until(source, 1)) == 1
        with open(path, "ab") as old:
            old.write(b'{"id": "old2", "x": {"a": 2}, "y": "p"}')  # the old file's unfinished last line
        path.rename(tmp_path / "k.jsonl.1")
        write_lines(path, b'{"id": "new1", "x": {"a": 3}, "y": "q"}', b'{"id": "new2", "x": {"a": 4}, "y": "q"}')
        first = source.poll(10)
        assert [(r.id, r.origin) for r in first] == [("old2", f"{path}:2")]
        assert b"old2" in source.raw[f"{path}:2"]
        second = poll_until(source, 2)
        assert [(r.id, r.origin) for r in second] == [("new1", f"{path}:1"), ("new2", f"{path}:2")]
        assert b"new2" in source.raw[f"{path}:2"]


def test_follow_restarts_after_truncation_even_when_rewritten_past_the_position(tmp_path):
    path = write_lines(tmp_path / "e.csv", b"a,y", *[b"%d,x" % i for i in range(10)])
    with FileSource(path, MappingConfig(), follow=True, eof_wait_s=0.01) as source:
        assert len(poll_until(source, 10)) == 10
        old_size = path.stat().st_size
        with open(path, "r+b") as f:  # copytruncate, and the writer goes on before the next poll
            f.truncate(0)
        with open(path, "ab") as f:
            f.write(b"b,y\n" + b"".join(b"%d,z\n" % i for i in range(100, 120)))
        assert path.stat().st_size > old_size
        records = poll_until(source, 20)
    assert [(r.x, r.origin) for r in records] == [({"b": float(i)}, f"{path}:{i - 98}") for i in range(100, 120)]


def test_open_source_unreadable_gzip_is_a_config_error(tmp_path, monkeypatch):
    """An unreadable file fails in open_source's check (exit 2), not as a traceback; even as root."""
    real_open = builtins.open

    def unreadable(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    for name in ("e.jsonl", "e.jsonl.gz"):
        path = tmp_path / name
        path.write_bytes(gzip.compress(GOOD) if name.endswith(".gz") else GOOD)
        monkeypatch.setattr(builtins, "open", unreadable)
        with pytest.raises(ConfigError, match=r"^source\.path: cannot read the file .*Permission denied"):
            open_source(SourceConfig(kind="file", path=str(path)), MappingConfig())
        monkeypatch.undo()


def test_appending_to_a_file_a_killed_run_left_inside_a_line_cuts_that_line_first(tmp_path, caplog):
    """A SIGKILL in the middle of a batch's write left the file ending inside a line, and the next run's
    first line was glued onto it: one line no JSON reader could parse (review r66 F3)."""
    import logging

    path = tmp_path / "dead.jsonl"
    whole = b'{"reason": "malformed"}\n' * 3
    path.write_bytes(whole + b'{"reason": "mal' + b"x" * 70_000)  # the unfinished line spans blocks
    with caplog.at_level(logging.WARNING, logger="stream_cl.files"):
        with JsonlDeadLetterSink(path, append=True) as sink:
            sink.write([DeadLetter(b"{", "malformed", "invalid JSON", "e.jsonl:1")])
    lines = path.read_bytes().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["reason"] == "malformed" for line in lines)
    assert path.read_bytes().startswith(whole)
    assert [r.getMessage() for r in caplog.records] == [
        f"{path} ended inside a line (the run writing it was stopped without finishing it: a kill or a crash): its "
        "last 70015 bytes, that unfinished line, were cut before the lines of this run were appended"]
    caplog.clear()
    with JsonlDeadLetterSink(path, append=True), JsonlDeadLetterSink(tmp_path / "new.jsonl", append=True):
        pass  # a whole last line, or no file: nothing cut, nothing said
    assert len(path.read_bytes().splitlines()) == 4 and not caplog.records
    only = tmp_path / "only.jsonl"
    only.write_bytes(b'{"reas')  # no whole line at all
    with JsonlDeadLetterSink(only, append=True):
        pass
    assert only.read_bytes() == b""


@pytest.mark.parametrize("text", [b'[\n{"x": {"a": 1}, "y": "c"},\n{"x": {"a": 2}, "y": "d"}\n]\n',
                                  b'\xef\xbb\xbf[{"x": {"a": 1}, "y": "c"}, {"x": {"a": 2}, "y": "d"}]\n'],
                         ids=["pretty", "one-line"])
def test_a_json_array_file_is_a_config_error_with_the_conversion(tmp_path, text):
    """Read as JSON Lines, every line but the last was a dead letter and the run ended 0 (review r66 F5)."""
    path = tmp_path / "export.json"
    path.write_bytes(text)
    with FileSource(path, MappingConfig()) as source, pytest.raises(ConfigError) as raised:
        source.poll(10)
    assert str(raised.value) == (f"source.path: {path} holds a JSON array (its first line opens one), not JSON Lines "
                                 f"(one object a line); convert it (jq -c '.[]' {path} > events.jsonl) and point "
                                 "source.path at the new file")


def test_a_csv_header_of_one_column_holding_a_semicolon_says_the_reader_splits_at_commas(tmp_path):
    path = write_lines(tmp_path / "semi.csv", b"a;b;y", b"1;2;cat")
    with FileSource(path, MappingConfig()) as source:
        source.poll(10)
        warnings = source.take_warnings()
    assert warnings[0] == (f"{path}:1: the header is one column, 'a;b;y', holding ';': this reader splits columns at "
                           "commas only; if the file is separated by ';', convert it to commas first")
    with FileSource(write_lines(tmp_path / "ok.csv", b"a,b,y", b"1,2,cat"), MappingConfig()) as source:
        source.poll(10)
        assert source.take_warnings() == []


def test_following_a_file_that_does_not_exist_yet_says_it_must_exist_when_the_run_starts(tmp_path):
    with pytest.raises(ConfigError, match=r"^source\.path: no such file .*; tail mode follows a file that exists when "
                                          r"the run starts: create it first"):
        open_source(SourceConfig(kind="file", path=str(tmp_path / "later.jsonl"), follow=True), MappingConfig())


def test_appending_keeps_a_whole_last_line_without_its_line_end_and_ends_it(tmp_path, caplog):
    """A file written without a final line end ("\\n".join) lost its last record (review r68 L1)."""
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": 2}')
    with JsonlDeadLetterSink(path, append=True) as sink:
        sink.write([DeadLetter(b"{", "malformed", "invalid JSON", "e.jsonl:1")])
    assert [json.loads(line).get("id") for line in path.read_bytes().splitlines()] == [1, 2, None]
    assert not caplog.records


def test_appending_to_a_file_that_cannot_be_read_or_cut_goes_on(tmp_path, monkeypatch, caplog):
    """An append-only file (chattr +a) refuses reading for writing and truncating: the run stopped with exit 1
    on a file it could append to (review r68 M2). Now it appends, with a warning."""
    import logging

    import connectors.file_sinks as file_sinks

    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": 2, "cut')

    def refused(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(file_sinks.os, "truncate", refused)
    with caplog.at_level(logging.WARNING, logger="stream_cl.files"):
        with JsonlDeadLetterSink(path, append=True) as sink:
            sink.write([DeadLetter(b"{", "malformed", "invalid JSON", "e.jsonl:1")])
    assert path.read_bytes().splitlines()[1:] == [b'{"id": 2, "cut', path.read_bytes().splitlines()[2]]
    assert "which cannot be cut off" in caplog.records[0].getMessage()
    monkeypatch.setattr(file_sinks, "open", refused, raising=False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stream_cl.files"):
        with JsonlDeadLetterSink(path, append=True) as sink:
            sink.write([DeadLetter(b"{", "malformed", "invalid JSON", "e.jsonl:2")])
    assert len(path.read_bytes().splitlines()) == 4
    assert "cannot be read to check that its last line is whole" in caplog.records[0].getMessage()


def test_appending_after_a_foreign_last_line_nested_past_pythons_limit_cuts_it(tmp_path):
    """json.loads raised RecursionError, not ValueError, and the sink did not open (review r70 L2)."""
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"id": 1}\n' + b"[" * 200_000)
    with JsonlDeadLetterSink(path, append=True) as sink:
        sink.write([DeadLetter(b"{", "malformed", "invalid JSON", "e.jsonl:1")])
    assert [json.loads(line).get("id") for line in path.read_bytes().splitlines()] == [1, None]
