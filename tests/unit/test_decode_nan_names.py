"""NaN / Infinity literals in JSON records are read by the rules of the field that holds them (review r11, finding 4).

Before, the JSON parser refused the literals before any key was known ("NaN is not a JSON number", no key named,
reason non_finite even for a label), or, with mapping.nan_policy = "missing", read NaN as null in every field: a NaN
label, id, task or time silently became absent, and a NaN features field became "no features field". Now a NaN is a
float as 1e400 (inf) already was, so every dead letter names its key and reason by the usual rules, and nan_policy
applies to feature values only.
"""

import pytest

from stream_cl.config import MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.encoding import NAN_FIX
from stream_cl.events import DeadLetter, Event
from stream_cl.pending import LabelDecoder, LabelUpdate

POLICIES = ("reject", "missing")
FEATS = ", ".join(f'"f{i}": {i}.5' for i in range(200) if i != 137)  # f137 comes last, alone


def _decode(policy: str, raw: bytes, **mapping):
    return EventDecoder(MappingConfig(nan_policy=policy, **mapping)).decode_json(raw, "t/0@1")


def _dead(record, reason: str) -> str:
    assert isinstance(record, DeadLetter), record
    assert record.reason == reason, (record.reason, record.detail)
    return record.detail


@pytest.mark.parametrize("literal, shown", [(b"NaN", "nan"), (b"Infinity", "inf"), (b"-Infinity", "-inf")])
def test_a_non_finite_feature_names_its_key_as_1e400_does(literal, shown):
    raw = b'{"x": {' + FEATS.encode() + b', "f137": ' + literal + b'}, "y": 1}'
    detail = _dead(_decode("reject", raw), "non_finite")
    assert detail == f"feature 'f137': not finite (got {shown})" + (f"; {NAN_FIX}" if shown == "nan" else "")
    big = _dead(_decode("reject", raw.replace(literal, b"1e400")), "non_finite")
    assert big == "feature 'f137': not finite (got inf)"  # the message NaN now shares (NaN adds what to send instead)


def test_a_nested_nan_names_the_flat_key():
    assert _dead(_decode("reject", b'{"x": {"card": {"cvv": NaN}}}'), "non_finite").startswith("feature 'card.cvv': ")
    assert _dead(_decode("reject", b'{"x": [1, [2, NaN]]}'), "non_finite").startswith("feature '1[1]': ")


def test_nan_policy_missing_still_reads_a_nan_feature_as_null():
    assert _decode("missing", b'{"x": {"a": NaN, "b": 2, "c": {"d": NaN}}, "y": 1}').x == {"a": None, "b": 2.0, "c.d": None}
    named = dict(features=["a", "b"])
    assert _decode("missing", b'{"a": NaN, "b": 1, "y": 1}', **named).x == {"a": None, "b": 1.0}
    assert _dead(_decode("reject", b'{"a": NaN, "b": 1, "y": 1}', **named), "non_finite").startswith("feature 'a': ")
    # infinities are never missing
    assert _dead(_decode("missing", b'{"x": {"a": Infinity}}'), "non_finite").startswith("feature 'a': not finite")


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_non_finite_label_is_a_bad_label_whatever_the_policy(policy, literal):
    detail = _dead(_decode(policy, b'{"x": {"a": 1}, "y": ' + literal + b'}'), "bad_label")
    assert detail.startswith("label float ") and "floats are not allowed as class labels" in detail


@pytest.mark.parametrize("policy", POLICIES)
def test_a_nan_id_task_or_time_is_their_own_dead_letter_not_absent(policy):
    assert _dead(_decode(policy, b'{"x": {"a": 1}, "y": 1, "id": NaN}'), "bad_id") == \
        "id: expected a string or an integer, got float nan"
    assert _dead(_decode(policy, b'{"x": {"a": 1}, "y": 1, "task": NaN}'), "bad_label") == \
        "task: expected a string or an integer, got float nan"
    assert _dead(_decode(policy, b'{"x": {"a": 1}, "y": 1, "ts": NaN}'), "bad_timestamp") == \
        "timestamp: float nan is not finite"


@pytest.mark.parametrize("policy", POLICIES)
def test_a_nan_features_field_is_a_bad_features_field_not_a_missing_one(policy):
    detail = _dead(_decode(policy, b'{"x": NaN, "y": 1}'), "bad_features")
    assert detail.startswith("field 'x': expected an object or a list, got float nan")


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("template", [
    b'{"x": {"a": 1}, "y": %s}', b'{"x": {"a": 1}, "y": 1, "id": %s}', b'{"x": {"a": 1}, "y": 1, "task": %s}',
    b'{"x": {"a": 1}, "y": 1, "ts": %s}', b'{"x": %s, "y": 1}', b'{"x": {"a": 1}, "y": 1, "other": %s}',
    b'{"x": {"b": 2, "a": %s}, "y": 1}',
])
def test_nan_is_read_where_1e400_is_by_the_same_rules(policy, template):
    """Infinity (1e400 parses to it) always took the field's own rule: NaN now does too, nan_policy aside."""
    nan, inf = _decode(policy, template % b"NaN"), _decode(policy, template % b"1e400")
    if policy == "missing" and template.startswith(b'{"x": {"b"'):
        assert isinstance(nan, Event) and nan.x == {"b": 2.0, "a": None}  # the one place nan_policy reaches
        return
    assert type(nan) is type(inf)
    if isinstance(nan, DeadLetter):
        assert nan.reason == inf.reason
        assert nan.detail.removesuffix(f"; {NAN_FIX}").replace("nan", "inf") == inf.detail
    else:  # a field the mapping does not read: ignored either way
        assert nan == inf


@pytest.mark.parametrize("policy", POLICIES)
def test_a_label_record_with_a_nan_label_or_id_says_which(policy):
    dec = LabelDecoder(MappingConfig(nan_policy=policy))
    out = dec.decode(b'{"id": "e1", "y": NaN}', "labels/0@1")
    assert out.reason == "bad_label" and out.detail.startswith("label record: label float nan")
    out = dec.decode(b'{"id": NaN, "y": 1}', "labels/0@1")
    assert out.reason == "bad_id" and out.detail == "label record: id: expected a string or an integer, got float nan"
    assert dec.decode(b'{"id": "e1", "y": 1, "note": NaN}', "labels/0@1") == LabelUpdate("e1", 1, "labels/0@1")
