"""The file a :class:`~connectors.files.FileSource` reads, and what happens to it on disk.

Tail mode (``follow=True``) reads a file another process writes and may replace: it can
grow, be truncated in place and refilled (``copytruncate``), or be renamed away while a
new file takes its name (rotation by renaming). :class:`FollowedFile` notices each of
these; turning the bytes into lines and events stays with the source. Without tail mode
it is only the open file, read to its end.

A new file at the path is gone on to once it holds data (or is renamed away in turn):
logrotate's ``create`` makes it empty before the writer reopens its file, and until then the
writer goes on in the renamed one (the rest of a line its buffer cut, and the lines after
it), which is read on meanwhile.

A new file at the path that cannot be opened (logrotate's ``create 0600 otheruser``, or a
FIFO put there) is said in a warning naming the path and the reason, and tried again every
second; meanwhile the open file is read on and the wait counts as idle
(``follow_idle_timeout_s``). Only a regular file is opened, and never with a blocking open.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from stat import S_ISREG
from typing import BinaryIO

__all__ = ["FollowedFile"]

log = logging.getLogger("stream_cl.files")  # the sinks' logger: a file run prints it on stderr

_WAIT_STEP_S = 0.02  # how often a wait at the end of the file looks for new data
_HEAD_BYTES = 4096  # the first bytes kept to notice a truncated file that was rewritten
_RETRY_S = 1.0  # how often a new file at the path that could not be opened is tried again
_SAY_AGAIN_S = 600.0  # how often that is said again while it still cannot be opened
_NOT_REGULAR = "not a regular file (a FIFO, socket or device): tail mode reads regular files only"


class FollowedFile:
    """The open file at ``path``, and (tail mode) its truncation and rotation.

    ``file`` is the binary file to read (None once closed); whoever reads it calls
    :meth:`took` with each chunk read. ``on_restart()`` is called whenever the file is read
    again from its start, as a new file (truncated, or a rotated one opened): the reader
    then forgets its place (line numbers, a CSV header). ``rotating`` is True once the path
    names another file that holds data (module docstring): the reader reads this one to its end, then
    calls :meth:`reopen`.
    ``warn(text)`` says a new file at the path that cannot be opened (by default on the
    ``stream_cl.files`` logger, as the sinks say theirs); ``clock`` times its retries.

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

    def __init__(
        self,
        path: str,
        file: BinaryIO,
        on_restart: Callable[[], None],
        *,
        warn: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.path = path
        self.file: BinaryIO | None = file
        self.rotating = False  # the path names a new file, open in _next: read this one to its end, then go on there
        self.last_data = time.monotonic()  # when bytes were last read: the idle timeout counts from it
        self._on_restart = on_restart
        self._head = b""  # the file's first bytes, as read: a change means it was truncated and rewritten
        self._closing = threading.Event()  # wakes a wait at the end of the file when closed
        self._warn = warn or log.warning
        self._clock = clock
        self._next: BinaryIO | None = None  # the new file at the path, opened when it was seen there
        self._unopened: _Unopened | None = None  # the new file at the path that could not be opened

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
        or, at its end, the path names another file, which holds data and could be opened
        (``rotating``: it is read next)."""
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
        """After a rotation, go on with the new file at the path (opened when it was seen there),
        from its start. Without one, stay on the old one and wait ``retry_wait_s`` before going on."""
        self.rotating = False
        new, self._next = self._next, None
        if new is None or self._closing.is_set():
            if new is not None:
                new.close()
            self._closing.wait(retry_wait_s)  # (at once when closed)
            return
        old, self.file = self.file, new
        old.close()
        self._restart()

    def close(self) -> None:
        """Close the file and wake a :meth:`wait_for_data` in another thread."""
        self._closing.set()
        if self._next is not None:
            self._next.close()
            self._next = None
        if self.file is not None:
            self.file.close()
            self.file = None

    def _renamed(self, stat: os.stat_result) -> bool:
        """Whether to go on to another file at the path than the open one (rotation by renaming),
        opened to be read next (:attr:`_next`): once it holds data, or is itself renamed away
        (module docstring: logrotate's ``create``). One that cannot be opened is not: it is no
        data to wait for, so the idle timeout goes on counting, and it is tried again every ``_RETRY_S``."""
        if self._next is None and not self._open_next(stat):
            return False
        try:
            st = os.fstat(self._next.fileno())
            if st.st_size > 0:
                return True
            now = os.stat(self.path)
        except OSError:  # the path is gone: the new file was renamed away too (r133 F1)
            return True
        # still empty: the writer may go on in the open file until it reopens the path; a file renamed
        # away in turn while empty is read next all the same (its writer's last lines go there) (r133 F1)
        return (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino)

    def _open_next(self, stat: os.stat_result) -> bool:
        """Open the other file the path names than the open one (``stat``) as :attr:`_next`, if
        there is one and it can be opened; whether it was."""
        try:
            now = os.stat(self.path)
        except OSError:  # nothing there yet: the writer has not created the new file
            return False
        identity = (now.st_dev, now.st_ino)
        if identity == (stat.st_dev, stat.st_ino):
            return False
        failed = self._unopened
        if failed is not None and failed.identity == identity and self._clock() < failed.retry_at:
            return False
        try:
            new = _open_regular(self.path, now)
        except OSError as e:
            self._not_opened(identity, e.strerror or str(e))
            return False
        self._unopened = None
        if self._closing.is_set():  # closed by another thread meanwhile: nothing may stay open
            new.close()
            return False
        self._next = new
        return True

    def _not_opened(self, identity: tuple[int, int], why: str) -> None:
        """The new file at the path cannot be opened: say so at once, then at most every ``_SAY_AGAIN_S``
        while it still cannot be (a silent tail that never reads on looks like a quiet writer)."""
        now = self._clock()
        failed = self._unopened
        if failed is None or failed.identity != identity:  # another new file: said at once
            failed = self._unopened = _Unopened(identity, since=now)
        failed.retry_at = now + _RETRY_S
        if failed.said_at is not None and now - failed.said_at < _SAY_AGAIN_S:
            return
        still = f" (for {now - failed.since:.0f} s now)" if failed.said_at is not None else ""
        failed.said_at = now
        self._warn(f"{self.path} names a new file (rotated) that cannot be opened{still}: {why}; reading on in the "
                   f"file open until now and trying the path again every {_RETRY_S:g} s, the wait counting toward "
                   "source.follow_idle_timeout_s; fix the new file's permissions or type (a regular file)")

    def _restart(self) -> None:
        """Read the open file from its start, as a new file."""
        self.file.seek(0)
        self._head = b""
        self._on_restart()


@dataclass
class _Unopened:
    """A new file at the followed path that could not be opened: when to try it again, and when
    that was said (None: not yet)."""

    identity: tuple[int, int]
    since: float
    retry_at: float = 0.0
    said_at: float | None = None


def _open_regular(path: str, stat: os.stat_result) -> BinaryIO:
    """The regular file at ``path`` (``stat``: what it was) to read, never blocking: a FIFO
    there is refused without being opened (a reader's open waits for a writer, and a reader
    that comes and goes would end a writer's stream), and ``O_NONBLOCK`` covers a FIFO put
    there between the ``stat`` and the open."""
    if not S_ISREG(stat.st_mode):
        raise OSError(errno.EINVAL, _NOT_REGULAR)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, _NOT_REGULAR)
        os.set_blocking(fd, True)  # (no effect on a regular file's reads; as a plain open leaves it)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
