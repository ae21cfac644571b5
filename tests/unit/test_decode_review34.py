"""Review r34 F1 and F2 (the decoder's part).

F1: a 2 KB JSON record, a lone-surrogate escape and an array nested about 990 deep, made
``EventDecoder.decode_json`` (documented to "never raise") raise RecursionError: the standard
library's parser took the nesting, and the lone-surrogate check ran ``json.dumps`` over the whole
object a few frames deeper. A file run died with a traceback (nothing after the record was read),
and the daemon's ``KafkaSource.poll`` passed it on (the daemon met the record again on every
restart). Now the check walks the strings with a stack of its own, and ``decode_json`` /
``decode_object`` turn anything unforeseen into a ``malformed`` dead letter, as ``LabelDecoder`` does.

F2: ``"2024_05_04"`` was read as epoch seconds (``float`` reads underscores). A string of digits stays
a number, also eight that would make an ISO 8601 basic date (``"20240501"``): read as a date only where
it is one, an elapsed counter's column turned into dates now and then (review r37); the time census
says such August-1970 times, with the ISO fix (test_time_review34).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from kafka import TopicPartition

from connectors.cli import main
from connectors.kafka import KafkaSource
from stream_cl.config import KafkaConfig, MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.events import DeadLetter, Event

from source_kit import ListConsumer  # tests/unit/source_kit.py

DECODER = EventDecoder(MappingConfig())
DEPTHS = range(700, 1000)  # the window (4 levels below the recursion limit) lies in here at any call depth
T0 = 1714521600.0  # 2024-05-01T00:00:00Z


def _deep(n: int, surrogate: bool = True) -> str:
    """The reviewer's record: a lone-surrogate escape and an array nested ``n`` deep (not a feature)."""
    note = '"note": "\\ud800", ' if surrogate else ""
    return '{"x": {"a": 1}, "y": "p", ' + note + '"j": ' + "[" * n + "]" * n + "}"


def _at_depth(extra: int, fn):
    """``fn()`` called ``extra`` Python frames deeper, as the daemon's poll loop calls the decoder."""
    return fn() if extra == 0 else _at_depth(extra - 1, fn)


@pytest.mark.parametrize("extra", [0, 30, 100])
def test_a_deep_record_with_a_lone_surrogate_is_a_dead_letter_at_any_call_depth(extra):
    for n in DEPTHS:
        raw = _deep(n).encode()
        letter = _at_depth(extra, lambda: DECODER.decode_json(raw, "events/0@1"))
        assert type(letter) is DeadLetter and letter.reason == "malformed", (n, letter)
        assert "lone surrogate" in letter.detail or "recursion" in letter.detail, (n, letter.detail)


@pytest.mark.parametrize("extra", [0, 30, 100])
def test_deep_text_records_are_decided_without_raising(extra):
    """A ``str`` record (a Python caller's) ran the check on every record, surrogate or not."""
    for n in DEPTHS:
        plain = _at_depth(extra, lambda: DECODER.decode_json(_deep(n, surrogate=False), "o"))
        assert type(plain) is Event or plain.reason == "malformed", (n, plain)
        odd = _at_depth(extra, lambda: DECODER.decode_json(_deep(n), "o"))
        assert type(odd) is DeadLetter and odd.reason == "malformed", (n, odd)


class _Hostile(Mapping):
    """An object from a Python caller that fails when read."""

    def __getitem__(self, key):
        raise RuntimeError("boom")

    def __iter__(self):
        return iter(["x", "y"])

    def __len__(self):
        return 2


class _FailingCensus:
    def observe(self, obj):
        raise RuntimeError("census broke")


def test_anything_unforeseen_is_a_malformed_dead_letter_not_an_exception():
    letter = DECODER.decode_object(_Hostile(), b"{}", "py:1")
    assert (type(letter), letter.reason, letter.detail, letter.origin) == (
        DeadLetter, "malformed", "event: decoding raised RuntimeError (boom)", "py:1")
    letter = EventDecoder(MappingConfig(), census=_FailingCensus()).decode_json(b'{"x": {"a": 1}}', "t:2")
    assert (letter.reason, letter.detail, letter.raw) == ("malformed", "event: decoding raised RuntimeError (census broke)",
                                                          b'{"x": {"a": 1}}')


