"""Review r56 #4: a record with a null value (a tombstone: a compacted or CDC topic's delete marker) was
read as an empty value, so its dead letter carried b"" instead of null (re-driven into a compacted topic, it
deleted nothing) and its detail was the JSON parser's "Expecting value", the same as an empty record's.
It is now said as what it is, and its dead letter is a null value with the record's key."""

from __future__ import annotations

import json

from kafka import TopicPartition

from connectors.file_sinks import JsonlDeadLetterSink
from connectors.kafka import TOMBSTONE, KafkaSource
from connectors.sinks import dead_letter_record
from stream_cl.config import KafkaConfig, MappingConfig
from stream_cl.events import DeadLetter, Event

from source_kit import ListConsumer  # tests/unit/source_kit.py


def test_a_tombstone_is_a_dead_letter_saying_so_and_published_as_a_null_value(tmp_path):
    source = KafkaSource(KafkaConfig(topics=["events"]), MappingConfig(),
                         consumer=ListConsumer([b'{"x": {"a": 1}, "y": 0}', None, b""]))
    source.assigned = {TopicPartition("events", 0)}
    batch = source.poll(10)
    event, tombstone, empty = batch.items
    assert type(event) is Event
    assert tombstone == DeadLetter(None, "malformed", TOMBSTONE, "events/0@1")
    assert type(empty) is DeadLetter and empty.raw == b"" and "invalid JSON" in empty.detail  # an empty value is not one
    key, value, headers = dead_letter_record(tombstone, key=b"user-42")
    assert (key, value, dict(headers)["stream-cl.reason"]) == (b"user-42", None, b"malformed")
    sink = JsonlDeadLetterSink(str(tmp_path / "dead.jsonl"))  # (a file run never meets one; its sink takes it)
    sink.write([tombstone])
    sink.close()
    assert json.loads((tmp_path / "dead.jsonl").read_text())["raw"] is None


def test_a_tombstone_without_a_key_is_published_as_an_empty_value():
    """Review r57 #2: a record with neither key nor value made a dead letter with neither, which kafka-python
    refuses to send ("Need at least one: key or value"): the transaction aborted and the daemon started over
    onto the same record, forever (with kafka.publisher = "thread" it exited 1 at every start)."""
    key, value, headers = dead_letter_record(DeadLetter(None, "malformed", TOMBSTONE, "events/0@1"), key=None)
    assert (key, value, dict(headers)["stream-cl.detail"]) == (None, b"", TOMBSTONE.encode())
    assert key is not None or value is not None  # kafka-python's KafkaProducer.send: "Need at least one: key or value"
