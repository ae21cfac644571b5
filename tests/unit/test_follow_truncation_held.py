"""Review r66 F4: a followed file truncated in place (logrotate's copytruncate) while the source held part of
its old content (a last line without its line end, a CSV row inside a quoted field, an oversized line being
discarded) dropped that part without a record; a rotation by rename of the same content gave a dead letter.
Now every line read has its prediction or dead letter. A line held without its line end is a dead letter at
a truncation (its writer may have been cut inside a cell: review r68 L2), and read as the last line at the end of
a rotated file."""

from __future__ import annotations

import os

import pytest

from connectors.files import FileSource
from stream_cl.events import Event
from stream_cl.config import MappingConfig
from file_kit import poll_until  # tests/unit/file_kit.py

CASES = {
    "jsonl-partial-line": ("in.jsonl", b'{"x":{"a":1},"y":"c"}\n{"x":{"a":2},"y":', b'{"x":{"a":9},"y":"z"}\n',
                           [("Event", 1), ("DeadLetter", 2), ("Event", 1)]),
    "csv-open-quote": ("in.csv", b'a,b,y\n1,2,c\n3,"multi\nline', b"a,b,y\n8,9,z\n",
                       {"truncate": [("Event", 2), ("DeadLetter", 3), ("DeadLetter", 4), ("Event", 2)],
                        "rotate": [("Event", 2), ("DeadLetter", 3), ("Event", 2)]}),
    "csv-cut-cell": ("in.csv", b"a,b,y\n1,2,c\n3,4,fra", b"a,b,y\n8,9,z\n",  # review r68 L2: learned as 'fra'
                     {"truncate": [("Event", 2), ("DeadLetter", 3), ("Event", 2)],
                      "rotate": [("Event", 2), ("Event", 3), ("Event", 2)]}),  # a rotated file's last line is whole
    "oversized-line": ("in.jsonl", b'{"x":{"a":1},"y":"c"}\n{"x":{"a":[' + b"1," * 600, b'{"x":{"a":9},"y":"z"}\n',
                       [("Event", 1), ("DeadLetter", 2), ("Event", 1)]),
}


def _follow(path) -> FileSource:
    return FileSource(str(path), MappingConfig(max_event_bytes=512), follow=True, eof_wait_s=0.01)


@pytest.mark.parametrize("how", ["truncate", "rotate"])
@pytest.mark.parametrize("case", list(CASES))
def test_what_the_source_held_of_the_old_content_is_a_record_whether_truncated_or_rotated(tmp_path, case, how):
    name, first, later, expected = CASES[case]
    expected = expected[how] if isinstance(expected, dict) else expected
    path = tmp_path / name
    path.write_bytes(first)
    with _follow(path) as source:
        got = poll_until(source, 1)
        assert not source.poll(100)  # the rest is held: no line end yet
        if how == "truncate":
            os.truncate(path, 0)
        else:
            os.rename(path, f"{path}.1")
            path.write_bytes(b"")
        with open(path, "ab") as f:
            f.write(later)
        got += poll_until(source, len(expected) - len(got))
    assert [(type(r).__name__, int(r.origin.rsplit(":", 1)[1])) for r in got] == expected
    letters = [r for r in got if type(r) is not Event]
    assert [d.reason for d in letters] == ["oversized" if case == "oversized-line" else "malformed"] * len(letters)
    if how == "truncate" and case in ("jsonl-partial-line", "csv-cut-cell"):
        assert letters[0].detail == "the file was truncated in place while this line was unfinished (no line end came)"
