"""Files in and out: a JSONL/CSV event source (optionally gzip, optionally followed) and JSONL sinks.

:class:`FileSource` reads lines and decodes them; it composes the pieces with a job of
their own: :class:`~connectors.followed_file.FollowedFile` (the open file, and in tail
mode its truncation and rotation) and :class:`~connectors.csv_records.CsvRecords` (CSV
headers and rows, quoted fields spanning lines). The sinks live in
:mod:`connectors.file_sinks` and are exported here too.

The source only moves bytes: every line goes through :class:`stream_cl.decode.EventDecoder`,
so a file can hold anything and reading still goes on to the end, bad lines becoming
dead letters with origin ``"<path>:<line>"``. Lines are read by
:class:`~connectors.bounded_lines.BoundedLines`: a line longer than ``mapping.max_event_bytes``
costs that many bytes of memory, never the whole line.

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
the open one, the rest of the open file is read, then the new one from its start;
lines written to the old file after that are not read. The new file is gone on to once
it holds data (or is renamed away in turn): logrotate's ``create`` makes it empty before
the writer reopens its file, and what the writer adds to the old one until then (the rest
of a line its buffer cut) is read. A new file at the path that cannot be opened is a
warning (:meth:`FileSource.take_warnings`). A CSV file read again from its start, or a
new one, starts with its header, or with a row read under the header read before when
its first record is not a header (a writer that wrote its header once:
:class:`~connectors.csv_records.CsvRecords`).

A gzip stream that ends early (a file cut short by an interrupted copy) or is corrupt
stops the reading there: the lines before it are read, then one ``malformed`` dead
letter, a warning naming the file, the line and byte reached and the error, and
:attr:`FileSource.error` holds that text (the run reports it and exits 1: the rest of the file
is lost to it, unlike a bad line). A read that fails (``EIO`` from a failing disk, ``ESTALE``
on NFS) ends the source the same way, with the warning and :attr:`FileSource.error` but no
dead letter: no line was cut.

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

import gzip
import os
import time
import zlib
from pathlib import Path
from typing import Literal

from stream_cl.bounds import is_nonnegative
from stream_cl.config import ConfigError, MappingConfig, SourceConfig
from stream_cl.decode import EventDecoder
from stream_cl.events import DeadLetter, Event
from stream_cl.mapping_check import FieldCensus

from .csv_records import CR_ONLY, CsvRecords, without_eol
from .bounded_lines import SKIPPING, BoundedLines
from .file_sinks import JsonlDeadLetterSink, JsonlPredictionSink  # re-exported: callers import the sinks from here
from .followed_file import FollowedFile

__all__ = ["FileSource", "JsonlDeadLetterSink", "JsonlPredictionSink", "open_source"]

_GZIP_MAGIC = b"\x1f\x8b"
# the first bytes of compressed files the source does not read (gzip only: the standard library's, streamed)
_OTHER_CODECS = ((b"BZh", "bzip2", "bunzip2 -k"), (b"\xfd7zXZ\x00", "xz", "unxz -k"),
                 (b"\x28\xb5\x2f\xfd", "zstd", "unzstd"), (b"\x04\x22\x4d\x18", "lz4", "unlz4"),
                 (b"PK\x03\x04", "zip", "unzip"))
_ZIPPED_DOCUMENTS = (".xlsx", ".xlsm", ".ods", ".numbers", ".docx")  # zip containers of a document, not of events
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0"  # an old Office file (.xls, .doc): a document too
# a poll ends at this many bytes read, whatever its max_records: decoded, an event of 90,000 numbers (0.6 MB, within
# max_event_bytes and max_features) takes ~13 MB, and a poll of 1,024 of them held ~14 GB (review r55 F4)
POLL_BYTES = 16 << 20
_FORMATS = ("auto", "jsonl", "csv")


def _is_gzip(path: str | os.PathLike, head: bytes | None = None) -> bool:
    """True for a ``.gz`` name or gzip magic bytes (``head``: the file's first bytes, read here if not
    given). Opens the file either way, so that an unreadable one fails here (:func:`open_source` makes
    that a configuration error)."""
    if head is None:
        head = _first_bytes(path)
    return os.fspath(path).endswith(".gz") or head[:2] == _GZIP_MAGIC


def _gzip_position(file, path: str) -> str:
    """Where the gzip stream of ``file`` (at ``path``) broke, in the words of
    :meth:`FileSource._corrupt` ("" if unknown)."""
    try:
        reached, size = file.tell(), os.path.getsize(path)
    except (OSError, ValueError, EOFError, zlib.error):
        return ""
    return f" (decompressed byte {reached:,}; the .gz file is {size:,} bytes)"


def _first_bytes(path: str | os.PathLike) -> bytes:
    """The file's first bytes, enough for the magic numbers this module tells apart."""
    with open(path, "rb") as f:
        return f.read(6)


