"""What a feature value means: one set of rules for JSON events, River dicts and pandas frames.

A feature value is one of:

* a **number** (int, float, a numpy number or 0-d array, a Fraction, a Decimal): a numeric column; ``NaN`` is refused
  (``non_finite``) or, with ``nan="missing"``, is null; infinities are always refused;
* a **bool**: a numeric 0/1 column (the same as an indicator ``k=True`` with
  ``False`` reading 0);
* a **string**: a category; the model gives it an indicator column ``"k=value"``;
* **null** (``None``): missing; an absent key is missing too;
* an **object** or an **array**: flattened into dotted keys (``device.os``) and
  indexed keys (``v[0]``), at most ``max_depth`` levels below the top;
* a **datetime** (River API and frames only; JSON has none): cyclical time columns
  when the model has ``time_features=True``.

:func:`flatten` applies these rules to an event's features: it returns a flat dict of
finite floats, strings, ``None`` and datetimes, or raises :class:`InvalidFeatureError`
with a stable ``code`` (the dead-letter reason).

>>> flatten({"amount": 3, "card": {"kind": "visa", "3ds": True}, "tags": ["a", None]})
{'amount': 3.0, 'card.kind': 'visa', 'card.3ds': 1.0, 'tags[0]': 'a', 'tags[1]': None}
>>> flatten({"a": {"b": {"c": 1}}}, max_depth=1)
Traceback (most recent call last):
...
stream_cl.encoding.InvalidFeatureError: feature 'a.b': nested deeper than 1 levels (got {'c': 1})
>>> flatten({"a": float("nan")}, nan="missing")
{'a': None}
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Hashable, Iterable, Mapping
from datetime import date, datetime, timezone
from decimal import Decimal

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_MAX_CATEGORIES", "DEFAULT_MAX_DEPTH", "MAX_ABS_VALUE", "MAX_CATEGORY_CHARS", "MISSING", "NAN_FIX", "OTHER", "TIME_COLUMNS", "InvalidFeatureError",
    "cells", "check_event", "check_frame_columns", "column_clash", "epoch_seconds", "flatten", "frame_rows", "frame_values",
    "indicator_key", "memo_values", "out_of_range", "time_columns",
]

DEFAULT_MAX_DEPTH = 4  # levels of objects/arrays below the features object
DEFAULT_MAX_CATEGORIES = 1000  # indicator columns per feature before "k=<other>"
OTHER = "<other>"  # the shared column of the categories over the bound
MISSING = "<missing>"  # the optional column of a null value
MAX_CATEGORY_CHARS = 256  # a longer category's column is named by its digest (indicator_key)
TIME_COLUMNS = ("hour_sin", "hour_cos", "dow_sin", "dow_cos")
# Column kinds: a number, a category's own indicator, a shared indicator (k=<other>, k=<missing>).
NUMERIC, CATEGORY, SHARED = 0, 1, 2
# The largest magnitude a number may have: its square, and the sums of squares of ~1e100
# such values, stay finite. 1e200 is a finite float whose square is inf: learned, it would
# turn a head's statistics into inf and NaN for good (its input, as a dead letter, loses nothing).
MAX_ABS_VALUE = 1e100
_DAY = 86_400.0
_TWO_PI = 2.0 * math.pi


class InvalidFeatureError(ValueError):
    """A feature value that the model must not learn from.

    ``code`` is the dead-letter reason: ``"wrong_type"``, ``"non_finite"``,
    ``"too_deep"``, ``"too_many_features"`` or ``"bad_features"`` (two values flatten to one key).
    """

    def __init__(self, key: Hashable, value: object, reason: str, code: str = "wrong_type", fix: str = ""):
        self.key, self.value, self.reason, self.code = key, value, reason, code
        super().__init__(f"feature {_show_key(key)}: {reason} (got {_show_value(value)}){'; ' + fix if fix else ''}")


def column_clash(key: Hashable, value: object, category: tuple | None = None) -> InvalidFeatureError:
    """The error for two values that make one column ``key``: both in one event
    (``{"c": "red", "c=red": 7.0}``), or a number whose key is an earlier event's category
    indicator, or the reverse. Refused rather than merged: the column would read a number as
    0/1, or standardise 0/1 hits as a number.

    ``category``: ``(feature, value)`` of the event's category (``value`` ``None`` for a null under
    ``missing_indicators``, ``OTHER`` for a category over ``max_categories``) whose indicator
    ``key`` is, where a number goes; the error then names that feature and value, which the
    refused event holds (``key`` and the indicator's 1.0 it does not). Without it, ``value`` is
    the event's number of feature ``key``.

    >>> column_clash("c=red", 7.0).code
    'bad_features'
    >>> e = column_clash("c=r", 1.0, ("c", "r"))
    >>> e.key, e.value, e.reason.split(", where")[0]
    ('c', 'r', "its value makes the indicator column 'c=r'")
    """
    rule = "two values make this column; rename one of them"
    if category is None:
        return InvalidFeatureError(key, value, rule, "bad_features")
    feature, value = category
    what = ("its null makes the indicator column" if value is None else
            "its category over model.max_categories goes to the shared column" if value == OTHER else
            "its value makes the indicator column")
    return InvalidFeatureError(feature, value, f"{what} {_show_key(key)}, where feature {_show_key(key)} (a number, in "
                                               f"this or an earlier event) goes: {rule}", "bad_features")


def indicator_key(key: Hashable, value: object) -> str:
    """The column of category ``value`` of feature ``key``. A category longer than
    ``MAX_CATEGORY_CHARS`` (free text: a message, a URL, a stack trace) is named by 128 bits of its
    SHA-256, not by its text: every checkpoint and changelog part names each of a feature's up to
    ``max_categories`` columns, and 1,000 texts of 34 KB made a two-feature model's part 38 MB, over
    the changelog's limit at every start. Two texts still make two columns, one text one.

    >>> indicator_key("color", "red"), indicator_key(3, OTHER)
    ('color=red', '3=<other>')
    >>> indicator_key("note", "x" * 300)
    'note=<sha256:0d4e2ca9e9cbced7a7a5380eb29e1a37>'
    """
    if type(value) is str and len(value) > MAX_CATEGORY_CHARS:
        value = f"<sha256:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}>"
    return f"{key}={value}"


def epoch_seconds(t: datetime | date) -> float:
    """Seconds since the epoch; a naive datetime (or a date) is UTC."""
    if not isinstance(t, datetime):
        t = datetime(t.year, t.month, t.day)
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.timestamp()


def time_columns(key: Hashable, seconds: float) -> dict:
    """Hour of day and day of week (UTC) as points on two circles: four columns in [-1, 1].

    Both angles run continuously (no jump at midnight); the week starts on Monday.

    >>> {k: round(v, 3) for k, v in time_columns("ts", 1704067200.0 + 6 * 3600).items()}  # Mon 2024-01-01 06:00
    {'ts.hour_sin': 1.0, 'ts.hour_cos': 0.0, 'ts.dow_sin': 0.223, 'ts.dow_cos': 0.975}
    """
    days = seconds / _DAY
    day = _TWO_PI * (days % 1.0)
    week = _TWO_PI * (((days + 3.0) % 7.0) / 7.0)  # 1970-01-01 was a Thursday: +3 makes Monday 0
    hs, hc, ds, dc = TIME_COLUMNS  # (one spelling of the names)
    return {f"{key}.{hs}": math.sin(day), f"{key}.{hc}": math.cos(day),
            f"{key}.{ds}": math.sin(week), f"{key}.{dc}": math.cos(week)}


def flatten(x: Mapping | Iterable, max_depth: int = DEFAULT_MAX_DEPTH, nan: str = "reject",
            max_features: int | None = None, max_name: int | None = None, max_names_total: int | None = None) -> dict:
    """The features of one event as a flat ``{key: float | str | None | datetime}``.

    ``x`` is a mapping of feature names to values; a nested sequence's positions are its keys
    (0, 1, ...). Nested keys are ``parent.child`` and ``parent[i]``; top-level keys stay as
    they are. Raises :class:`InvalidFeatureError` (``code`` ``too_deep``, ``non_finite``,
    ``wrong_type``, past ``max_features`` flat values ``too_many_features``, or, for a nested key
    longer than ``max_name`` characters, ``bad_features``), and a ``TypeError`` for an event that
    is not a mapping (a string would be learned letter by letter).

    ``max_name`` (the decoder's bound on its records' feature names) refuses a nested key as soon as
    it is made: every leaf below a parent repeats the parent's name, so a record of 400 KB (a key of
    200,000 characters over 20,000 leaves) made 4 GB of names before the bound refused them (review r141).
    ``max_names_total`` bounds the characters of all nested names together (``bad_features`` past it):
    within ``max_name`` and ``max_features``, a 1 MiB record of 1,000-character parent keys still made
    100,000 names of 100 MB.

    >>> flatten({"a": {"bc": 1, "d": 2}}, max_names_total=6)  # a.bc and a.d: 7
    Traceback (most recent call last):
    ...
    stream_cl.encoding.InvalidFeatureError: feature 'a.d': nested names of over 6 characters in all (got 2)
    """
    check_event(x)
    out: dict = {}
    items = x.items()
    # names: [max_name, characters of nested names still allowed, max_names_total], or None (no name bound)
    names = None if max_name is None and max_names_total is None else \
        [max_name, math.inf if max_names_total is None else max_names_total, max_names_total]
    _flatten_into(out, items, None, 0, max_depth, nan == "missing", max_features, names)
    return out


def _flatten_into(out: dict, items, prefix, depth: int, max_depth: int, nan_missing: bool, limit,
                  names=None) -> None:
    for k, v in items:
        key = k if prefix is None else prefix + (f"[{k}]" if type(k) is int else f".{k}")
        if names is not None and prefix is not None:
            if names[0] is not None and len(key) > names[0]:
                raise InvalidFeatureError(key, v, f"a name of {len(key):,} characters, over {names[0]:,}",
                                          "bad_features")
            names[1] -= len(key)
            if names[1] < 0:
                raise InvalidFeatureError(key, v, f"nested names of over {names[2]:,} characters in all", "bad_features")
        if key in out and not isinstance(v, (Mapping, list, tuple, np.ndarray)):
            # {"a.b": 1, "a": {"b": 2}}: which value won depended on the keys' order
            raise InvalidFeatureError(key, v, "two values flatten to this key; rename one of them", "bad_features")
        t = type(v)
        if t is float:
            if not -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE:  # NaN, +-inf or too large
                v = _out_of_range(key, v, nan_missing)
            out[key] = v
        elif t is str or v is None:
            out[key] = v
        elif t is int:
            if not -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE:  # exact: Python compares int and float exactly
                _out_of_range(key, v, nan_missing)
            out[key] = float(v)
        elif t is bool or isinstance(v, (bool, np.bool_)):
            out[key] = 1.0 if v else 0.0
        elif t is dict or t is list or t is tuple or isinstance(v, (Mapping, list, tuple, np.ndarray)):
            if isinstance(v, np.ndarray) and v.ndim == 0:  # np.array(1.5): a scalar, as the fast paths read it
                if names is not None and prefix is not None:
                    names[1] += len(key)  # (counted again as the scalar's name)
                _flatten_into(out, ((k, v.item()),), prefix, depth, max_depth, nan_missing, limit, names)
                continue
            if depth >= max_depth:
                raise InvalidFeatureError(key, v, f"nested deeper than {max_depth} levels", "too_deep")
            children = v.items() if isinstance(v, Mapping) else enumerate(v.tolist() if isinstance(v, np.ndarray) else v)
            _flatten_into(out, children, str(key), depth + 1, max_depth, nan_missing, limit, names)
            continue
        elif isinstance(v, (numbers.Real, Decimal)):  # numpy numbers, Fractions, Decimals (no numbers.Real)
            out[key] = _real(key, v, nan_missing)
        elif isinstance(v, str):
            out[key] = str(v)
        elif isinstance(v, (datetime, date)):
            out[key] = None if v != v else v  # pandas' NaT is a datetime, and null (as in a frame)
        elif v is pd.NA:  # pandas' NA (a row of a nullable column): null, as in a frame
            out[key] = None
        else:
            raise InvalidFeatureError(
                key, v, f"expected a number, a string, a boolean, null, an object or an array, not {t.__name__}")
        if limit is not None and len(out) > limit:
            raise InvalidFeatureError(key, v, f"more than {limit} features", "too_many_features")


def out_of_range(v) -> str:
    """Why number ``v``, outside ``[-MAX_ABS_VALUE, MAX_ABS_VALUE]``, is refused (the dead letter's
    reason is ``non_finite`` either way).

    >>> out_of_range(float("inf")), out_of_range(1e200)
    ('not finite', 'beyond +-1e+100, where sums of squares overflow')
    """
    if v != v or v in (math.inf, -math.inf):
        return "not finite"
    return f"beyond +-{MAX_ABS_VALUE:g}, where sums of squares overflow"


def _real(key, v, nan_missing: bool) -> float | None:
    """Number ``v`` of a type other than int and float as a float, by the same range rule. Out of
    range, the error shows ``v`` itself: ``Decimal("1e400")`` is inf as a float, but it is finite."""
    try:
        f = float(v)
    except (OverflowError, ValueError, TypeError):
        if isinstance(v, Decimal) and v.is_nan():  # a signalling NaN, which float() refuses: a NaN all the same
            return _out_of_range(key, math.nan, nan_missing)
        raise InvalidFeatureError(key, v, "beyond the float range", "non_finite") from None
    if -MAX_ABS_VALUE <= f <= MAX_ABS_VALUE:
        return f
    return _out_of_range(key, f if f != f else v, nan_missing)


def _out_of_range(key, v, nan_missing: bool) -> None:
    """``None`` for a NaN read as missing; else the error for a number outside ``MAX_ABS_VALUE``."""
    if v != v and nan_missing:
        return None
    raise InvalidFeatureError(key, v, out_of_range(v), "non_finite", NAN_FIX if v != v else "")


# (a pandas frame's NaN is read as missing, a dict's is refused: River's loops over a frame's rows meet it here)
NAN_FIX = 'a missing value is null (None in Python); a run reads NaN as null with mapping.nan_policy = "missing"'


# Values a memo may compare (the learners' per-event paths remember predict_proba_one's row for
# learn_one of an equal event): immutable, so that an event equal at predict_proba_one is still
# equal at learn_one. A nested dict or list (changed in place between the two calls, it would
# compare equal to itself and its old row would be learned) or an array (whose == is
# elementwise) leaves the event unremembered: it is vectorised again. Not np.float32: numpy 2 compares
# it with a Python float in float32 (np.float32(0.1) == 0.1), though the two are different float64 inputs.
_MEMO_TYPES = frozenset((float, int, str, bool, type(None), np.float64, np.int64, np.int32, np.bool_))
_MEMO_KEYS = frozenset((str, int))  # not bool or float: True == 1 == 1.0 are three columns (River's streams use ints)


def check_event(x) -> None:
    """A ``TypeError`` unless ``x`` is a mapping of feature names to values, as an event is
    (a string would be taken letter by letter, a list position by position)."""
    if type(x) is not dict and not isinstance(x, Mapping):
        raise TypeError(f"an event must be a mapping of feature names to values (a dict), got "
                        f"{type(x).__name__} {_show_value(x)}")


def memo_values(x: Mapping) -> tuple | None:
    """The values of event ``x`` if a memo may compare them (all immutable scalars, under string
    or int keys), else ``None``; a ``TypeError`` for an event that is not a mapping (:func:`check_event`).

    >>> memo_values({"a": 1.0, "b": "red"}), memo_values({"a": {"b": 1.0}}), memo_values({1.0: 2.0})
    ((1.0, 'red'), None, None)
    """
    check_event(x)
    values = tuple(x.values())
    # keys too must compare as the index tells them apart: 1 == 1.0 == True, but they are three columns
    if _MEMO_TYPES.issuperset(map(type, values)) and _MEMO_KEYS.issuperset(map(type, x)):
        return values
    return None


def cells(x: Mapping, missing_indicators: bool = False, time_features: bool = False) -> list[tuple]:
    """``(column key, value, kind, feature)`` for every value of one event, by the rules above.

    >>> cells({"a": 2, "c": "red", "n": None}, missing_indicators=True)
    [('a', 2.0, 0, None), ('c=red', 1.0, 1, 'c'), ('n=<missing>', 1.0, 2, 'n')]
    """
    out = []
    for k, v in flatten(x, DEFAULT_MAX_DEPTH).items():
        if type(v) is float:
            out.append((k, v, NUMERIC, None))
        elif type(v) is str:
            out.append((indicator_key(k, v), 1.0, CATEGORY, k))
        elif v is None:
            if missing_indicators:
                out.append((indicator_key(k, MISSING), 1.0, SHARED, k))
        elif isinstance(v, date):
            if not time_features:
                raise InvalidFeatureError(k, v, "a datetime: set time_features=True for cyclical time columns, "
                                                "or send epoch seconds")
            out.extend((c, t, NUMERIC, None) for c, t in time_columns(k, epoch_seconds(v)).items())
    if len({c[0] for c in out}) < len(out):  # {"c": "red", "c=red": 7.0}: two values, one column
        seen: dict = {}  # column -> kind of its first value
        for c in out:
            if c[0] in seen:
                raise _clash_in_event(c, seen[c[0]])
            seen[c[0]] = c[2]
    return out


def _clash_in_event(cell: tuple, first: int) -> InvalidFeatureError:
    """:func:`column_clash` for ``cell`` (of :func:`cells`), whose column an earlier value of the same
    event, of kind ``first``, makes too. An indicator after a number is named by its feature and
    value (a null's: ``None``), which the event holds."""
    key, value, kind, feature = cell
    if kind == NUMERIC or first != NUMERIC:  # the event's own number, or two indicators
        return column_clash(key, value)
    return column_clash(key, value, (feature, key[len(indicator_key(feature, "")):] if kind == CATEGORY else None))


def frame_rows(X) -> list[dict]:
    """The rows of a pandas frame as dicts, in the rules above.

    A frame spells a missing cell NaN (numeric columns), ``None``, ``pd.NA`` or ``NaT``:
    all of them are null here (in a dict, NaN is refused instead). Object columns keep
    their strings (categories); datetime columns give ``pd.Timestamp`` values.

    >>> import pandas as pd
    >>> frame_rows(pd.DataFrame({"a": [1.0, None], "c": ["x", None]}))
    [{'a': 1.0, 'c': 'x'}, {'a': None, 'c': None}]
    """
    check_frame_columns(X)
    cols = X.columns.tolist()  # plain Python: indexing a pandas Index per element is slow
    values = frame_values(X)
    if values is not None:
        return [dict(zip(cols, row)) for row in values.tolist()]
    cells = X.astype(object)
    cells = cells.where(X.notna(), None)  # NaN, NA, NaT -> None
    return [dict(zip(cols, row)) for row in cells.to_numpy().tolist()]


def frame_values(X) -> np.ndarray | None:
    """The frame as a float64 array (b, columns) when every column is numeric and every cell finite
    and within ``MAX_ABS_VALUE``, else None (the rows then take the dict path, which refuses what is
    wrong and reads categories and nulls)."""
    if not all(dt.kind in "fiub" for dt in X.dtypes):
        return None
    values = X.to_numpy(dtype=np.float64)  # (b, columns)
    return values if (np.abs(values) <= MAX_ABS_VALUE).all() else None  # (NaN compares false)


def check_frame_columns(X) -> None:
    """Refuse what is not a pandas frame (``TypeError``; the ``*_many`` methods' one check of ``X``:
    a dict of columns has a length, the number of its keys, that was taken for the number of events,
    and a list or an array failed later for lack of ``columns``), and a frame whose column names
    repeat (``ValueError``): an event has one value per feature, and which of the repeated columns
    is meant cannot be told (a dict of the row would keep the last one silently).

    >>> import pandas as pd
    >>> check_frame_columns(pd.DataFrame([[1, 2, 3]], columns=["a", "a", "b"]))
    Traceback (most recent call last):
    ...
    ValueError: the frame's column names repeat: ['a']; give each feature one column
    >>> check_frame_columns({"a": [1.0, 2.0]})
    Traceback (most recent call last):
    ...
    TypeError: X must be a pandas.DataFrame (a row per event, a column per feature), got dict; use pd.DataFrame(X), or the *_one methods for one event as a dict
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas.DataFrame (a row per event, a column per feature), got {type(X).__name__}; "
                        "use pd.DataFrame(X), or the *_one methods for one event as a dict")
    if not X.columns.is_unique:
        repeated = X.columns[X.columns.duplicated()].unique().tolist()
        raise ValueError(f"the frame's column names repeat: {repeated[:10]!r}; give each feature one column")


def _show_key(k) -> str:
    return repr(k[:60]) if isinstance(k, str) else repr(k)


def _show_value(v) -> str:
    if isinstance(v, (list, tuple)):  # never repr a container whole: it may be huge
        return f"{type(v).__name__} of {len(v)} items"
    if isinstance(v, Mapping):
        r = repr(v)
        return r if len(r) <= 60 else f"object with {len(v)} keys"
    try:
        r = repr(v)
    except Exception:  # huge ints (digit limit), hostile __repr__
        return f"<{type(v).__name__}>"
    return r if len(r) <= 80 else r[:80] + "..."
