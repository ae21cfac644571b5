"""Review r141: decoding events as real topics carry them, into the learners.

Finding F1 (high): a nested feature name is its parents' names joined, so every leaf below a long key
repeats it. The bound on names (1,024 characters, ``field_values.long_name``) was checked after the whole
record was flattened: a 389 KB record (a key of 200,000 characters over 20,000 leaves, well within
``mapping.max_event_bytes``) made 4 GB of names and took 5.5 s before its dead letter; at 1 MiB, ~40 GB,
and the daemon, killed, met the same record again after every restart. The names are now refused as they
are made (``flatten``'s ``max_name``).

Finding F2 (low): the field census (``mapping_check.FieldCensus``) remembered up to 200 top-level keys whatever
their length, for the run (200 keys of 1 MB: 200 MB), and its warning named 30 of them whole (one line of
5.6 MB for keys of 200 KB). Keys over 1,024 characters are no longer remembered unless named, and a warning
shows each name's first 40 characters.

The properties the review checked, with hypothesis (fixed examples): any bytes decode to an event or a dead
letter with a documented reason; an event's features are finite numbers, strings or None, at most
``max_features`` of them; key order and whitespace do not change the event; decoded events never make a
learner's probabilities NaN, and the batched path predicts what the per-event path predicts.
"""

import json
import math
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.config import MappingConfig
from stream_cl.decode import UNFORESEEN, EventDecoder
from stream_cl.encoding import InvalidFeatureError, flatten, time_columns
from stream_cl.events import REASONS, DeadLetter, Event
from stream_cl.mapping_check import FieldCensus
from stream_cl.prequential import Prequential

FUZZ = settings(derandomize=True, max_examples=150, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
DECODERS = [EventDecoder(MappingConfig()),
            EventDecoder(MappingConfig(nan_policy="missing", max_features=5, max_depth=2)),
            EventDecoder(MappingConfig(features=["a", "b"], unknown_fields="reject"), "required")]


# -- F1: long nested names are refused as they are made ---------------------------------------------
def _long_parent(parent_chars: int, leaves: int) -> bytes:
    inner = ",".join(f'"{i}": 0' for i in range(leaves))
    return ('{"x": {"' + "k" * parent_chars + '": {' + inner + '}}, "y": "a"}').encode()


def test_a_long_parent_key_is_refused_without_making_a_name_for_every_leaf():
    raw = _long_parent(20_000, 10_000)  # 119 KB: 10,000 names of 20,000 characters were 200 MB
    decoder = EventDecoder(MappingConfig())
    tracemalloc.start()
    try:
        letter = decoder.decode_json(raw, "o")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert type(letter) is DeadLetter and letter.reason == "bad_features", letter
    assert "a name of 20,002 characters, over 1,024" in letter.detail  # long_name's words, as before
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MiB to refuse a {len(raw) / 1e3:.0f} KB record"


def test_names_at_the_bound_still_decode_and_the_bound_is_the_decoders_alone():
    decoder = EventDecoder(MappingConfig())
    ok = decoder.decode_json(json.dumps({"x": {"k" * 1020: {"abc": 1}}}))  # "kkk...k.abc": 1,024 characters
    assert type(ok) is Event and list(ok.x) == ["k" * 1020 + ".abc"]
    dead = decoder.decode_json(json.dumps({"x": {"k" * 1020: {"abcd": 1}}}))
    assert dead.reason == "bad_features" and "a name of 1,025 characters" in dead.detail
    assert flatten({"k" * 2000: {"a": 1}}) == {"k" * 2000 + ".a": 1.0}  # learn_one's keys are not checked (README)
    try:
        flatten({"k": {"abc": 1}}, max_name=4)
    except InvalidFeatureError as e:
        assert e.code == "bad_features" and e.key == "k.abc"
    else:
        raise AssertionError("not refused")


# -- F2: the field census holds and says short names ------------------------------------------------
def test_the_field_census_keeps_no_long_keys_and_its_warning_shows_short_names():
    census = FieldCensus(MappingConfig(features=["a", "bb"]), sample=20)
    tracemalloc.start()
    try:
        for i in range(20):
            census.observe({f"{i}" + "k" * 100_000: 1, "a": 1, "y": 0, "m" * 50: 2})
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    said = census.take()
    assert held < 2**20, f"{held / 2**20:.1f} MiB held for 20 keys"
    assert said == [f"mapping.features: field 'bb' was in none of the first 20 events (fields seen: a, y, {'m' * 40}...)"]
    named = FieldCensus(MappingConfig(features=["k" * 2000]), sample=1)  # a named field is counted, however long
    named.observe({"k" * 2000: 1, "y": 0})
    assert named.take() == []


# -- the decoder's contract, fuzzed ------------------------------------------------------------------
def check_record(record, decoder):
    assert type(record) in (Event, DeadLetter), record
    if type(record) is DeadLetter:
        assert record.reason in REASONS and UNFORESEEN not in record.detail, record
        assert type(record.raw) is bytes
        return
    assert len(record.x) <= decoder.mapping.max_features
    for k, v in record.x.items():
        assert type(k) in (str, int) and (type(k) is int or len(k) <= 1024)
        assert v is None or type(v) is str or (type(v) is float and math.isfinite(v) and abs(v) <= 1e100), (k, v)
    assert record.y is None or type(record.y) in (str, int, bool)
    assert record.id is None or type(record.id) is str
    assert record.task is None or type(record.task) in (str, int)
    assert record.ts is None or (type(record.ts) is float and math.isfinite(record.ts))


scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-10**400, max_value=10**400)
           | st.floats() | st.text(max_size=6)
           | st.sampled_from(["NaN", "", " ", "\ufeff", "-0", "1e309", "\u0000", "\U0001F600", "\ud800", "k" * 1030]))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=4), c, max_size=4),
                      max_leaves=16)
