"""The daemon's source says what a file run says of event times (TimeCensus): with
model.time_features on, times beyond 1e11 (epoch milliseconds read as seconds) or no time at all
in the first events are a mapping_warning, once; without time features nothing is said."""

import json

from kafka import TopicPartition

from connectors.kafka import KafkaSource
from stream_cl.config import KafkaConfig, MappingConfig
from stream_cl.mapping_check import SAMPLE

from source_kit import ListConsumer  # tests/unit/source_kit.py

TP = TopicPartition("events", 0)


def _source(values: list[bytes], time_features: bool) -> KafkaSource:
    source = KafkaSource(KafkaConfig(topics=["events"]), MappingConfig(), consumer=ListConsumer(values),
                         time_features=time_features)
    source.assigned = {TP}
    return source


def _warnings_after(source: KafkaSource, polls: int) -> list[str]:
    said = []
    for _ in range(polls):
        source.poll(400)
        said += source.take_warnings()
    return said


def _events(ts) -> list[bytes]:
    return [json.dumps({"x": {"a": i % 7}, "y": i % 2, **({"ts": ts + i} if ts is not None else {})}).encode()
            for i in range(SAMPLE + 200)]


def test_epoch_milliseconds_are_a_warning_once_the_sample_is_complete():
    said = _warnings_after(_source(_events(1_714_601_643_000), time_features=True), polls=4)
    assert len(said) == 1
    assert f"{SAMPLE:,} of the first {SAMPLE:,} events had a time in field 'ts'" in said[0]
    assert "look like epoch milliseconds" in said[0] and said[0].endswith('set mapping.timestamp_unit = "ms"')


def test_no_time_at_all_is_a_warning_and_seconds_are_not():
    said = _warnings_after(_source(_events(None), time_features=True), polls=4)
    assert len(said) == 1 and "none of the first 1,000 events had a time in field 'ts'" in said[0]
    assert _warnings_after(_source(_events(1_714_601_643), time_features=True), polls=4) == []


def test_without_time_features_nothing_is_said_of_times():
    assert _warnings_after(_source(_events(1_714_601_643_000), time_features=False), polls=4) == []


def test_a_topic_shorter_than_the_sample_is_judged_once_the_consumer_has_caught_up():
    # 300 events in epoch milliseconds and a feature field none has: nothing while records come
    values = [json.dumps({"x": {"a": i % 7}, "y": i % 2, "ts": 1_714_601_643_000 + i}).encode() for i in range(300)]
    source = KafkaSource(KafkaConfig(topics=["events"]), MappingConfig(features=["x", "bb"]),
                         consumer=ListConsumer(values), time_features=True)
    source.assigned = {TP}
    assert len(source.poll(200).items) == 200 and source.take_warnings() == []
    assert len(source.poll(200).items) == 100 and source.take_warnings() == []
    assert not source.poll(200).items  # caught up: the 300 events are the sample
    said = source.take_warnings()
    assert len(said) == 2, said
    assert said[0].startswith("mapping.features: field 'bb' was in none of the first 300 events")
    assert "300 of the first 300 events had a time in field 'ts'" in said[1]
    assert "look like epoch milliseconds" in said[1]
    assert source.poll(200).items == [] and source.take_warnings() == []  # said once


def test_an_empty_poll_before_any_event_judges_nothing():
    source = _source([], time_features=True)
    assert not source.poll(200).items and source.take_warnings() == []
    source.consumer.records = ListConsumer(_events(None)[:10]).records  # the first events come later
    assert len(source.poll(200).items) == 10 and source.take_warnings() == []  # they came: not yet judged
    assert not source.poll(200).items
    said = source.take_warnings()
    assert len(said) == 1 and "none of the first 10 events had a time in field 'ts'" in said[0]
