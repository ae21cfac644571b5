"""A JSON object that names one key twice (review r67, finding 1): both parsers keep the last value and
say nothing, so such a record is a dead letter naming the key, as a repeated CSV or frame column is refused."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_cl.config import MappingConfig
from stream_cl.decode import EventDecoder, standard_library_only
from stream_cl.json_checks import repeated_key
from stream_cl.pending import LabelDecoder


@pytest.mark.parametrize("raw, key", [
    (b'{"x": {"amount": 12.5, "amount": "n/a"}, "y": "ok"}', "amount"),
    (b'{"x": {"amount": 12.5}, "y": "fraud", "y": "ok"}', "y"),
    (b'{"x": {"a": 1}, "x": {"b": 2}, "y": "ok"}', "x"),
    (b'{"x": {"a": [{"b": 1, "b" :2}]}, "y": "ok"}', "b"),  # inside a list, written loosely
    (b'{"ts": "10:00:00", "x": {"a": 1},\n "x"\t: {"a": 1}}', "x"),  # colons in values; the same value twice
], ids=["feature", "label", "features-field", "in-a-list", "loose"])
@pytest.mark.parametrize("parser", ["orjson", "standard-library"])
def test_a_key_written_twice_in_one_object_is_a_dead_letter_naming_it(raw, key, parser):
    decoder = EventDecoder(MappingConfig())
    if parser == "orjson":
        letter = decoder.decode_json(raw, "t:0")
    else:
        with standard_library_only():
            letter = decoder.decode_json(raw, "t:0")
    assert letter.reason == "malformed"
    assert letter.detail == (f"ambiguous JSON: key {key!r} appears twice in one object (a parser keeps one of its "
                             "values and drops the other silently); send each key once")
    assert decoder.decode_json(raw.decode(), "t:0").reason == "malformed"  # given as text too


def test_a_label_record_that_names_its_label_twice_is_a_dead_letter():
    letter = LabelDecoder(MappingConfig()).decode(b'{"id": 7, "y": "cat", "y": "dog"}', "labels/0@5")
    assert letter.reason == "malformed" and "key 'y' appears twice" in letter.detail


@pytest.mark.parametrize("raw", [
    b'{"a": "x\\":y", "b": 1}',  # a quote before a colon inside a string: escaped
    b'{"a\\":": 1, "b" : 2}',  # ... inside a key, loosely written
    b'{"t": "2026-12-06T10:00:00Z", "u": "a:b:c"}',
    b'\xef\xbb\xbf{"a" :\r\n1, "b"\t:2}',
    b'{"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 2}]}',  # one key in several objects is no repetition
])
def test_documents_without_a_repeated_key_are_read_as_they_are(raw):
    obj = EventDecoder(MappingConfig()).parse_json(raw, "t:0")
    assert type(obj) is dict and obj == json.loads(raw.decode("utf-8-sig"))


_TEXT = st.text(alphabet='ab:" \\\n{}', max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.recursive(st.none() | st.booleans() | st.integers() | _TEXT,
                        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_TEXT, kids, max_size=4),
                        max_leaves=12),
       key=_TEXT,
       separators=st.sampled_from([(",", ":"), (", ", ": "), (",", " : "), (",\n", "\t:\n")]))
def test_repeated_key_finds_a_key_exactly_when_one_is_written_twice(doc, key, separators):
    """Any document (keys and strings full of quotes, colons and whitespace), in any layout: no repeated
    key is found in it; with its outer object's key written again at its end, that key is."""
    text = json.dumps({key: doc}, separators=separators)
    assert repeated_key(json.loads(text), text.encode()) is None
    assert repeated_key(json.loads(text), text) is None
    twice = text[:-1] + separators[0] + json.dumps(key) + separators[1] + "null}"
    assert repeated_key(json.loads(twice), twice.encode()) == key


# -- review r68: L3, L4 and L7 ------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [1000, 1020])
def test_a_document_past_pythons_recursion_limit_is_checked_all_the_same(depth):
    """orjson reads 1,024 levels, Python's parser ~1,000: past it the repeated "y" was not found (r68 L3), then
    refused such a document, repeated key or not, where a string began with a colon (r70 L3)."""
    deep = b"[" * depth + b"]" * depth
    decoder = EventDecoder(MappingConfig())
    letter = decoder.decode_json(b'{"x": {"a": 1}, "z": ' + deep + b', "y": "fraud", "y" : "ok"}')
    assert letter.reason == "malformed" and "key 'y' appears twice" in letter.detail
    event = decoder.decode_json(b'{"x": {"a": 1}, "s": ":a", "z": ' + deep + b', "y" : "ok"}')
    assert event.y == "ok"


def test_a_str_subclass_is_read_as_text():
    """``bytes(np.str_(...))`` raised: every such record was a dead letter (r68 L4)."""
    import numpy as np

    event = EventDecoder(MappingConfig()).decode_json(np.str_('{"x": {"a": 1}, "y": "ok"}'))
    assert event.x == {"a": 1.0} and event.y == "ok"
    assert repeated_key({"a": 1}, np.str_('{"a": 1, "a": 1}')) == "a"


def test_json_text_inside_a_string_is_no_repeated_key_and_a_key_after_it_still_is():
    meta = json.dumps({"k": 1, "j": {"k": 2}})
    raw = json.dumps({"x": {"a": 1}, "meta": meta, "y": "ok"}).encode()
    assert repeated_key(json.loads(raw), raw) is None
    twice = raw[:-1] + b', "y": "no"}'
    assert repeated_key(json.loads(twice), twice) == "y"
    odd = b'{"a\\\\": 1, "b": "\\\\\\": x", "b": 2}'  # a key ending in an escaped backslash; an escaped quote
    assert repeated_key(json.loads(odd), odd) == "b"
