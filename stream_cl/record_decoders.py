"""A parsed record's fields into an :class:`~stream_cl.events.Event`, or the dead letter of the
first field against the mapping's rules: :class:`ObjectDecoder` for a JSON object (or a mapping
from Python), :class:`CsvRowDecoder` for a CSV row. :class:`stream_cl.decode.EventDecoder`
parses a record and hands it to one of them; it is the class to use.

>>> from stream_cl.config import MappingConfig
>>> ObjectDecoder(MappingConfig(), "optional", None).decode({"x": {"a": 1}, "y": "cat"}, b"", "demo:1")
Event(x={'a': 1.0}, y='cat', id=None, task=None, ts=None, origin='demo:1')
>>> CsvRowDecoder(MappingConfig(), "required").decode({"a": "1", "y": " "}, b"1, ", "demo.csv:2").reason
'missing_label'
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from collections.abc import Mapping

from .config import FEATURES_DEFAULT, PER_SECOND, MappingConfig
from .encoding import MAX_ABS_VALUE, InvalidFeatureError, flatten, out_of_range
from .events import DeadLetter, Event
from .field_values import (MAX_NAMES_CHARS, MAX_TEXT_CHARS, blank_text, id_value, json_type, label_value, long_name,
                           show_key, show_value, text_problem, timestamp_seconds)
from .mapping_check import FieldCensus

__all__ = ["NO_FIELD", "CsvRowDecoder", "ObjectDecoder", "RecordRules", "dead_letter", "oversized", "record_bytes"]

_BIG = 2**1000  # ints inside this convert to float without overflow
_FIX = {"too_deep": "; raise mapping.max_depth", "too_many_features": "; raise mapping.max_features",
        "non_finite": "", "wrong_type": ""}


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


NO_FIELD = object()  # the field a mapping key set to "" names: none (no record has it)


class RecordRules:
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


class ObjectDecoder(RecordRules):
    """A parsed object's event, for :meth:`stream_cl.decode.EventDecoder.decode_json` and
    :meth:`~stream_cl.decode.EventDecoder.decode_object`:
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
            return dead_letter(raw, "not_an_object", f"expected an object, got {json_type(obj)}", origin)
        if self._watch:
            self._watch = self.census.observe(obj)
        if self._reject_unknown:
            unknown = [k for k in obj if k not in self._known]
            if unknown:
                return dead_letter(raw, "unknown_field", _unknown_detail(unknown, self._known), origin)

        # Features: a field holding a dict / list, or named top-level fields.
        if self._field is not None:
            feats = obj.get(self._field)
            if type(feats) is dict or (feats is not None and isinstance(feats, Mapping)):
                pairs = feats.items
            elif type(feats) is list or isinstance(feats, tuple):
                pairs = lambda: enumerate(feats)  # noqa: E731
            elif feats is None:
                return dead_letter(raw, "missing_features", f"no features field {self._field!r}", origin)
            else:  # a one-name mapping is the field *holding* the features: say how to learn the field itself
                detail = (f"field {self._field!r}: expected an object or a list, got {show_value(feats)}; to learn the "
                          f"top-level field {self._field!r} itself, name it in a list: features = [{json.dumps(self._field)}] "
                          f"(command line: --features {self._field},)")
                return dead_letter(raw, "bad_features", detail, origin)
        else:
            feats = {name: obj[name] for name in self._fields if name in obj}
            if not feats:
                return dead_letter(raw, "missing_features", f"none of the feature fields {list(self._fields)!r:.80}", origin)
            pairs = feats.items
        if len(feats) > self._max_features:
            detail = f"{len(feats)} features, over mapping.max_features ({self._max_features})"
            return dead_letter(raw, "too_many_features", detail, origin)
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
                    return dead_letter(raw, x[0], x[1], origin)
                break
        if not raw or len(raw) > MAX_TEXT_CHARS:  # (a longer name needs a longer record: most events never look;
            # an object from Python, with no record, always does)
            if (detail := long_name(x)) is not None:
                return dead_letter(raw, "bad_features", detail, origin)
        return self._event(obj, x, raw, origin)

    def _event(self, obj: Mapping, x: dict, raw, origin: str) -> Event | DeadLetter:
        """The event of features ``x`` with the object's label, id, task and time: the common exact
        types first, the rest explained."""
        y = obj.get(self._label)
        if y is not None and not (type(y) is int or type(y) is bool):
            y = label_value(y)  # (a str as it is; a blank one is no label: blank_text)
            if type(y) is tuple:
                return dead_letter(raw, "bad_label", y[0], origin)
            if blank_text(y):
                y = None
        if y is None and self._require_label:
            return dead_letter(raw, "missing_label", f"no label in field {self._label!r} (labels are required)", origin)

        i = obj.get(self._id)
        if type(i) is int:
            i = str(i) if -_BIG < i < _BIG else id_value(i)
        elif i is not None:
            i = id_value(i)  # (a str as it is, a blank one no id)
            if type(i) is tuple:
                return dead_letter(raw, "bad_id", i[0], origin)
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
                return dead_letter(raw, "bad_label", f"task: expected a string or an integer, got {show_value(task)}",
                                   origin)

        ts = obj.get(self._ts)
        if ts is not None:
            if type(ts) is float and ts - ts == 0.0:
                ts = ts / self._per_second  # (exact for seconds: x / 1 is x)
            else:
                ts = timestamp_seconds(ts, self._per_second)
                if type(ts) is tuple:
                    return dead_letter(raw, "bad_timestamp", ts[0], origin)
        problem = text_problem(y, i, task)
        if problem is not None:
            return dead_letter(raw, *problem, origin)
        return _make_event(x, y, i, task, ts, origin)

    def _features(self, pairs) -> dict | tuple[str, str]:
        """Flat features by :func:`stream_cl.encoding.flatten`, else ``(reason, detail)``."""
        try:
            x = flatten(dict(pairs), self._max_depth, self._nan, self._max_features, MAX_TEXT_CHARS, MAX_NAMES_CHARS)
        except InvalidFeatureError as e:
            if e.code == "bad_features" and (detail := long_name((e.key,))) is not None:
                return "bad_features", detail  # a nested name over the bound, refused as it was made: long_name's words
            return e.code, f"{e}{_FIX.get(e.code, '')}"
        except RecursionError:  # a Python object nested into itself, or deeper than the interpreter recurses
            return "too_deep", "features nested into themselves, or deeper than Python's recursion allows"
        for k, v in x.items():
            if not (v is None or type(v) is float or type(v) is str):  # a datetime from a Python caller
                return "wrong_type", f"feature {show_key(k)}: expected a number or a string, got {show_value(v)}; " \
                                     "times go in mapping.timestamp"
        return x


