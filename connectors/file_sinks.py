"""JSONL sinks for a file run: predictions and dead letters, one JSON object a line.

They are also exported by :mod:`connectors.files`, where the file source is.

>>> import tempfile, os
>>> from stream_cl.events import DeadLetter
>>> path = os.path.join(tempfile.mkdtemp(), "dead.jsonl")
>>> with JsonlDeadLetterSink(path) as sink:
...     sink.write([DeadLetter(b"\\xff{", "malformed", "invalid UTF-8", "events.jsonl:3")])
>>> open(path).read()
'{"reason": "malformed", "detail": "invalid UTF-8", "origin": "events.jsonl:3", "raw": "/3s=", "raw_encoding": "base64"}\\n'
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from stream_cl.events import DeadLetter, Prediction

log = logging.getLogger("stream_cl.files")

__all__ = ["JsonlDeadLetterSink", "JsonlPredictionSink"]


def _said(text: str) -> None:
    log.warning("%s", text)


def _end_on_a_whole_line(path: Path, warn=_said) -> bool:
    """Mend the end of a regular file about to be appended to; returns whether a line end must be written
    before the new lines. A run killed while writing (SIGKILL, a power loss) can leave an unfinished last
    line, and the next run's first line was glued onto it: one line no JSON reader could parse, the new
    record lost with it (review r66 F3). Such a line, which does not parse, is cut off; one that does (a
    file written without a final line end, by ``"\\n".join``) is kept and ended (review r68 L1). A file
    that can be appended to but not read or cut (``chattr +a``) is appended to as it is, with a warning
    (r68 M2): the check never stops a run that could write. ``warn(text)`` says what was mended or could not be."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return False
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            f.seek(end - 1)
            if f.read(1) == b"\n":
                return False
            keep, pos = 0, end
            while pos > 0:  # back to the last line end, a block at a time
                step = min(1 << 16, pos)
                pos -= step
                f.seek(pos)
                i = f.read(step).rfind(b"\n")
                if i >= 0:
                    keep = pos + i + 1
                    break
            f.seek(keep)
            tail = f.read(end - keep) if end - keep <= _WHOLE_LINE_BYTES else b""
    except FileNotFoundError:
        return False
    except OSError as e:
        warn(f"{path} cannot be read to check that its last line is whole ({e}): appending after it as it is")
        return False
    try:
        json.loads(tail)
        return True  # a whole record without its line end
    except (ValueError, RecursionError):  # (foreign content nested past Python's limit: unfinished too, r70 L2)
        pass
    try:
        os.truncate(path, keep)
    except OSError as e:
        warn(f"{path} ends inside a line, which cannot be cut off ({e}): a line end is written after it, and the "
             "lines of this run after that")
        return True
    warn(f"{path} ended inside a line (the run writing it was stopped without finishing it: a kill or a crash): "
         f"its last {end - keep} bytes, that unfinished line, were cut before the lines of this run were appended")
    return False


_WHOLE_LINE_BYTES = 64 << 20  # a last line longer than this is taken as unfinished without parsing it


