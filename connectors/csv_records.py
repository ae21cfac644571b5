"""A CSV file's rows as events, fed line by line: the header first, then rows whose quoted
fields may span lines (RFC 4180).

:class:`~connectors.files.FileSource` reads the lines (bounded by ``mapping.max_event_bytes``)
and hands each CSV one to :class:`CsvRecords`; this module knows what a CSV record is and
when one is complete. Reading lines one at a time, rather than handing the file to
:mod:`csv`, keeps the source's bounds: no row costs more than ``max_event_bytes`` of memory,
and a bad row is one dead letter while reading goes on at the next line.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from typing import Literal

from stream_cl.config import ConfigError, MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.field_values import long_name
from stream_cl.events import DeadLetter, Event
from stream_cl.mapping_check import check_columns

__all__ = ["CR_ONLY", "CsvRecords", "HeadersWithin", "without_eol"]

_FIELD_END = re.compile(rb"[,\r\n]")  # what ends an unquoted CSV field

# headers within a file said with a warning (each once): a followed file may never end
MAX_HEADERS_SAID = 100


class CsvRecords:
    """The rows of one CSV file as events (or dead letters), from its lines in order.

    The first non-blank record is the header (:meth:`decode` returns None for it). A line
    that ends inside a quoted field opens a record: while :attr:`in_record`, each next line
    goes to :meth:`continue_record`, and the row comes once its quoted fields are closed,
    with the first line's origin. A record is bounded by ``mapping.max_event_bytes``; one
    the file ends inside is :meth:`unclosed_record`. A header that cannot be used raises
    :class:`ConfigError` naming ``source.path`` (no row of the file could be read), at the
    start of a run. The same file read again after a rotation or a truncation
    (:meth:`restart`) does not stop a run that has gone on reading it: its header is a dead
    letter, with a warning, and so is each of its rows until the file is replaced again.

    A file read again keeps the header read before unless its first record looks like a
    header (:func:`_is_header`: the same column names in any order, or a name of it among names
    alone or among another number of cells): a writer that wrote its header once and appends
    rows after logrotate's ``copytruncate`` writes no new one, and its first row must not become
    the header (lost, and every later row read under its values). That row and the rest are rows
    under the old header, with a warning (at each restart); a header with other columns is used,
    with a warning too, so either reading is said.

    >>> from stream_cl.config import MappingConfig
    >>> from stream_cl.decode import EventDecoder
    >>> mapping = MappingConfig(features=["text"])
    >>> rows = CsvRecords("notes.csv", mapping, "optional", EventDecoder(mapping))
    >>> rows.decode(b"text,y", "notes.csv:1", (1, b"\\n")) is None  # the header
    True
    >>> rows.decode(b'"two', "notes.csv:2", (2, b"\\n")) is None, rows.in_record  # a quoted field goes on
    (True, True)
    >>> event = rows.continue_record(3, b'lines",cat\\n', None)
    >>> event.x, event.y, event.origin, rows.in_record
    ({'text': 'two\\nlines'}, 'cat', 'notes.csv:2', False)
    """

    def __init__(
        self,
        path: str,
        mapping: MappingConfig,
        label_policy: Literal["optional", "required"],
        decoder: EventDecoder,
    ):
        self.path = path
        self._mapping, self._label_policy = mapping, label_policy
        self._decoder = decoder
        self._max = mapping.max_event_bytes
        _allow_cells_up_to(self._max)
        self._header: list[str] | None = None  # the columns, once the header is read
        self._record: list | None = None  # a row whose quoted field is still open: [first line, lines, bytes]
        self._warnings: list[str] = []
        self.row = b""  # the text of the row decoded last (its lines, for a quoted field spanning them)
        self._again = False  # the file is read again (restart) after a header was used: a bad header stops nothing
        self._unusable: str | None = None  # why this file's header, read again, could not be used
        self._known: list[str] | None = None  # the header read before a restart: a file read again may lack its own
        self._within = HeadersWithin()  # what is said of the headers met within the file (each once)

    @property
    def in_record(self) -> bool:
        """A quoted field is open: the next line goes on with its row (:meth:`continue_record`)."""
        return self._record is not None

    def restart(self) -> None:
        """The file is read again from its start, as a new file: its first record is its header, or a
        row under the header read before (:meth:`_keep_known`: a writer that wrote its header once)."""
        self._again = self._again or self._header is not None or self._unusable is not None
        if self._header is not None:  # (after an unusable header, the one used before it)
            self._known = self._header
        self._header, self._record, self._unusable = None, None, None

    def _keep_known(self, origin: str, cells: list[str] | None = None) -> bool:
        """Whether the first record of a file read again (its ``cells``; None: not CSV, or
        oversized) is a row under the header read before, rather than a header: see the class
        docstring. If so that header is this file's too, said with a warning the first time."""
        known = self._known
        if known is None or (cells is not None and _is_header(cells, known)):
            return False
        self._header = known
        self._warnings.append(  # at each restart (a rotation is rare): the reading is a guess, said where it is made
            f"{origin}: the file was read again from its start (truncated, or a new file after a rotation) and "
            "this first record is not a header (it shares no name with it, or holds a number or an empty cell): it "
            f"and the rows after it are read under the header read before ({', '.join(known)}), as for a writer that "
            "writes its header only once")
        return True

    def _header_failed(self, error: ConfigError, line: bytes, origin: str) -> DeadLetter:
        """A header that cannot be used: at the start of a run, the configuration error it is; read again
        after a rotation or truncation, a dead letter and a warning (the run has gone on reading this path,
        and a long tail must not die of what a rotation wrote), its rows dead letters too."""
        if not self._again:
            raise error
        self._unusable = f"{error}"
        self._warnings.append(f"{self.path} was read again from its start and {error}: its rows are dead letters "
                              "until the file is replaced")
        return DeadLetter(line, "malformed", f"header not used: {error}", origin)

    def _skipped(self, line: bytes, origin: str) -> DeadLetter:
        return DeadLetter(line, "malformed", f"row of a file whose header could not be used ({self._unusable})", origin)

    def take_warnings(self) -> list[str]:
        """Mapping mistakes found in headers since the last call (a label column a header lacks)."""
        out, self._warnings = self._warnings, []
        return out

    def check_oversized(self, origin: str, line: bytes = b"") -> None:
        """A line over ``mapping.max_event_bytes`` was read (``line``: its first bytes, if
        given): as the header it raises :class:`ConfigError`; as a row it is the caller's
        ``oversized`` dead letter."""
        if self._header is None and self._unusable is None and not self._keep_known(origin):
            self._header_failed(_header_too_long(origin, self._max, line), b"", origin)  # (the caller's dead letter holds it)

    def decode(self, line: bytes, origin: str, start: tuple[int, bytes] | None = None) -> Event | DeadLetter | None:
        """One CSV row (or the header), without its line end. ``start``: ``line`` is one line,
        with this number and end (``eol``); when a quoted field goes on past it, the row is
        kept (:attr:`in_record`) and None returned."""
        if self._unusable is not None:
            return self._skipped(line, origin)
        try:
            cells = next(csv.reader([line.decode("utf-8")], strict=True))
        except (UnicodeDecodeError, csv.Error) as e:
            if start is not None and _ends_quoted(line, False):  # RFC 4180: a quoted field may hold line breaks
                lineno, eol = start
                self._record = [lineno, [line + eol], len(line) + len(eol)]
                return None
            if self._header is None:
                self._keep_known(origin)  # a file read again: a bad first line is a bad row, not a bad header
            try:
                return _bad_row(line, origin, e, self._header is not None)
            except ConfigError as error:
                return self._header_failed(error, line, origin)
        if self._header is None and not self._keep_known(origin, cells):
            try:
                self._check_header(cells, origin)
            except ConfigError as error:
                return self._header_failed(error, line, origin)
            if self._known is not None and set(cells) != set(self._known):
                self._warnings.append(f"{origin}: the file was read again from its start with a header of other "
                                      f"columns ({', '.join(cells)}; before: {', '.join(self._known)})")
            self._header = cells
            return None
        again = _header_again(cells, self._header) if len(cells) == len(self._header) else None
        if again is not None:
            return self._header_repeated(again, origin)
        if self._renamed_header(names := [cells[0].removeprefix("\ufeff"), *cells[1:]]):
            return self._header_changed(names, line, origin)
        if len(cells) != len(self._header):
            detail = f"row has {len(cells)} cells, the header has {len(self._header)} columns"
            return DeadLetter(line, "malformed", detail, origin)
        self.row = line
        return self._decoder.decode_csv_row(dict(zip(self._header, cells)), line, origin)

    def _check_header(self, cells: list[str], origin: str) -> None:
        """Raise the :class:`ConfigError` of a header that cannot be used; keep the warnings of one that can."""
        duplicates = sorted(c for c, n in Counter(cells).items() if n > 1)
        if duplicates:
            raise _bad_header(origin, f"repeats column {duplicates[0]!r}; give each column its own name")
        if (too_long := long_name(cells)) is not None:  # each row's names: the JSON records' bound
            raise _bad_header(origin, f"has a column name too long: {too_long}")
        if len(cells) == 1 and (sep := next((c for c in ";\t|" if c in cells[0]), None)) is not None:
            # read as one column, the label column "missing" would be all the run said (review r66 F5)
            self._warnings.append(f"{origin}: the header is one column, {cells[0][:80]!r}, holding {sep!r}: this "
                                  f"reader splits columns at commas only; if the file is separated by {sep!r}, "
                                  "convert it to commas first")
        # a named feature column that is not there: a configuration error, before any row is learned
        self._warnings += check_columns(self._mapping, cells, self.path, self._label_policy)

    def _renamed_header(self, names: list[str]) -> bool:
        """Whether a record within the file, of the header's number of cells, is a header of other columns:
        read as a row, its label would be the label column's own name. Its label cell must hold that name,
        and it must pass :func:`_is_header` ``within`` (two names in their places, names alone): a row of
        text may hold a column's name, even the label's (a ``y`` column of y/n answers). A header of
        another number of columns is a dead letter as a row, with every row after it: loud, not learned."""
        header, label = self._header, self._mapping.label
        if len(names) != len(header) or label not in header or names[header.index(label)] != label:
            return False
        return _is_header(names, header, within=True)

    def _header_changed(self, cells: list[str], line: bytes, origin: str) -> DeadLetter | None:
        """A header of other columns within the file (exports joined by ``cat`` after a column was renamed,
        added or dropped; a writer that appends its header with its rows): the rows after it are read under
        it, with a warning. Read as a row, its label cell (the label column's name) was learned as a class.
        A header that cannot be used is a dead letter, and so are the rows after it."""
        try:
            self._check_header(cells, origin)
        except ConfigError as error:
            self._unusable = f"{error}"
            self._warnings.append(f"{origin}: a header of other columns within the file, and {error}: the rows "
                                  "after it are dead letters")
            return DeadLetter(line, "malformed", f"header not used: {error}", origin)
        self._warnings += self._within.changed(cells, self._header, origin)
        self._header = cells
        return None

    def _header_repeated(self, cells: list[str], origin: str) -> None:
        """The header again, within the file (files joined by ``cat``, a writer that appends its header with
        each batch of rows: pandas ``to_csv(mode="a")``): no row. In another order, the rows after it are
        read in its order. Said as :class:`HeadersWithin` says."""
        self._warnings += self._within.repeated(cells, self._header, origin)
        self._header = cells
        return None

    def continue_record(self, lineno: int, line: bytes, size: int | None) -> Event | DeadLetter | None:
        """Add a line (as the source reads it: ``size`` is None unless it was cut at
        ``max_event_bytes``) to the open row; the row once its quoted fields are closed.

        The row is bounded by ``mapping.max_event_bytes``: past it, the lines so far are one
        ``oversized`` dead letter and the next line starts a row (a quote never closed
        would otherwise take the rest of the file)."""
        first, lines, n = self._record
        origin = f"{self.path}:{first}"
        text = without_eol(line)
        if size is None and n + len(text) <= self._max:
            lines.append(line)
            self._record[2] += len(line)
            if _ends_quoted(line, True):
                return None  # still inside a quoted field: wait for the next line
            self._record = None
            return self.decode(without_eol(b"".join(lines)), origin)
        self._record = None
        raw = (b"".join(lines) + text)[: self._max]
        if self._header is None and not self._keep_known(origin):
            return self._header_failed(_header_too_long(origin, self._max, raw), raw, origin)
        if size is not None or _ends_quoted(line, True):
            what = f"a quoted field opened on line {first} is not closed within"
        else:
            what = "the row is longer than"
        detail = (f"lines {first}-{lineno}: {what} mapping.max_event_bytes ({self._max}); raw holds only "
                  f"its first {len(raw)} bytes; reading goes on at line {lineno + 1}")
        return DeadLetter(raw, "oversized", detail, origin)

    def unclosed_record(self, last_lineno: int) -> list[DeadLetter]:
        """At the end of the file (its last line ``last_lineno``): the row whose quoted field
        it ends inside, as one dead letter; ``[]`` when none is open."""
        if self._record is None:
            return []
        first, lines, _ = self._record
        self._record = None
        origin = f"{self.path}:{first}"
        if self._header is None and not self._keep_known(origin):
            error = _bad_header(origin, "opens a quoted field that the file never closes; fix the file's first line")
            return [self._header_failed(error, b"".join(lines), origin)]
        detail = f"a quoted field opened on line {first} is not closed at the end of the file (line {last_lineno})"
        return [DeadLetter(b"".join(lines), "malformed", detail, origin)]


