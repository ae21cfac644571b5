"""Checkpoints on disk: nested state in one file, written atomically, read without running code.

A checkpoint is one ``.safetensors`` file in the format of :mod:`stream_cl.checkpoint_format` (arrays
as tensors, everything else a JSON tree; a SHA-256 of the content checked on load).

Writing goes to a temporary file in the same directory, which is fsynced, renamed
over the final name and followed by an fsync of the directory: a crash at any moment
leaves either the previous checkpoint or the new one, never a torn file.
A write that fails (disk full, read-only or unwritable directory) raises
:class:`CheckpointError` naming the file, and leaves the previous checkpoint as it was.
:class:`CheckpointStore` numbers the checkpoints of one directory, keeps the last few, and lets
one process at a time write there.

>>> import tempfile, numpy as np
>>> store = CheckpointStore(tempfile.mkdtemp(), keep=2)
>>> info = store.save({"W": np.eye(2), "classes": [True, 3, "x"], "names": {0: "a", "b": 1.5}})
>>> state, loaded = store.load_latest()
>>> state["classes"], state["names"], state["W"].dtype, loaded.seq
([True, 3, 'x'], {0: 'a', 'b': 1.5}, dtype('float64'), 1)
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .checkpoint_format import CheckpointError, decode_state, encode_state
# The names that moved to modules of their own when this one was split stay importable from here, the same
# objects (__all__ lists them too): those this module does not use itself are imported for that alone.
from .checkpoint_format import FORMAT, FORMAT_VERSION, READ_VERSIONS
from .model_state import load_all_or_nothing, sufficient_statistics

# CheckpointError is the format's (it raises it too) and this module's: what its functions raise
__all__ = [
    "CheckpointError",
    "CheckpointInfo",
    "CheckpointStore",
    "load_checkpoint",
    "save_checkpoint",
    "write_atomically",
    # (moved, as above)
    "FORMAT",
    "FORMAT_VERSION",
    "READ_VERSIONS",
    "load_all_or_nothing",
    "sufficient_statistics",
]

_NAME = re.compile(r"^ckpt-(\d{12})\.safetensors$")
_TMP_PREFIX = ".tmp-ckpt-"
_MOVE_AWAY = "; move it away to resume from the one before"  # the fix for a newest file that cannot be read
# load_latest() tries this many newest files that a writer's retention deleted before they were read
_VANISHED_TRIES = 20


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    seq: int
    size_bytes: int
    created: float  # epoch seconds (from the file's metadata)
    duration_s: float = 0.0  # time to encode, write and sync (0 for a loaded one)
    meta: Mapping | None = None  # the caller's metadata given to save()


def save_checkpoint(path: str | os.PathLike, state: Mapping, meta: Mapping | None = None) -> int:
    """Write ``state`` to ``path`` atomically (temp file, fsync, rename, dir fsync); returns its size.

    ``meta`` is a small JSON-able dict stored beside the state (seq, offsets summary...). A write
    that fails (disk full, unwritable or read-only directory) raises :class:`CheckpointError`
    naming the file; the temp file is removed and whatever was at ``path`` is left as it was.
    """
    path = Path(path)
    raw = encode_state(state, meta)
    try:
        write_atomically(path, raw, path.parent / f"{_TMP_PREFIX}{path.name}.{os.getpid()}")
    except OSError as e:  # a bare errno names neither the file nor the setting to change
        raise _write_error(path, e) from e
    return len(raw)


def write_atomically(path: Path, raw: bytes, tmp: Path, mode: int | None = None) -> None:
    """Write ``raw`` to ``path`` whole or not at all: to ``tmp`` (in the same folder), fsynced, renamed over
    ``path``, then the folder fsynced; ``mode``: the new file's permission bits (else the umask's). An
    ``OSError`` as the system raised it, ``tmp`` removed and whatever was at ``path`` left as it was; one from
    the folder's fsync comes after the rename (``path`` holds the new bytes, not known to be on disk)."""
    try:
        with open(tmp, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _write_error(path: Path, e: OSError) -> CheckpointError:
    """The error for a write that failed: which file, why (the errno), and the setting that fixes it."""
    return CheckpointError(
        f"{path}: cannot write the checkpoint ({type(e).__name__}: {e}); free space in {path.parent} or point "
        "checkpoint.dir at a writable directory with room (the checkpoints already there are left as they were)"
    )


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(state, header)`` from a checkpoint file; raises :class:`CheckpointError` if unreadable."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise _unreadable(path, e) from None
    return decode_state(raw, str(path), hint=_MOVE_AWAY)


def _unreadable(path: Path, e: OSError) -> CheckpointError:
    return CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e}){_MOVE_AWAY}")


