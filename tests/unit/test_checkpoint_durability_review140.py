"""Review r140: checkpoint durability and the directory's lock.

F1 (low-medium): any failure to take the directory's lock was named "another process is using this
checkpoint directory", the fix "give each daemon its own checkpoint.dir". A filesystem that cannot
lock at all (NFS without its lock service: ENOLCK; some FUSE or SMB mounts: EOPNOTSUPP) sent the user
looking for a second daemon that does not exist. Only a lock another process holds (EAGAIN, EACCES)
is named so; any other failure names its errno and the fix (a filesystem with POSIX locks).

F2 (low): a failed fsync of the directory after the rename (EIO, ENOSPC, EDQUOT) was swallowed: the
save reported success and went on to delete the older checkpoints, though the rename that holds the
new one was not known to be on disk. It is a failed write now (CheckpointError, exit 1 in the daemon),
raised before retention deletes anything; a filesystem that cannot fsync a directory at all (EINVAL)
is still passed over.

Also here, as evidence for what was found sound: a process killed at each step of a save (before the
fsync, before the rename, after it, while pruning, half-way through its write) leaves the old or the
new checkpoint loadable, and a killed writer's lock is free to the next process.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys

import numpy as np
import pytest

import stream_cl.checkpoint as ckpt
from stream_cl.checkpoint import CheckpointError, CheckpointStore


def _fails_with(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


# -- F1: the lock ------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL], ids=["ENOLCK", "EOPNOTSUPP", "EINVAL"])
def test_a_filesystem_that_cannot_lock_is_named_as_such_not_as_another_daemon(tmp_path, monkeypatch, code):
    import fcntl

    monkeypatch.setattr(fcntl, "lockf", _fails_with(code))
    with pytest.raises(CheckpointError) as refused:
        CheckpointStore(tmp_path / "ck").claim()
    message = str(refused.value)
    assert "another process" not in message
    assert os.strerror(code) in message and "checkpoint.dir" in message and "lock" in message


@pytest.mark.parametrize("code", [errno.EAGAIN, errno.EACCES], ids=["EAGAIN", "EACCES"])
def test_a_lock_another_process_holds_is_still_named_so(tmp_path, monkeypatch, code):
    import fcntl

    monkeypatch.setattr(fcntl, "lockf", _fails_with(code))
    with pytest.raises(CheckpointError, match="another process is using this checkpoint directory"):
        CheckpointStore(tmp_path / "ck").claim()


_HOLDER = """
import sys
from stream_cl.checkpoint import CheckpointStore
CheckpointStore(sys.argv[1]).save({"v": 1})
print("held", flush=True)
sys.stdin.read()
"""


def test_a_killed_writers_lock_is_free_to_the_next_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout.readline() == b"held\n"  # (it says so once it holds the lock)
        with pytest.raises(CheckpointError, match="another process"):
            CheckpointStore(tmp_path).claim()
        assert CheckpointStore(tmp_path).load_latest()[0] == {"v": 1}  # a reader needs no lock
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    store = CheckpointStore(tmp_path).claim()  # its .lock file is left, but not its lock
    assert store.save({"v": 2}).seq == 2


# -- F2: the directory's fsync -----------------------------------------------------------------
def _fsync_failing_on_directories(code: int):
    real = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(code, os.strerror(code))
        real(fd)
    return fsync


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC], ids=["EIO", "ENOSPC"])
def test_a_directory_fsync_that_fails_is_a_failed_write_and_prunes_nothing(tmp_path, monkeypatch, code):
    store = CheckpointStore(tmp_path, keep=1)
    store.save({"v": 1})
    monkeypatch.setattr(ckpt.os, "fsync", _fsync_failing_on_directories(code))
    with pytest.raises(CheckpointError, match=rf"cannot write the checkpoint .*\[Errno {code}\]"):
        store.save({"v": 2})
    monkeypatch.undo()
    # the rename was made but is not known to be durable: the one before it is kept (keep=1 deleted nothing)
    assert [s for s, _ in store.list()] == [1, 2]
    assert ckpt.load_checkpoint(store.list()[0][1])[0] == {"v": 1}


def test_a_filesystem_that_cannot_fsync_a_directory_still_saves(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path, keep=1)
    store.save({"v": 1})
    monkeypatch.setattr(ckpt.os, "fsync", _fsync_failing_on_directories(errno.EINVAL))
    assert store.save({"v": 2}).seq == 2
    assert [s for s, _ in store.list()] == [2] and store.load_latest()[0] == {"v": 2}


# -- found sound: a kill at any step leaves the old or the new checkpoint ----------------------
_KILLED = """
import builtins, os, sys
from pathlib import Path
import numpy as np
import stream_cl.checkpoint as ck

folder, step = sys.argv[1], sys.argv[2]
store = ck.CheckpointStore(folder, keep=1)
store.save({"W": np.full(1000, 1.0), "v": 1})
die = lambda *a, **k: os._exit(9)
if step == "halfwrite":
    real_open = builtins.open

    class Half:  # writes half of the file, then the process dies
        def __init__(self, f): self.f = f
        def __enter__(self): return self
        def __exit__(self, *a): return False
        def write(self, raw): self.f.write(raw[: len(raw) // 2]); self.f.flush(); os._exit(9)

    ck.open = lambda p, m: Half(real_open(p, m))
elif step == "prune":
    Path.unlink = die
elif step == "dirfsync":
    ck.os.open = die
else:
    setattr(ck.os, step, die)
store.save({"W": np.full(1000, 2.0), "v": 2})
"""


@pytest.mark.parametrize("step, survivor", [("halfwrite", 1), ("fsync", 1), ("replace", 1), ("dirfsync", 2),
                                            ("prune", 2)])
def test_a_writer_killed_at_any_step_leaves_the_old_or_the_new_checkpoint(tmp_path, step, survivor):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    assert subprocess.run([sys.executable, "-c", _KILLED, str(tmp_path), step], env=env).returncode == 9
    state, info = CheckpointStore(tmp_path).load_latest()
    assert state["v"] == survivor and np.all(state["W"] == survivor)
    store = CheckpointStore(tmp_path, keep=1).claim()  # the restart: what the kill left is cleaned up
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
    assert store.save({"v": 3}).seq == survivor + 1 and [s for s, _ in store.list()] == [survivor + 1]
