"""Review r29 F4: an integer literal past Python's digit limit (``sys.get_int_max_str_digits()``, 4,300)
made the whole record ``malformed``, naming no field, where one of 4,300 digits is judged by the field
that holds it (a feature: ``non_finite``, naming the key). Now every length is."""

from __future__ import annotations

import sys

import pytest

from stream_cl.config import MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.events import DeadLetter, Event
from stream_cl.pending import LabelDecoder

LIMIT = sys.get_int_max_str_digits()


def _digits(n: int, sign: str = "") -> str:
    return sign + "1" + "0" * (n - 1)


@pytest.mark.parametrize("n", [LIMIT, LIMIT + 1, 3 * LIMIT])
@pytest.mark.parametrize("as_text", [False, True])
def test_a_feature_integer_of_any_length_is_non_finite_naming_its_key(n, as_text):
    decoder = EventDecoder(MappingConfig())
    for sign in ("", "-"):
        raw = '{"x": {"amount": 1.5, "qty": %s}, "y": "ok"}' % _digits(n, sign)
        letter = decoder.decode_json(raw if as_text else raw.encode(), "t:1")
        assert type(letter) is DeadLetter and letter.reason == "non_finite"
        assert letter.detail.startswith(
            f"feature 'qty': beyond +-1e+100, where sums of squares overflow (got {sign}1000")


def test_nested_or_under_nan_policy_missing_it_is_refused_all_the_same():
    big = _digits(LIMIT + 1)
    letter = EventDecoder(MappingConfig()).decode_json(b'{"x": {"v": [1, %s]}}' % big.encode(), "t:1")
    assert (letter.reason, letter.detail[:14]) == ("non_finite", "feature 'v[1]'")
    letter = EventDecoder(MappingConfig(nan_policy="missing")).decode_json(b'{"x": {"q": %s}}' % big.encode(), "t:1")
    assert letter.reason == "non_finite"  # no NaN: not missing


@pytest.mark.parametrize("field, reason, what", [("y", "bad_label", "label:"), ("id", "bad_id", "id:"),
                                                 ("task", "bad_label", "task:"), ("ts", "bad_timestamp", "timestamp:")])
def test_a_label_id_task_or_time_of_that_length_is_refused_by_its_own_rule(field, reason, what):
    raw = b'{"x": {"a": 1}, "%s": %s}' % (field.encode(), _digits(LIMIT + 1).encode())
    letter = EventDecoder(MappingConfig()).decode_json(raw, "t:1")
    assert type(letter) is DeadLetter and letter.reason == reason and letter.detail.startswith(what)
    assert f"an integer of {LIMIT + 1:,} digits, over the {LIMIT:,} Python reads" in letter.detail


def test_an_unread_field_of_that_length_is_nothing():
    raw = b'{"x": {"a": 1}, "note": %s, "y": "ok"}' % _digits(LIMIT + 1).encode()
    event = EventDecoder(MappingConfig()).decode_json(raw, "t:1")
    assert type(event) is Event and event.x == {"a": 1.0} and event.y == "ok"
    # a lone surrogate is still found beside it (the check writes the object out again)
    raw = '{"x": {"a": "\\ud800"}, "note": %s}' % _digits(LIMIT + 1)
    for r in (raw, raw.encode()):
        assert EventDecoder(MappingConfig()).decode_json(r, "t:1").reason == "malformed"


def test_invalid_json_holding_one_says_what_is_invalid():
    big = _digits(LIMIT + 1).encode()
    decoder = EventDecoder(MappingConfig())
    letter = decoder.decode_json(b'{"x": {"a": 1}, "note": %s, "y": 1' % big, "t:1")
    assert letter.reason == "malformed" and letter.detail.startswith("invalid JSON: Expecting ',' delimiter at line 1")
    letter = decoder.decode_json(b'{"x": {"a": %s}} tail' % big, "t:1")
    assert letter.reason == "malformed" and letter.detail.startswith("invalid JSON: Extra data at line 1")


def test_a_label_record_of_that_length_is_refused_by_its_field():
    labels = LabelDecoder(MappingConfig())
    big = _digits(LIMIT + 1).encode()
    letter = labels.decode(b'{"id": "e1", "y": %s}' % big, "l:1")
    assert letter.reason == "bad_label" and "over the" in letter.detail
    letter = labels.decode(b'{"id": %s, "y": "ok"}' % big, "l:2")
    assert letter.reason == "bad_id" and "over the" in letter.detail