def _bad_row(line: bytes, origin: str, error: Exception, header_read: bool) -> DeadLetter:
    """A row that is not UTF-8 or CSV: a dead letter; as the header (``header_read`` False), a configuration error."""
    if isinstance(error, UnicodeDecodeError):
        if not header_read:
            also = f", and the file has {CR_ONLY}" if _bare_cr(line) else ""
            raise _bad_header(origin, f"is not valid UTF-8 (byte {error.start}); save the file as UTF-8{also}") from None
        return DeadLetter(line, "malformed", f"invalid UTF-8 at byte {error.start}", origin)
    if not header_read:
        if _bare_cr(line):  # csv's own hint (universal-newline mode) names a Python setting, not the fix
            raise _bad_header(origin, f"holds a CR outside quotes: the file has {CR_ONLY}") from None
        raise _bad_header(origin, f"is not valid CSV ({error}); fix the file's first line") from None
    if _bare_cr(line):
        detail = "invalid CSV row: a CR outside quotes (CR-only line endings? convert them to LF or CRLF)"
        return DeadLetter(line, "malformed", detail, origin)
    return DeadLetter(line, "malformed", f"invalid CSV row: {error}", origin)


def _header_too_long(origin: str, max_bytes: int, head: bytes = b"") -> ConfigError:
    """The header has no line end within ``mapping.max_event_bytes`` (``max_bytes``); ``head``: its first
    bytes, if known. A CR-only file is one such line however large the bound: raising it is no fix there."""
    if _bare_cr(head):
        return _bad_header(origin, f"is longer than mapping.max_event_bytes ({max_bytes}) and holds a CR "
                                   f"outside quotes: the file has {CR_ONLY}")
    return _bad_header(origin, f"is longer than mapping.max_event_bytes ({max_bytes}); raise "
                               "mapping.max_event_bytes or shorten the header (a file with CR-only line endings "
                               "reads as one line: convert them to LF or CRLF)")