# what fsync of a directory raises where the filesystem cannot sync one at all: passed over, as a platform
# without directory fds is. Any other error (EIO, ENOSPC, EDQUOT) is raised: the rename is not known to be
# on disk, and the save must not go on to delete the checkpoints before it (review r140 F2)
_DIR_FSYNC_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF})


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def _make_dir(folder: Path) -> None:
    """Make ``folder`` and its missing parents, each new one's entry fsynced in its parent: a power loss
    after the first checkpoint could otherwise take the directory, and the checkpoint, with it (review r140)."""
    new = []
    for p in (folder, *folder.parents):
        if p.exists():
            break
        new.append(p)
    folder.mkdir(parents=True, exist_ok=True)
    for p in reversed(new):
        _fsync_dir(p.parent)


class CheckpointStore:
    """Numbered checkpoints ``ckpt-<seq>.safetensors`` in one directory; keeps the last ``keep``. The writer
    makes the directory (:meth:`claim`); a store that only reads finds no checkpoint in a directory not made
    yet and leaves it unmade (review r121: a script reading a mistyped path made an empty directory there)."""

    def __init__(self, directory: str | os.PathLike, keep: int = 3):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep!r}")
        self.dir = Path(directory)
        self.keep = keep
        self._claimed = False
        try:
            existing = self.list()
        except OSError as e:  # a file, or a path under one: refused here, before a reader or writer goes on
            raise self._unusable(e) from None
        self._seq = existing[-1][0] if existing else 0

    def claim(self) -> "CheckpointStore":
        """Become the directory's one writer (the first :meth:`save` does it too): hold its lock for
        the life of this process, or raise :class:`CheckpointError` if another process holds it, then
        remove what a crash mid-write left. A store that only reads (a script looking at a running
        daemon's checkpoints) never claims: it neither waits for the lock nor touches the files."""
        if self._claimed:
            return self
        try:
            _make_dir(self.dir)
            _lock(self.dir)  # before the clean-up below: another writer's temporary file is not stale
            for stale in self.dir.glob(f"{_TMP_PREFIX}*"):  # a crash mid-write leaves these
                try:
                    stale.unlink()
                except OSError:
                    pass
            existing = self.list()
        except OSError as e:
            raise self._unusable(e) from None
        self._seq = max(self._seq, existing[-1][0] if existing else 0)
        self._claimed = True
        return self

    def _unusable(self, e: OSError) -> CheckpointError:
        return CheckpointError(f"{self.dir}: cannot be used as the checkpoint directory ({e.strerror or e}); "
                               "set checkpoint.dir to a directory this user can create and write")

    def list(self) -> list[tuple[int, Path]]:
        """``(seq, path)`` of each checkpoint in the directory, oldest first (none in a directory not made yet);
        ``OSError`` if it cannot be listed."""
        out = []
        try:
            paths = list(self.dir.iterdir())
        except FileNotFoundError:
            return []
        for p in paths:
            m = _NAME.match(p.name)
            if m:
                out.append((int(m.group(1)), p))
        return sorted(out)

    def latest(self) -> Path | None:
        """The newest checkpoint's path, or ``None`` when there is none."""
        items = self.list()
        return items[-1][1] if items else None

    def save(self, state: Mapping, meta: Mapping | None = None) -> CheckpointInfo:
        """Write ``state`` (and ``meta``, with its ``seq``) as the next numbered checkpoint, atomically
        (:func:`save_checkpoint`), then remove all but the last ``keep``. Claims the directory first
        (:meth:`claim`); :class:`CheckpointError` if it cannot, or if the write fails."""
        t0 = time.perf_counter()
        self.claim()
        # above the directory's newest too: another store of this process on it (the lock keeps other
        # processes out, not other stores of this one) may have saved since, and numbered from this
        # store's own counter the file would replace that one
        seq = max(self._seq, self._newest_on_disk()) + 1
        path = self.dir / f"ckpt-{seq:012d}.safetensors"
        size = save_checkpoint(path, state, {**(meta or {}), "seq": seq})
        self._seq = seq
        for _, old in self.list()[: -self.keep]:
            try:
                old.unlink()
            except OSError:
                pass
        return CheckpointInfo(path, seq, size, time.time(), time.perf_counter() - t0, meta)

    def _newest_on_disk(self) -> int:
        """The highest number in the directory; 0 where it cannot be listed (the write that follows names
        the error)."""
        try:
            existing = self.list()
        except OSError:
            return 0
        return existing[-1][0] if existing else 0

    def load_latest(self) -> tuple[dict, CheckpointInfo] | None:
        """The newest checkpoint, or None if there is none.

        A newest file that cannot be read is an error, not a reason to fall back
        silently: offsets past it may already be committed, so an older model would
        skip events. The error says which file to move away to resume from the previous.

        A newest file that is gone by the time it is read was deleted by the retention of a
        writer's newer save (a script reading a running daemon's directory, ``checkpoint.keep = 1``):
        the directory is listed again, and its new newest file read.
        """
        for _ in range(_VANISHED_TRIES):
            path = self.latest()
            if path is None:
                return None
            try:
                raw = path.read_bytes()  # once open, the file reads whole even if deleted meanwhile
            except FileNotFoundError:
                continue  # a newer one replaced it
            except OSError as e:
                raise _unreadable(path, e) from None
            state, header = decode_state(raw, str(path), hint=_MOVE_AWAY)
            seq = int(_NAME.match(path.name).group(1))
            return state, CheckpointInfo(path, seq, len(raw), header["created"], 0.0, header["meta"])
        raise CheckpointError(
            f"{self.dir}: the newest checkpoint was deleted before it could be read, {_VANISHED_TRIES} times in a "
            "row: a process writing there (checkpoint.keep = 1?) replaces its checkpoints faster than they are "
            "read; read again, or give the writer a larger checkpoint.keep"
        )


