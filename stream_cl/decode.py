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
import dataclasses
import json
import numbers
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal

import orjson

from .config import PER_SECOND, MappingConfig
from .encoding import MAX_ABS_VALUE, InvalidFeatureError, flatten, out_of_range
from .events import DeadLetter, Event
from .mapping_check import FieldCensus

__all__ = ["LONE_SURROGATE", "MAX_TEXT_CHARS", "UNFORESEEN", "EventDecoder", "ascii_float", "blank_text", "id_value",
           "label_value", "lone_surrogate", "long_name", "repeated_key", "standard_library_only", "text_problem",
           "UNNAMED_KEY"]

_BIG = 2**1000  # ints inside this convert to float without overflow
# mapping.features' default ("x"): in a CSV, every column but the label, id, task and timestamp
# (_CsvRowDecoder._columns)
_FEATURES_DEFAULT = next(f.default for f in dataclasses.fields(MappingConfig) if f.name == "features")
_BOM = "\ufeff"


# One decoder for every record, whatever mapping.nan_policy: the non-standard NaN / Infinity /
# -Infinity literals become floats (the standard library's default), as 1e400 becomes inf, so
# that the field holding one decides by its own rule, naming its key: a feature value by
# stream_cl.encoding (non_finite, or null under nan_policy = "missing"), a label, id, task or
# time by theirs (bad_label, bad_id, bad_timestamp), an unread field not at all. Refused in the
# parser, the dead letter could name no key; read as null there, a NaN label or id was absent.
# Shared: json.loads(..., parse_constant=...) would build a new decoder per call.
_JSON = json.JSONDecoder()


class _LongInt(Decimal):
    """An integer literal longer than Python converts to an int (``sys.get_int_max_str_digits()``,
    4,300 digits by default: a guard against quadratic conversion), read exactly as a Decimal
    (:data:`_LONG_JSON`), so that the field that holds it decides by its own rule, naming its key:
    a feature value is beyond ``MAX_ABS_VALUE`` (``non_finite``, as one of 4,300 digits is;
    :mod:`stream_cl.encoding` reads a Decimal as a number), a label, id, task or time is none
    (:func:`_show` says why), an unread field is nothing. Refused in the parser, the record was
    ``malformed``, naming no key."""

    __slots__ = ()

    def __repr__(self) -> str:  # its digits, as a dead letter shows an int's
        return str(self)


def _int_or_long(digits: str) -> int | _LongInt:
    try:
        return int(digits)
    except ValueError:  # over the digit limit
        return _LongInt(digits)


# Only for a record the standard library refused for such a literal: a parse_int of our own costs
# every integer of every record a Python call.
_LONG_JSON = json.JSONDecoder(parse_int=_int_or_long)
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
_FIX = {"too_deep": "; raise mapping.max_depth", "too_many_features": "; raise mapping.max_features",
        "non_finite": "", "wrong_type": ""}


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


def _event_maker():
    """A constructor for :class:`Event` that fills its slots directly.

    A frozen dataclass's ``__init__`` goes through ``object.__setattr__`` per field,
    which is a tenth of the decoder's time; slot descriptors halve that. Used only
    while Event has exactly these fields, so a new field cannot be left unset.
    """
    names = ("x", "y", "id", "task", "ts", "origin")
    if tuple(f.name for f in dataclasses.fields(Event)) != names or not hasattr(Event, "__slots__"):
        return Event
    set_x, set_y, set_id, set_task, set_ts, set_origin = (Event.__dict__[n].__set__ for n in names)
    new = object.__new__

    def make(x, y, id, task, ts, origin):
        e = new(Event)
        set_x(e, x), set_y(e, y), set_id(e, id), set_task(e, task), set_ts(e, ts), set_origin(e, origin)
        return e

    return make


_make_event = _event_maker()


