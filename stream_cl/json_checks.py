"""JSON text's own rules, beyond what a parser checks: a key written twice in one object, a lone
surrogate escape, an integer longer than Python converts, nesting past the interpreter's recursion
limit. :class:`stream_cl.decode.EventDecoder` reads every record by them, and
:class:`stream_cl.pending.LabelDecoder` every label record.

>>> repeated_key({"x": {"a": 2}}, b'{"x": {"a": 1, "a": 2}}')
'a'
>>> LONG_JSON.decode('{"n": ' + "7" * 5000 + "}")["n"] == LongInt("7" * 5000)
True
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
from collections.abc import Mapping
from decimal import Decimal

__all__ = ["DEEPEST_JSON", "LONE_SURROGATE", "LONG_JSON", "UNNAMED_KEY", "LongInt", "lone_surrogate", "loads_deep",
           "repeated_key"]


class LongInt(Decimal):
    """An integer literal longer than Python converts to an int (``sys.get_int_max_str_digits()``,
    4,300 digits by default: a guard against quadratic conversion), read exactly as a Decimal
    (:data:`LONG_JSON`), so that the field that holds it decides by its own rule, naming its key:
    a feature value is beyond ``MAX_ABS_VALUE`` (``non_finite``, as one of 4,300 digits is;
    :mod:`stream_cl.encoding` reads a Decimal as a number), a label, id, task or time is none
    (:func:`stream_cl.field_values.show_value` says why), an unread field is nothing. Refused in the parser, the record was
    ``malformed``, naming no key."""

    __slots__ = ()

    def __repr__(self) -> str:  # its digits, as a dead letter shows an int's
        return str(self)


def _int_or_long(digits: str) -> int | LongInt:
    try:
        return int(digits)
    except ValueError:  # over the digit limit
        return LongInt(digits)


# Only for a record the standard library refused for such a literal: a parse_int of our own costs
# every integer of every record a Python call.
LONG_JSON = json.JSONDecoder(parse_int=_int_or_long)


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
    for extra in (0, DEEPEST_JSON):
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


DEEPEST_JSON = 1100  # levels beyond the recursion limit: orjson reads 1,024, the stdlib path refuses ~1,000


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


def loads_deep(text: str):
    """The JSON value of ``text``, which the parser refused for its nesting past the interpreter's
    recursion limit, read again with the limit raised by :data:`DEEPEST_JSON` (as :func:`repeated_key`
    does). Raises :class:`json.JSONDecodeError` for invalid text, and :class:`RecursionError` (or the
    ``ValueError`` a C parser raises instead) for text nested deeper still.

    >>> text = "[" * 1500 + "]" * 1500  # past the default limit of 1,000 levels
    >>> len(loads_deep(text))
    1
    """
    with _recursion_limit_raised(DEEPEST_JSON):
        return LONG_JSON.decode(text)


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
