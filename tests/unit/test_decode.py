"""The decoder: one test per dead-letter reason, the happy paths, and fuzzing."""

import json
import math
import re
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_cl.config import MappingConfig
from stream_cl.decode import UNFORESEEN, EventDecoder
from stream_cl.encoding import MAX_ABS_VALUE, NAN_FIX
from stream_cl.events import REASONS, DeadLetter, Event

DECODER = EventDecoder(MappingConfig())


def dead(record, reason):
    assert isinstance(record, DeadLetter), record
    assert record.reason == reason, (record.reason, record.detail)
    assert record.reason in REASONS
    return record.detail


# -- one test per reason code --------------------------------------------------------
def test_oversized_is_rejected_before_parsing():
    decoder = EventDecoder(MappingConfig(max_event_bytes=20))
    raw = b'{"x": [1, 2, 3, 4, 5, 6]' + b"!" * 10  # not even JSON: the size alone decides
    detail = dead(decoder.decode_json(raw, "o"), "oversized")
    assert "max_event_bytes (20)" in detail
    assert decoder.decode_json(raw, "o").raw == raw
    # text is measured in UTF-8 bytes, not characters
    assert decoder.decode_json('{"x": ["ééééééééé"]}', "o").reason == "oversized"


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b'{"x": [1, 2}', "invalid JSON"),
        (b"", "invalid JSON"),
        (b'{"x": [1]} {"x": [2]}', "Extra data"),
        (b'{"x": [1], "y": "\xff"}', "invalid UTF-8 at byte 17"),
        (b"[" * 100_000, "nested deeper than the parser reads"),  # beyond even the raised recursion limit
    ],
)
def test_malformed(raw, fragment):
    assert fragment in dead(DECODER.decode_json(raw, "o"), "malformed")


@pytest.mark.parametrize("raw", [
    rb'{"x": {"a": 1}, "y": "ok", "id": "evt-\ud800"}',  # the id: written to every prediction
    rb'{"x": {"a": 1}, "y": "ok\uDC80"}',  # the label
    rb'{"x": {"a": "red\ud800"}, "y": "ok"}',  # a category: a key in the checkpoint
    rb'{"x": {"a\udbff": 1}, "y": "ok"}',  # a feature's name
    '{"x": {"a": 1}, "y": "ok\ud800"}',  # text with the character itself, not its escape
])
def test_a_lone_surrogate_is_malformed(raw):
    # JSON's syntax, but no character: the id or label could not be encoded into the prediction
    # record, whose write then failed the whole transaction on every retry (no dead letter)
    assert "lone surrogate" in dead(DECODER.decode_json(raw, "o"), "malformed")


@pytest.mark.parametrize("field, reason", [("id", "bad_id"), ("y", "bad_label"), ("task", "bad_label")])
def test_an_id_label_or_task_longer_than_every_prediction_record_can_carry(field, reason):
    # a 600 KB id made a 1.2 MB prediction record that the topic refused: every transaction holding
    # it failed and the member started over forever, publishing nothing
    raw = b'{"x": {"a": 1}, "' + field.encode() + b'": "' + b"x" * 1025 + b'"}'
    assert "1,025 characters, over 1,024" in dead(DECODER.decode_json(raw, "o"), reason)
    row = {"a": "1", "y": "ok", field: "x" * 1025}
    assert "1,025 characters, over 1,024" in dead(DECODER.decode_csv_row(row, b"", "o"), reason)
    ok = b'{"x": {"a": 1}, "' + field.encode() + b'": "' + b"x" * 1024 + b'"}'
    assert not isinstance(DECODER.decode_json(ok, "o"), DeadLetter)


def test_a_surrogate_pair_and_an_escaped_backslash_are_text():
    assert DECODER.decode_json(rb'{"x": {"a": "\ud83d\ude00"}, "y": "\ud83d\ude00"}', "o").y == "\U0001f600"
    assert DECODER.decode_json(rb'{"x": {"a": "\\ud800"}, "y": 1}', "o").x == {"a": "\\ud800"}


