"""The characters of an event's nested feature names together are bounded (r141's left-out item).

Each nested name repeats its parents' names. Within the 1,024-character bound on one name and
``mapping.max_features`` (100,000), a record of 1,000-character parent keys over many small leaves
made about 100 times its size in names: 100 MB for a 1 MiB record, 1.6 GB for a file poll of 16.
``field_values.MAX_NAMES_CHARS`` (8 Mi characters, 100,000 names of 84) bounds them as they are made:
past it the record is a ``bad_features`` dead letter.
"""

import tracemalloc

import pytest

from stream_cl.config import MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.encoding import InvalidFeatureError, flatten
from stream_cl.events import DeadLetter, Event
from stream_cl.field_values import MAX_NAMES_CHARS


def _record(parent_chars: int, leaves: int) -> bytes:
    inner = ",".join(f'"{i}":0' for i in range(leaves))
    return ('{"x":{"' + "p" * parent_chars + '":{' + inner + '}},"y":"a"}').encode()


def test_a_record_whose_names_pass_the_total_is_a_dead_letter_before_its_names_are_all_made():
    raw = _record(1_000, 12_000)  # 105 KB; 12,000 names of ~1,005 characters: 12 MB of names
    tracemalloc.start()
    try:
        letter = EventDecoder(MappingConfig()).decode_json(raw, "o")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert type(letter) is DeadLetter and letter.reason == "bad_features", letter
    assert f"nested names of over {MAX_NAMES_CHARS:,} characters in all" in letter.detail
    assert peak < 14 * 2**20, f"{peak / 2**20:.0f} MiB to refuse a {len(raw) / 1e3:.0f} KB record"


def test_names_within_the_total_decode_as_before():
    raw = _record(1_000, 8_000)  # 8,000 names of ~1,005 characters: 8.0 MB, under 8 Mi characters
    event = EventDecoder(MappingConfig()).decode_json(raw, "o")
    assert type(event) is Event and len(event.x) == 8_000
    assert sum(map(len, event.x)) <= MAX_NAMES_CHARS


def test_flatten_counts_nested_names_only_and_each_once():
    x = {"top_level_names_are_the_records_own": 1.0, "a": {"b": 1, "c": [2, 3]}}
    # nested names: a.b (3), a.c[0] (6), a.c[1] (6) = 15; the container a.c is not a feature
    # but its name is made (3): 18 in all
    assert flatten(x, max_names_total=18) == flatten(x)
    with pytest.raises(InvalidFeatureError, match="over 17 characters in all") as e:
        flatten(x, max_names_total=17)
    assert e.value.code == "bad_features"


def test_a_zero_dimensional_array_is_counted_once():
    import numpy as np

    x = {"a": {"b": np.array(1.5)}}
    assert flatten(x, max_names_total=3) == {"a.b": 1.5}