def test_the_surrogate_check_walks_past_the_recursion_limit():
    """The check itself, on an object deeper than any recursion could walk (the parser cannot make one:
    this pins the walk, which the decoder's catch-all would otherwise hide)."""
    import sys

    from stream_cl.json_checks import lone_surrogate

    deep = ["a\ud800"]
    for _ in range(sys.getrecursionlimit() * 2):
        deep = [deep]  # one level more
    assert lone_surrogate(deep, "\\ud800") is True
    deep[0][0] = {"k": ("ok", "\U0001F600")}  # (what the JSON escapes of a pair decode to)
    assert lone_surrogate(deep, "\\ud83d\\ude00") is False


def test_a_memory_error_is_raised_not_made_a_dead_letter():
    """Memory the machine lacks is no fault of the record: the caller's retry, not a lost event."""

    class _Exhausted:
        def observe(self, obj):
            raise MemoryError

    with pytest.raises(MemoryError):
        EventDecoder(MappingConfig(), census=_Exhausted()).decode_json(b'{"x": {"a": 1}}', "t:1")


def test_a_file_run_dead_letters_the_deep_records_and_reads_on(tmp_path):
    path = tmp_path / "in.jsonl"
    good = [json.dumps({"x": {"a": float(i % 2)}, "y": "pn"[i % 2]}) for i in range(5)]
    path.write_text("\n".join(good + [_deep(n) for n in DEPTHS] + good) + "\n")
    dead, preds, report = tmp_path / "dead.jsonl", tmp_path / "pred.jsonl", tmp_path / "report.json"
    code = main(["run", "--source", str(path), "--quiet", "--dead-letters", str(dead), "--predictions", str(preds),
                 "--report", str(report)])
    assert code == 0
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len(letters) == len(DEPTHS) and {d["reason"] for d in letters} == {"malformed"}
    assert len(preds.read_text().splitlines()) == 10  # the 5 events after them were read too
    assert json.loads(report.read_text())["events"] == 10


def test_the_daemons_poll_dead_letters_them_and_goes_on():
    values = [b'{"x": {"a": 1.0}, "y": "p"}'] + [_deep(n).encode() for n in DEPTHS] + [b'{"x": {"a": -1.0}, "y": "n"}']
    source = KafkaSource(KafkaConfig(topics=["events"]), MappingConfig(), consumer=ListConsumer(values))
    source.assigned = {TopicPartition("events", 0)}
    items = source.poll(len(values)).items
    assert [type(r).__name__ for r in (items[0], items[-1])] == ["Event", "Event"]
    assert len(items) == len(values) and {r.reason for r in items[1:-1]} == {"malformed"}


# -- F2: numbers in ASCII alone; digits are a number ----------------------------------------------------------

def test_a_string_of_digits_is_a_number_in_every_event_also_where_it_would_make_a_date():
    """Deterministic per field: an elapsed-milliseconds counter passes through values that are basic
    dates (20240501) and others that are not (20241399); read by value, 1 in 27 of them became a date
    in year 2024 (or 1000-9999) among times near 1970."""
    for text, ts in (("20240501", 20240501.0), ("20241399", 20241399.0), ("00000000", 0.0),
                     ("1714521600", T0), ("1.7145216e9", T0), (" 1714521600 ", T0), ("-86400", -86400.0)):
        assert DECODER.decode_json(json.dumps({"x": {"a": 1}, "ts": text}).encode(), "t:1").ts == ts, text
        assert DECODER.decode_csv_row({"a": "1", "ts": text}, b"", "t.csv:2").ts == ts, text
    assert DECODER.decode_json(b'{"x": {"a": 1}, "ts": 20240501}', "t:2").ts == 20240501.0  # a JSON number: seconds
    assert DECODER.decode_json(b'{"x": {"a": 1}, "ts": "2024-05-04"}', "t:4").ts == T0 + 3 * 86400  # ISO: a date


@pytest.mark.parametrize("text", ["2024_05_04", "1_714_521_600", "\u0661\u0667\u0661\u0664\u0665\u0662\u0661\u0666\u0660\u0660",
                                  "\uff11\uff17\uff11\uff14"])
def test_a_number_only_python_reads_is_no_time(text):
    """Underscores and non-ASCII digits: a CSV cell holding them is a category, a time string is refused."""
    letter = DECODER.decode_json(json.dumps({"x": {"a": 1}, "ts": text}).encode(), "t:1")
    assert letter.reason == "bad_timestamp" and "neither a number nor ISO 8601" in letter.detail
    assert DECODER.decode_csv_row({"a": "1", "ts": text}, b"", "t.csv:2").reason == "bad_timestamp"
    from stream_cl.field_values import ascii_float  # the rule's one public form (CSV feature cells inline it)

    with pytest.raises(ValueError, match="not a number in ASCII"):
        ascii_float(text)
