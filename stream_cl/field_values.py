"""The values of an event's label, id, task and time fields, and how a dead letter shows a value.

Events (:class:`stream_cl.decode.EventDecoder`) and label records
(:class:`stream_cl.pending.LabelDecoder`) take a label, an id, a task and a time by the same
rules, here: :func:`label_value`, :func:`id_value` and :func:`timestamp_seconds` return the value or a
1-tuple saying why not, :func:`text_problem` and :func:`long_name` what is wrong or ``None``, and the
caller turns what is wrong into a dead letter, whose detail shows values by :func:`show_value`.

>>> label_value("sick"), label_value(3), label_value(2.5)
('sick', 3, ('label float 2.5: floats are not allowed as class labels; send a string or an integer',))
>>> timestamp_seconds("2024-05-01T00:00:00Z")
1714521600.0
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from .json_checks import LongInt

__all__ = ["MAX_NAMES_CHARS", "MAX_TEXT_CHARS", "ascii_float", "blank_text", "id_value", "json_type", "label_value", "long_name",
           "show_key", "show_value", "text_problem", "timestamp_seconds"]


def blank_text(value) -> bool:
    """Whether ``value`` is text that holds no value: empty, or only whitespace. A blank label, id or
    task is none, in a JSON field, a label record and a CSV cell alike: a producer that writes ``""``
    for "not known yet" sends no class ``''``.

    >>> blank_text(""), blank_text(" \t"), blank_text(" a"), blank_text(0), blank_text(None)
    (True, True, False, False, False)
    """
    return isinstance(value, str) and (not value or value.isspace())


def label_value(y):
    """A class label as events and label records (:class:`stream_cl.pending.LabelDecoder`) take it,
    else a 1-tuple saying why not."""
    if isinstance(y, bool) or isinstance(y, str):
        return y
    if isinstance(y, numbers.Integral):
        return int(y)  # e.g. numpy.int64 from a Python producer: hash like the int
    if isinstance(y, float):
        return (f"label {show_value(y)}: floats are not allowed as class labels; send a string or an integer",)
    return (f"label: expected a string, an integer or a boolean, got {show_value(y)}",)


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
    return (f"id: expected a string or an integer, got {show_value(i)}",)


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


def timestamp_seconds(t, per_second: int = 1) -> float | tuple[str]:
    """Epoch seconds from a number or a numeric string (in units of which ``per_second`` make a
    second: ``mapping.timestamp_unit``; a string by :func:`ascii_float`'s rule), or an ISO 8601
    string (naive = UTC). A string of digits is a number, also eight that would make an ISO 8601
    basic date (``"20240501"``): read as a date only where it is one, an elapsed counter's values
    in a column would turn into dates now and then (about one in 27 of eight digits). Such dates
    fall in 1970, which :class:`~stream_cl.mapping_check.TimeCensus` says, with the ISO fix.

    >>> timestamp_seconds("20240501"), timestamp_seconds("2024-05-01"), timestamp_seconds(" 1714521600 ", 1)
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
            return (f"timestamp: {show_value(t)} is beyond the float range",)
    else:
        return (f"timestamp: expected epoch seconds or an ISO 8601 string, got {show_value(t)}",)
    if v - v != 0.0:
        return (f"timestamp: {show_value(t)} is not finite",)
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
        return (f"timestamp: {show_value(t)} is neither a number nor ISO 8601",)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.timestamp()
    except (OverflowError, ValueError, OSError):
        return (f"timestamp: {show_value(t)} is out of range",)


# The longest id, label or task string: every prediction record repeats them (its key is the id),
# and one too large for the predictions topic would fail every transaction that holds it.
MAX_TEXT_CHARS = 1024
# The most characters an event's nested feature names may take together (each repeats its parents' names):
# 100,000 names (mapping.max_features) of 84 characters. Within MAX_TEXT_CHARS a 1 MiB record of
# 1,000-character parent keys made 100 MB of names, and a file poll of 16 such records 1.6 GB.
MAX_NAMES_CHARS = 8 << 20


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


def json_type(v) -> str:
    """What a parsed JSON value is, in words, for a dead letter's detail.

    >>> json_type(None), json_type([1]), json_type(2.5)
    ('null', 'an array', 'a number')
    """
    if v is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "an array", int: "a number", float: "a number"}.get(
        type(v), type(v).__name__
    )


def show_key(k) -> str:
    """A field's key as a dead letter names it: quoted, its first 40 characters.

    >>> show_key("age"), show_key(3)
    ("'age'", '3')
    """
    return repr(k[:40]) if isinstance(k, str) else _safe_repr(k)


def show_value(v: Any) -> str:
    """A short description of a value: its type, and the value when that is small."""
    if v is None:
        return "null"
    if isinstance(v, str):
        return f"str {v[:40]!r}" + ("..." if len(v) > 40 else "")
    if isinstance(v, LongInt):
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
