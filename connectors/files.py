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
_FORMATS = ("auto", "jsonl", "csv")


def _is_gzip(path: str | os.PathLike) -> bool:
    """True for a ``.gz`` name or gzip magic bytes."""
    if os.fspath(path).endswith(".gz"):
        return True
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


class FileSource:
    """Events from a JSONL or CSV file (see the module docstring); a :class:`Source`.

    ``follow=True`` tails a growing file: at its end ``poll`` keeps the position, waits
    up to ``eof_wait_s`` for new data and returns what it has (possibly nothing); a last
    line without its newline is held until completed. With ``idle_timeout_s > 0`` the
    source is exhausted after that long without new data (a held partial line is then
    decoded as the last line); with 0 it follows forever. A file truncated in place
    while followed is read again from its start.

    CSV: the first non-blank line is the header, and one line is one row (quoted
    fields spanning lines are not supported: such a row is ``malformed``). A header
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
        self._last_data = time.monotonic()
        self._closing = threading.Event()  # wakes a poll waiting at EOF when closed

    # -- Source protocol -------------------------------------------------------------
    def poll(self, max_records: int) -> list[Event | DeadLetter]:
        """Up to ``max_records`` records; ``[]`` when none are ready (or after the end)."""
        out: list[Event | DeadLetter] = []
        if self.exhausted or self._file is None:
            return out
        waited = False
        while len(out) < max_records:
            try:
                line = self._read_line(self._final)
            except (EOFError, zlib.error, gzip.BadGzipFile) as e:
                out.append(self._corrupt(e))
                break
            if line is None:  # nothing complete to read now
                if self._final:
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
                self._last_data = time.monotonic()
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
            self._last_data = time.monotonic()
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

    def _wait_for_data(self) -> bool:
        """Wait up to ``eof_wait_s`` for the file to grow; False if it did not."""
        deadline = time.monotonic() + self.eof_wait_s
        while True:
            try:
                size = os.fstat(self._file.fileno()).st_size
                pos = self._file.tell()
            except (OSError, ValueError):  # closed meanwhile
                return False
            if size > pos:
                return True
            if size < pos:  # truncated in place (copytruncate rotation): start over
                self._restart()
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing.wait(min(_WAIT_STEP_S, remaining)):
                return False

    def _restart(self) -> None:
        self._file.seek(0)
        self._lineno, self._pending, self._skip, self._header = 0, b"", None, None

    def _corrupt(self, error: Exception) -> DeadLetter:
        self.exhausted = True
        detail = f"gzip stream is corrupt or truncated ({error}); stopped reading this file"
        return DeadLetter(b"", "malformed", detail, f"{self.path}:{self._lineno + 1}")

    # -- decoding lines --------------------------------------------------------------
    def _decode_line(self, lineno: int, line: bytes, size: int | None) -> Event | DeadLetter | None:
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
        if line.endswith(b"\n"):
            line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
        if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
            line = line[3:]
        if not line or line.isspace():
            return None  # blank lines separate nothing and are not errors
        if self._fmt is None:  # no telling name: a JSON object starts with "{"
            self._fmt = "jsonl" if line.lstrip()[:1] in (b"{", b"[") else "csv"
        if self._fmt == "jsonl":
            return self._decoder.decode_json(line, origin)
        return self._decode_csv(line, origin)

    def _decode_csv(self, line: bytes, origin: str) -> Event | DeadLetter | None:
        try:
            cells = next(csv.reader([line.decode("utf-8")], strict=True))
        except UnicodeDecodeError as e:
            if self._header is None:
                raise _bad_header(origin, f"is not valid UTF-8 (byte {e.start}); save the file as UTF-8") from None
            return DeadLetter(line, "malformed", f"invalid UTF-8 at byte {e.start}", origin)
        except csv.Error as e:
            # one physical line is one row: quoted fields spanning lines are not supported
            if self._header is None:
                raise _bad_header(origin, f"is not valid CSV ({e}); fix the file's first line") from None
            return DeadLetter(line, "malformed", f"invalid CSV row: {e}", origin)
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
