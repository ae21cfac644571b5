"""Review r133 F1: in tail mode, a rotation by rename with logrotate's ``create`` (the default way) lost data
and learned cut rows. logrotate renames the file and creates an empty one at the path before the writer
reopens its file; until it does (its postrotate signal), the writer goes on in the renamed file: the rest of
a line its buffer had cut, and the lines after it. The source switched to the empty new file as soon as it
was at the path, so it read the old file's cut last line as a whole line (a CSV row ``3,4,fra`` of
``3,4,fraud`` was learned, its class ``fra`` a new class) and never read what the writer added to the old
file. A new file renamed away in turn while still empty was left as soon as the next one was at the path,
before its writer's last line came. Now the source goes on to a new file at the path once it holds data (or
is renamed away in turn); until then the old one is read on."""

from __future__ import annotations

import os

from connectors.files import FileSource
from connectors.followed_file import FollowedFile
from stream_cl.config import MappingConfig
from stream_cl.events import Event


def _drain(source, polls: int = 5) -> list:
    out = []
    for _ in range(polls):  # each poll waits at most its eof_wait_s (0 here): no sleeps
        out += source.poll(100)
    return out


def test_a_create_rotation_reads_what_the_writer_adds_to_the_old_file_before_it_reopens(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(b"a,b,y\n1,2,ok\n3,4,fra")  # the writer's buffer cut its last row
    with FileSource(str(path), MappingConfig(), follow=True, eof_wait_s=0) as source:
        got = _drain(source)
        os.rename(path, f"{path}.1")
        path.write_bytes(b"")  # logrotate's create: an empty file, before the writer reopens
        got += _drain(source)
        with open(f"{path}.1", "ab") as old:  # the writer flushes its buffer, still into the renamed file
            old.write(b"ud\n5,6,ok\n")
        with open(path, "ab") as new:  # then reopens the path
            new.write(b"7,8,ok\n")
        got += _drain(source)
    assert all(type(r) is Event for r in got), got
    assert [(r.x["a"], r.y) for r in got] == [(1.0, "ok"), (3.0, "fraud"), (5.0, "ok"), (7.0, "ok")]


def test_an_empty_new_file_at_the_path_is_no_rotation_yet(tmp_path):
    path = str(tmp_path / "app.jsonl")
    with open(path, "wb") as f:
        f.write(b'{"x": {"a": 1}}\n')
    restarts = []
    followed = FollowedFile(path, open(path, "rb"), lambda: restarts.append(True))
    followed.took(followed.file.read())
    os.rename(path, path + ".1")
    open(path, "wb").close()
    assert followed.check_for_data() is False and not followed.rotating
    with open(path + ".1", "ab") as old:
        old.write(b'{"x": {"a": 2}}\n')
    assert followed.check_for_data() is True and not followed.rotating  # the old file grew: read it on
    followed.took(followed.file.read())
    with open(path, "ab") as new:
        new.write(b'{"x": {"a": 3}}\n')
    assert followed.check_for_data() is True and followed.rotating
    followed.reopen(0.0)
    assert followed.file.read() == b'{"x": {"a": 3}}\n' and restarts == [True]
    followed.close()


def test_a_new_file_renamed_away_in_turn_while_empty_is_still_read(tmp_path):
    """A writer that wrote nothing between two rotations, then a line into its file after the second rename
    (before it reopened the path): that file, empty when it was seen at the path, is read before the next one."""
    path = tmp_path / "app.jsonl"
    path.write_bytes(b'{"x": {"a": 1}, "y": "c"}\n')
    with FileSource(str(path), MappingConfig(), follow=True, eof_wait_s=0) as source:
        got = _drain(source)
        os.rename(path, f"{path}.1")
        path.write_bytes(b"")  # the first rotation's new file: the writer reopens it and writes nothing
        got += _drain(source)
        os.rename(path, f"{path}.2")
        path.write_bytes(b"")  # the second rotation
        got += _drain(source)
        with open(f"{path}.2", "ab") as old:  # the writer's line before it reopens the path
            old.write(b'{"x": {"a": 2}, "y": "c"}\n')
        got += _drain(source)
        with open(path, "ab") as new:
            new.write(b'{"x": {"a": 3}, "y": "c"}\n')
        got += _drain(source)
    assert [r.x["a"] for r in got if type(r) is Event] == [1.0, 2.0, 3.0] and len(got) == 3
