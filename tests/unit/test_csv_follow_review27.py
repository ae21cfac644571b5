"""CSV defects review 27 found in the file source.

F2: a followed CSV truncated in place (logrotate ``copytruncate``) whose writer wrote its header
once took its first row after the truncation as the header: that row was lost and every later
row was read under its values (no label, nothing learned), or with a features list every row was
a dead letter. A file read again now keeps the header read before unless its first record is a
header, and says which reading it chose.

F5: a CSV with CR-only (classic Mac) line endings was told to switch Python's
"universal-newline mode", or (over 1 MiB) to raise mapping.max_event_bytes.
"""

import os

import pytest

from connectors.csv_records import CsvRecords
from connectors.files import FileSource
from stream_cl.config import ConfigError, MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.events import DeadLetter, Event
from file_kit import poll_until  # tests/unit/file_kit.py




def _copytruncate(path, rows: bytes) -> None:
    os.truncate(path, 0)
    with open(path, "ab") as f:  # the writer goes on appending, with no new header
        f.write(rows)


# -- F2 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("features", ["x", ["a", "b"]], ids=["default", "list"])
def test_rows_after_a_copytruncate_without_a_header_are_read_under_the_old_header(tmp_path, features):
    path = tmp_path / "ct.csv"
    path.write_bytes(b"a,b,y\n1,2,c\n3,4,d\n")
    with FileSource(str(path), MappingConfig(features=features), follow=True, eof_wait_s=0.01) as source:
        assert len(poll_until(source, 2)) == 2
        assert source.take_warnings() == []
        _copytruncate(path, b"5,6,c\n7,8,d\n9,10,c\n")
        records = poll_until(source, 3)
        warnings = source.take_warnings()
    assert all(type(r) is Event for r in records), records
    assert [(r.x, r.y, r.origin) for r in records] == [
        ({"a": 5.0, "b": 6.0}, "c", f"{path}:1"),  # the first row is a row, not lost as a header
        ({"a": 7.0, "b": 8.0}, "d", f"{path}:2"),
        ({"a": 9.0, "b": 10.0}, "c", f"{path}:3"),
    ]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{path}:1: ") and "not a header" in warnings[0] and "(a, b, y)" in warnings[0]


def test_the_headerless_warning_is_said_at_each_restart_and_later_truncations_read_on(tmp_path):
    path = tmp_path / "ct.csv"
    path.write_bytes(b"a,y\n1,c\n")
    with FileSource(str(path), MappingConfig(), follow=True, eof_wait_s=0.01) as source:
        poll_until(source, 1)
        _copytruncate(path, b"2,d\n")
        assert [r.x for r in poll_until(source, 1)] == [{"a": 2.0}]
        assert len(source.take_warnings()) == 1
        _copytruncate(path, b"30,e\n")  # (its first bytes differ: seen as truncated)
        assert [(r.x, r.y) for r in poll_until(source, 1)] == [({"a": 30.0}, "e")]
        assert len(source.take_warnings()) == 1  # a guess each time: said where it is made (r31 F2)


def test_a_truncated_file_that_starts_with_the_same_header_again_skips_it_silently(tmp_path):
    path = tmp_path / "ct.csv"
    path.write_bytes(b"a,b,y\n1,2,c\n")
    with FileSource(str(path), MappingConfig(), follow=True, eof_wait_s=0.01) as source:
        poll_until(source, 1)
        _copytruncate(path, b"b,a,y\n8,7,d\n")  # the same columns, reordered: mapped by name
        (event,) = poll_until(source, 1)
        assert (event.x, event.y, event.origin) == ({"b": 8.0, "a": 7.0}, "d", f"{path}:2")
        assert source.take_warnings() == []


def test_a_new_header_of_other_columns_is_used_and_said(tmp_path):
    path = tmp_path / "ct.csv"
    path.write_bytes(b"a,y\n1,c\n")
    with FileSource(str(path), MappingConfig(), follow=True, eof_wait_s=0.01) as source:
        poll_until(source, 1)
        _copytruncate(path, b"b,y\n7,z\n")
        (event,) = poll_until(source, 1)
        warnings = source.take_warnings()
    assert (event.x, event.y) == ({"b": 7.0}, "z")
    assert len(warnings) == 1 and "other columns (b, y; before: a, y)" in warnings[0]


def test_a_bad_first_line_after_a_truncation_is_one_bad_row_not_a_bad_header(tmp_path):
    """Before, a first line that was not CSV made the file's header unusable: every row a dead letter."""
    path = tmp_path / "ct.csv"
    path.write_bytes(b"a,y\n1,c\n")
    with FileSource(str(path), MappingConfig(), follow=True, eof_wait_s=0.01) as source:
        poll_until(source, 1)
        _copytruncate(path, b'5,"x"y\n6,d\n')
        bad, good = poll_until(source, 2)
    assert type(bad) is DeadLetter and bad.origin == f"{path}:1" and bad.detail.startswith("invalid CSV row")
    assert type(good) is Event and (good.x, good.y) == ({"a": 6.0}, "d")