class EventDecoder:
    """Validates records against a :class:`MappingConfig`; pure and thread-safe.

    ``label_policy="required"`` turns an absent (or null) label into a ``missing_label``
    dead letter; with ``"optional"`` such events are unlabelled (``y=None``).

    ``census`` (optional) watches the first JSON objects' fields for named fields that
    never appear (:class:`~stream_cl.mapping_check.FieldCensus`); it is the one piece of
    state a decoder may hold, fed from the one thread that decodes.

    The decoder parses (:meth:`parse_json`) and hands the record on: a parsed object's fields
    are :class:`_ObjectDecoder`'s to check, a CSV row's cells :class:`_CsvRowDecoder`'s.
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
        self._decode_object = _ObjectDecoder(mapping, label_policy, census).decode
        self._decode_csv_row = _CsvRowDecoder(mapping, label_policy).decode

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
        except ValueError:  # an integer over Python's digit limit: read again, as a _LongInt
            try:
                obj = _LONG_JSON.decode(text)
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
            return _dead(raw, "malformed", f"invalid JSON: {LONE_SURROGATE}", origin)
        return self._object(obj, raw, origin)

    def _text(self, raw, origin: str) -> str | DeadLetter:
        """The text of a record the standard library is to parse, a byte-order mark left out, or the
        dead letter of a record too large, not UTF-8, or neither bytes nor text."""
        if type(raw) is bytes or isinstance(raw, (bytes, bytearray, memoryview)):
            if len(raw) > self._max_bytes:  # before any parsing: a huge record costs nothing
                return _oversized(raw, self._max_bytes, origin)
            try:
                text = str(raw, "utf-8")
            except UnicodeDecodeError as e:
                return _dead(raw, "malformed", f"invalid UTF-8 at byte {e.start}", origin)
        elif isinstance(raw, str):
            # A character is at least one UTF-8 byte; encode only when it could matter.
            n = len(raw)
            if n > self._max_bytes or (4 * n > self._max_bytes and len(_to_bytes(raw)) > self._max_bytes):
                return _oversized(raw, self._max_bytes, origin)
            text = raw
        else:
            return _dead(b"", "malformed", f"expected bytes or str, got {type(raw).__name__}", origin)
        if text[:1] == _BOM:  # a byte-order mark is not data
            text = text[1:]
        return text

    @staticmethod
    def _object(obj, raw, origin: str) -> dict | DeadLetter:
        """A parsed JSON document (by either parser): an object, or a dead letter for anything else,
        or for an object that names one key twice (:func:`repeated_key`)."""
        if type(obj) is not dict:
            return _dead(raw, "not_an_object", f"expected a JSON object, got {_json_type(obj)}", origin)
        if (key := repeated_key(obj, raw)) is not None:
            if key is UNNAMED_KEY:
                return _dead(raw, "malformed", "invalid JSON: nested too deep to check that no key appears twice "
                                               "in one object", origin)
            return _dead(raw, "malformed", f"ambiguous JSON: key {key[:40]!r}{'...' if len(key) > 40 else ''} "
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
        too; another string that is a column is that column alone (:meth:`_CsvRowDecoder._columns`).
        """
        return self._decode_csv_row(row, raw, origin)


NO_FIELD = object()  # the field a mapping key set to "" names: none (no record has it)


class _RecordRules:
    """What the mapping says of every record, resolved once: the label, id, task and time fields,
    where the features are (``_field``, one field holding them, or ``_fields``, named fields), the
    limits and the label policy. The decoder of each record shape below is one, so that its
    per-event path reads them as its own attributes (one lookup, not two); none changes them."""

    def __init__(self, mapping: MappingConfig, label_policy: str):
        self._require_label = label_policy == "required"
        self._max_bytes = mapping.max_event_bytes
        self._max_features = mapping.max_features
        self._max_depth = mapping.max_depth
        self._nan = mapping.nan_policy  # feature values only (flatten): a NaN label is no missing label
        # "" names no field (the config's word): a lookup of NO_FIELD finds nothing, where one of "" had read a
        # pandas CSV's unnamed index column as every row's task, time or id (review r99)
        self._label = mapping.label
        self._id, self._task, self._ts = (name or NO_FIELD for name in (mapping.id, mapping.task, mapping.timestamp))
        self._per_second = PER_SECOND[mapping.timestamp_unit]  # a numeric time over this is epoch seconds
        meta = tuple(name for name in (mapping.label, mapping.id, mapping.task, mapping.timestamp) if name)
        if isinstance(mapping.features, str):
            self._field: str | None = mapping.features
            self._fields: tuple[str, ...] = ()
            self._known = frozenset((mapping.features, *meta))
        else:
            self._field = None
            self._fields = tuple(mapping.features)
            self._known = frozenset((*mapping.features, *meta))
        self._meta = frozenset(meta)
        self._reject_unknown = mapping.unknown_fields == "reject"


