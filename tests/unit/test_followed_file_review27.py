"""F3 of review 27: a followed file rotated to a path that cannot be opened was retried forever in
silence, every retry counted as data (so ``follow_idle_timeout_s`` never fired), and a FIFO put at
the path blocked ``open()`` until a writer came, so the run's stop flag was never looked at again.

The tests run as root too (permissions do not stop root): an unopenable file is simulated by
refusing its open (both ``open`` and ``os.open``, whichever the code uses), a directory or a FIFO
at the path is real. Clocks are injected; the FileSource tests wait only inside its own polls.
"""

import builtins
import logging
import os
import threading

import pytest

from connectors.files import FileSource
from connectors.followed_file import FollowedFile
from stream_cl.config import MappingConfig

LINE = b'{"x": {"a": 1}, "y": "c"}\n'


@pytest.fixture
def refuse(monkeypatch):
    """``refuse(path)``: opening ``path`` fails with EACCES (as for a file of mode 0600 of another user);
    returns the list of tries made."""
    tries = []

    def install(path):
        path = os.fspath(path)
        real_open, real_os_open = builtins.open, os.open

        def guarded(opener):
            def fake(file, *args, **kwargs):
                if isinstance(file, (str, os.PathLike)) and os.fspath(file) == path:
                    tries.append(file)
                    raise PermissionError(13, "Permission denied", path)
                return opener(file, *args, **kwargs)
            return fake

        monkeypatch.setattr(builtins, "open", guarded(real_open))
        monkeypatch.setattr(os, "open", guarded(real_os_open))
        return tries

    return install


def _followed(path, warnings, clock):
    f = FollowedFile(str(path), open(path, "rb"), lambda: None, warn=warnings.append, clock=lambda: clock[0])
    f.took(f.file.read())
    return f


def test_an_unopenable_new_file_is_warned_of_once_is_no_data_and_is_tried_again(tmp_path, refuse, monkeypatch):
    path = tmp_path / "app.jsonl"
    path.write_bytes(LINE)
    warnings, clock = [], [100.0]
    followed = _followed(path, warnings, clock)
    path.rename(tmp_path / "app.jsonl.1")
    path.write_bytes(LINE * 2)
    tries = refuse(path)
    assert followed.check_for_data() is False  # not data: the idle timeout goes on counting
    assert len(warnings) == 1
    assert str(path) in warnings[0] and "Permission denied" in warnings[0]
    assert followed.check_for_data() is False and len(tries) == 1  # not tried again before a second has passed
    clock[0] += 1.0
    assert followed.check_for_data() is False and len(tries) == 2 and len(warnings) == 1
    clock[0] += 600.0
    assert followed.check_for_data() is False and len(warnings) == 2  # said again, at most every 10 minutes
    assert "for 601 s now" in warnings[1]
    monkeypatch.undo()  # the permissions fixed
    clock[0] += 1.0
    assert followed.check_for_data() is True and followed.rotating
    followed.reopen(0.0)
    assert followed.file.read() == LINE * 2
    followed.close()


def test_a_fifo_at_the_path_is_refused_without_blocking(tmp_path):
    path = tmp_path / "app.jsonl"
    path.write_bytes(LINE)
    warnings, clock = [], [0.0]
    followed = _followed(path, warnings, clock)
    path.rename(tmp_path / "app.jsonl.1")
    os.mkfifo(path)
    assert followed.check_for_data() is False and not followed.rotating
    assert len(warnings) == 1 and str(path) in warnings[0] and "not a regular file" in warnings[0]
    followed.close()


def test_the_warning_goes_to_the_sinks_logger_by_default(tmp_path, caplog):
    path = tmp_path / "app.jsonl"
    path.write_bytes(LINE)
    followed = FollowedFile(str(path), open(path, "rb"), lambda: None)
    followed.took(followed.file.read())
    path.rename(tmp_path / "app.jsonl.1")
    path.mkdir()
    with caplog.at_level(logging.WARNING, logger="stream_cl.files"):
        assert followed.check_for_data() is False
    assert [r.name for r in caplog.records] == ["stream_cl.files"] and str(path) in caplog.records[0].getMessage()
    followed.close()


def test_the_idle_timeout_ends_a_source_whose_rotated_path_cannot_be_opened(tmp_path, refuse):
    path = tmp_path / "app.jsonl"
    path.write_bytes(LINE)
    with FileSource(str(path), MappingConfig(), follow=True, idle_timeout_s=0.2, eof_wait_s=0.02) as source:
        assert len(source.poll(10)) == 1
        path.rename(tmp_path / "app.jsonl.1")
        path.write_bytes(LINE * 2)
        refuse(path)
        for _ in range(200):  # each poll waits at most eof_wait_s (and a retry's wait): ~0.2 s of 4+ s
            source.poll(10)
            if source.exhausted:
                break
        assert source.exhausted


def test_a_fifo_at_the_rotated_path_never_blocks_a_poll(tmp_path):
    """Before, the poll blocked in open() until a writer came: a thread guards the test against that."""
    path = tmp_path / "app.jsonl"
    path.write_bytes(LINE)
    source = FileSource(str(path), MappingConfig(), follow=True, idle_timeout_s=0.2, eof_wait_s=0.02)
    assert len(source.poll(10)) == 1
    path.rename(tmp_path / "app.jsonl.1")
    os.mkfifo(path)
    done = threading.Event()

    def drive():
        for _ in range(200):
            source.poll(10)
            if source.exhausted:
                done.set()
                return

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    thread.join(timeout=30)
    blocked = thread.is_alive()
    if blocked:  # let a reader blocked in open() go: a writer's non-blocking open meets it
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=5)
    source.close()
    assert not blocked and done.is_set()