def test_an_integer_beyond_pythons_digit_limit_is_judged_by_its_field():
    """Beyond Python's 4,300-digit int limit the standard parser refuses the record: it was 'malformed',
    naming no field (r29 F4); the feature's own rule names it now (tests/unit/test_decode_review29.py)."""
    assert "feature 0: beyond +-1e+100" in dead(DECODER.decode_json(b'{"x": [' + b"9" * 5000 + b"]}", "o"), "non_finite")


def test_malformed_input_type_does_not_raise():
    dead(DECODER.decode_json(12, "o"), "malformed")


@pytest.mark.parametrize("raw", [b"[1, 2]", b"3", b'"x"', b"null", b"true"])
def test_not_an_object(raw):
    assert "expected a JSON object" in dead(DECODER.decode_json(raw, "o"), "not_an_object")


@pytest.mark.parametrize("raw", [b'{"y": 1}', b'{"x": null, "y": 1}'])
def test_missing_features(raw):
    assert "'x'" in dead(DECODER.decode_json(raw, "o"), "missing_features")


def test_missing_features_with_named_fields():
    decoder = EventDecoder(MappingConfig(features=["a", "b"]))
    dead(decoder.decode_json(b'{"c": 1, "y": 0}', "o"), "missing_features")
    # some present: the absent ones are simply missing
    assert decoder.decode_json(b'{"a": 1, "y": 0}', "o").x == {"a": 1.0}


@pytest.mark.parametrize("value", ['"1,2"', "3", "true"])
def test_bad_features(value):
    raw = f'{{"x": {value}}}'.encode()
    assert "expected an object or a list" in dead(DECODER.decode_json(raw, "o"), "bad_features")


def test_bad_features_two_values_under_one_flat_key():
    raw = b'{"x": {"a.b": 1, "a": {"b": 2}}, "y": 1}'
    assert "'a.b': two values flatten to this key" in dead(DECODER.decode_json(raw, "o"), "bad_features")


# Every JSON value is a feature (numbers, strings, booleans, null, objects, arrays): only
# Python objects handed to decode_object can have a wrong type.
@pytest.mark.parametrize(
    "value, detail",
    [
        (b"4x", "feature 'age': expected a number, a string, a boolean, null, an object or an array, not bytes"),
        ({1, 2}, "not set (got {1, 2})"),
        ({"when": datetime(2024, 1, 1)}, "feature 'age.when': expected a number or a string, got datetime"),
    ],
)
def test_wrong_type(value, detail):
    assert detail in dead(DECODER.decode_object({"x": {"age": value}}), "wrong_type")


def test_too_deep():
    assert DECODER.decode_json(b'{"x": {"a": {"b": {"c": {"d": 1}}}}}', "o").x == {"a.b.c.d": 1.0}  # 3 levels
    detail = dead(DECODER.decode_json(b'{"x": {"a": [[[[[1]]]]]}}', "o"), "too_deep")  # 5 levels
    assert detail.startswith("feature 'a[0][0][0][0]': nested deeper than 4 levels") and "mapping.max_depth" in detail
    flat = EventDecoder(MappingConfig(max_depth=0))
    assert flat.decode_json(b'{"x": {"a": 1, "b": "z"}}', "o").x == {"a": 1.0, "b": "z"}
    dead(flat.decode_json(b'{"x": {"a": {}}}', "o"), "too_deep")
    dead(flat.decode_json(b'{"x": [1, [2]]}', "o"), "too_deep")
    loop: dict = {}
    loop["self"] = loop
    dead(DECODER.decode_object({"x": loop}), "too_deep")


@pytest.mark.parametrize(
    "raw", [b'{"x": [NaN]}', b'{"x": {"a": Infinity}}', b'{"x": {"a": -Infinity}}', b'{"x": {"a": 1e999}}',
            b'{"x": {"a": 1e200}}', b'{"x": {"a": 1, "b": -1e101}}', b'{"x": [%d]}' % 10**101]
)
def test_non_finite(raw):
    dead(DECODER.decode_json(raw, "o"), "non_finite")