class _ObjectDecoder(_RecordRules):
    """A parsed object's event, for :meth:`EventDecoder.decode_json` and :meth:`~EventDecoder.decode_object`:
    its features (finite numbers by a loop of its own, anything else by :func:`stream_cl.encoding.flatten`),
    then its label, id, task and time (:meth:`_event`). It feeds the census its first objects."""

    def __init__(self, mapping: MappingConfig, label_policy: str, census: FieldCensus | None):
        super().__init__(mapping, label_policy)
        self.census = census
        self._watch = census is not None  # until the census has its sample: then no per-event cost

    def decode(self, obj: Mapping, raw, origin: str) -> Event | DeadLetter:
        """The object's event, or the dead letter of the first field against the rules. Unguarded:
        its callers turn what it raises into a dead letter (an object from Python may be anything)."""
        if type(obj) is not dict and not isinstance(obj, Mapping):  # ABC checks are slow: dict first
            return _dead(raw, "not_an_object", f"expected an object, got {_json_type(obj)}", origin)
        if self._watch:
            self._watch = self.census.observe(obj)
        if self._reject_unknown:
            unknown = [k for k in obj if k not in self._known]
            if unknown:
                return _dead(raw, "unknown_field", _unknown_detail(unknown, self._known), origin)

        # Features: a field holding a dict / list, or named top-level fields.
        if self._field is not None:
            feats = obj.get(self._field)
            if type(feats) is dict or (feats is not None and isinstance(feats, Mapping)):
                pairs = feats.items
            elif type(feats) is list or isinstance(feats, tuple):
                pairs = lambda: enumerate(feats)  # noqa: E731
            elif feats is None:
                return _dead(raw, "missing_features", f"no features field {self._field!r}", origin)
            else:  # a one-name mapping is the field *holding* the features: say how to learn the field itself
                detail = (f"field {self._field!r}: expected an object or a list, got {_show(feats)}; to learn the "
                          f"top-level field {self._field!r} itself, name it in a list: features = [{json.dumps(self._field)}] "
                          f"(command line: --features {self._field},)")
                return _dead(raw, "bad_features", detail, origin)
        else:
            feats = {name: obj[name] for name in self._fields if name in obj}
            if not feats:
                return _dead(raw, "missing_features", f"none of the feature fields {list(self._fields)!r:.80}", origin)
            pairs = feats.items
        if len(feats) > self._max_features:
            detail = f"{len(feats)} features, over mapping.max_features ({self._max_features})"
            return _dead(raw, "too_many_features", detail, origin)
        x = {}
        for k, v in pairs():  # fast path: finite floats and ints, as JSON gives them
            if type(v) is float and -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE:  # false for NaN and +-inf
                x[k] = v
            elif type(v) is int and -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE:
                x[k] = float(v)
            elif type(v) is bool:
                x[k] = 1.0 if v else 0.0
            else:  # strings, nulls, nesting, or a bad value: the rules of stream_cl.encoding
                x = self._features(pairs())
                if type(x) is not dict:
                    return _dead(raw, x[0], x[1], origin)
                break
        if not raw or len(raw) > MAX_TEXT_CHARS:  # (a longer name needs a longer record: most events never look;
            # an object from Python, with no record, always does)
            if (detail := long_name(x)) is not None:
                return _dead(raw, "bad_features", detail, origin)
        return self._event(obj, x, raw, origin)

    def _event(self, obj: Mapping, x: dict, raw, origin: str) -> Event | DeadLetter:
        """The event of features ``x`` with the object's label, id, task and time: the common exact
        types first, the rest explained."""
        y = obj.get(self._label)
        if y is not None and not (type(y) is int or type(y) is bool):
            y = label_value(y)  # (a str as it is; a blank one is no label: blank_text)
            if type(y) is tuple:
                return _dead(raw, "bad_label", y[0], origin)
            if blank_text(y):
                y = None
        if y is None and self._require_label:
            return _dead(raw, "missing_label", f"no label in field {self._label!r} (labels are required)", origin)

        i = obj.get(self._id)
        if type(i) is int:
            i = str(i) if -_BIG < i < _BIG else id_value(i)
        elif i is not None:
            i = id_value(i)  # (a str as it is, a blank one no id)
            if type(i) is tuple:
                return _dead(raw, "bad_id", i[0], origin)
            if blank_text(i):
                i = None

        task = obj.get(self._task)
        if blank_text(task):
            task = None
        elif task is not None and not (type(task) is str or type(task) is int):
            if isinstance(task, numbers.Integral) and not isinstance(task, bool):
                task = int(task)
            elif not isinstance(task, str):
                # No reason code of its own: a task is a label of the stream, not of the event.
                return _dead(raw, "bad_label", f"task: expected a string or an integer, got {_show(task)}", origin)

        ts = obj.get(self._ts)
        if ts is not None:
            if type(ts) is float and ts - ts == 0.0:
                ts = ts / self._per_second  # (exact for seconds: x / 1 is x)
            else:
                ts = _timestamp(ts, self._per_second)
                if type(ts) is tuple:
                    return _dead(raw, "bad_timestamp", ts[0], origin)
        problem = text_problem(y, i, task)
        if problem is not None:
            return _dead(raw, *problem, origin)
        return _make_event(x, y, i, task, ts, origin)

    def _features(self, pairs) -> dict | tuple[str, str]:
        """Flat features by :func:`stream_cl.encoding.flatten`, else ``(reason, detail)``."""
        try:
            x = flatten(dict(pairs), self._max_depth, self._nan, self._max_features)
        except InvalidFeatureError as e:
            return e.code, f"{e}{_FIX.get(e.code, '')}"
        except RecursionError:  # a Python object nested into itself, or deeper than the interpreter recurses
            return "too_deep", "features nested into themselves, or deeper than Python's recursion allows"
        for k, v in x.items():
            if not (v is None or type(v) is float or type(v) is str):  # a datetime from a Python caller
                return "wrong_type", f"feature {_key(k)}: expected a number or a string, got {_show(v)}; " \
                                     "times go in mapping.timestamp"
        return x