def _is_header(cells: list[str], known: list[str], within: bool = False) -> bool:
    """Whether the first record of a file read again is a header, given the header read before.

    It is when it has the same column names (in any order), or when it shares a name with it and either
    has another number of cells (pandas' numbered columns ``0,1,2,y`` with one added) or holds names
    alone: each cell the old header's name or text that is not empty and not a number. ``within``: a
    record within the file, after rows read under ``known``; there it must hold names alone and at least
    two of ``known``'s in their own places, whatever its number of cells. A row seldom
    holds a column's name; text rows (categories, ISO times) and a malformed row do not count as a
    header. A header sharing no name with the one before (every column renamed, the label's too) is
    read as a row, with the warning.

    >>> _is_header(["y", "a"], ["a", "y"]), _is_header(["0", "1", "2", "3", "y"], ["0", "1", "2", "y"])
    (True, True)
    >>> _is_header(["a", "c", "y"], ["a", "b", "y"]), _is_header(["5", "6", "c"], ["a", "b", "c"])
    (True, False)
    >>> _is_header(["2026-12-06T00:06:41Z", "u42", "view", "churn"], ["ts", "user", "event", "y"])
    False
    >>> _is_header(["n", "y"], ["smoker", "y"], within=True), _is_header(["id", "b", "y"], ["id", "a", "y"], within=True)
    (False, True)
    """
    names = set(known)
    if set(cells) == names:
        return True
    shared = names & set(cells)
    if not shared:
        return False
    if not within and len(cells) != len(known):
        return True
    if within and sum(c == k for c, k in zip(cells, known)) < 2:  # a renamed column leaves the others in place
        return False
    return all(cell in names or (cell.strip() and not _is_number(cell)) for cell in cells)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# what a file source says of a file whose lines end in CR alone (CSV and JSON lines alike)