def test_non_finite_from_python_objects():
    dead(DECODER.decode_object({"x": {"a": float("nan")}}), "non_finite")
    dead(DECODER.decode_object({"x": {"a": 10**400}}), "non_finite")  # beyond float range
    dead(DECODER.decode_object({"x": {"a": {"b": [float("inf")]}}}), "non_finite")  # nested


def test_non_finite_by_nan_policy():
    missing = EventDecoder(MappingConfig(nan_policy="missing"))
    # NaN is null: the JSON literal, a Python float, a CSV cell; infinities stay dead letters
    assert missing.decode_json(b'{"x": {"a": NaN, "b": 2, "c": {"d": NaN}}}', "o").x == {"a": None, "b": 2.0, "c.d": None}
    assert missing.decode_object({"x": {"a": float("nan"), "b": "u"}}).x == {"a": None, "b": "u"}
    assert missing.decode_csv_row({"a": "NaN", "b": "1"}, b"", "o").x == {"a": None, "b": 1.0}
    dead(missing.decode_json(b'{"x": [1], "y": NaN}', "o"), "bad_label")  # feature values only: a NaN label is a bad one
    for raw in (b'{"x": {"a": Infinity}}', b'{"x": {"a": -Infinity}}', b'{"x": {"a": 1e999}}'):
        dead(missing.decode_json(raw, "o"), "non_finite")
    dead(missing.decode_csv_row({"a": "inf"}, b"", "o"), "non_finite")
    # the default ("reject") is the behaviour before nan_policy existed
    assert dead(DECODER.decode_json(b'{"x": {"a": NaN}}', "o"), "non_finite") == (
        "feature 'a': not finite (got nan); " + NAN_FIX)


def test_too_many_features():
    decoder = EventDecoder(MappingConfig(max_features=3))
    assert decoder.decode_json(b'{"x": [1, 2, 3]}', "o").x == {0: 1.0, 1: 2.0, 2: 3.0}
    assert "4 features" in dead(decoder.decode_json(b'{"x": [1, 2, 3, 4]}', "o"), "too_many_features")
    # counted after flattening
    assert decoder.decode_json(b'{"x": {"a": "s", "v": [1, 2]}}', "o").x == {"a": "s", "v[0]": 1.0, "v[1]": 2.0}
    detail = dead(decoder.decode_json(b'{"x": {"a": 1, "v": [1, 2, 3]}}', "o"), "too_many_features")
    assert "more than 3 features" in detail and "mapping.max_features" in detail


def test_unknown_field():
    decoder = EventDecoder(MappingConfig(unknown_fields="reject"))
    assert decoder.decode_json(b'{"x": [1], "y": 0, "id": "a", "task": 1, "ts": 5}', "o").y == 0
    assert "'extra'" in dead(decoder.decode_json(b'{"x": [1], "extra": 1}', "o"), "unknown_field")
    # the default ignores them
    assert DECODER.decode_json(b'{"x": [1], "extra": 1}', "o").x == {0: 1.0}


def test_missing_label():
    decoder = EventDecoder(MappingConfig(), label_policy="required")
    dead(decoder.decode_json(b'{"x": [1]}', "o"), "missing_label")
    dead(decoder.decode_json(b'{"x": [1], "y": null}', "o"), "missing_label")
    assert DECODER.decode_json(b'{"x": [1], "y": null}', "o").y is None


@pytest.mark.parametrize("label", ["1.5", "1.0", "[1]", '{"a": 1}'])
def test_bad_label(label):
    detail = dead(DECODER.decode_json(f'{{"x": [1], "y": {label}}}'.encode(), "o"), "bad_label")
    if "." in label:
        assert "floats are not allowed as class labels" in detail