def test_an_oversized_first_line_after_a_restart_is_an_oversized_row():
    mapping = MappingConfig(max_event_bytes=16)
    rows = CsvRecords("f.csv", mapping, "optional", EventDecoder(mapping))
    assert rows.decode(b"a,y", "f.csv:1", (1, b"\n")) is None
    rows.restart()
    rows.check_oversized("f.csv:1", b"1" * 16)  # no header error: the caller's oversized dead letter holds it
    event = rows.decode(b"2,c", "f.csv:2", (2, b"\n"))
    assert (event.x, event.y) == ({"a": 2.0}, "c")
    assert len(rows.take_warnings()) == 1


# -- F5 ----------------------------------------------------------------------------------------
def test_a_small_cr_only_csv_is_told_to_convert_its_line_endings(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"a,b,y\r1,2,c\r3,4,d\r")
    with pytest.raises(ConfigError) as info:
        with FileSource(str(path), MappingConfig()) as source:
            source.poll(100)
    message = str(info.value)
    assert message.startswith(f"source.path: {path}:1: the CSV header")
    assert "CR-only line endings" in message and "convert them to LF or CRLF" in message
    assert "universal-newline" not in message


def test_a_cr_only_csv_over_max_event_bytes_is_not_told_only_to_raise_the_bound(tmp_path):
    path = tmp_path / "mac_big.csv"
    path.write_bytes(b"a,b,y\r" + b"".join(b"%d,%d,c\r" % (i, i) for i in range(200)))
    with pytest.raises(ConfigError) as info:
        with FileSource(str(path), MappingConfig(max_event_bytes=256)) as source:
            source.poll(100)
    message = str(info.value)  # the line reaches the check (FileSource._decode_line): the specific message
    assert "holds a CR outside quotes: the file has CR-only line endings" in message
    assert "convert them to LF or CRLF" in message and "raise mapping.max_event_bytes" not in message


def test_the_oversized_header_with_its_first_bytes_names_the_cr_only_endings():
    mapping = MappingConfig(max_event_bytes=16)
    rows = CsvRecords("mac.csv", mapping, "optional", EventDecoder(mapping))
    with pytest.raises(ConfigError) as info:
        rows.check_oversized("mac.csv:1", b"a,b,y\r1,2,c\r3,4,d")
    assert "holds a CR outside quotes: the file has CR-only line endings" in str(info.value)
    assert "raise mapping.max_event_bytes" not in str(info.value)


def test_a_cr_inside_a_row_is_a_dead_letter_saying_so_and_a_quoted_cr_is_text(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(b'a,n,y\n1,"p\rq",c\n2,x\r3,d\n')
    with FileSource(str(path), MappingConfig()) as source:
        quoted, bad = source.poll(100)
    assert type(quoted) is Event and quoted.x == {"a": 1.0, "n": "p\rq"}
    assert type(bad) is DeadLetter and "CR-only line endings?" in bad.detail


@pytest.mark.parametrize("old, new, expected", [
    # r31 F2: pandas' numbered columns with one added: the header was a row, and every row after it a dead letter
    (b"0,1,2,y\n0.1,0.2,0.3,a\n", b"0,1,2,3,y\n0.5,0.6,0.7,0.8,b\n", ({"0": 0.5, "1": 0.6, "2": 0.7, "3": 0.8}, "b")),
    # a header that keeps the label column, the others renamed
    (b"a,b,y\n1,2,c\n", b"f1,f2,y\n5,6,cat\n", ({"f1": 5.0, "f2": 6.0}, "cat")),
])
def test_a_new_header_of_other_columns_is_used(tmp_path, old, new, expected):
    path = tmp_path / "f.csv"
    path.write_bytes(old)
    with FileSource(str(path), MappingConfig(), follow=True, eof_wait_s=0.01) as source:
        poll_until(source, 1)
        _copytruncate(path, new)
        (event,) = poll_until(source, 1)
        assert (event.x, event.y) == expected


@pytest.mark.parametrize("first", [
    b"2026-12-06T00:06:41Z,u42,view,churn\n",  # r32 F1: a row of text alone was taken as the header
    b"u7,click,stay,extra,cells\n",  # r32 F3: a malformed row (another number of cells) was taken as the header
])
def test_a_headerless_first_row_of_text_or_of_the_wrong_width_is_a_row(tmp_path, first):
    path = tmp_path / "log.csv"
    path.write_bytes(b"ts,user,event,y\n2026-12-05T23:00:00Z,u1,view,stay\n")
    with FileSource(str(path), MappingConfig(features=["user", "event"]), follow=True, eof_wait_s=0.01) as source:
        poll_until(source, 1)
        _copytruncate(path, first + b"2026-12-06T00:07:00Z,u43,buy,stay\n")
        records = poll_until(source, 2)
        assert [getattr(r, "y", None) for r in records][-1] == "stay"  # the rows after it are learned, labelled
        assert "not a header" in source.take_warnings()[0]