CR_ONLY = "CR-only line endings (classic Mac): it reads as one line; convert them to LF or CRLF"


def _header_again(cells: list[str], header: list[str]) -> list[str] | None:
    """A row's ``cells`` as a header, when they are the ``header``'s names in any order (the first may
    carry a byte-order mark: a second file's, joined on; it is left out); else None.

    >>> _header_again(["\ufeffid", "a", "y"], ["id", "a", "y"]), _header_again(["y", "a", "id"], ["id", "a", "y"])
    (['id', 'a', 'y'], ['y', 'a', 'id'])
    >>> _header_again(["1", "a", "y"], ["id", "a", "y"]) is None
    True
    """
    names = [cells[0].removeprefix("\ufeff"), *cells[1:]]
    return names if sorted(names) == sorted(header) else None


def _bare_cr(text: bytes) -> bool:
    """Whether ``text`` (a line, or a row's lines, without its line end) holds a CR outside a
    quoted field: lines that end in CR alone, as the source reads lines (up to LF).

    >>> _bare_cr(b"a,b,y\\r1,2,c"), _bare_cr(b'1,"two\\rlines",c'), _bare_cr(b"a,b")
    (True, False, False)
    """
    i = text.find(b"\r")
    return i >= 0 and not _ends_quoted(text[:i], False)