class _CsvRowDecoder(_RecordRules):
    """A CSV row's event, for :meth:`EventDecoder.decode_csv_row`: the header's columns resolved once
    (:meth:`_columns`), the feature cells read as numbers, categories or nulls (:meth:`_cells`), then
    the label, id, task and time cells."""

    def __init__(self, mapping: MappingConfig, label_policy: str):
        super().__init__(mapping, label_policy)
        # The last CSV header seen, its feature columns and unknown columns: one tuple,
        # replaced whole, so threads sharing the decoder never see a mixed pair.
        self._cache: tuple = ((), [], [])

    def decode(self, row: Mapping[str, str | None], raw: bytes, origin: str) -> Event | DeadLetter:
        """The row's event, or the dead letter of its first cell against the rules."""
        if len(raw) > self._max_bytes:
            return _oversized(raw, self._max_bytes, origin)
        if None in row:  # csv.DictReader's restkey: more cells than header columns
            return _dead(raw, "malformed", "row has more cells than the header", origin)
        header = tuple(row)
        cache = self._cache
        if header != cache[0]:  # the same header on every row: resolve the columns once
            cache = self._cache = (header, *self._columns(header))
        _, cols, unknown = cache
        if unknown:
            return _dead(raw, "unknown_field", _unknown_detail(unknown, self._known), origin)
        if not cols:
            return _dead(raw, "missing_features", "no feature columns", origin)
        if len(cols) > self._max_features:
            detail = f"{len(cols)} features, over mapping.max_features ({self._max_features})"
            return _dead(raw, "too_many_features", detail, origin)
        x = self._cells(row, cols, raw, origin)
        if type(x) is not dict:
            return x

        # blank is no value here either, as in a feature column: "2,3, " has no label, not the class " "
        y = _cell(row, self._label)
        if y is None and self._require_label:
            return _dead(raw, "missing_label", f"empty label column {self._label!r} (labels are required)", origin)
        ts = _cell(row, self._ts)
        if ts is not None:
            ts = _timestamp(ts, self._per_second)
            if type(ts) is tuple:
                return _dead(raw, "bad_timestamp", ts[0], origin)
        i, task = _cell(row, self._id), _cell(row, self._task)
        problem = text_problem(y, i, task)
        if problem is not None:
            return _dead(raw, *problem, origin)
        return _make_event(x, y, i, task, ts, origin)

    def _cells(self, row: Mapping, cols: list, raw: bytes, origin: str) -> dict | DeadLetter:
        """The feature cells' values: a number where the cell reads as one in ASCII, else the text (a
        category), ``None`` for a blank cell; or the dead letter of the first cell that is no text, or
        a number out of range (NaN under ``nan_policy = "missing"`` is ``None``)."""
        x = {}
        for c in cols:
            cell = row[c]
            # _blank's rule, inline as ascii_float's below: its call per cell cost a row about 5%, more
            # than the two calls that reach this loop (EventDecoder.decode_csv_row, then decode)
            if not cell or (type(cell) is str and cell.isspace()):
                x[c] = None  # an empty cell is CSV's null
                continue
            try:
                # ascii_float's rule, inline (a call per cell costs a tenth of a row's time): float() reads
                # "2024_01" and "١٢" too: codes, categories as in JSON
                if type(cell) is str and (not cell.isascii() or "_" in cell):
                    raise ValueError
                v = float(cell)
            except (ValueError, TypeError):
                if type(cell) is not str:
                    return _dead(raw, "wrong_type", f"feature {_key(c)}: expected text, got {_show(cell)}", origin)
                x[c] = cell  # not a number: a category
                continue
            if not -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE:  # NaN, +-inf ("nan", "inf", "1e999"), "1e200"
                if v != v and self._nan == "missing":
                    x[c] = None
                    continue
                return _dead(raw, "non_finite", f"feature {_key(c)}: {_show(cell)} is {out_of_range(v)}", origin)
            x[c] = v
        return x

    def _columns(self, header: tuple) -> tuple[list, list]:
        """The feature columns, and the columns that unknown_fields = "reject" refuses.

        A string ``mapping.features`` is JSON's field holding the features object, which a CSV
        row has not. So its default reads every column: a CSV ``x,y,z,class`` (coordinates, an
        sklearn export) learns from x, y and z, not from x alone with the rest dropped unsaid,
        and a file learns the same whatever its first column is named. To learn column ``x``
        alone, name it in a list (``features = ["x"]``, ``--features x,``).
        """
        if self._field is not None and (self._field == _FEATURES_DEFAULT or self._field not in header):
            # all columns but label/id/task/timestamp are features: none is unknown
            return [c for c in header if c not in self._meta], []
        cols = [self._field] if self._field is not None else [c for c in self._fields if c in header]
        unknown = [c for c in header if c not in self._known] if self._reject_unknown else []
        return cols, unknown