class FileSource:
    """Events from a JSONL or CSV file (see the module docstring: tail mode, gzip); a :class:`Source`.

    CSV: the first non-blank record is the header. A quoted field may hold line breaks
    (RFC 4180): its row is read from all its lines and has the first one's origin. A
    row whose lines hold more than ``mapping.max_event_bytes`` is one ``oversized``
    dead letter and reading goes on at the next line, so a quote never closed costs at
    most that many bytes (the limit: a quoted field longer than that cannot be told from
    one, and its next lines are read as rows); a row that the file ends inside is one
    ``malformed`` dead letter. A header
    that cannot be used (not UTF-8 or CSV, repeated names, oversized) raises
    :class:`ConfigError` naming ``source.path``, as no row of that file could be read; a
    header without a column that the mapping names (``mapping.features``, or ``mapping.id``,
    ``task`` or ``timestamp`` named other than its default: :mod:`stream_cl.mapping_check`)
    raises one naming that key.
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
        if not is_nonnegative(idle_timeout_s):  # the config's rule: NaN and infinity refused (review r117)
            raise ValueError(f"idle_timeout_s must be a finite number >= 0 (0 = follow forever), got {idle_timeout_s!r}")
        self.path = os.fspath(path)
        self.follow = follow
        self.idle_timeout_s = idle_timeout_s
        self.eof_wait_s = eof_wait_s
        self.exhausted = False
        self._final = not follow  # the file will not grow: a last line needs no newline
        self._decoder = EventDecoder(mapping, label_policy, census=FieldCensus(mapping))
        self._max = mapping.max_event_bytes
        self._warnings: list[str] = []  # the source's own (a corrupt gzip, a rotated path not opened)
        self.error: str | None = None  # why the file was not read to its end (a corrupt gzip, a failed read)
        gz = _is_gzip(self.path)
        if gz and follow:
            raise ValueError(
                f"follow=True is not supported for gzip files ({self.path}): a gzip stream cannot be "
                "tailed while it is written; decompress it first or read it with follow=False"
            )
        file = gzip.open(self.path, "rb") if gz else open(self.path, "rb")
        # its warning (a rotated path that cannot be opened) goes with the others: on stderr and in the report
        self._followed = FollowedFile(self.path, file, on_restart=self._start_over, warn=self._warnings.append)
        name = self.path[:-3] if self.path.endswith(".gz") else self.path
        self._fmt = fmt if fmt != "auto" else _format_from_name(name)  # None: sniff the first line
        self._csv = CsvRecords(self.path, mapping, label_policy, self._decoder)
        self._lines = BoundedLines(self._followed, self._max)
        self._held: list[Event | DeadLetter] = []  # the records a restart made of what it held (_start_over)
        self._again = False  # the file was read again from its start (truncated or rotated) since it was opened
        # origin -> the text of each event of the last poll: a dead letter the model makes of
        # one of them later carries its record as read (bounded by the poll's size)
        self.raw: dict[str, bytes] = {}

    # -- Source protocol -------------------------------------------------------------
    def poll(self, max_records: int) -> list[Event | DeadLetter]:
        """Up to ``max_records`` records; ``[]`` when none are ready (or after the end)."""
        out: list[Event | DeadLetter] = []
        self.raw = {}
        followed = self._followed
        if self.exhausted or followed.file is None:
            return out
        if self.follow and not (self._final or followed.rotating):
            followed.check_for_data()  # truncated or rotated while the caller was busy: before reading on
        waited, start = False, self._lines.consumed
        # every byte read counts, an oversized line's discarded ones too: 64 such lines had read 64 MiB in
        # one poll against its 16 MiB (review r97), and the stop flag waits for a poll
        while len(out) < max_records and (read := self._lines.consumed - start) < POLL_BYTES:
            if self._held:  # (out is empty here: a restart happens only in a wait, which comes with nothing read)
                out, self._held = self._held, []
                break  # line numbers start at 1 again: one poll never holds two records of one origin
            try:
                # POLL_BYTES read at call time: a test lowers it
                line = self._lines.read(self._final or followed.rotating, POLL_BYTES - read)
            except (EOFError, zlib.error, gzip.BadGzipFile) as e:
                out += self._csv.unclosed_record(self._lines.lines_done)
                out.append(self._corrupt(e))
                break
            except OSError as e:  # (after BadGzipFile, one of its kind) the disk or the mount: no line to blame
                self._read_failed(e)
                break
            if line is SKIPPING:  # still inside an oversized line: the next poll goes on discarding it
                break
            if line is None:  # nothing complete to read now
                if self._final or followed.rotating:  # this file is read to its end
                    out += self._csv.unclosed_record(self._lines.lineno)
                    if followed.rotating:
                        if out:  # the next file's line numbers start at 1 again: one poll never holds
                            break  # two events of one origin (``raw`` is keyed by it)
                        followed.reopen(self.eof_wait_s)
                        continue
                    self.exhausted = True
                    break
                if out or waited:  # follow mode: return what we have, wait at most once
                    break
                waited = True
                if followed.wait_for_data(self.eof_wait_s):
                    continue
                if self.idle_timeout_s > 0 and time.monotonic() - followed.last_data >= self.idle_timeout_s:
                    self._final = True  # idle too long: a held partial line is the last line
                    continue
                break
            record = self._decode_line(*line)
            if record is not None:
                out.append(record)
        return out

    def take_warnings(self) -> list[str]:
        """Mistakes found since the last call, each said once: a gzip stream that ends early or
        is corrupt (:attr:`error`), a new file at a followed path that cannot be opened, a label
        column the CSV header lacks, or a named field none of the first JSON events had (checked
        at the end of a shorter file)."""
        own = self._warnings[:]
        self._warnings.clear()  # in place: the FollowedFile appends to this very list
        return own + self._csv.take_warnings() + self._decoder.census.take(final=self.exhausted)

    def close(self) -> None:
        """Close the file (a poll waiting at its end wakes); ``exhausted`` from then on."""
        self._followed.close()  # also wakes a poll waiting at the end of the file
        self.exhausted = True

    def __enter__(self) -> "FileSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading lines ---------------------------------------------------------------
    def _start_over(self) -> None:
        """The file is read again from its start, as a new file (truncated, or rotated):
        line numbers start at 1 again and a CSV starts with its header. What was read of the old
        content and is no record yet (a last line without its line end, an oversized line being
        discarded, a CSV row inside a quoted field) is its record now, as at the end of a rotated
        file: the next poll returns it first (:attr:`_held`). Truncated in place, it was dropped
        without a word (review r66 F4)."""
        self._again = True
        last = self._lines.lineno
        skipped, unfinished = self._lines.restart()
        held: list = []
        if skipped is not None:
            held.append(self._held_line(*skipped))
        held += self._csv.unclosed_record(last)  # (in line order: its lines come before the one held)
        if unfinished is not None:  # not decoded: cut inside its last cell, a CSV row was learned with a cut value (r68 L2)
            lineno, text = unfinished
            held.append(DeadLetter(text[: self._max], "malformed", "the file was truncated in place while "
                                   "this line was unfinished (no line end came)", f"{self.path}:{lineno}"))
        self._held += [r for r in held if r is not None]
        self._csv.restart()

    def _held_line(self, lineno: int, line: bytes, size: int | None) -> Event | DeadLetter | None:
        """The record of a line the file ended in when it was truncated (:meth:`_start_over`). A CSV
        header that cannot be used is its dead letter there: the run goes on with the file's new content."""
        try:
            return self._decode_line(lineno, line, size)
        except ConfigError as e:
            return DeadLetter(line[: self._max], "malformed", f"header not used: {e}", f"{self.path}:{lineno}")

    def _corrupt(self, error: Exception) -> DeadLetter:
        """The gzip stream cannot be read on: the end of this source. Besides the dead letter (as
        before), a warning and :attr:`error`: the rest of the file is lost, which a dead letter
        among bad lines does not make seen (a cut copy ran to exit 0, half its events unread)."""
        self.exhausted = True
        detail = f"gzip stream is corrupt or truncated ({error}); stopped reading this file"
        cut = self._lines.discarding  # an oversized line the stream broke in (r97: the next line had been blamed)
        read, raw = self._lines.lines_done, b""
        lineno = read + 1  # the line it broke in, or the next one
        if cut is not None:
            raw = cut[1]
            detail += (f"; it broke inside this line, at least {cut[2]} bytes, over mapping.max_event_bytes "
                       f"({self._max}): raw holds its first {len(raw)} bytes")
        if read == 0 and str(error).startswith("Not a gzipped file"):  # r32 F6: nothing lost but the name
            self.error = (f"{self.path} is not gzip-compressed ({error}): nothing of it was read; rename it without "
                          ".gz, or compress it")
        else:
            what = ("ends early, the file cut short (an interrupted copy or download, or a file still being written?)"
                    if isinstance(error, EOFError) else "is corrupt")
            where = _gzip_position(self._followed.file, self.path)
            self.error = (f"stopped reading {self.path} at line {lineno:,}{where}: the gzip stream "
                          f"{what}: {error}. {read:,} lines were read before it, the rest of the file was "
                          "not; check it with gzip -t and get a whole copy")
        self._warnings.append(self.error)
        return DeadLetter(raw, "malformed", detail, f"{self.path}:{lineno}")

    def _read_failed(self, error: OSError) -> None:
        """Reading the file failed (``EIO``, ``ESTALE``): the end of this source, said as a corrupt
        gzip stream is (:attr:`error` and a warning), so that the run reports it and exits 1 instead
        of ending in a traceback with no report. A record the file was inside stays unread."""
        self.exhausted = True
        self.error = (f"stopped reading {self.path} after line {self._lines.lines_done:,}: reading it failed "
                      f"({error}); the rest of the file was not read. Check the disk or the mount, then run it again")
        self._warnings.append(self.error)

    # -- decoding lines --------------------------------------------------------------
    def _decode_line(self, lineno: int, line: bytes, size: int | None) -> Event | DeadLetter | None:
        if self._csv.in_record:  # the next line of a CSV row: a quoted field goes on
            return self._kept(self._csv.continue_record(lineno, line, size), self._csv.row)
        origin = f"{self.path}:{lineno}"
        if size is not None:
            if self._fmt is None:  # no telling name, and the first line oversized: its head tells, as below (r97:
                # a CSV named .txt lost its header to a dead letter, and its first row was read as the header)
                head = line[3:] if line.startswith(b"\xef\xbb\xbf") else line
                self._fmt = "jsonl" if head.lstrip()[:1] in (b"{", b"[") else "csv"
            if self._fmt == "csv":
                self._csv.check_oversized(origin, line)  # an oversized header: no row could be read
            detail = (
                f"line is {size} bytes, over mapping.max_event_bytes ({self._max}); "
                f"raw holds only its first {len(line)} bytes"
            )
            if self._fmt != "csv" and b"\r" in line:  # raising the bound is no fix for a file that is one line
                detail += f"; it holds a CR: if the file has {CR_ONLY}"
            return DeadLetter(line, "oversized", detail, origin)
        text = without_eol(line)
        eol = line[len(text):]
        if lineno == 1 and text.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
            text = text[3:]
        if not text or text.isspace():
            return None  # blank lines separate nothing and are not errors
        if self._fmt is None:  # no telling name: a JSON object starts with "{"
            self._fmt = "jsonl" if text.lstrip()[:1] in (b"{", b"[") else "csv"
        if self._fmt == "jsonl":
            record = self._decoder.decode_json(text, origin)
            if lineno == 1 and not self._again and type(record) is DeadLetter and text.lstrip()[:1] == b"[":
                # a JSON document holding an array of events (a .json export): every line but the last a
                # dead letter, and the run ended 0 having learned one event (review r66 F5)
                raise ConfigError(f"source.path: {self.path} holds a JSON array (its first line opens one), not JSON "
                                  f"Lines (one object a line); convert it (jq -c '.[]' {self.path} > events.jsonl) and "
                                  "point source.path at the new file")
            if type(record) is DeadLetter and record.reason == "malformed" and b"\r" in text:  # JSON reads CR as a space
                record = DeadLetter(record.raw, record.reason, f"{record.detail}; the line holds a CR: if the file has "
                                                               f"{CR_ONLY}", origin)
            return self._kept(record, text)
        return self._kept(self._csv.decode(text, origin, (lineno, eol)), self._csv.row)

    def _kept(self, record: Event | DeadLetter | None, text: bytes) -> Event | DeadLetter | None:
        """``record``, its text kept in :attr:`raw` when it is an event."""
        if type(record) is Event:
            self.raw[record.origin] = text
        return record