class CsvRowDecoder(RecordRules):
    """A CSV row's event, for :meth:`stream_cl.decode.EventDecoder.decode_csv_row`: the header's columns
    resolved once (:meth:`_columns`), the feature cells read as numbers, categories or nulls
    (:meth:`_cells`), then the label, id, task and time cells."""

    def __init__(self, mapping: MappingConfig, label_policy: str):
        super().__init__(mapping, label_policy)
        # The last CSV header seen, its feature columns and unknown columns: one tuple,
        # replaced whole, so threads sharing the decoder never see a mixed pair.
        self._cache: tuple = ((), [], [])

    def decode(self, row: Mapping[str, str | None], raw: bytes, origin: str) -> Event | DeadLetter:
        """The row's event, or the dead letter of its first cell against the rules."""
        if len(raw) > self._max_bytes:
            return oversized(raw, self._max_bytes, origin)
        if None in row:  # csv.DictReader's restkey: more cells than header columns
            return dead_letter(raw, "malformed", "row has more cells than the header", origin)
        header = tuple(row)
        cache = self._cache
        if header != cache[0]:  # the same header on every row: resolve the columns once
            cache = self._cache = (header, *self._columns(header))
        _, cols, unknown = cache
        if unknown:
            return dead_letter(raw, "unknown_field", _unknown_detail(unknown, self._known), origin)
        if not cols:
            return dead_letter(raw, "missing_features", "no feature columns", origin)
        if len(cols) > self._max_features:
            detail = f"{len(cols)} features, over mapping.max_features ({self._max_features})"
            return dead_letter(raw, "too_many_features", detail, origin)
        x = self._cells(row, cols, raw, origin)
        if type(x) is not dict:
            return x

        # blank is no value here either, as in a feature column: "2,3, " has no label, not the class " "
        y = _cell(row, self._label)
        if y is None and self._require_label:
            return dead_letter(raw, "missing_label", f"empty label column {self._label!r} (labels are required)", origin)
        ts = _cell(row, self._ts)
        if ts is not None:
            ts = timestamp_seconds(ts, self._per_second)
            if type(ts) is tuple:
                return dead_letter(raw, "bad_timestamp", ts[0], origin)
        i, task = _cell(row, self._id), _cell(row, self._task)
        problem = text_problem(y, i, task)
        if problem is not None:
            return dead_letter(raw, *problem, origin)
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
                    return dead_letter(raw, "wrong_type", f"feature {show_key(c)}: expected text, got {show_value(cell)}", origin)
                x[c] = cell  # not a number: a category
                continue
            if not -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE:  # NaN, +-inf ("nan", "inf", "1e999"), "1e200"
                if v != v and self._nan == "missing":
                    x[c] = None
                    continue
                return dead_letter(raw, "non_finite", f"feature {show_key(c)}: {show_value(cell)} is {out_of_range(v)}", origin)
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
        if self._field is not None and (self._field == FEATURES_DEFAULT or self._field not in header):
            # all columns but label/id/task/timestamp are features: none is unknown
            return [c for c in header if c not in self._meta], []
        cols = [self._field] if self._field is not None else [c for c in self._fields if c in header]
        unknown = [c for c in header if c not in self._known] if self._reject_unknown else []
        return cols, unknown