def _oversized(raw, max_bytes: int, origin: str) -> DeadLetter:
    """The dead letter of a record over ``mapping.max_event_bytes`` (``max_bytes``), JSON or CSV."""
    size = len(_to_bytes(raw)) if isinstance(raw, str) else len(raw)
    detail = f"{size} bytes, over mapping.max_event_bytes ({max_bytes})"
    return _dead(raw, "oversized", detail, origin)


def blank_text(value) -> bool:
    """Whether ``value`` is text that holds no value: empty, or only whitespace. A blank label, id or
    task is none, in a JSON field, a label record and a CSV cell alike: a producer that writes ``""``
    for "not known yet" sends no class ``''``.

    >>> blank_text(""), blank_text(" \t"), blank_text(" a"), blank_text(0), blank_text(None)
    (True, True, False, False, False)
    """
    return isinstance(value, str) and (not value or value.isspace())


def _blank(cell) -> bool:
    """Whether a CSV cell is empty: no text (None: a row with fewer cells than the header), or blank
    text (:func:`blank_text`; a space after the last comma)."""
    return cell is None or blank_text(cell)


def _cell(row: Mapping, column) -> str | None:
    """A CSV row's label, id, task or time cell: None when blank (:func:`_blank`), else its text
    as it is. Not stripped: a label is a class by its exact text, as in JSON."""
    cell = row.get(column)
    return None if _blank(cell) else cell


# -- helpers: each returns a value, or a 1-tuple/2-tuple explaining the problem -------
def label_value(y):
    """A class label as events and label records (:class:`stream_cl.pending.LabelDecoder`) take it,
    else a 1-tuple saying why not."""
    if isinstance(y, bool) or isinstance(y, str):
        return y
    if isinstance(y, numbers.Integral):
        return int(y)  # e.g. numpy.int64 from a Python producer: hash like the int
    if isinstance(y, float):
        return (f"label {_show(y)}: floats are not allowed as class labels; send a string or an integer",)
    return (f"label: expected a string, an integer or a boolean, got {_show(y)}",)


def id_value(i):
    """An event id as a string, as events and label records take it (an integer too big to be
    a float is still an id), else a 1-tuple saying why not."""
    if isinstance(i, numbers.Integral) and not isinstance(i, bool):
        try:
            return str(int(i))
        except ValueError:  # beyond sys.get_int_max_str_digits()
            return ("id: integer too long",)
    if isinstance(i, str):
        return str(i)
    return (f"id: expected a string or an integer, got {_show(i)}",)


def ascii_float(text) -> float:
    """A CSV cell's number (or a time string's): ``float(text)`` for a number written in ASCII
    (sign, digits, ``.``, exponent, ``inf``/``nan``, spaces around), a :class:`ValueError` for text
    that only Python's ``float`` reads as one: ``2024_01`` and ``١٢`` are codes, not numbers.
    Anything but a string goes to ``float`` as it is.

    >>> ascii_float(" -7e1 ")
    -70.0
    >>> ascii_float("2024_01")
    Traceback (most recent call last):
    ...
    ValueError: not a number in ASCII: '2024_01'
    """
    if type(text) is str and (not text.isascii() or "_" in text):
        raise ValueError(f"not a number in ASCII: {text[:40]!r}")
    return float(text)


