"""Files in and out: a JSONL/CSV event source (optionally gzip, optionally followed) and JSONL sinks.

The source only moves bytes: every line goes through :class:`stream_cl.decode.EventDecoder`,
so a file can hold anything and reading still goes on to the end, bad lines becoming
dead letters with origin ``"<path>:<line>"``. Lines are read with a bounded ``readline``:
a line longer than ``mapping.max_event_bytes`` costs that many bytes of memory, never
the whole line.

>>> import tempfile, os
>>> from stream_cl.config import MappingConfig
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "events.jsonl")
>>> with open(path, "w") as f:
...     _ = f.write('{"x": {"a": 1}, "y": "cat"}\\n\\n{"x": {"a": Infinity}}\\n')
>>> with FileSource(path, MappingConfig()) as source:
...     records = source.poll(100)
...     source.exhausted
True
>>> [type(r).__name__ for r in records]
['Event', 'DeadLetter']
>>> records[1].origin.endswith("events.jsonl:3"), records[1].reason
(True, 'non_finite')
>>> with JsonlDeadLetterSink(os.path.join(folder, "dead.jsonl")) as sink:
...     sink.write([records[1]])
"""

from __future__ import annotations

import base64
import csv
import gzip
import json
import math
import os
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from stream_cl.config import ConfigError, MappingConfig, SourceConfig
from stream_cl.decode import EventDecoder
from stream_cl.events import DeadLetter, Event, Prediction
from stream_cl.mapping_check import FieldCensus, check_columns

__all__ = ["FileSource", "JsonlDeadLetterSink", "JsonlPredictionSink", "open_source"]

_GZIP_MAGIC = b"\x1f\x8b"
_SKIP_CHUNK = 1 << 16  # the rest of an oversized line is discarded this many bytes at a time
_WAIT_STEP_S = 0.02  # in follow mode, how often a poll at EOF looks for new data
_HEAD_BYTES = 4096  # in follow mode, the first bytes kept to notice a truncated file that was rewritten
_FIELD_END = re.compile(rb"[,\r\n]")  # what ends an unquoted CSV field
_FORMATS = ("auto", "jsonl", "csv")


def _is_gzip(path: str | os.PathLike) -> bool:
    """True for a ``.gz`` name or gzip magic bytes. Opens the file either way, so that an
    unreadable one fails here (:func:`open_source` makes that a configuration error)."""
    with open(path, "rb") as f:
        return os.fspath(path).endswith(".gz") or f.read(2) == _GZIP_MAGIC


