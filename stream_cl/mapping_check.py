"""Mapping mistakes that would otherwise pass silently: named fields and columns that never appear.

A misspelled feature column trains on the others; a wrong label column leaves every
event unlabelled. Neither is a bad *record*, so no dead letter says so. These checks
say it once, naming the key (``mapping.features``, ``mapping.label``) and what exists.

A CSV file declares its columns up front: :func:`check_columns` refuses a named feature
column that is not in the header (a configuration error) and warns about a label column
that is not:

>>> from stream_cl.config import MappingConfig
>>> check_columns(MappingConfig(features=["a", "bb"]), ["a", "b", "y"], "data.csv")
Traceback (most recent call last):
...
stream_cl.config.ConfigError: mapping.features: no column 'bb' in the header of data.csv (its columns: a, b, y); did you mean 'b'?
>>> check_columns(MappingConfig(label="lable"), ["a", "label"], "data.csv")
["mapping.label: no column 'lable' in the header of data.csv (its columns: a, label): every event is unlabelled and nothing is learned; did you mean 'label'?"]

JSON events declare nothing: :class:`FieldCensus` watches the first ``sample`` objects
and then reports each named field none of them had (once):

>>> census = FieldCensus(MappingConfig(features=["a", "bb"]), sample=2)
>>> census.observe({"a": 1, "b": 2, "y": 0}), census.observe({"a": 3, "b": 4, "y": 1})
(True, False)
>>> census.take()
["mapping.features: field 'bb' was in none of the first 2 events (fields seen: a, b, y); did you mean 'b'?"]
>>> census.take()  # said once
[]
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Mapping, Sequence

from .config import ConfigError, MappingConfig

__all__ = ["FieldCensus", "check_columns", "SAMPLE"]

SAMPLE = 1000  # JSON events watched before the census reports
_MAX_FIELDS = 200  # distinct top-level field names remembered (events may carry many)


def check_columns(mapping: MappingConfig, columns: Sequence[str], where: str, label_policy: str = "optional") -> list[str]:
    """Check a CSV header against the mapping: raise :class:`ConfigError` for a named feature
    column that is absent (or an absent label column when labels are required); return
    warnings for an absent label column."""
    have = list(columns)
    if not isinstance(mapping.features, str):
        for name in mapping.features:
            if name not in have:
                raise ConfigError(f"mapping.features: no column {name!r} in the header of {where} "
                                  f"(its columns: {_names(have)}){_close(name, have)}")
    if mapping.label in have:
        return []
    problem = f"mapping.label: no column {mapping.label!r} in the header of {where} (its columns: {_names(have)})"
    if label_policy == "required":
        raise ConfigError(f"{problem}; labels are required (source.label_policy){_close(mapping.label, have) or '; set mapping.label'}")
    return [f"{problem}: every event is unlabelled and nothing is learned{_close(mapping.label, have)}"]


class FieldCensus:
    """Which top-level fields the first ``sample`` JSON objects had; see the module docstring.

    ``check_label=False`` when labels may come separately (a Kafka labels topic), so an
    event without a label field is normal. Not thread-safe: one decoding thread feeds it.
    """

    def __init__(self, mapping: MappingConfig, sample: int = SAMPLE, check_label: bool = True):
        self.mapping = mapping
        self.sample = sample
        self.check_label = check_label
        self.seen: Counter = Counter()  # field -> objects that had it
        self.n = 0
        self._said = False

    def observe(self, obj: Mapping) -> bool:
        """Count one object's fields; False once the sample is complete (the caller may stop)."""
        if self.n >= self.sample:
            return False
        self.n += 1
        seen = self.seen
        for key in obj:
            if key in seen or len(seen) < _MAX_FIELDS:
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
        if isinstance(m.features, str):
            named = [m.features]
        else:
            named = list(m.features)
        for name in named:
            if not self.seen[name]:
                out.append(f"mapping.features: field {name!r} was in none of {first} (fields seen: {_names(have)})"
                           f"{_close(name, have)}")
        if self.check_label and not self.seen[m.label]:
            out.append(f"mapping.label: field {m.label!r} was in none of {first} (fields seen: {_names(have)}): "
                       f"those events are unlabelled and nothing is learned from them{_close(m.label, have)}")
        return out


def _names(names: Sequence) -> str:
    shown = ", ".join(str(n) for n in list(names)[:30])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 30 else "")


def _close(name: str, names: Sequence) -> str:
    match = difflib.get_close_matches(str(name), [str(n) for n in names], n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""
