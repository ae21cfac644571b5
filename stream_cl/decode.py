"""Raw records in, validated :class:`~stream_cl.events.Event` or :class:`~stream_cl.events.DeadLetter` out.

The decoder is the one gate between untrusted bytes and the model: whatever it is
given, it returns a record and never raises. An event that comes out has flat
features (finite floats, strings for categories, ``None`` for missing), a hashable
label (``str``, ``int`` or ``bool``) or none, a string id or none, and a time in epoch
seconds or none. Anything else becomes a dead letter with a stable reason code from
:data:`~stream_cl.events.REASONS` and a short detail. The value rules (nesting,
nulls, NaN) are those of :mod:`stream_cl.encoding`.

>>> decoder = EventDecoder(MappingConfig())
>>> decoder.decode_json(b'{"x": {"age": 42, "smoker": true}, "y": "sick", "id": 7}', "demo:1")
Event(x={'age': 42.0, 'smoker': 1.0}, y='sick', id='7', task=None, ts=None, origin='demo:1')
>>> decoder.decode_json(b'{"x": {"amount": 9.5, "card": {"country": "FR", "cvv": null}, "v": [1, 2]}}', "demo:2").x
{'amount': 9.5, 'card.country': 'FR', 'card.cvv': None, 'v[0]': 1.0, 'v[1]': 2.0}
>>> letter = decoder.decode_json(b'{"x": {"a": 1, "b": NaN}}', "demo:3")  # nan_policy "reject" (the default); "missing": b is null
>>> letter.reason, letter.detail.split(";")[0]  # then what a missing value is instead
('non_finite', "feature 'b': not finite (got nan)")
>>> decoder.decode_json(b'{"x": {"a": 1}, "y": NaN}', "demo:3").reason  # a label by its own rule, whatever nan_policy
'bad_label'
>>> letter = EventDecoder(MappingConfig(max_depth=1)).decode_json(b'{"x": {"a": {"b": {"c": 1}}}}', "demo:4")
>>> letter.reason, letter.detail
('too_deep', "feature 'a.b': nested deeper than 1 levels (got {'c': 1}); raise mapping.max_depth")

CSV rows arrive as strings: a cell that reads as a number is one, any other text is a
category, an empty or whitespace-only cell is null (a label, id, task or time cell too);
any other label stays its text, unstripped. A number is written in ASCII
(sign, digits, ``.``, exponent, ``inf``/``nan``, spaces around): ``2024_01`` and ``١٢``,
which Python's ``float`` also reads, are categories, as they are in JSON strings:

>>> decoder.decode_csv_row({"a": "1.5", "b": "", "c": "red", "y": "cat"}, b"1.5,,red,cat", "demo.csv:2")
Event(x={'a': 1.5, 'b': None, 'c': 'red'}, y='cat', id=None, task=None, ts=None, origin='demo.csv:2')
>>> decoder.decode_csv_row({"code": "2024_01", "n": " -7e1 ", "y": "cat"}, b"", "demo.csv:3").x
{'code': '2024_01', 'n': -70.0}
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Mapping
from typing import Literal

import orjson

from .config import MappingConfig
from .events import DeadLetter, Event
from .field_values import json_type
from .json_checks import DEEPEST_JSON, LONE_SURROGATE, LONG_JSON, UNNAMED_KEY, lone_surrogate, loads_deep, repeated_key
from .mapping_check import FieldCensus
from .record_decoders import CsvRowDecoder, ObjectDecoder, dead_letter, oversized, record_bytes

# The names that moved to modules of their own when this one was split stay importable from here, the same
# objects (__all__ lists them too): those this module does not use itself are imported for that alone.
from .field_values import MAX_TEXT_CHARS, ascii_float, blank_text, id_value, label_value, long_name, text_problem

__all__ = ["UNFORESEEN", "EventDecoder", "standard_library_only",
           # (moved, as above)
           "LONE_SURROGATE", "MAX_TEXT_CHARS", "UNNAMED_KEY", "ascii_float", "blank_text", "id_value", "label_value",
           "lone_surrogate", "long_name", "repeated_key", "text_problem"]

_BOM = "\ufeff"


# One decoder for every record, whatever mapping.nan_policy: the non-standard NaN / Infinity /
# -Infinity literals become floats (the standard library's default), as 1e400 becomes inf, so
# that the field holding one decides by its own rule, naming its key: a feature value by
# stream_cl.encoding (non_finite, or null under nan_policy = "missing"), a label, id, task or
# time by theirs (bad_label, bad_id, bad_timestamp), an unread field not at all. Refused in the
# parser, the dead letter could name no key; read as null there, a NaN label or id was absent.
# Shared: json.loads(..., parse_constant=...) would build a new decoder per call.
_JSON = json.JSONDecoder()

# orjson parses a JSON object ~6x faster than the standard library (1.5 against 9 µs for the
# Kafka benchmark's 300-byte events), and wherever it succeeds it gives the same object
# (fuzzed against json.loads: 200,000 random and mutated documents, 300,000 decimal
# numbers), except for integers beyond 64 bits, which it reads as floats: a value with 19
# digits in a row therefore takes the standard library, as does anything orjson refuses
# (NaN, 1e400, invalid UTF-8, lone surrogates, deep nesting), so that every dead letter keeps
# the standard library's reason and message. The digit run is found by mapping every byte to
# "0" (a digit) or " " and searching: 0.3 µs for a 300-byte event, a regular expression 3 µs.
_DIGIT_MAP = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_RUN = b"0" * 19
_fast_loads = orjson.loads
_FastError = orjson.JSONDecodeError


@contextlib.contextmanager
def standard_library_only() -> Iterator[None]:
    """Within the block every JSON record takes the standard library, as before orjson: the fast
    path refuses each one as it refuses a record it cannot read (one raised exception a record),
    and comes back on exit. For a benchmark or test comparing the two parsers (the results must
    be the same), never the daemon: it swaps a module name, for every thread.

    >>> with standard_library_only():
    ...     EventDecoder(MappingConfig()).parse_json(b'{"id": 7}')
    {'id': 7}
    """
    global _fast_loads
    saved, _fast_loads = _fast_loads, _refuse_fast
    try:
        yield
    finally:
        _fast_loads = saved


def _refuse_fast(raw):
    raise _FastError("refused by standard_library_only()", "", 0)



class EventDecoder:
    """Validates records against a :class:`MappingConfig`; pure and thread-safe.

    ``label_policy="required"`` turns an absent (or null) label into a ``missing_label``
    dead letter; with ``"optional"`` such events are unlabelled (``y=None``).

    ``census`` (optional) watches the first JSON objects' fields for named fields that
    never appear (:class:`~stream_cl.mapping_check.FieldCensus`); it is the one piece of
    state a decoder may hold, fed from the one thread that decodes.

    The decoder parses (:meth:`parse_json`) and hands the record on: a parsed object's fields
    are :class:`~stream_cl.record_decoders.ObjectDecoder`'s to check, a CSV row's cells
    :class:`~stream_cl.record_decoders.CsvRowDecoder`'s.
    """

    def __init__(self, mapping: MappingConfig, label_policy: Literal["optional", "required"] = "optional",
                 census: FieldCensus | None = None):
        if label_policy not in ("optional", "required"):
            raise ValueError(f"label_policy must be 'optional' or 'required', got {label_policy!r}")
        self.mapping = mapping
        self.label_policy = label_policy
        self.census = census
        self._max_bytes = mapping.max_event_bytes
        # One decoder per record shape, each with the state it keeps (the census's watch, the last CSV
        # header), held by its bound method: one attribute read per record, as when this class did it all.
        self._decode_object = ObjectDecoder(mapping, label_policy, census).decode
        self._decode_csv_row = CsvRowDecoder(mapping, label_policy).decode

    # -- JSON ------------------------------------------------------------------------
    def decode_json(self, raw: bytes | str, origin: str = "") -> Event | DeadLetter:
        """Decode one JSON object (UTF-8 bytes or text)."""
        try:
            obj = self.parse_json(raw, origin)
            if type(obj) is DeadLetter:
                return obj
            return self._decode_object(obj, raw, origin)
        except MemoryError:  # the machine's state, not the record's: the caller's retry, not a dead letter
            raise
        except Exception as e:  # the contract is "never raises": anything odd is a dead letter (_unexpected)
            return _unexpected(raw, e, origin)

    def parse_json(self, raw: bytes | str, origin: str = "") -> dict | DeadLetter:
        """The JSON object a record holds (UTF-8 bytes or text), or its dead letter: the rules
        every JSON record is read by (size, encoding, a byte-order mark, lone surrogates),
        events and label records (:class:`stream_cl.pending.LabelDecoder`) alike. A NaN or
        Infinity literal is a float here, for the field that holds it to judge.

        >>> EventDecoder(MappingConfig()).parse_json(b'\\xef\\xbb\\xbf{"id": 7}')
        {'id': 7}
        """
        if type(raw) is bytes and len(raw) <= self._max_bytes and _LONG_RUN not in raw.translate(_DIGIT_MAP):
            try:
                obj = _fast_loads(raw)
            except _FastError:
                pass  # the standard library below says what is wrong, as it always has
            else:
                return self._object(obj, raw, origin)
        text = self._text(raw, origin)
        if type(text) is DeadLetter:
            return text
        try:
            try:
                obj, end = _JSON.scan_once(text, 0)  # the common case: no surrounding whitespace
            except StopIteration:
                end = -1
            if end != len(text):
                obj = _JSON.decode(text)  # whitespace around, or the error message
        except json.JSONDecodeError as e:
            return _invalid(raw, e, origin)
        except ValueError:  # an integer over Python's digit limit: read again, as a LongInt
            try:
                obj = LONG_JSON.decode(text)
            except ValueError as e:  # invalid all the same: what is wrong
                return _invalid(raw, e, origin)
            except RecursionError:
                obj = _deep_loads(raw, text, origin)
        except RecursionError:  # nested past the interpreter's recursion limit (~1,000 levels)
            obj = _deep_loads(raw, text, origin)
        if type(obj) is DeadLetter:
            return obj
        if lone_surrogate(obj, text, escapes_only=not isinstance(raw, str)):
            # JSON's syntax but no character: an id or label holding one could not be written out
            # again (every output is UTF-8), nor a key in a checkpoint
            return dead_letter(raw, "malformed", f"invalid JSON: {LONE_SURROGATE}", origin)
        return self._object(obj, raw, origin)

    def _text(self, raw, origin: str) -> str | DeadLetter:
        """The text of a record the standard library is to parse, a byte-order mark left out, or the
        dead letter of a record too large, not UTF-8, or neither bytes nor text."""
        if type(raw) is bytes or isinstance(raw, (bytes, bytearray, memoryview)):
            if len(raw) > self._max_bytes:  # before any parsing: a huge record costs nothing
                return oversized(raw, self._max_bytes, origin)
            try:
                text = str(raw, "utf-8")
            except UnicodeDecodeError as e:
                return dead_letter(raw, "malformed", f"invalid UTF-8 at byte {e.start}", origin)
        elif isinstance(raw, str):
            # A character is at least one UTF-8 byte; encode only when it could matter.
            n = len(raw)
            if n > self._max_bytes or (4 * n > self._max_bytes and len(record_bytes(raw)) > self._max_bytes):
                return oversized(raw, self._max_bytes, origin)
            text = raw
        else:
            return dead_letter(b"", "malformed", f"expected bytes or str, got {type(raw).__name__}", origin)
        if text[:1] == _BOM:  # a byte-order mark is not data
            text = text[1:]
        return text

    @staticmethod
    def _object(obj, raw, origin: str) -> dict | DeadLetter:
        """A parsed JSON document (by either parser): an object, or a dead letter for anything else,
        or for an object that names one key twice (:func:`~stream_cl.json_checks.repeated_key`)."""
        if type(obj) is not dict:
            return dead_letter(raw, "not_an_object", f"expected a JSON object, got {json_type(obj)}", origin)
        if (key := repeated_key(obj, raw)) is not None:
            if key is UNNAMED_KEY:
                return dead_letter(raw, "malformed", "invalid JSON: nested too deep to check that no key appears twice "
                                               "in one object", origin)
            return dead_letter(raw, "malformed", f"ambiguous JSON: key {key[:40]!r}{'...' if len(key) > 40 else ''} "
                                           "appears twice in one object (a parser keeps one of its values and "
                                           "drops the other silently); send each key once", origin)
        return obj

    def decode_object(self, obj: Mapping, raw: bytes = b"", origin: str = "") -> Event | DeadLetter:
        """Validate an already parsed object (``raw`` is kept for the dead letter)."""
        try:
            return self._decode_object(obj, raw, origin)
        except MemoryError:  # the machine's state, not the record's: the caller's retry, not a dead letter
            raise
        except Exception as e:  # the contract is "never raises": anything odd is a dead letter (_unexpected)
            return _unexpected(raw, e, origin)

    # -- CSV -------------------------------------------------------------------------
    def decode_csv_row(self, row: Mapping[str, str | None], raw: bytes = b"", origin: str = "") -> Event | DeadLetter:
        """Validate one CSV row (column -> cell text). Empty or whitespace-only cells are missing
        values, and no label, id, task or time in those columns.

        Under the default ``mapping.features`` (``"x"``), or a string that is not a column,
        every column but the label, id, task and timestamp is a feature, a column named ``x``
        too; another string that is a column is that column alone
        (:class:`~stream_cl.record_decoders.CsvRowDecoder`).
        """
        return self._decode_csv_row(row, raw, origin)


def _deep_loads(raw, text: str, origin: str):
    """The JSON value of ``text``, which the parser refused for its nesting past the interpreter's
    recursion limit, read again with the limit raised (:func:`~stream_cl.json_checks.loads_deep`, as
    :func:`~stream_cl.json_checks.repeated_key` does): a valid record up to ~2,000 levels deep is then refused by the rule of the field that holds
    the nesting (``too_deep`` in the features, ``bad_label`` in the label, ``not_an_object`` at the top:
    review r109 L2), not as unreadable. Deeper than that, or invalid, its dead letter."""
    try:
        return loads_deep(text)
    except json.JSONDecodeError as e:
        return _invalid(raw, e, origin)
    except (RecursionError, ValueError):
        return dead_letter(raw, "malformed", f"unreadable JSON: nested deeper than the parser reads "
                           f"({sys.getrecursionlimit() + DEEPEST_JSON:,} levels)", origin)


def _invalid(raw, e: Exception, origin: str) -> DeadLetter:
    """The dead letter of a record the standard library's JSON parser refused with ``e``."""
    where = f"{e.msg} at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) else str(e)[:80]
    return dead_letter(raw, "malformed", f"invalid JSON: {where}", origin)


# what the detail of a record no rule foresaw begins with (_unexpected; after "label record: " in the label
# decoder's): the fuzz tests look for it, as such a dead letter would otherwise hide a bug of the decoder's
# own behind a "malformed" record
UNFORESEEN = "decoding raised "


def _unexpected(raw, e: Exception, origin: str) -> DeadLetter:
    """The dead letter of a record whose decoding raised ``e``, which no rule foresaw: the record is
    refused, naming the error, and the stream goes on (as :class:`stream_cl.pending.LabelDecoder`
    refuses a label record). Raised, it ended a file run, and the daemon met the same record again
    after every restart."""
    try:
        why = str(e)[:80]
    except Exception:  # a hostile __str__
        why = ""
    detail = f"event: {UNFORESEEN}{type(e).__name__}" + (f" ({why})" if why else "")
    return dead_letter(raw, "malformed", detail, origin)