_LOCKED: dict = {}  # checkpoint directories this process holds, by resolved path: their open lock files
_LOCKING = threading.Lock()  # one claim at a time: a second open of a held file, closed, would drop its lock


def _forget_locks_in_child() -> None:
    """A forked child holds none of its parent's locks: without this it took ``_LOCKED``'s entries for its
    own, and wrote beside its parent as if it held the directory (review r140). (A new ``_LOCKING`` too:
    another thread of the parent may have held it at the fork.)"""
    global _LOCKING
    _LOCKED.clear()
    _LOCKING = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_locks_in_child)


def _lock(directory: Path) -> None:
    """Hold ``directory/.lock`` for the life of this process, or raise :class:`CheckpointError` if
    another process holds it. Two daemons on one directory wrote the same checkpoint numbers and
    removed each other's temporary files (one failed its checkpoint; the other's restart loaded the
    first one's model and offsets). A POSIX record lock: the kernel drops it when the process ends,
    even by SIGKILL, and a child the process forks does not inherit it. Without ``fcntl`` (not
    POSIX) there is no lock."""
    key = directory.resolve()
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    with _LOCKING:
        if key in _LOCKED:
            return
        f = open(key / ".lock", "a+b")  # noqa: SIM115 - held open (and locked) until the process ends
        try:
            fcntl.lockf(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            f.close()
            if e.errno in (errno.EAGAIN, errno.EACCES):  # what POSIX gives for a lock another process holds
                raise CheckpointError(f"{key}: another process is using this checkpoint directory (it holds "
                                      f"{key / '.lock'}); give each daemon its own checkpoint.dir") from None
            # a filesystem that cannot lock (NFS without its lock service: ENOLCK; some FUSE or SMB mounts) was
            # named as a second daemon, which the user then looked for in vain (review r140 F1)
            raise CheckpointError(f"{key}: cannot lock {key / '.lock'} ({e.strerror or e}): its filesystem does not "
                                  "take POSIX locks; point checkpoint.dir at a directory on one that does (a local "
                                  "disk)") from None
        _LOCKED[key] = f
