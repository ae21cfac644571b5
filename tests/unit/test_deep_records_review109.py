"""Review r109 L2: a valid record nested past Python's recursion limit (~1,000 levels) was a
``malformed`` dead letter ("invalid JSON: maximum recursion depth exceeded"), though the README
says features nested deeper than ``mapping.max_depth`` are ``too_deep``. The parser now reads such a
record again with the limit raised (up to ~2,000 levels), so the field that holds the nesting
refuses it by its own rule; deeper than that, the record is unreadable, and its detail says so."""
import pytest

from stream_cl.config import MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.pending import LabelDecoder

DECODER = EventDecoder(MappingConfig())


def _nest(n: int) -> str:
    return "[" * n + "]" * n


@pytest.mark.parametrize("n", [1_100, 1_900])
@pytest.mark.parametrize(("template", "reason"), [
    ('{"x": {"a": %s}, "y": 1}', "too_deep"),
    ('{"x": {"a": 1}, "y": %s}', "bad_label"),
    ("%s", "not_an_object"),
])
def test_a_valid_record_past_the_recursion_limit_is_refused_by_its_fields_rule(n, template, reason):
    letter = DECODER.decode_json((template % _nest(n)).encode(), "deep.jsonl:1")
    assert letter.reason == reason, letter.detail
    assert letter.origin == "deep.jsonl:1"


def test_an_invalid_deep_record_says_where_it_is_invalid():
    letter = DECODER.decode_json(('{"x": {"a": %s}, "y": 1' % _nest(1_100)).encode(), "o")
    assert (letter.reason, letter.detail.split(":")[0]) == ("malformed", "invalid JSON")
    assert "Expecting ',' delimiter" in letter.detail


def test_past_the_raised_limit_the_record_is_unreadable_and_the_limit_is_restored():
    import sys

    limit = sys.getrecursionlimit()
    letter = DECODER.decode_json(('{"x": {"a": %s}, "y": 1}' % _nest(3_000)).encode(), "o")
    assert letter.reason == "malformed"
    assert "nested deeper than the parser reads" in letter.detail
    assert sys.getrecursionlimit() == limit


def test_a_deep_label_record_is_a_bad_label_not_malformed():
    letter = LabelDecoder(MappingConfig()).decode(('{"id": "e1", "y": %s}' % _nest(1_100)).encode(), "labels/0@3")
    assert letter.reason == "bad_label", letter.detail