def _allow_cells_up_to(max_bytes: int) -> None:
    """Let :mod:`csv` read a cell as long as a whole row may be (``mapping.max_event_bytes``).

    Its own ``field_size_limit`` (131,072 characters by default) would make a longer cell of a
    row within that bound a ``malformed`` dead letter, a limit no setting names; the documented
    bound (an ``oversized`` row) is the one that applies. The limit is the whole process's, so it
    is only ever raised (another reader may need more), and kept within a C long on any platform.
    A cell of ``max_bytes`` UTF-8 bytes has at most that many characters.
    """
    csv.field_size_limit(max(csv.field_size_limit(), min(max_bytes, 2**31 - 1)))


class HeadersWithin:
    """What is said of the headers met within one CSV file, after its first: another header is said the
    first time it comes, while fewer than :data:`MAX_HEADERS_SAID` were (two writers that alternate their
    column orders said every one: 5,000 lines on stderr for a 10,000-line file, review r109), and the
    same header again is said once. Each method returns the warnings to say (none or one).

    >>> said = HeadersWithin()
    >>> len(said.repeated(["b", "a"], ["a", "b"], "f.csv:9")), said.repeated(["a", "b"], ["b", "a"], "f.csv:12")
    (1, [])
    """

    def __init__(self):
        self._said: set[tuple[str, ...]] = set()  # the headers met (the file's first among them)
        self._repeated = False  # the header in use was met again (said once)

    def changed(self, cells: list[str], before: list[str], origin: str) -> list[str]:
        """A header of other columns (``cells``) after ``before``: the rows after it are read under it."""
        if not self._first_time(cells, before):
            return []
        return [f"{origin}: a header of other columns within the file ({', '.join(cells)}; before: "
                f"{', '.join(before)}): the rows after it are read under it{self._said_once()}"]

    def repeated(self, cells: list[str], before: list[str], origin: str) -> list[str]:
        """The header ``before`` again, as ``cells`` (in another order, perhaps: its rows are read in it)."""
        out = []
        if cells != before:
            if self._first_time(cells, before):
                out.append(f"{origin}: the header again, with its columns in another order ({', '.join(cells)}; "
                           f"before: {', '.join(before)}): the rows after it are read in its order{self._said_once()}")
        elif not self._repeated:
            out.append(f"{origin}: the header again (files joined, or a writer that appends its header with its "
                       "rows): read as a header, not a row; said once")
        self._repeated = True
        return out

    def _first_time(self, cells: list[str], before: list[str]) -> bool:
        if not self._said:
            self._said.add(tuple(before))  # the file's first header: coming back to it is no news
        if len(self._said) > MAX_HEADERS_SAID or tuple(cells) in self._said:
            return False
        self._said.add(tuple(cells))
        return True

    def _said_once(self) -> str:
        """The end of a header's warning: that it is said once, and when no more will be."""
        if len(self._said) > MAX_HEADERS_SAID:
            return f" (said once for each header; past {MAX_HEADERS_SAID}, new ones are read without a warning)"
        return " (said once for each header)"


def without_eol(line: bytes) -> bytes:
    """``line`` without its ending ``\\n`` or ``\\r\\n``.

    >>> without_eol(b"a,b\\r\\n"), without_eol(b"a,b\\n"), without_eol(b"a,b")
    (b'a,b', b'a,b', b'a,b')
    """
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