@pytest.mark.parametrize("value", ["1.5", "true", "[1]", "{}"])
def test_bad_id(value):
    dead(DECODER.decode_json(f'{{"x": [1], "id": {value}}}'.encode(), "o"), "bad_id")


@pytest.mark.parametrize("value", ['"yesterday"', "true", "[1]", '"nan"', "1e999"])
def test_bad_timestamp(value):
    dead(DECODER.decode_json(f'{{"x": [1], "ts": {value}}}'.encode(), "o"), "bad_timestamp")


# The reasons the decoder gives (REASONS also holds the engine's own, e.g. "rejected_by_model").
DECODER_REASONS = (
    "oversized", "malformed", "not_an_object", "missing_features", "bad_features", "wrong_type", "non_finite",
    "too_many_features", "unknown_field", "missing_label", "bad_label", "bad_id", "bad_timestamp", "too_deep",
)  # fmt: skip


def test_every_decoder_reason_has_a_test():
    assert set(DECODER_REASONS) <= set(REASONS)
    untested = [r for r in DECODER_REASONS if not any(name.startswith(f"test_{r}") for name in globals())]
    assert not untested


# -- happy paths -----------------------------------------------------------------------
def test_a_full_event():
    raw = b'{"x": {"a": 1, "b": 2.5, "c": true}, "y": "cat", "id": 12, "task": "t1", "ts": "2024-01-01T00:00:00Z"}'
    event = DECODER.decode_json(raw, "f.jsonl:3")
    assert event == Event({"a": 1.0, "b": 2.5, "c": 1.0}, "cat", "12", "t1", 1704067200.0, "f.jsonl:3")
    assert all(type(v) is float for v in event.x.values())


def test_categories_nulls_nesting_and_arrays():
    raw = (b'{"x": {"amount": 12, "merchant": "m-17", "device": null, "vip": false, '
           b'"card": {"brand": "visa", "geo": {"lat": 48.8, "lon": 2.3}}, "items": [3, "gift", null, [true]], '
           b'"empty": {}, "none": []}, "y": "ok"}')
    event = DECODER.decode_json(raw, "o")
    assert event.x == {
        "amount": 12.0, "merchant": "m-17", "device": None, "vip": 0.0, "card.brand": "visa",
        "card.geo.lat": 48.8, "card.geo.lon": 2.3, "items[0]": 3.0, "items[1]": "gift", "items[2]": None,
        "items[3][0]": 1.0,
    }
    assert list(event.x) == ["amount", "merchant", "device", "vip", "card.brand", "card.geo.lat", "card.geo.lon",
                             "items[0]", "items[1]", "items[2]", "items[3][0]"]  # the order of the record
    # a list of features: positions are the keys, nested ones dotted below them
    assert DECODER.decode_json(b'{"x": [1, "a", {"b": 2}]}', "o").x == {0: 1.0, 1: "a", "2.b": 2.0}
    # named top-level fields may hold objects too
    named = EventDecoder(MappingConfig(features=["user", "n"]))
    assert named.decode_json(b'{"user": {"country": "FR"}, "n": null, "y": 1}', "o").x == {"user.country": "FR", "n": None}
    # an empty string is a category of its own; a string that looks like a number is still a string
    assert DECODER.decode_json(b'{"x": {"a": "", "b": "3.5"}}', "o").x == {"a": "", "b": "3.5"}


def test_accepted_label_and_time_types():
    for label in (b'"a"', b"3", b"true"):
        assert DECODER.decode_json(b'{"x": [1], "y": ' + label + b"}", "o").y == json.loads(label)
    assert DECODER.decode_json(b'{"x": [1], "ts": 1700000000}', "o").ts == 1.7e9
    assert DECODER.decode_json(b'{"x": [1], "ts": "2024-01-01T01:00:00+01:00"}', "o").ts == 1704067200.0
    assert DECODER.decode_json(b'{"x": [1], "ts": "2024-01-01 00:00:00"}', "o").ts == 1704067200.0  # naive: UTC