documents = st.fixed_dictionaries(
    {"x": st.dictionaries(st.text(max_size=4) | st.just("k" * 1023), values, max_size=5) | st.lists(values, max_size=4)},
    optional={"y": values, "id": values, "task": values, "ts": values, "a": values, "b": values})


def _spaced(v, rnd) -> str:
    """``v`` as JSON with its objects' keys shuffled and whitespace between the tokens."""
    gap = lambda: rnd.choice(["", " ", "\n", "\t", "\r\n"])  # noqa: E731
    if isinstance(v, dict):
        items = list(v.items())
        rnd.shuffle(items)
        return "{" + ",".join(f"{gap()}{json.dumps(k)}{gap()}:{gap()}{_spaced(x, rnd)}{gap()}" for k, x in items) + "}"
    if isinstance(v, list):
        return "[" + ",".join(gap() + _spaced(x, rnd) + gap() for x in v) + gap() + "]"
    return json.dumps(v, ensure_ascii=rnd.random() < 0.5)


@FUZZ
@given(raw=st.binary(max_size=80), doc=documents, seed=st.randoms(use_true_random=False))
def test_any_record_decodes_to_a_checked_event_or_a_dead_letter_whatever_its_key_order(raw, doc, seed):
    text = json.dumps(doc)
    respaced = seed.choice(["", " ", "\ufeff"]) + _spaced(doc, seed) + seed.choice(["", "\n"])
    for decoder in DECODERS:
        for record in (raw, b'{"x": {"a": ' + raw + b"}}", text, text.encode("utf-8", "surrogatepass")):
            check_record(decoder.decode_json(record, "o"), decoder)
        one, other = decoder.decode_json(text, "o"), decoder.decode_json(respaced, "o")
        check_record(other, decoder)
        if type(one) is Event or type(other) is Event:
            assert one == other, (text, respaced)


# -- decoded events into the learners ----------------------------------------------------------------
keys = st.sampled_from(["a", "b", "c", "a.b", "v[0]", "e", "e=1", "", "é"])
leaf = (st.floats(-1e4, 1e4) | st.integers(-1000, 1000) | st.booleans() | st.none()
        | st.sampled_from(["red", "blue", "", "1", "<missing>", "<other>", "NaN", -0.0, 1e-320]))
nested = st.recursive(leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(keys, c, max_size=3), max_leaves=6)
events = st.fixed_dictionaries({"x": st.dictionaries(keys, nested, max_size=5)},
                               optional={"y": st.sampled_from(["A", "B", 1, True, "", None]), "ts": st.floats(0, 2e9)})
LEARNERS = [lambda: OnlineContinualLearner(), lambda: AnalyticClassifier(),
            lambda: OnlineContinualLearner(missing_indicators=True, max_categories=2, time_features=True),
            lambda: AnalyticClassifier(missing_indicators=True, max_categories=2, hash_width=16)]


@settings(FUZZ, max_examples=40)
@given(docs=st.lists(events, min_size=1, max_size=16), cuts=st.lists(st.integers(1, 15), max_size=3),
       which=st.sampled_from(range(len(LEARNERS))))
def test_decoded_events_keep_predictions_finite_and_batches_equal_the_per_event_loop(docs, cuts, which):
    decoded = [EventDecoder(MappingConfig()).decode_json(json.dumps(d), f"o:{i}") for i, d in enumerate(docs)]
    decoded = [e for e in decoded if type(e) is Event]
    batched = Prequential(LEARNERS[which]())  # the daemon's way: predict, then learn, a batch at a time
    predictions, start = [], 0
    for cut in sorted(set(cuts)) + [len(decoded)]:
        predictions += batched.process(decoded[start:cut])[0] if cut > start else []
        start = max(start, cut)
    by_origin = {p.origin: p for p in predictions}
    model = LEARNERS[which]()  # event by event: predict_proba_one, then learn_one
    for e in decoded:
        x = {**e.x, **time_columns("ts", e.ts)} if model.time_features and e.ts is not None else e.x
        try:
            proba = model.predict_proba_one(x)
            if e.y is not None:
                model.learn_one(x, e.y)
        except (ValueError, TypeError):  # refused: by the batch too
            assert e.origin not in by_origin
            continue
        assert not proba or (all(math.isfinite(v) for v in proba.values()) and abs(sum(proba.values()) - 1) < 1e-9)
        p = by_origin[e.origin]
        assert math.isfinite(p.proba)
        if proba:
            best = max(proba, key=proba.get)
            assert math.isclose(p.proba, proba[best], rel_tol=1e-7, abs_tol=1e-9), (p, proba)
            assert p.y_pred == best or math.isclose(proba[p.y_pred], proba[best], rel_tol=1e-9), (p, proba)
        else:
            assert p.y_pred is None