def oversized(raw, max_bytes: int, origin: str) -> DeadLetter:
    """The dead letter of a record over ``mapping.max_event_bytes`` (``max_bytes``), JSON or CSV."""
    size = len(record_bytes(raw)) if isinstance(raw, str) else len(raw)
    detail = f"{size} bytes, over mapping.max_event_bytes ({max_bytes})"
    return dead_letter(raw, "oversized", detail, origin)


def _blank(cell) -> bool:
    """Whether a CSV cell is empty: no text (None: a row with fewer cells than the header), or blank
    text (:func:`blank_text`; a space after the last comma)."""
    return cell is None or blank_text(cell)


def _cell(row: Mapping, column) -> str | None:
    """A CSV row's label, id, task or time cell: None when blank (:func:`_blank`), else its text
    as it is. Not stripped: a label is a class by its exact text, as in JSON."""
    cell = row.get(column)
    return None if _blank(cell) else cell


def dead_letter(raw, reason: str, detail: str, origin: str) -> DeadLetter:
    """The dead letter of record ``raw`` (its bytes, :func:`record_bytes`) with a reason code of
    :data:`~stream_cl.events.REASONS` and a short detail."""
    return DeadLetter(raw if type(raw) is bytes else record_bytes(raw), reason, detail, origin)


def record_bytes(raw) -> bytes:
    """A record's bytes as a dead letter keeps them: text as UTF-8 (a lone surrogate kept, as invalid
    UTF-8), anything bytes-like as bytes, anything else as none.

    >>> record_bytes("10,cat"), record_bytes(bytearray(b"ab")), record_bytes(3.5)
    (b'10,cat', b'ab', b'')
    """
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")  # lone surrogates survive (as invalid UTF-8)
    try:
        return bytes(raw)
    except Exception:
        return b""


def _unknown_detail(unknown: list, known: frozenset) -> str:
    names = sorted(show_key(k) for k in unknown)
    more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
    allowed = ", ".join(sorted(map(str, known)))
    return f"unknown field {names[0]}{more}; mapping.unknown_fields = 'reject' allows {allowed:.120}"