def test_text_input_bom_and_whitespace():
    assert DECODER.decode_json('\ufeff  {"x": [2]}  ', "o").x == {0: 2.0}


def test_x_is_a_fresh_dict():
    obj = {"x": {"a": 1.0}, "y": 1}
    event = DECODER.decode_object(obj)
    assert event.x == obj["x"] and event.x is not obj["x"]


def test_named_top_level_features():
    decoder = EventDecoder(MappingConfig(features=["age", "income"], label="churn"))
    event = decoder.decode_json(b'{"age": 40, "income": 1.5, "churn": false, "name": "z"}', "o")
    assert event.x == {"age": 40.0, "income": 1.5} and event.y is False


# -- CSV rows ------------------------------------------------------------------------
def test_csv_rows():
    row = {"a": "1", "b": "", "c": " 2.5 ", "d": "red", "e": " ", "y": "7", "id": "r1", "ts": "1700000000"}
    event = DECODER.decode_csv_row(row, b"", "f.csv:2")
    # numbers where the cell reads as one, categories elsewhere, empty cells null; the label stays text
    assert event == Event({"a": 1.0, "b": None, "c": 2.5, "d": "red", "e": None}, "7", "r1", None, 1.7e9, "f.csv:2")
    assert DECODER.decode_csv_row({"a": "4x", "y": "1"}, b"", "o").x == {"a": "4x"}
    for text in ("nan", "inf", "-Infinity", "1e999", "1e200"):
        dead(DECODER.decode_csv_row({"a": text}, b"", "o"), "non_finite")
    assert "'1e200' is beyond +-1e+100" in dead(DECODER.decode_csv_row({"a": "1e200"}, b"", "o"), "non_finite")
    dead(DECODER.decode_csv_row({"a": "1", "ts": "soon"}, b"", "o"), "bad_timestamp")
    required = EventDecoder(MappingConfig(), label_policy="required")
    dead(required.decode_csv_row({"a": "1", "y": ""}, b"", "o"), "missing_label")


def test_csv_feature_column_selection():
    # "x", the default, reads every column, one named x too (r27 F1: x as the features' field is JSON's notion)
    assert DECODER.decode_csv_row({"x": "3", "z": "4", "y": "a"}, b"", "o").x == {"x": 3.0, "z": 4.0}
    assert EventDecoder(MappingConfig(features=["x"])).decode_csv_row({"x": "3", "z": "4"}, b"", "o").x == {"x": 3.0}
    named = EventDecoder(MappingConfig(features=["a"], unknown_fields="reject"))
    assert named.decode_csv_row({"a": "1", "y": "b"}, b"", "o").x == {"a": 1.0}
    dead(named.decode_csv_row({"a": "1", "q": "2"}, b"", "o"), "unknown_field")
    dead(EventDecoder(MappingConfig(features=["a"])).decode_csv_row({"q": "2"}, b"", "o"), "missing_features")
    dead(EventDecoder(MappingConfig(max_features=1)).decode_csv_row({"a": "1", "b": "2"}, b"", "o"), "too_many_features")
    dead(EventDecoder(MappingConfig(max_event_bytes=3)).decode_csv_row({"a": "1"}, b"1234", "o"), "oversized")
    dead(DECODER.decode_csv_row({"a": "1", None: ["2"]}, b"", "o"), "malformed")


# how a CSV cell reads as a number: ASCII sign, digits, ".", exponent, inf or nan; spaces around
PLAIN_NUMBER = re.compile(r"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|inf(?:inity)?|nan)\s*", re.ASCII | re.IGNORECASE)


