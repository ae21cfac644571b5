"""Complete lines of a file, each held to a bounded size: what a
:class:`~connectors.files.FileSource` decodes.

A line is read with a bounded ``readline``: one longer than ``max_bytes`` costs that many
bytes of memory, never the whole line. Its first ``max_bytes`` bytes are kept (for the dead
letter that says its size) and the rest is discarded a chunk at a time, at most ``skip_limit``
bytes a call, so that a poll, and the stop flag read between polls, never waits for the
gigabytes of a file without line ends (review r66 F2). In tail mode a last line without its
newline is held until it is completed.

>>> import io
>>> class Whole:  # the part of FollowedFile the reader uses
...     def __init__(self, data):
...         self.file = io.BytesIO(data)
...     def took(self, chunk):
...         pass
>>> lines = BoundedLines(Whole(b"ok\\n" + b"x" * 10 + b"\\nlast"), max_bytes=4)
>>> lines.read(final=True, skip_limit=1 << 20)  # (line number, bytes, None: whole)
(1, b'ok\\n', None)
>>> lines.read(True, 1 << 20)  # too long: its first 4 bytes and its size
(2, b'xxxx', 10)
>>> lines.read(True, 1 << 20), lines.read(True, 1 << 20)  # the file will not grow: a last line needs no newline
((3, b'last', None), None)
"""

from __future__ import annotations

from typing import BinaryIO, Protocol

__all__ = ["BoundedLines", "SKIPPING"]

SKIP_CHUNK = 1 << 16  # the rest of an oversized line is discarded this many bytes at a time
# what read returns when a call has discarded skip_limit bytes of an oversized line and the line goes on
# (a copytruncate's hole of gigabytes, a file without line ends): SIGTERM took ~40 s there (review r66 F2)
SKIPPING = (-1, b"", None)


class _Readable(Protocol):
    file: BinaryIO | None

    def took(self, chunk: bytes) -> None: ...


class BoundedLines:
    """The lines of ``followed.file`` (a :class:`~connectors.followed_file.FollowedFile`), numbered
    from 1 (module docstring). :meth:`restart` starts the numbering again for a file read again
    from its start, and gives back what was read of the old one and is no line yet."""

    def __init__(self, followed: _Readable, max_bytes: int):
        self._followed = followed
        self.max_bytes = max_bytes
        self.lineno = 0  # number of the last complete line
        self._pending = b""  # follow mode: a last line still missing its newline
        self._skip: list | None = None  # an oversized line being discarded: [line number, head, size, last byte]
        self.consumed = 0  # bytes read from the file so far, discarded ones included (a poll's budget)

    def read(self, final: bool, skip_limit: int) -> tuple[int, bytes, int | None] | None:
        """The next complete line as ``(line number, bytes, size)``, or None for none yet, or
        :data:`SKIPPING` once this call has discarded ``skip_limit`` bytes of an oversized line.

        ``bytes`` has at most ``max_bytes + 2`` bytes. ``size`` is None for a whole line; for a
        longer one it is the line's length, and ``bytes`` its first ``max_bytes`` bytes.
        ``final``: the file will not grow, so a last line needs no newline.
        """
        f = self._followed.file
        skipped = 0
        while self._skip is not None:  # discard the rest of an oversized line
            if skipped >= skip_limit:
                return SKIPPING
            chunk = f.readline(min(SKIP_CHUNK, max(1, skip_limit - skipped)))
            skipped += len(chunk)
            self.consumed += len(chunk)
            if chunk:
                self._followed.took(chunk)
                self._skip[2] += len(chunk)
            if chunk.endswith(b"\n") or (not chunk and final):
                lineno, head, size, before = self._skip
                self._skip = None
                # the "\r" of a "\r\n" may end the part read before: a size counts the line's own bytes
                crlf = chunk.endswith(b"\r\n") or (chunk == b"\n" and before == b"\r")
                return lineno, head, size - (chunk.endswith(b"\n") + crlf)
            if not chunk:
                return None
            self._skip[3] = chunk[-1:]
        limit = self.max_bytes + 2  # room for "\r\n" after a line of exactly max_bytes
        chunk = f.readline(limit - len(self._pending))
        self.consumed += len(chunk)
        if chunk:
            self._followed.took(chunk)
        line = self._pending + chunk if self._pending else chunk
        self._pending = b""
        if line.endswith(b"\n"):
            self.lineno += 1
            return self.lineno, line, None
        if len(line) >= limit:  # no newline within the limit: keep the head, skip the rest
            self.lineno += 1
            self._skip = [self.lineno, line[: self.max_bytes], len(line), line[-1:]]
            return self.read(final, skip_limit)
        if line and final:
            self.lineno += 1
            return self.lineno, line, None
        self._pending = line  # a partial last line (follow mode): wait for its newline
        return None

    @property
    def discarding(self) -> tuple[int, bytes, int] | None:
        """The oversized line being discarded, as ``(line number, head, size so far)``; None when none is."""
        return None if self._skip is None else tuple(self._skip[:3])

    @property
    def lines_done(self) -> int:
        """Lines read to their end: :attr:`lineno`, but for an oversized line still being discarded."""
        return self.lineno - (self._skip is not None)

    def restart(self) -> tuple[tuple[int, bytes, int] | None, tuple[int, bytes] | None]:
        """Forget the place (the file is read again from its start): line numbers start at 1 again.
        Returns what was read of the old content and is no line yet: the oversized line being
        discarded as ``(line number, head, size so far)``, and a last line without its line end as
        ``(line number, bytes)``, numbered after the last complete line; None for either where there is none."""
        skipped = self.discarding
        unfinished = (self.lineno + 1, self._pending) if self._pending else None
        self.lineno, self._pending, self._skip = 0, b"", None
        return skipped, unfinished