def _format_from_name(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return None


def _not_a_file(path: str, follow: bool = False) -> str:
    """Why ``path`` cannot be a file source, and the fix. A pipe (``/dev/stdin``, ``<(zcat x.gz)``,
    a FIFO) exists, but is no file: the source opens its path twice (first bytes for gzip, then
    to read) and a followed one is watched for rotation, which a stream cannot give."""
    if os.path.isdir(path):
        what, fix = "is a directory", "point it at a .jsonl or .csv file"
    elif os.path.exists(path):
        what, fix = "is not a regular file (a pipe or FIFO?)", "write the stream to a file first and point it there"
    elif follow:  # tail -F waits for a file to appear; this source follows one that is there when it starts
        what, fix = "no such file", ("tail mode follows a file that exists when the run starts: create it first "
                                     "(touch it, or start the run once its writer has), or fix the path")
    else:
        what, fix = "no such file", "point it at a .jsonl or .csv file"
    return f"source.path: {what} (got {path!r}); {fix} (relative paths start at {os.getcwd()})"


def _a_document(path: str) -> str:
    return (f"source.path: {path!r} is a spreadsheet or document, not events; export it as CSV (UTF-8) and point "
            "source.path at that file")


def open_source(config: SourceConfig, mapping: MappingConfig) -> FileSource:
    """The :class:`FileSource` for ``[source] kind = "file"``; errors name the key and the fix."""
    if config.kind != "file":
        raise ConfigError(f"source.kind: open_source opens files only (got {config.kind!r}); set kind = \"file\"")
    path = config.path
    if not path:
        raise ConfigError('source.path: required for kind = "file" (got \'\'); set path = "events.jsonl" (.jsonl or .csv, optionally .gz)')
    if not os.path.isfile(path):
        raise ConfigError(_not_a_file(path, config.follow))
    try:
        head = _first_bytes(path)
    except OSError as e:
        raise ConfigError(f"source.path: cannot read the file (got {path!r}: {e.strerror}); fix its permissions or the path") from None
    gz = _is_gzip(path, head)
    if head.startswith(_OLE2_MAGIC):
        raise ConfigError(_a_document(path))
    for magic, codec, command in _OTHER_CODECS:
        if head.startswith(magic):  # read as text it is a CSV header that is not UTF-8, which it is not
            if codec == "zip" and path.lower().endswith(_ZIPPED_DOCUMENTS):  # unzip gives its XML parts
                raise ConfigError(_a_document(path))
            raise ConfigError(f"source.path: {path!r} is {codec}-compressed, and only gzip is read; decompress it "
                              f"(`{command} {os.path.basename(path)}`), or compress it with gzip")
    if gz and config.follow:
        raise ConfigError(f"source.follow: not supported for a gzip file (got true for {path!r}); set follow = false or decompress the file")
    return FileSource(path, mapping, config.format, config.follow, config.follow_idle_timeout_s, config.label_policy)
