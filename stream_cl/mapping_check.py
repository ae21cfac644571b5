"""Mapping mistakes that would otherwise pass silently: named fields and columns that never appear.

A misspelled feature column trains on the others; a wrong label column leaves every
event unlabelled; a wrong time column leaves ``model.time_features`` without a time. None
is a bad *record*, so no dead letter says so. These checks say it once, naming the key
(``mapping.features``, ``mapping.label``, ...) and what exists.

What is checked: every field ``mapping.features`` names, ``mapping.label``, and
``mapping.id``, ``mapping.task`` and ``mapping.timestamp`` when the mapping gives them
another name than their defaults (``id``, ``task``, ``ts``): events may lack those, so a
default that is absent is no mistake, but a name a user gave is one. ``mapping.id`` is
checked at its default too where labels come apart from the events (a Kafka labels topic
joins them by id), and ``mapping.timestamp`` where ``model.time_features`` reads it
(:class:`TimeCensus`).

A CSV file declares its columns up front: :func:`check_columns` refuses a named feature,
id, task or time column that is not in the header (a configuration error) and warns about
a label column that is not (the run goes on, and learns nothing):

>>> from stream_cl.config import MappingConfig
>>> check_columns(MappingConfig(features=["a", "bb"]), ["a", "b", "y"], "data.csv")
Traceback (most recent call last):
...
stream_cl.config.ConfigError: mapping.features: no column 'bb' in the header of data.csv (its columns: a, b, y); did you mean 'b'?
>>> check_columns(MappingConfig(label="lable"), ["a", "label"], "data.csv")
["mapping.label: no column 'lable' in the header of data.csv (its columns: a, label): every event is unlabelled and nothing is learned; did you mean 'label'?"]
>>> check_columns(MappingConfig(timestamp="when"), ["a", "when_ts", "y"], "data.csv")
Traceback (most recent call last):
...
stream_cl.config.ConfigError: mapping.timestamp: no column 'when' in the header of data.csv (its columns: a, when_ts, y); did you mean 'when_ts'?
>>> check_columns(MappingConfig(), ["a", "y"], "data.csv")  # no id, task or ts column: events without them
[]

JSON events declare nothing: :class:`FieldCensus` watches the first ``sample`` objects
and then reports each named field none of them had (once):

>>> census = FieldCensus(MappingConfig(features=["a", "bb"]), sample=2)
>>> census.observe({"a": 1, "b": 2, "y": 0}), census.observe({"a": 3, "b": 4, "y": 1})
(True, False)
>>> census.take()
["mapping.features: field 'bb' was in none of the first 2 events (fields seen: a, b, y); did you mean 'b'?"]
>>> census.take()  # said once
[]
>>> census = FieldCensus(MappingConfig(task="stage"), sample=1)
>>> census.observe({"x": {"a": 1}, "y": 0, "phase": 2})
False
>>> census.take()
["mapping.task: field 'stage' was in none of the first event (fields seen: x, y, phase): those events have no task"]
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from .config import FEATURES_DEFAULT, PER_SECOND, ConfigError, MappingConfig
from .events import Event
from .field_values import MAX_TEXT_CHARS

__all__ = ["FieldCensus", "MappingChecks", "TimeCensus", "check_columns", "EPOCH_NEAR", "SAMPLE", "SECONDS_BOUND"]

SAMPLE = 1000  # JSON events watched before the census reports
_MAX_FIELDS = 200  # distinct top-level field names remembered (events may carry many)


# id, task and timestamp: parts an event may lack, each named by default for the events that have it; what
# an event read without one lacks (said in the warnings)
_OPTIONAL_DEFAULTS = {f.name: f.default for f in dataclasses.fields(MappingConfig)
                      if f.name in ("id", "task", "timestamp")}
_LACKS = {"id": "no id (their predictions carry none)", "task": "no task", "timestamp": "no time"}
_UNJOINED = "no id, so no delayed label (the labels topic) can be joined to them"


def _optional_named(mapping: MappingConfig, labels_apart: bool = False) -> list[tuple[str, str, str]]:
    """``(key, field, what an event without it lacks)`` for each of id, task and timestamp to check:
    named by the user (not the default), or the id where labels come apart from the events
    (``labels_apart``: joined by id). ``""`` names no field: never checked."""
    out = []
    for key, default in _OPTIONAL_DEFAULTS.items():
        name = getattr(mapping, key)
        if name and (name != default or (key == "id" and labels_apart)):
            out.append((key, name, _UNJOINED if key == "id" and labels_apart else _LACKS[key]))
    return out


def check_columns(mapping: MappingConfig, columns: Sequence[str], where: str, label_policy: str = "optional") -> list[str]:
    """Check a CSV header against the mapping: raise :class:`ConfigError` for a named feature,
    id, task or time column that is absent (see the module docstring for which are named), or
    an absent label column when labels are required; return warnings for an absent label column
    (a CSV is a file run's: without labels it learns nothing and exits 1, saying why)."""
    have = list(columns)
    named = [] if isinstance(mapping.features, str) else [("features", name) for name in mapping.features]
    if isinstance(mapping.features, str) and mapping.features != FEATURES_DEFAULT:
        named.append(("features", mapping.features))  # one column named: a misspelt one had learned every column (r99)
    named += [(key, name) for key, name, _ in _optional_named(mapping)]
    for key, name in named:
        if name not in have:
            fix = _close(name, have) or ("" if key == "features" else
                                         f"; name one of its columns, or leave mapping.{key} out")
            raise ConfigError(f"mapping.{key}: no column {name!r} in the header of {where} "
                              f"(its columns: {_names(have)}){fix}")
    if mapping.label in have:
        return []
    problem = f"mapping.label: no column {mapping.label!r} in the header of {where} (its columns: {_names(have)})"
    if label_policy == "required":
        raise ConfigError(f"{problem}; labels are required (source.label_policy){_close(mapping.label, have) or '; set mapping.label'}")
    return [f"{problem}: every event is unlabelled and nothing is learned{_close(mapping.label, have)}"]


class FieldCensus:
    """Which top-level fields the first ``sample`` JSON objects had; see the module docstring.

    ``check_label=False`` when labels may come separately (a Kafka labels topic), so an
    event without a label field is normal, and one without its id field is not (no label
    can be joined to it). Not thread-safe: one decoding thread feeds it.
    """

    def __init__(self, mapping: MappingConfig, sample: int = SAMPLE, check_label: bool = True):
        self.mapping = mapping
        self.sample = sample
        self.check_label = check_label
        self.seen: Counter = Counter()  # field -> objects that had it
        self.n = 0
        self.counting = True  # False: the objects observed now were counted already (MappingChecks.uncounted)
        # the fields the mapping names are counted past _MAX_FIELDS too: after 200 others they had read as
        # missing, and the label as "in none of the first events" of a run that learned them all (r99)
        self._named = frozenset(n for n in (*mapping.feature_fields, mapping.label, mapping.id, mapping.task,
                                            mapping.timestamp) if n)
        self._said = False

    @property
    def done(self) -> bool:
        """The sample is complete, or the warnings were said: nothing more is counted."""
        return self._said or self.n >= self.sample

    def observe(self, obj: Mapping) -> bool:
        """Count one object's fields; False once the sample is complete (the caller may stop)."""
        if self.n >= self.sample:
            return False
        if not self.counting:
            return True
        self.n += 1
        seen = self.seen
        for key in obj:
            # a key over MAX_TEXT_CHARS (a record's key may be as long as the record) is not remembered, unless
            # named: 200 such keys of 1 MB each were 200 MB held for the run (review r141)
            if key in seen or (len(seen) < _MAX_FIELDS and (type(key) is not str or len(key) <= MAX_TEXT_CHARS)) \
                    or key in self._named:
                seen[key] += 1
        return self.n < self.sample

    def take(self, final: bool = False) -> list[str]:
        """The warnings, once: when the sample is complete, or (``final``) at the end of a shorter stream."""
        if self._said or self.n == 0 or (self.n < self.sample and not final):
            return []
        self._said = True
        m, have = self.mapping, list(self.seen)
        first = f"the first {self.n:,} events" if self.n > 1 else "the first event"
        out = []
        for name in m.feature_fields:
            if not self.seen[name]:
                out.append(f"mapping.features: field {name!r} was in none of {first} (fields seen: {_names(have)})"
                           f"{_close(name, have)}")
        if self.check_label and not self.seen[m.label]:
            out.append(f"mapping.label: field {m.label!r} was in none of {first} (fields seen: {_names(have)}): "
                       f"those events are unlabelled and nothing is learned from them{_close(m.label, have)}")
        for key, name, lacks in _optional_named(m, labels_apart=not self.check_label):
            if not self.seen[name]:
                out.append(f"mapping.{key}: field {name!r} was in none of {first} (fields seen: {_names(have)}): "
                           f"those events have {lacks}{_close(name, have)}")
        return out


# Epoch seconds beyond this are after the year 5138: no event time, but one in a finer unit (epoch
# milliseconds pass it from March 1973 on, what Kafka, Java and JavaScript producers send).
SECONDS_BOUND = 1e11  # (the warning says "1e11")
# (below this magnitude, the unit such a time looks like, and its mapping.timestamp_unit)
_FINER_UNITS = ((1e14, "milliseconds", "ms"), (1e17, "microseconds", "us"), (1e20, "nanoseconds", "ns"))
# Epoch seconds within this of 0 are before March 1973 (or after October 1966): hardly a stream's time, but
# epoch seconds read in a finer unit (timestamp_unit = "ms": 1714601643 s is 1714601.643, January 1970), or a
# date written as a number (20240501 is 20,240,501 s, August 1970), where days are seconds apart
EPOCH_NEAR = 1e8  # (the warning says "1e8")
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


class TimeCensus:
    """``model.time_features`` on, and the first ``sample`` events' times are no plausible epoch
    seconds: said once.

    The time features come from ``mapping.timestamp``; an event without a time gets none,
    silently (it is no bad record). Where the mapping names the field itself, the header
    check and :class:`FieldCensus` say a missing one; this watches the default name
    (``ts``), which the user may not know the time features read. A time beyond 1e11 (the
    year 5138 as epoch seconds) is read as seconds all the same, and its time features are
    noise: this says so too, whatever the field's name, with the unit it looks like and the
    ``mapping.timestamp_unit`` that reads it. A time within 1e8 seconds of 1970 (before March
    1973) is said too: epoch seconds read as milliseconds (or a finer unit), or a date written as
    a number (20240501, August 1970 as seconds), whose days are seconds apart. It is fed decoded
    events (times already divided by that unit), so CSV and JSON alike, and costs nothing once
    the sample is complete:

    >>> from stream_cl.events import Event
    >>> census = TimeCensus(MappingConfig(), time_features=True, sample=2)
    >>> census.observe([Event({"a": 1.0}, "p"), Event({"a": 2.0}, "q")])
    >>> census.take()
    ["model.time_features: none of the first 2 events had a time in field 'ts' (mapping.timestamp): the model gets no time features; set mapping.timestamp to the field or column holding the event time"]
    >>> census = TimeCensus(MappingConfig(), time_features=True, sample=1)
    >>> census.observe([Event({"a": 1.0}, "p", ts=1714601643000.0)])
    >>> print(*census.take())
    model.time_features: the first event had a time in field 'ts' (mapping.timestamp) beyond 1e11 seconds (e.g. 1714601643000), after the year 5138 as epoch seconds: they look like epoch milliseconds, so their time features are noise; set mapping.timestamp_unit = "ms"
    >>> census = TimeCensus(MappingConfig(timestamp_unit="ms"), time_features=True, sample=1)
    >>> census.observe([Event({"a": 1.0}, "p", ts=1714601.643)])  # epoch seconds, read as milliseconds
    >>> print(*census.take())
    model.time_features: the first event had a time in field 'ts' (mapping.timestamp, in ms: mapping.timestamp_unit) within 1e8 seconds of 1970 (e.g. 1714601643), before March 1973 as epoch seconds: they look like epoch seconds read as milliseconds, so their time features are noise; set mapping.timestamp_unit = "s"
    """

    def __init__(self, mapping: MappingConfig, time_features: bool, sample: int = SAMPLE):
        self.field = mapping.timestamp
        self.unit = mapping.timestamp_unit
        self.sample = sample
        self.n = 0
        self.timed = False
        # the times over SECONDS_BOUND (either sign: milliseconds before 1970 too), those within EPOCH_NEAR of 0
        # (either sign, as above), and the others, each telling apart those that read as digits (_digit_date)
        self.beyond, self.near, self.inside = _Times(), _Times(), _Times()
        # off: no time features, or a field the user named (said by the other checks), or none ("")
        self._said_absent = not (time_features and self.field == _OPTIONAL_DEFAULTS["timestamp"])
        self._said = not time_features

    @property
    def done(self) -> bool:
        """The sample is complete, or the warnings were said (or there are none to say): nothing more is looked at."""
        return self._said or self.n >= self.sample

    def observe(self, events: Iterable) -> None:
        """Look at the times of the first events (``Event.ts``)."""
        if self.done:
            return
        for e in events:
            if self.n >= self.sample:
                break
            self.n += 1
            ts = e.ts
            if ts is not None:
                self.timed = True
                written = ts * PER_SECOND[self.unit]  # as the producer wrote it, whatever the unit reads it as
                digits = 0 if _digit_date(written) is None else len(str(round(abs(written))))
                if not -SECONDS_BOUND <= ts <= SECONDS_BOUND:
                    self.beyond.add(ts, digits)
                elif -EPOCH_NEAR < ts < EPOCH_NEAR:
                    self.near.add(ts, digits)
                else:
                    self.inside.add(ts, digits)

    def take(self, final: bool = False) -> list[str]:
        """The warnings, once: when the sample is complete, or (``final``) at the end of a shorter stream."""
        if self._said or self.n == 0 or (self.n < self.sample and not final):
            return []
        self._said = True
        first = f"the first {self.n:,} events" if self.n > 1 else "the first event"
        out = []
        if not self.timed and not self._said_absent:
            out.append(f"model.time_features: none of {first} had a time in field {self.field!r} (mapping.timestamp): "
                       "the model gets no time features; set mapping.timestamp to the field or column holding the event time")
        unit = "" if self.unit == "s" else f", in {self.unit}: mapping.timestamp_unit"
        n, example = self.beyond.unit_said()
        if n:
            raw = example * PER_SECOND[self.unit]  # as the producer wrote it
            out.append(f"model.time_features: {self._who(n, first)} had a time in field {self.field!r} (mapping.timestamp"
                       f"{unit}) beyond 1e11 seconds (e.g. {_number(raw, example, self.unit)}), after the year 5138 as "
                       f"epoch seconds: {_finer_unit(raw)}")
        n, example = self.near.unit_said()
        if n:
            raw = example * PER_SECOND[self.unit]
            out.append(f"model.time_features: {self._who(n, first)} had a time in field {self.field!r} (mapping.timestamp"
                       f"{unit}) within 1e8 seconds of 1970 (e.g. {_number(raw)}), before March 1973 as epoch seconds: "
                       f"{_coarser_unit(raw, self.unit)}")
        said = [t for t in (self.beyond, self.near, self.inside) if t.said_digits()]
        if said:
            raw = said[0].digits_example() * PER_SECOND[self.unit]
            iso = _digit_date(raw)
            out.append(f"model.time_features: {self._who(sum(t.said_digits() for t in said), first)} had a time in field "
                       f"{self.field!r} (mapping.timestamp) written as a date and time in digits (e.g. {_number(raw)}, "
                       f"{iso}), read as a count of {_UNIT_NAMES[self.unit]} since 1970 (mapping.timestamp_unit; no "
                       f"unit reads it as that date), so their time features are noise; send ISO 8601 strings "
                       f"(\"{iso}\"), or epoch seconds")
        return out

    def _who(self, n: int, first: str) -> str:
        return f"{n:,} of {first}" if self.n > 1 else first


@dataclasses.dataclass
class MappingChecks:
    """A stream's :class:`FieldCensus` and :class:`TimeCensus` together, for a run whose source may be
    rebuilt (the daemon's, after a reset): handed to each source it builds, their counts and what they
    said carry over, so each warning is said once per run and a short stream is judged by all it read.

    >>> checks = MappingChecks.for_stream(MappingConfig(features=["a", "b"]), time_features=False)
    >>> checks.fields.observe({"a": 1, "y": 0}), checks.times.observe([Event({"a": 1.0}, 0)])
    (True, None)
    >>> checks.take(), checks.take(final=True)  # the sample is not complete, then the stream ends
    ([], ["mapping.features: field 'b' was in none of the first event (fields seen: a, y)"])
    """

    fields: FieldCensus
    times: TimeCensus
    # source partition -> the offset after the last record counted: a record below it, read again after a
    # reset, is not counted twice (a topic of 300 events was "the first 600", and a field that only later
    # events carry could be said to be in none of the first 1,000)
    counted: dict = dataclasses.field(default_factory=dict)
    _again: set = dataclasses.field(default_factory=set)  # origins of this poll's records read again

    @classmethod
    def for_stream(cls, mapping: MappingConfig, time_features: bool, labels_apart: bool = False) -> "MappingChecks":
        """The checks of a stream read with ``mapping``; ``labels_apart``: labels come on their own (a Kafka
        labels topic), so an event's label field may be absent and its id must not be."""
        return cls(FieldCensus(mapping, check_label=not labels_apart), TimeCensus(mapping, time_features))

    def take(self, final: bool = False) -> list[str]:
        """Each census's warnings, once (``final``: the stream ends, judged by the fewer events read)."""
        return self.fields.take(final=final) + self.times.take(final=final)

    @property
    def done(self) -> bool:
        """Both censuses are done: nothing is counted any more."""
        return self.fields.done and self.times.done

    def counted_below(self, partition) -> int:
        """The offset below which ``partition``'s records were counted already (-1: none, or :attr:`done`)."""
        return -1 if self.done else self.counted.get(partition, -1)

    def uncounted(self, decode, raw, origin: str):
        """``decode(raw, origin)`` of a record counted already, without counting it again."""
        try:
            self.fields.counting = False
            return decode(raw, origin)
        finally:
            self.fields.counting = True
            self._again.add(origin)

    def count_to(self, partition, offset: int) -> None:
        """``partition``'s records below ``offset`` are counted."""
        if offset > self.counted.get(partition, -1) and not self.done:
            self.counted[partition] = offset

    def observe_times(self, events) -> None:
        """A poll's decoded records: the times of its :class:`Event` s not read again (:meth:`uncounted`)."""
        again, self._again = self._again, set()
        if not self.times.done:
            self.times.observe(e for e in events if type(e) is Event and e.origin not in again)


@dataclasses.dataclass
class _Times:
    """The times of one of :class:`TimeCensus`'s ranges, telling apart those that read as a date and
    time in digits (the unit fix, ``"ms"``, reads 20240501123000 as 2611). Fourteen digits are said
    as such always: no unit reads them as a time of the last century. Twelve (``YYYYMMDDhhmm``) are
    also epoch milliseconds of 1976, about one in 250 of which reads as digits: those are said as
    digits where most of the range's times read so, else by their unit with the others."""

    n: int = 0
    example: float | None = None  # the first that does not read as digits
    sure: int = 0  # fourteen digits
    sure_example: float | None = None
    maybe: int = 0  # twelve digits
    maybe_example: float | None = None

    def add(self, ts: float, digits: int) -> None:
        """Count ``ts``, written in ``digits`` digits that read as a date and time (0: it does not)."""
        self.n += 1
        if digits == 14:
            self.sure += 1
            self.sure_example = ts if self.sure_example is None else self.sure_example
        elif digits:
            self.maybe += 1
            self.maybe_example = ts if self.maybe_example is None else self.maybe_example
        elif self.example is None:
            self.example = ts

    def said_digits(self) -> int:
        """How many to say as a date and time in digits."""
        return self.sure + (self.maybe if 2 * (self.sure + self.maybe) > self.n else 0)

    def digits_example(self) -> float | None:
        return self.sure_example if self.sure else self.maybe_example

    def unit_said(self) -> tuple[int, float | None]:
        """How many to say by their unit, and an example."""
        # (no time without digits: those said by their unit, if any, are twelve digits)
        return self.n - self.said_digits(), self.example if self.example is not None else self.maybe_example


def _finer_unit(raw: float) -> str:
    """What a time beyond ``SECONDS_BOUND`` seconds looks like, and the fix."""
    for bound, unit, code in _FINER_UNITS:
        if abs(raw) < bound:
            return (f"they look like epoch {unit}, so their time features are noise; "
                    f"set mapping.timestamp_unit = \"{code}\"")
    return ("a plausible epoch time in no unit (seconds to nanoseconds), so their time features are noise; "
            "send epoch seconds, or set mapping.timestamp_unit to their unit, or send an ISO 8601 string")


def _coarser_unit(raw: float, unit: str) -> str:
    """What a time within ``EPOCH_NEAR`` seconds of 1970 (``raw``, as written, in ``unit``) looks like,
    and the fix: a coarser unit that makes it a plausible epoch time, else a date written as a number."""
    for code in ("s", "ms", "us"):
        if PER_SECOND[code] < PER_SECOND[unit] and EPOCH_NEAR <= abs(raw) / PER_SECOND[code] <= SECONDS_BOUND:
            return (f"they look like epoch {_UNIT_NAMES[code]} read as {_UNIT_NAMES[unit]}, so their time features "
                    f"are noise; set mapping.timestamp_unit = \"{code}\"")
    return ("if they are dates or times written as numbers (20240501 for 2024-05-01), each day is read as a second, "
            "so their time features are noise: send an ISO 8601 string (\"2024-05-01\"), or epoch "
            "seconds; times counted from another start than 1970 give the hour and weekday of that count only")


def _digit_date(written: float) -> str | None:
    """The date and time a number writes in digits, ``YYYYMMDDhhmmss`` or ``YYYYMMDDhhmm`` (a year
    from 1900 to 2199), in ISO 8601; None for any other number. As epoch seconds they fall after
    the year 5138, and read in a finer unit (the fix the other warnings name) in 1976 or 2611: a
    plausible time, and noise all the same.

    >>> _digit_date(20240501123000.0), _digit_date(202405011230), _digit_date(1714521600000.0)
    ('2024-05-01T12:30:00', '2024-05-01T12:30:00', None)
    """
    if not -1e15 < written < 1e15 or written != round(written):
        return None
    text = str(round(written))
    for fmt, digits in (("%Y%m%d%H%M%S", 14), ("%Y%m%d%H%M", 12)):
        if len(text) == digits:
            try:
                when = datetime.strptime(text, fmt)
            except ValueError:
                return None
            return when.isoformat() if 1900 <= when.year <= 2199 else None
    return None


def _number(v: float, seconds: float | None = None, unit: str = "s") -> str:
    """A time as its producer likely wrote it: 1714601643000, not 1714601643000.0 or 1.7146e+12. A time
    that overflows once its unit multiplies it back (near the largest float, in "us" or "ns") is shown
    from ``seconds``, its value as read, multiplied exactly to 17 digits: a number that reads as the
    float the producer wrote (the largest, below), not inf.

    >>> _number(1714601643000.0), _number(float("inf"), 1.7976931348623157e308 / 1e6, "us")
    ('1714601643000', '1.7976931348623158e+308')
    >>> float(_number(float("inf"), 1.7976931348623157e308 / 1e6, "us")) == 1.7976931348623157e308
    True
    """
    if not math.isfinite(v) and seconds is not None and math.isfinite(seconds):
        return format(Decimal(seconds) * PER_SECOND[unit], ".17g")
    return str(int(v)) if abs(v) < 1e20 and v == int(v) else repr(v)  # (inf, once a unit multiplied it: no int)


def _names(names: Sequence) -> str:
    # each name's first 40 characters: a warning naming 30 fields of a record's keys was one line of 5.6 MB
    # where they were 200 KB each (review r141)
    shown = ", ".join(_shown(n) for n in list(names)[:30])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 30 else "")


def _shown(name) -> str:
    text = str(name)
    return text if len(text) <= 40 else text[:40] + "..."


def _close(name: str, names: Sequence) -> str:
    match = difflib.get_close_matches(str(name), [str(n) for n in names], n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""