class FileSource:
    """Events from a JSONL or CSV file (see the module docstring); a :class:`Source`.

    ``follow=True`` tails a growing file: at its end ``poll`` keeps the position, waits
    up to ``eof_wait_s`` for new data and returns what it has (possibly nothing); a last
    line without its newline is held until completed. With ``idle_timeout_s > 0`` the
    source is exhausted after that long without new data (a held partial line is then
    decoded as the last line); with 0 it follows forever. A file truncated in place
    (``copytruncate``) is read again from its start. That is checked at the start of
    each poll and while waiting at the end: the file is shorter than the read position,
    or its first bytes (up to 4 KiB) changed, so a file the writer already refilled past
    the old position is seen too. The limit: one refilled with the same first 4 KiB is
    not. When the path names another file (rotation by renaming), seen at the end of
    the open one, the rest of the open file is read, then the new one from its start,
    as ``tail -F`` does; lines written to the old file after that are not read. A CSV
    file read again from its start, or a new one, starts with its header.

    CSV: the first non-blank record is the header. A quoted field may hold line breaks
    (RFC 4180): its row is read from all its lines and has the first one's origin. A
    row whose lines hold more than ``mapping.max_event_bytes`` is one ``oversized``
    dead letter and reading goes on at the next line, so a quote never closed costs at
    most that many bytes (the limit: a quoted field longer than that cannot be told from
    one, and its next lines are read as rows); a row that the file ends inside is one
    ``malformed`` dead letter. A header
    that cannot be used (not UTF-8 or CSV, repeated names, oversized) raises
    :class:`ConfigError` naming ``source.path``, as no row of that file could be read; a
    header without a column that ``mapping.features`` names raises one naming that key.
    With ``fmt="auto"`` the format comes from the name (``.jsonl``/``.ndjson``/``.json``,
    ``.csv``), else from the first line (``{`` starts JSONL).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        mapping: MappingConfig,
        fmt: Literal["auto", "jsonl", "csv"] = "auto",
        follow: bool = False,
        idle_timeout_s: float = 0.0,
        label_policy: Literal["optional", "required"] = "optional",
        *,
        eof_wait_s: float = 0.2,
    ):
        if fmt not in _FORMATS:
            raise ValueError(f"fmt must be one of {', '.join(map(repr, _FORMATS))}, got {fmt!r}")
        if idle_timeout_s < 0:
            raise ValueError(f"idle_timeout_s must be >= 0 (0 = follow forever), got {idle_timeout_s!r}")
        self.path = os.fspath(path)
        self.follow = follow
        self.idle_timeout_s = idle_timeout_s
        self.eof_wait_s = eof_wait_s
        self.exhausted = False
        self._final = not follow  # the file will not grow: a last line needs no newline
        self._mapping, self._label_policy = mapping, label_policy
        self._decoder = EventDecoder(mapping, label_policy, census=FieldCensus(mapping))
        self._warnings: list[str] = []
        self._max = mapping.max_event_bytes
        gz = _is_gzip(self.path)
        if gz and follow:
            raise ValueError(
                f"follow=True is not supported for gzip files ({self.path}): a gzip stream cannot be "
                "tailed while it is written; decompress it first or read it with follow=False"
            )
        self._file = gzip.open(self.path, "rb") if gz else open(self.path, "rb")
        name = self.path[:-3] if self.path.endswith(".gz") else self.path
        self._fmt = fmt if fmt != "auto" else _format_from_name(name)  # None: sniff the first line
        self._lineno = 0  # number of the last complete line
        self._pending = b""  # follow mode: a last line still missing its newline
        self._skip: list | None = None  # an oversized line being discarded: [line number, head, size]
        self._header: list[str] | None = None  # CSV columns
        self._record: list | None = None  # a CSV row whose quoted field is still open: [first line, lines, bytes]
        self._head = b""  # the file's first bytes, as read: a change means it was truncated and rewritten
        self._rotating = False  # the path names a new file: read this one to its end, then open that one
        self._last_data = time.monotonic()
        self._closing = threading.Event()  # wakes a poll waiting at EOF when closed

    # -- Source protocol -------------------------------------------------------------
    def poll(self, max_records: int) -> list[Event | DeadLetter]:
        """Up to ``max_records`` records; ``[]`` when none are ready (or after the end)."""
        out: list[Event | DeadLetter] = []
        if self.exhausted or self._file is None:
            return out
        if self.follow and not (self._final or self._rotating):
            self._check_file()  # truncated or rotated while the caller was busy: before reading on
        waited = False
        while len(out) < max_records:
            try:
                line = self._read_line(self._final or self._rotating)
            except (EOFError, zlib.error, gzip.BadGzipFile) as e:
                out += self._unclosed_record()
                out.append(self._corrupt(e))
                break
            if line is None:  # nothing complete to read now
                if self._final or self._rotating:  # this file is read to its end
                    out += self._unclosed_record()
                    if self._rotating:
                        self._reopen()
                        continue
                    self.exhausted = True
                    break
                if out or waited:  # follow mode: return what we have, wait at most once
                    break
                waited = True
                if self._wait_for_data():
                    continue
                if self.idle_timeout_s > 0 and time.monotonic() - self._last_data >= self.idle_timeout_s:
                    self._final = True  # idle too long: a held partial line is the last line
                    continue
                break
            record = self._decode_line(*line)
            if record is not None:
                out.append(record)
        return out

    def take_warnings(self) -> list[str]:
        """Mapping mistakes found since the last call, each said once: a label column the CSV
        header lacks, or a named field none of the first JSON events had (checked at the end
        of a shorter file)."""
        out, self._warnings = self._warnings, []
        return out + self._decoder.census.take(final=self.exhausted)

    def close(self) -> None:
        self._closing.set()
        if self._file is not None:
            self._file.close()
            self._file = None
        self.exhausted = True

    def __enter__(self) -> "FileSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading lines ---------------------------------------------------------------
    def _read_line(self, final: bool) -> tuple[int, bytes, int | None] | None:
        """The next complete line as ``(line number, bytes, size)``, or None for none yet.

        ``bytes`` has at most ``max_event_bytes + 2`` bytes. ``size`` is None for a whole
        line; for a longer one it is the line's length, and ``bytes`` its first
        ``max_event_bytes`` bytes. ``final``: the file will not grow, so a last line
        needs no newline.
        """
        f = self._file
        while self._skip is not None:  # discard the rest of an oversized line
            chunk = f.readline(_SKIP_CHUNK)
            if chunk:
                self._took(chunk)
                self._skip[2] += len(chunk)
            if chunk.endswith(b"\n") or (not chunk and final):
                lineno, head, size = self._skip
                self._skip = None
                return lineno, head, size - (chunk.endswith(b"\n") + chunk.endswith(b"\r\n"))
            if not chunk:
                return None
        limit = self._max + 2  # room for "\r\n" after a line of exactly max_event_bytes
        chunk = f.readline(limit - len(self._pending))
        if chunk:
            self._took(chunk)
        line = self._pending + chunk if self._pending else chunk
        self._pending = b""
        if line.endswith(b"\n"):
            self._lineno += 1
            return self._lineno, line, None
        if len(line) >= limit:  # no newline within the limit: keep the head, skip the rest
            self._lineno += 1
            self._skip = [self._lineno, line[: self._max], len(line)]
            return self._read_line(final)
        if line and final:
            self._lineno += 1
            return self._lineno, line, None
        self._pending = line  # a partial last line (follow mode): wait for its newline
        return None

    def _took(self, chunk: bytes) -> None:
        """Bytes were read: the source is not idle, and the file's first bytes are known."""
        self._last_data = time.monotonic()
        if len(self._head) < _HEAD_BYTES:
            self._head += chunk[: _HEAD_BYTES - len(self._head)]

    def _wait_for_data(self) -> bool:
        """Wait up to ``eof_wait_s`` for more to read (see :meth:`_check_file`); False if none came."""
        deadline = time.monotonic() + self.eof_wait_s
        while not self._check_file():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing.wait(min(_WAIT_STEP_S, remaining)):
                return False
        return True

    def _check_file(self) -> bool:
        """Follow mode: True when there is more to read. The file grew; or it was truncated,
        even if rewritten past the read position since (it is read again from its start);
        or, at its end, the path names another file (``_rotating``: it is read next)."""
        f = self._file
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
            self._rotating = self._renamed(stat)  # only at the end: the rest of this file comes first
            return self._rotating
        except (OSError, ValueError):  # closed meanwhile
            return False

    def _renamed(self, stat: os.stat_result) -> bool:
        """Whether the path names another file than the open one (rotation by renaming)."""
        try:
            now = os.stat(self.path)
        except OSError:  # nothing there yet: the writer has not created the new file
            return False
        return (now.st_dev, now.st_ino) != (stat.st_dev, stat.st_ino)

    def _reopen(self) -> None:
        """After a rotation, go on with the file now at the path, from its start."""
        self._rotating = False
        if self._closing.is_set():
            return
        try:
            new = open(self.path, "rb")
        except OSError:  # gone again, or unreadable: stay on the old file, look again after a wait
            self._closing.wait(self.eof_wait_s)
            return
        old, self._file = self._file, new
        old.close()
        self._restart()

    def _restart(self) -> None:
        """Read the open file from its start, as a new file (a CSV starts with its header)."""
        self._file.seek(0)
        self._lineno, self._pending, self._skip, self._header = 0, b"", None, None
        self._record, self._head = None, b""

    def _unclosed_record(self) -> list[DeadLetter]:
        """At the end of the file: the CSV row whose quoted field it ends inside, as one dead letter."""
        if self._record is None:
            return []
        first, lines, _ = self._record
        self._record = None
        origin = f"{self.path}:{first}"
        if self._header is None:
            raise _bad_header(origin, "opens a quoted field that the file never closes; fix the file's first line")
        detail = f"a quoted field opened on line {first} is not closed at the end of the file (line {self._lineno})"
        return [DeadLetter(b"".join(lines), "malformed", detail, origin)]

    def _corrupt(self, error: Exception) -> DeadLetter:
        self.exhausted = True
        detail = f"gzip stream is corrupt or truncated ({error}); stopped reading this file"
        return DeadLetter(b"", "malformed", detail, f"{self.path}:{self._lineno + 1}")

    # -- decoding lines --------------------------------------------------------------
    def _decode_line(self, lineno: int, line: bytes, size: int | None) -> Event | DeadLetter | None:
        if self._record is not None:  # the next line of a CSV row: a quoted field goes on
            return self._continue_record(lineno, line, size)
        origin = f"{self.path}:{lineno}"
        if size is not None:
            if self._header is None and self._fmt == "csv":
                raise _bad_header(origin, f"is longer than mapping.max_event_bytes ({self._max}); raise "
                                          "mapping.max_event_bytes or shorten the header")
            detail = (
                f"line is {size} bytes, over mapping.max_event_bytes ({self._max}); "
                f"raw holds only its first {len(line)} bytes"
            )
            return DeadLetter(line, "oversized", detail, origin)
        text = _without_eol(line)
        eol = line[len(text):]
        if lineno == 1 and text.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
            text = text[3:]
        if not text or text.isspace():
            return None  # blank lines separate nothing and are not errors
        if self._fmt is None:  # no telling name: a JSON object starts with "{"
            self._fmt = "jsonl" if text.lstrip()[:1] in (b"{", b"[") else "csv"
        if self._fmt == "jsonl":
            return self._decoder.decode_json(text, origin)
        return self._decode_csv(text, origin, (lineno, eol))

    def _decode_csv(self, line: bytes, origin: str, start: tuple[int, bytes] | None = None) -> Event | DeadLetter | None:
        """One CSV row (or the header). ``start``: ``line`` is one line, with this number and
        end (``eol``); when a quoted field goes on past it, the row is kept (``_record``) and
        None returned."""
        try:
            cells = next(csv.reader([line.decode("utf-8")], strict=True))
        except (UnicodeDecodeError, csv.Error) as e:
            if start is not None and _ends_quoted(line, False):  # RFC 4180: a quoted field may hold line breaks
                lineno, eol = start
                self._record = [lineno, [line + eol], len(line) + len(eol)]
                return None
            return self._bad_row(line, origin, e)
        if self._header is None:
            duplicates = sorted(c for c, n in Counter(cells).items() if n > 1)
            if duplicates:
                raise _bad_header(origin, f"repeats column {duplicates[0]!r}; give each column its own name")
            # a named feature column that is not there: a configuration error, before any row is learned
            self._warnings += check_columns(self._mapping, cells, self.path, self._label_policy)
            self._header = cells
            return None
        if len(cells) != len(self._header):
            detail = f"row has {len(cells)} cells, the header has {len(self._header)} columns"
            return DeadLetter(line, "malformed", detail, origin)
        return self._decoder.decode_csv_row(dict(zip(self._header, cells)), line, origin)

    def _continue_record(self, lineno: int, line: bytes, size: int | None) -> Event | DeadLetter | None:
        """Add a line to the CSV row in ``_record``; the row once its quoted fields are closed.

        The row is bounded by ``mapping.max_event_bytes``: past it, the lines so far are one
        ``oversized`` dead letter and the next line starts a row (a quote never closed
        would otherwise take the rest of the file)."""
        first, lines, n = self._record
        origin = f"{self.path}:{first}"
        text = _without_eol(line)
        if size is None and n + len(text) <= self._max:
            lines.append(line)
            self._record[2] += len(line)
            if _ends_quoted(line, True):
                return None  # still inside a quoted field: wait for the next line
            self._record = None
            return self._decode_csv(_without_eol(b"".join(lines)), origin)
        self._record = None
        if self._header is None:
            raise _bad_header(origin, f"is longer than mapping.max_event_bytes ({self._max}); raise "
                                      "mapping.max_event_bytes or shorten the header")
        raw = (b"".join(lines) + text)[: self._max]
        if size is not None or _ends_quoted(line, True):
            what = f"a quoted field opened on line {first} is not closed within"
        else:
            what = "the row is longer than"
        detail = (f"lines {first}-{lineno}: {what} mapping.max_event_bytes ({self._max}); raw holds only "
                  f"its first {len(raw)} bytes; reading goes on at line {lineno + 1}")
        return DeadLetter(raw, "oversized", detail, origin)

    def _bad_row(self, line: bytes, origin: str, error: Exception) -> DeadLetter:
        """A row that is not UTF-8 or CSV: a dead letter; as the header, a configuration error."""
        if isinstance(error, UnicodeDecodeError):
            if self._header is None:
                raise _bad_header(origin, f"is not valid UTF-8 (byte {error.start}); save the file as UTF-8") from None
            return DeadLetter(line, "malformed", f"invalid UTF-8 at byte {error.start}", origin)
        if self._header is None:
            raise _bad_header(origin, f"is not valid CSV ({error}); fix the file's first line") from None
        return DeadLetter(line, "malformed", f"invalid CSV row: {error}", origin)


