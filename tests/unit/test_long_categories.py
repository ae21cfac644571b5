"""Review r56 #2: a string feature's column was named by its whole text, with no bound on its length, so a
free-text field (a message, a URL, a stack trace) grew every checkpoint and changelog part by up to
``max_categories`` times the text: 1,000 texts of 34 KB made a two-feature model's part 38 MB, over the
changelog's 32 MiB, and the daemon exited 2 at every start. A category over ``MAX_CATEGORY_CHARS`` is now
named by its digest: the same columns, by text, and a part that does not grow with the texts."""

from __future__ import annotations

import random

import pandas as pd

from stream_cl import AnalyticClassifier
from stream_cl.encoding import MAX_CATEGORY_CHARS


def _text(rng: random.Random, n: int = 34_000) -> str:
    return "".join(rng.choice("abcdefgh") for _ in range(n))


def test_long_texts_make_columns_named_by_their_digest_and_a_part_that_does_not_grow_with_them():
    rng = random.Random(0)
    texts = [_text(rng) for _ in range(40)]
    model = AnalyticClassifier()
    for i, text in enumerate(texts):
        model.learn_one({"a": rng.random(), "note": text}, i % 2, partition="events/0")
    names = [n for n in model.index_.names if str(n).startswith("note=")]
    assert len(names) == 40 and all(n.startswith("note=<sha256:") and len(n) == len("note=<sha256:>") + 32 for n in names)
    assert len(model.contribution("events/0", offset=40).to_bytes()) < 100_000  # 40 texts of 34 KB: 1.4 MB before
    model.learn_one({"a": 0.5, "note": texts[3]}, 1, partition="events/0")  # a text seen before: its column
    model.learn_many(pd.DataFrame([{"a": 0.1, "note": texts[5]}]), pd.Series([0]))  # the batched path names it alike
    assert len([n for n in model.index_.names if str(n).startswith("note=")]) == 40


def test_a_category_up_to_the_bound_keeps_its_text_as_its_name():
    model = AnalyticClassifier().learn_one({"note": "y" * MAX_CATEGORY_CHARS}, 1)
    assert f"note={'y' * MAX_CATEGORY_CHARS}" in model.index_.names


def test_a_feature_name_over_1024_characters_is_a_dead_letter_saying_why():
    """Review r57: long feature names (keys) grew the parts as long values did (1,000 events with a 34 KB key:
    a 38 MB part, exit 2 at every start); a name is the schema's, not data, so a long one is refused."""
    import json

    from stream_cl.config import MappingConfig
    from stream_cl.decode import EventDecoder
    from stream_cl.events import DeadLetter, Event

    decoder = EventDecoder(MappingConfig())
    dead = decoder.decode_json(json.dumps({"x": {"k" * 1025: 1.0, "b": 2}, "y": 1}))
    assert type(dead) is DeadLetter and dead.reason == "bad_features"
    assert "a name of 1,025 characters, over 1,024" in dead.detail
    nested = decoder.decode_json(json.dumps({"x": {"a": {"k" * 1030: "v"}}, "y": 1}))  # flattened: "a.kkk..."
    assert type(nested) is DeadLetter and nested.reason == "bad_features"
    assert type(decoder.decode_json(json.dumps({"x": {"k" * 1024: "v" * 5000}, "y": 1}))) is Event  # at the bound


def test_an_object_from_python_is_checked_for_long_names_too_and_a_missing_raw_is_no_error():
    """Review r60: decode_object with no record (raw b"" by default, or None) skipped the check, and with None
    the check itself raised (a malformed dead letter for a valid object)."""
    from stream_cl.config import MappingConfig
    from stream_cl.decode import EventDecoder
    from stream_cl.events import DeadLetter, Event

    decoder = EventDecoder(MappingConfig())
    assert type(decoder.decode_object({"x": {"a": 1.0}, "y": 1}, raw=None)) is Event
    for raw in (b"", None):
        dead = decoder.decode_object({"x": {"k" * 2000: 1.0}, "y": 1}, raw=raw)
        assert type(dead) is DeadLetter and dead.reason == "bad_features", dead
