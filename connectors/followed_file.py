"""The file a :class:`~connectors.files.FileSource` reads, and what happens to it on disk.

Tail mode (``follow=True``) reads a file another process writes and may replace: it can
grow, be truncated in place and refilled (``copytruncate``), or be renamed away while a
new file takes its name (rotation by renaming). :class:`FollowedFile` notices each of
these; turning the bytes into lines and events stays with the source. Without tail mode
it is only the open file, read to its end.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

__all__ = ["FollowedFile"]

_WAIT_STEP_S = 0.02  # how often a wait at the end of the file looks for new data
_HEAD_BYTES = 4096  # the first bytes kept to notice a truncated file that was rewritten


class FollowedFile:
    """The open file at ``path``, and (tail mode) its truncation and rotation.

    ``file`` is the binary file to read (None once closed); whoever reads it calls
    :meth:`took` with each chunk read. ``on_restart()`` is called whenever the file is read
    again from its start, as a new file (truncated, or a rotated one opened): the reader
    then forgets its place (line numbers, a CSV header). ``rotating`` is True once the path
    names another file: the reader reads this one to its end, then calls :meth:`reopen`.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "log")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"one\\ntwo\\n")
    >>> restarts = []
    >>> followed = FollowedFile(path, open(path, "rb"), lambda: restarts.append(True))
    >>> followed.took(followed.file.read())
    >>> followed.check_for_data()  # at the end: nothing new
    False
    >>> with open(path, "wb") as f:  # copytruncate, refilled past the old position
    ...     _ = f.write(b"three\\nfour\\n")
    >>> followed.check_for_data(), restarts, followed.file.tell()
    (True, [True], 0)
    >>> followed.close()
    """

    def __init__(self, path: str, file: BinaryIO, on_restart: Callable[[], None]):
        self.path = path
        self.file: BinaryIO | None = file
        self.rotating = False  # the path names a new file: read this one to its end, then open that one
        self.last_data = time.monotonic()  # when bytes were last read: the idle timeout counts from it
        self._on_restart = on_restart
        self._head = b""  # the file's first bytes, as read: a change means it was truncated and rewritten
        self._closing = threading.Event()  # wakes a wait at the end of the file when closed

    def took(self, chunk: bytes) -> None:
        """Bytes were read: the source is not idle, and the file's first bytes are known."""
        self.last_data = time.monotonic()
        if len(self._head) < _HEAD_BYTES:
            self._head += chunk[: _HEAD_BYTES - len(self._head)]

    def wait_for_data(self, wait_s: float) -> bool:
        """Wait up to ``wait_s`` for more to read (see :meth:`check_for_data`); False if none came."""
        deadline = time.monotonic() + wait_s
        while not self.check_for_data():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing.wait(min(_WAIT_STEP_S, remaining)):
                return False
        return True

    def check_for_data(self) -> bool:
        """Tail mode: True when there is more to read. The file grew; or it was truncated,
        even if rewritten past the read position since (it is read again from its start);
        or, at its end, the path names another file (``rotating``: it is read next)."""
        f = self.file
        if f is None:  # closed meanwhile
            return False
        try:
            fd = f.fileno()
            stat, pos = os.fstat(fd), f.tell()
            if stat.st_size < pos or os.pread(fd, len(self._head), 0) != self._head:
                self._restart()  # copytruncate: the size alone misses a file already written past pos
                return True
            if stat.st_size > pos:
                return True
            self.rotating = self._renamed(stat)  # only at the end: the rest of this file comes first
            return self.rotating
        except (OSError, ValueError):  # closed meanwhile
            return False

    def reopen(self, retry_wait_s: float) -> None:
        """After a rotation, go on with the file now at the path, from its start. If it
        cannot be opened, stay on the old one and wait ``retry_wait_s`` before going on."""
        self.rotating = False
        if self._closing.is_set():
            return
        try:
            new = open(self.path, "rb")
        except OSError:  # gone again, or unreadable: stay on the old file, look again after a wait
            self._closing.wait(retry_wait_s)
            return
        old, self.file = self.file, new
        old.close()
        self._restart()

    def close(self) -> None:
        """Close the file and wake a :meth:`wait_for_data` in another thread."""
        self._closing.set()
        if self.file is not None:
            self.file.close()
            self.file = None

    def _renamed(self, stat: os.stat_result) -> bool:
        """Whether the path names another file than the open one (rotation by renaming)."""
        try:
            now = os.stat(self.path)
        except OSError:  # nothing there yet: the writer has not created the new file
            return False
        return (now.st_dev, now.st_ino) != (stat.st_dev, stat.st_ino)

    def _restart(self) -> None:
        """Read the open file from its start, as a new file."""
        self.file.seek(0)
        self._head = b""
        self._on_restart()