def _without_eol(line: bytes) -> bytes:
    """``line`` without its ending ``\\n`` or ``\\r\\n``."""
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line


def _ends_quoted(line: bytes, quoted: bool) -> bool:
    """Whether CSV text ends inside a quoted field, so that its row goes on on the next line.

    ``quoted``: the text starts inside one. Read as ``csv.reader(strict=True)`` reads it: a
    field that starts with ``"`` is quoted up to a ``"`` not doubled; after that, anything
    but ``,`` ends the row (a line end, or an error); a ``"`` inside an unquoted field is text.

    >>> _ends_quoted(b'1,"two\\n', False), _ends_quoted(b'lines",3,"more\\n', True), _ends_quoted(b'a""b",4\\n', True)
    (True, True, False)
    >>> _ends_quoted(b'1,a"b,3\\n', False), _ends_quoted(b'1,"a"b,"c\\n', False)
    (False, False)
    """
    i = 0
    while True:
        if not quoted:  # at the start of a field
            if line[i:i + 1] == b'"':
                quoted, i = True, i + 1
                continue
            end = _FIELD_END.search(line, i)
            if end is None or end.group() != b",":
                return False  # the row ends in an unquoted field
            i = end.end()
            continue
        j = line.find(b'"', i)
        while j >= 0 and line[j + 1:j + 2] == b'"':  # a doubled quote is a quote in the text
            j = line.find(b'"', j + 2)
        if j < 0:
            return True
        if line[j + 1:j + 2] != b",":
            return False  # closed, and the row ends (or is not CSV: it ends there too)
        quoted, i = False, j + 2