class _JsonlSink:
    """Writes JSON lines to a file, anew or (``append``) after what it holds; ``flush`` makes them durable (fsync).

    The file is written in append mode (O_APPEND), a new run truncating it once when it opens it,
    so that a run that never ends (tail mode) leaves its files to logrotate: after ``copytruncate``
    the next lines start the emptied file (a plain write would go on at the old offset, behind a
    hole of NUL bytes). After each ``flush`` the path is opened anew when it names another file than
    the one open (rotated by rename, then created or not), so the lines after a rotation reach the new file.

    The path may also be a pipe, FIFO or terminal (``--predictions /dev/stdout | jq``): there
    ``flush`` hands the lines on without fsync, which such files refuse (EINVAL) and which
    would have nothing to make durable.
    """

    def __init__(self, path: str | os.PathLike, append: bool = False, *, warn=_said):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._warn = warn  # what the sink mends or cannot do (a file run prints it and keeps it in its report)
        end_line = append and _end_on_a_whole_line(self.path, warn)
        # one open (a FIFO closed and opened again would tell its reader the stream ended)
        self._file = self._open(os.O_TRUNC if not append else 0)
        if end_line:
            self._file.write(b"\n")
        self._recheck = False  # set by flush: the next write looks for a rotation
        self._said_unopened = False  # a rotated path that could not be opened again was logged

    def _open(self, flags: int = 0):
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | flags, 0o666)
        file = os.fdopen(fd, "ab")
        st = os.fstat(fd)
        # decided per open file: its type cannot change (a rotation's new file is another open file)
        self._fsync = stat.S_ISREG(st.st_mode)
        self._identity = (st.st_dev, st.st_ino)
        return file

    def _write_dicts(self, dicts) -> None:
        if self._file is None:
            raise ValueError(f"{type(self).__name__}({str(self.path)!r}) is closed")
        if self._recheck:
            self._recheck = False
            if self._rotated():  # the buffer is empty (flushed): nothing of the old file is lost
                self._reopen()
        # ASCII JSON: any string (even one with lone surrogates) makes a valid line
        self._file.write("".join(json.dumps(d, default=_jsonable) + "\n" for d in dicts).encode("ascii"))

    def flush(self) -> None:
        """Make the lines written durable; the next write first follows a rotation of the path (one
        stat per flush: a run following a file flushes about once a second; a run that never
        flushes never stats). Looked for at that write rather than here, so that the first lines
        after a rotation go to the new file, not into the old file's buffer."""
        self._flush()
        self._recheck = self._file is not None and self._fsync

    def _flush(self) -> None:
        if self._file is not None:
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())

    def _reopen(self) -> None:
        """The path anew, after a rotation; where it cannot be opened (its folder removed, say), the
        lines go on into the file open until now, as they did before rotations were followed, and
        the next flush looks again."""
        old = self._file
        try:  # (_open sets the open file's identity only once the path is open)
            self._file = self._open()
        except OSError as e:
            if not self._said_unopened:
                self._said_unopened = True
                self._warn(f"{self.path} was rotated or removed and cannot be opened again ({e}): writing on into the "
                           "file open until now")
            return
        self._said_unopened = False
        old.close()

    def _rotated(self) -> bool:
        """Whether the path now names another file than the one open, or none (renamed away)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._identity

    def close(self) -> None:
        """Flush and close; the file is closed even when the flush fails (a full disk), so that the error
        is raised once, here, not again when the open file is collected, and no descriptor is left open."""
        file = self._file
        if file is None:
            return
        try:
            self._flush()
        except OSError:
            with contextlib.suppress(OSError):
                file.close()  # it flushes the same bytes again, and fails again: the first error is the one raised
            raise
        finally:
            self._file = None
        file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class JsonlDeadLetterSink(_JsonlSink):
    """One ``{"reason", "detail", "origin", "raw"}`` object per dead letter.

    ``raw`` is the record's text when it is valid UTF-8; otherwise its base64, flagged
    by ``"raw_encoding": "base64"``.
    """

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """:class:`~stream_cl.events.DeadLetterSink`: one JSON line per letter."""
        self._write_dicts(_letter_dict(d) for d in letters)


class JsonlPredictionSink(_JsonlSink):
    """One ``{"id", "y_pred", "proba", "y_true", "task", "ts", "origin"}`` object per prediction
    (and ``"extra"`` when a prediction carries any)."""

    def write(self, predictions: Sequence[Prediction]) -> None:
        """:class:`~stream_cl.events.PredictionSink`: one JSON line per prediction."""
        self._write_dicts(_prediction_dict(p) for p in predictions)


def _letter_dict(letter: DeadLetter) -> dict:
    d = {"reason": letter.reason, "detail": letter.detail, "origin": letter.origin}
    raw = letter.raw
    if raw is None or isinstance(raw, str):  # (None: a null value, a tombstone)
        d["raw"] = raw
    else:
        try:
            d["raw"] = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            d["raw"] = base64.b64encode(raw).decode("ascii")
            d["raw_encoding"] = "base64"
    return d


def _prediction_dict(p: Prediction) -> dict:
    d = {
        "id": p.id,
        "y_pred": p.y_pred,
        "proba": _finite_or_none(p.proba),
        "y_true": p.y_true,
        "task": p.task,
        "ts": _finite_or_none(p.ts),
        "origin": p.origin,
    }
    if p.extra:
        d["extra"] = p.extra
    return d


def _finite_or_none(v):
    # JSON has no NaN: write null rather than an unparseable line
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _jsonable(obj):
    """numpy scalars and other stray types: their Python value, else their text."""
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)
