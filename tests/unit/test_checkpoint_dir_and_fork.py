"""Two of review r140's left-out items about the checkpoint directory.

* A directory ``claim()`` makes (``checkpoint.dir`` and any missing parents) is fsynced in its parent:
  a power loss right after the first checkpoint could otherwise take the directory entry, and the
  checkpoint in it, with it.
* A forked child holds none of its parent's locks (POSIX record locks are not inherited), but it took
  the parent's table of held directories for its own: its ``claim()`` of the parent's directory passed,
  and the two wrote side by side. It is now refused as any other process's is.
"""

from __future__ import annotations

import os

import pytest

import stream_cl.checkpoint as ckpt
from stream_cl.checkpoint import CheckpointError, CheckpointStore


def test_each_directory_claim_makes_is_fsynced_in_its_parent(tmp_path, monkeypatch):
    opened: dict[int, str] = {}
    synced: list[str] = []
    real_open, real_fsync = os.open, os.fsync

    def recording_open(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        opened[fd] = os.fspath(path)
        return fd

    def recording_fsync(fd):
        synced.append(opened.get(fd))
        return real_fsync(fd)

    monkeypatch.setattr(ckpt.os, "open", recording_open)
    monkeypatch.setattr(ckpt.os, "fsync", recording_fsync)
    CheckpointStore(tmp_path / "a" / "b").claim()
    assert str(tmp_path) in synced and str(tmp_path / "a") in synced  # the entries of a and of a/b


def test_a_directory_that_exists_is_not_fsynced_again(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(ckpt.os, "fsync", lambda fd: synced.append(fd))
    CheckpointStore(tmp_path).claim()
    assert synced == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_a_forked_child_cannot_claim_its_parents_directory(tmp_path):
    CheckpointStore(tmp_path).claim()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what its claim did, then leave without running pytest's teardown
        os.close(read)
        try:
            CheckpointStore(tmp_path).claim()
            said = b"claimed"
        except CheckpointError as e:
            said = b"refused" if "another process" in str(e) else b"other"
        except BaseException:
            said = b"raised"
        os.write(write, said)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as r:
        said = r.read()
    os.waitpid(pid, 0)
    assert said == b"refused"