def test_csv_numbers_are_plain_ascii_numbers():
    row = {"code": "2024_01", "region": "١٢", "h": "٣.٥", "g": "1_000.5", "n": " 7 ", "e": "-1.5E+3", "f": ".5", "y": "a"}
    # float() reads the first four too; they are categories, as their JSON strings are
    assert DECODER.decode_csv_row(row, b"", "o").x == {
        "code": "2024_01", "region": "١٢", "h": "٣.٥", "g": "1_000.5", "n": 7.0, "e": -1500.0, "f": 0.5}
    assert DECODER.decode_json('{"x": {"code": "2024_01", "region": "١٢"}}'.encode(), "o").x == {"code": "2024_01", "region": "١٢"}
    # inf and nan are numbers as before: dead letters, or null with nan_policy = "missing"
    for text in ("NaN", "+inf", "-Infinity", " nan "):
        dead(DECODER.decode_csv_row({"a": text}, b"", "o"), "non_finite")
    assert EventDecoder(MappingConfig(nan_policy="missing")).decode_csv_row({"a": "-nan"}, b"", "o").x == {"a": None}


# -- fuzzing: whatever comes in, a valid event or a dead letter comes out ------------
def check_record(record, origin="fuzz"):
    assert isinstance(record, (Event, DeadLetter))
    assert record.origin == origin
    if isinstance(record, DeadLetter):
        assert record.reason in DECODER_REASONS  # a subset of REASONS
        assert isinstance(record.raw, bytes)
        assert isinstance(record.detail, str) and record.detail
        assert UNFORESEEN not in record.detail, record.detail  # a bug of the decoder's, caught
        return
    assert isinstance(record.x, dict)
    for key, value in record.x.items():
        hash(key)
        assert value is None or type(value) is str or (type(value) is float and math.isfinite(value))
    hash(record.y)
    assert record.y is None or type(record.y) in (str, int, bool)
    assert record.id is None or type(record.id) is str
    hash(record.task)
    assert record.ts is None or (type(record.ts) is float and math.isfinite(record.ts))


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=5),
    max_leaves=25,
)
# Objects shaped like events (mostly numbers where numbers belong), so the validation
# past parsing is exercised too, and valid events come out often enough.
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.booleans()
values = st.one_of(numbers, numbers, numbers, json_values)
labels = st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.none(), json_values)
event_like = st.fixed_dictionaries(
    {"x": st.dictionaries(st.text(max_size=4), values, max_size=6) | st.lists(values, max_size=6) | json_values},
    optional={
        "y": labels,
        "id": labels,
        "task": labels,
        "ts": st.floats() | st.integers() | st.datetimes().map(str) | json_values,
        "a": values,
        "b": values,
        "extra": json_values,
    },
)
DECODERS = [
    DECODER,
    EventDecoder(MappingConfig(unknown_fields="reject", max_features=4, max_event_bytes=1000), "required"),
    EventDecoder(MappingConfig(features=["a", "b"], label="extra")),
    EventDecoder(MappingConfig(nan_policy="missing", max_depth=1, max_features=5)),
]
FUZZ = settings(
    derandomize=True,  # the same examples on every run: CI cannot flake
    max_examples=400,
    deadline=2000,  # ms per example: generous for a slow shared 2-core box
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(raw=st.binary(max_size=200), which=st.sampled_from(range(len(DECODERS))))
def test_random_bytes_never_raise(raw, which):
    check_record(DECODERS[which].decode_json(raw, "fuzz"))


@FUZZ
@given(doc=json_values | event_like, which=st.sampled_from(range(len(DECODERS))), as_text=st.booleans())
def test_random_json_never_raises(doc, which, as_text):
    text = json.dumps(doc)  # NaN and Infinity literals included
    record = DECODERS[which].decode_json(text if as_text else text.encode(), "fuzz")
    check_record(record)
    if isinstance(record, Event) and isinstance(doc.get("x"), dict):
        assert record.x is not doc["x"]


@FUZZ
@given(
    row=st.dictionaries(st.sampled_from(["x", "a", "b", "y", "id", "task", "ts", "q"]), st.text(max_size=10)),
    which=st.sampled_from(range(len(DECODERS))),
)
def test_random_csv_rows_never_raise(row, which):
    check_record(DECODERS[which].decode_csv_row(row, b"", "fuzz"))


# -- the orjson fast path gives what the standard library path gives ------------------
def _both_ways(decoder, raw, monkeypatch):
    """The record from the fast path, then from the standard library alone."""
    import stream_cl.decode as decode

    fast = decoder.decode_json(raw, "o")
    with monkeypatch.context() as m:
        m.setattr(decode, "_fast_loads", _refuse)
        slow = decoder.decode_json(raw, "o")
    return fast, slow


EDGES = [
    b'{"x": [1, 2.5, -0.0, 1e-320], "y": "a", "id": 7}',
    b'{"x": [1], "y": 123456789012345678901234567890}',  # an int label beyond 64 bits stays an int
    b'{"x": [1], "y": 1, "id": 18446744073709551616}',  # an id beyond 64 bits stays exact
    b'{"x": [1], "y": 1.5}',  # a float label is refused either way
    b'{"x": [' + b"1" + b"0" * 305 + b"]}",  # an int beyond 2^1000: "beyond the float range" either way
    b'{"x": [1e400]}', b'{"x": [NaN]}', b'{"x": [-Infinity]}',
    b'{"x": ["\\ud800"]}', b'{"x": ["\xff"]}', b'\xef\xbb\xbf{"x": [1]}', b' {"x": [1]} ', b'{"x": [1]} x',
    b'{"x": {"a": 1, "a": 2}}', b"[1, 2]", b'"x"', b"", b"{" * 3000 + b"}" * 3000,
    b'{"x": [0.12345678901234567890123]}', b'{"x": [1], "ts": 12345678901234567890}',
]


@pytest.mark.parametrize("raw", EDGES)
@pytest.mark.parametrize("which", range(len(DECODERS)))
def test_fast_json_path_equals_the_standard_library(raw, which, monkeypatch):
    fast, slow = _both_ways(DECODERS[which], raw, monkeypatch)
    assert fast == slow


@FUZZ
@given(doc=json_values | event_like, which=st.sampled_from(range(len(DECODERS))))
def test_fast_json_path_equals_the_standard_library_fuzzed(doc, which):
    import stream_cl.decode as decode

    raw = json.dumps(doc).encode()
    fast = DECODERS[which].decode_json(raw, "fuzz")
    saved, decode._fast_loads = decode._fast_loads, _refuse
    try:
        slow = DECODERS[which].decode_json(raw, "fuzz")
    finally:
        decode._fast_loads = saved
    assert fast == slow


def _refuse(_raw):
    import stream_cl.decode as decode

    raise decode._FastError("refused", "", 0)


def test_fast_json_path_is_taken(monkeypatch):
    import stream_cl.decode as decode

    calls = []
    real = decode._fast_loads
    monkeypatch.setattr(decode, "_fast_loads", lambda raw: calls.append(raw) or real(raw))
    event = DECODER.decode_json(b'{"x": {"a": 1.5}, "y": "b"}', "o")
    assert event == Event(x={"a": 1.5}, y="b", id=None, task=None, ts=None, origin="o")
    assert len(calls) == 1
    DECODER.decode_json(b'{"x": [1], "y": 1234567890123456789}', "o")  # 19 digits: the standard library
    DECODER.decode_json('{"x": [1]}', "o")  # text: the standard library
    assert len(calls) == 1


@FUZZ
@given(cell=st.text(alphabet="0123456789_+-.eEinfatyINF x\u00a0\u2003\u0661\u0662\uff11", max_size=8))
def test_a_csv_cell_is_a_number_exactly_when_written_as_a_plain_number(cell):
    record = DECODERS[3].decode_csv_row({"a": cell}, b"", "o")  # nan_policy = "missing"
    if not cell or cell.isspace():
        assert record.x == {"a": None}
    elif not PLAIN_NUMBER.fullmatch(cell):
        assert record.x == {"a": cell}  # a category
    elif math.isnan(float(cell)):
        assert record.x == {"a": None}
    elif abs(float(cell)) > MAX_ABS_VALUE:
        dead(record, "non_finite")
    else:
        assert record.x == {"a": float(cell)}