def _bad_header(origin: str, problem: str) -> ConfigError:
    # no row of the file can be read: the file is the configuration's mistake (the CLI exits 2)
    return ConfigError(f"source.path: {origin}: the CSV header {problem}")


def _format_from_name(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return None


def open_source(config: SourceConfig, mapping: MappingConfig) -> FileSource:
    """The :class:`FileSource` for ``[source] kind = "file"``; errors name the key and the fix."""
    if config.kind != "file":
        raise ConfigError(f"source.kind: open_source opens files only (got {config.kind!r}); set kind = \"file\"")
    path = config.path
    if not path:
        raise ConfigError('source.path: required for kind = "file" (got \'\'); set path = "events.jsonl" (.jsonl or .csv, optionally .gz)')
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "no such file"
        raise ConfigError(f"source.path: {what} (got {path!r}); point it at a .jsonl or .csv file (relative paths start at {os.getcwd()})")
    try:
        gz = _is_gzip(path)
    except OSError as e:
        raise ConfigError(f"source.path: cannot read the file (got {path!r}: {e.strerror}); fix its permissions or the path") from None
    if gz and config.follow:
        raise ConfigError(f"source.follow: not supported for a gzip file (got true for {path!r}); set follow = false or decompress the file")
    return FileSource(path, mapping, config.format, config.follow, config.follow_idle_timeout_s, config.label_policy)


# -- sinks ---------------------------------------------------------------------------
class _JsonlSink:
    """Writes JSON lines to a file, anew or (``append``) after what it holds; ``flush`` makes them durable (fsync)."""

    def __init__(self, path: str | os.PathLike, append: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab" if append else "wb")

    def _write_dicts(self, dicts) -> None:
        if self._file is None:
            raise ValueError(f"{type(self).__name__}({str(self.path)!r}) is closed")
        # ASCII JSON: any string (even one with lone surrogates) makes a valid line
        self._file.write("".join(json.dumps(d, default=_jsonable) + "\n" for d in dicts).encode("ascii"))

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None

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
        self._write_dicts(_letter_dict(d) for d in letters)


class JsonlPredictionSink(_JsonlSink):
    """One ``{"id", "y_pred", "proba", "y_true", "task", "ts", "origin"}`` object per prediction
    (and ``"extra"`` when a prediction carries any)."""

    def write(self, predictions: Sequence[Prediction]) -> None:
        self._write_dicts(_prediction_dict(p) for p in predictions)


def _letter_dict(letter: DeadLetter) -> dict:
    d = {"reason": letter.reason, "detail": letter.detail, "origin": letter.origin}
    raw = letter.raw
    if isinstance(raw, str):
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