def _timestamp(t, per_second: int = 1) -> float | tuple[str]:
    """Epoch seconds from a number or a numeric string (in units of which ``per_second`` make a
    second: ``mapping.timestamp_unit``; a string by :func:`ascii_float`'s rule), or an ISO 8601
    string (naive = UTC). A string of digits is a number, also eight that would make an ISO 8601
    basic date (``"20240501"``): read as a date only where it is one, an elapsed counter's values
    in a column would turn into dates now and then (about one in 27 of eight digits). Such dates
    fall in 1970, which :class:`~stream_cl.mapping_check.TimeCensus` says, with the ISO fix.

    >>> _timestamp("20240501"), _timestamp("2024-05-01"), _timestamp(" 1714521600 ", 1)
    (20240501.0, 1714521600.0, 1714521600.0)
    """
    if isinstance(t, str):
        text = t.strip()
        v = _text_number(text)
        if v is None:
            return _iso_timestamp(t, text)
    elif isinstance(t, numbers.Real) and not isinstance(t, bool):
        try:
            v = float(t)
        except (OverflowError, ValueError, TypeError):
            return (f"timestamp: {_show(t)} is beyond the float range",)
    else:
        return (f"timestamp: expected epoch seconds or an ISO 8601 string, got {_show(t)}",)
    if v - v != 0.0:
        return (f"timestamp: {_show(t)} is not finite",)
    return v / per_second


def _text_number(text: str) -> float | None:
    """A time string's number (:func:`ascii_float`), or None for any other text."""
    try:
        return ascii_float(text)
    except ValueError:
        return None


def _iso_timestamp(t: str, text: str) -> float | tuple[str]:
    """Epoch seconds from the ISO 8601 time ``text`` (``t`` stripped; naive = UTC), else why not."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return (f"timestamp: {_show(t)} is neither a number nor ISO 8601",)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.timestamp()
    except (OverflowError, ValueError, OSError):
        return (f"timestamp: {_show(t)} is out of range",)


def repeated_key(obj, raw: bytes | str) -> str | None:
    """A key that an object of the JSON document ``raw`` (parsed as ``obj``) names twice, else None
    (:data:`UNNAMED_KEY` for a document nested too deep for Python's parser to check).

    Both parsers keep a repeated key's last value and say nothing: a producer that wrote ``y`` twice
    would teach whichever came last, where a repeated CSV column or frame column is refused. Every key
    in the text ends in a quote that is not escaped (after no backslash, or an even run of them) and a
    colon, so counting those bounds the keys written from above (a string that begins with a colon
    counts too). Cheaper bounds come first: the colons; the quotes right before one, where no
    whitespace comes before a colon. When a bound is the keys parsed, none was written twice: 1-2.5 µs
    for a 300-byte event, counting its keys, and ~9 µs where a string holds JSON text, whose escaped
    quotes must be told from keys' ends (measured on the 2-vCPU VM, busy); only otherwise is the text
    read again, pair by pair.

    >>> repeated_key({"x": {"a": 2}}, b'{"x": {"a": 1, "a": 2}}')
    'a'
    >>> repeated_key({"t": "10:00", "a": 1}, b'{"t": "10:00", "a" : 1}') is None
    True
    >>> repeated_key({"m": '{"k": 1}'}, '{"m": "{\\"k\\": 1}"}') is None
    True
    """
    keys = _keys_in(obj)
    if type(raw) is bytes:
        text = raw
    elif isinstance(raw, str):  # (text, a str subclass such as numpy's str_: its lone surrogates were refused before)
        text = str(raw).encode("utf-8", "surrogatepass")
    else:  # bytes-like
        text = bytes(raw)
    if text.count(b":") == keys:
        return None
    # (no whitespace before any colon: every key's end is a quote right before one)
    if text.count(b'":') == keys and _LOOSE.search(text) is None:
        return None
    ends = len(_KEY_END.findall(text))
    if ends > keys and b"\\" in text:  # less the escaped quotes: after an odd run of backslashes
        ends -= sum(1 for run in _ESCAPED_END.findall(text) if (len(run) - len(run.lstrip(b"\\"))) % 2)
    if ends == keys:
        return None
    doc = text.decode("utf-8-sig", "surrogatepass")
    # read again pair by pair; past Python's recursion limit (orjson reads 1,024 levels), with the limit raised
    # for this read (the parser's C recursion: a few hundred bytes of stack a level)
    for extra in (0, _DEEPEST_JSON):
        try:
            with _recursion_limit_raised(extra):
                _PAIRS_JSON.decode(doc)
        except _Repeated as e:
            return e.key
        except ValueError:  # (parsed once already: not expected) nothing to say then
            return None
        except RecursionError:
            continue
        return None  # a string that begins with a colon, or an escaped quote before one: no key twice
    return UNNAMED_KEY


_DEEPEST_JSON = 1100  # levels beyond the recursion limit: orjson reads 1,024, the stdlib path refuses ~1,000


# what repeated_key says of a document nested too deep for Python's parser to check, even with its
# recursion limit raised (not expected: orjson reads no document that deep)
UNNAMED_KEY = "<nested too deep to check>"
# a quote and a colon (a key's end, or an escaped quote's inside a string: _ESCAPED_END, after an odd run)
_KEY_END = re.compile(rb'"[ \t\n\r]*:')
_ESCAPED_END = re.compile(rb'\\+"[ \t\n\r]*:')
_LOOSE = re.compile(rb"[ \t\n\r]:")  # JSON's whitespace before a colon


def _keys_in(obj) -> int:
    """How many keys the objects of a parsed JSON document hold, nested ones included."""
    n, stack = 0, [obj]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            n += len(v)
            v = v.values()
        if not _CONTAINERS.isdisjoint(map(type, v)):  # (in C: most objects hold no object or array)
            stack += [x for x in v if type(x) is dict or type(x) is list]
    return n


_CONTAINERS = frozenset((dict, list))


class _Repeated(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set = set()
        raise _Repeated(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return d


# reads a document again to name the key it repeats (repeated_key): rare, so a Python call per object is fine
_PAIRS_JSON = json.JSONDecoder(object_pairs_hook=_unique_pairs, parse_int=_int_or_long)


def _deep_loads(raw, text: str, origin: str):
    """The JSON value of ``text``, which the parser refused for its nesting past the interpreter's
    recursion limit, read again with the limit raised by :data:`_DEEPEST_JSON` (as :func:`repeated_key`
    does): a valid record up to ~2,000 levels deep is then refused by the rule of the field that holds
    the nesting (``too_deep`` in the features, ``bad_label`` in the label, ``not_an_object`` at the top:
    review r109 L2), not as unreadable. Deeper than that, or invalid, its dead letter."""
    try:
        with _recursion_limit_raised(_DEEPEST_JSON):
            return _LONG_JSON.decode(text)
    except json.JSONDecodeError as e:
        return _invalid(raw, e, origin)
    except (RecursionError, ValueError):
        return _dead(raw, "malformed", f"unreadable JSON: nested deeper than the parser reads "
                     f"({sys.getrecursionlimit() + _DEEPEST_JSON:,} levels)", origin)


_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _recursion_limit_raised(extra: int):
    """The interpreter's recursion limit raised by ``extra`` for one parse. The limit is the process's:
    one such parse at a time, or two threads' raises and restores could leave it raised for good."""
    with _LIMIT_LOCK:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(limit + extra)
        try:
            yield
        finally:
            sys.setrecursionlimit(limit)


def _invalid(raw, e: Exception, origin: str) -> DeadLetter:
    """The dead letter of a record the standard library's JSON parser refused with ``e``."""
    where = f"{e.msg} at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) else str(e)[:80]
    return _dead(raw, "malformed", f"invalid JSON: {where}", origin)


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
    return _dead(raw, "malformed", f"event: {UNFORESEEN}{type(e).__name__}" + (f" ({why})" if why else ""), origin)


def _dead(raw, reason: str, detail: str, origin: str) -> DeadLetter:
    return DeadLetter(raw if type(raw) is bytes else _to_bytes(raw), reason, detail, origin)


# The longest id, label or task string: every prediction record repeats them (its key is the id),
# and one too large for the predictions topic would fail every transaction that holds it.
MAX_TEXT_CHARS = 1024


def long_name(names: Iterable) -> str | None:
    """Why the first feature name over ``MAX_TEXT_CHARS`` among ``names`` is refused, else None: each input
    is named in every checkpoint and changelog part, and 1,000 names of 34 KB made a part of 38 MB, over the
    changelog's limit at every start (review r57, as r56 found of long category values, which are named by
    their digest instead). A CSV header's columns are held to it too (connectors/csv_records.py).

    >>> long_name(["a", "b" * 2000])
    "feature 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'...: a name of 2,000 characters, over 1,024 (every checkpoint and changelog part names each input); send a shorter name, or the text as a value (a category)"
    >>> long_name(["a", "b"]) is None
    True
    """
    name = next((k for k in names if type(k) is str and len(k) > MAX_TEXT_CHARS), None)
    if name is None:
        return None
    return (f"feature {name[:40]!r}...: a name of {len(name):,} characters, over {MAX_TEXT_CHARS:,} (every checkpoint "
            "and changelog part names each input); send a shorter name, or the text as a value (a category)")


def text_problem(label, id_, task) -> tuple[str, str] | None:
    """``(reason, detail)`` for an id, label or task string over ``MAX_TEXT_CHARS``, else ``None``.

    >>> text_problem("ok", "x" * 2000, None)
    ('bad_id', 'id: 2,000 characters, over 1,024 (every prediction record repeats it); send a shorter one')
    """
    for what, value, reason in (("label", label, "bad_label"), ("id", id_, "bad_id"), ("task", task, "bad_label")):
        if type(value) is str and len(value) > MAX_TEXT_CHARS:
            return reason, f"{what}: {len(value):,} characters, over {MAX_TEXT_CHARS:,} (every prediction record " \
                           "repeats it); send a shorter one"
        if type(value) is int and not -_MAX_TEXT_INT < value < _MAX_TEXT_INT:  # its digits, as a string's characters (r99)
            return reason, f"{what}: an integer of over {MAX_TEXT_CHARS:,} digits (every prediction record repeats " \
                           "it); send a shorter one"
    return None


_MAX_TEXT_INT = 10 ** MAX_TEXT_CHARS  # the least integer of more than MAX_TEXT_CHARS digits


LONE_SURROGATE = "a string holds a lone surrogate escape (\\ud800-\\udfff), which is not a Unicode character"


def lone_surrogate(obj, text: str, escapes_only: bool = True) -> bool:
    """Whether a string in ``obj`` (a key or a value), parsed from the JSON ``text``, holds a lone
    surrogate. Text decoded from UTF-8 can hold one only through an escape, looked for first;
    text a caller gave may hold the character itself (``escapes_only=False``), which the text
    shows (outside its strings JSON is ASCII).

    The strings are walked with a stack of their own, not by recursion: the parser takes
    nesting up to the interpreter's recursion limit, and a recursive check a few frames deeper
    raised ``RecursionError`` for a record nested just below it.

    >>> text = '[[{"k": "ok"}, ["a\\\\ud800"]]]'  # an escape nested in arrays
    >>> lone_surrogate(json.loads(text), text)
    True
    >>> text = '{"smile": "\\\\ud83d\\\\ude00"}'  # a pair of escapes: one character
    >>> lone_surrogate(json.loads(text), text)
    False
    """
    if not escapes_only:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a surrogate character itself, which the parser keeps as it is
            return True
    if "\\ud" not in text and "\\uD" not in text:
        return False
    stack = [obj]
    while stack:
        v = stack.pop()
        if type(v) is str or isinstance(v, str):
            if not v.isascii() and _SURROGATE.search(v) is not None:
                return True
        elif isinstance(v, Mapping):
            for k, item in v.items():
                stack.append(k)
                stack.append(item)
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return False


_SURROGATE = re.compile(r"[\ud800-\udfff]")  # re reads the escapes: the source stays ASCII


def _to_bytes(raw) -> bytes:
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")  # lone surrogates survive (as invalid UTF-8)
    try:
        return bytes(raw)
    except Exception:
        return b""


def _unknown_detail(unknown: list, known: frozenset) -> str:
    names = sorted(_key(k) for k in unknown)
    more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
    allowed = ", ".join(sorted(map(str, known)))
    return f"unknown field {names[0]}{more}; mapping.unknown_fields = 'reject' allows {allowed:.120}"


def _json_type(v) -> str:
    if v is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "an array", int: "a number", float: "a number"}.get(
        type(v), type(v).__name__
    )


def _key(k) -> str:
    return repr(k[:40]) if isinstance(k, str) else _safe_repr(k)


def _show(v: Any) -> str:
    """A short description of a value: its type, and the value when that is small."""
    if v is None:
        return "null"
    if isinstance(v, str):
        return f"str {v[:40]!r}" + ("..." if len(v) > 40 else "")
    if isinstance(v, _LongInt):
        digits, limit = len(v.as_tuple().digits), sys.get_int_max_str_digits()
        return f"an integer of {digits:,} digits, over the {limit:,} Python reads"
    if isinstance(v, (list, tuple)):  # never repr a container: it may be huge or deeply nested
        return f"{type(v).__name__} of {len(v)} items"
    if isinstance(v, Mapping):
        return f"object with {len(v)} keys"
    return f"{type(v).__name__} {_safe_repr(v)}"


def _safe_repr(v) -> str:
    try:
        r = repr(v)
    except Exception:  # huge ints (digit limit), hostile __repr__
        return f"<{type(v).__name__}>"
    return r if len(r) <= 40 else r[:40] + "..."
