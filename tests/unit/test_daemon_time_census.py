"""The daemon's source says what a file run says of event times (TimeCensus): with
model.time_features on, times beyond 1e11 (epoch milliseconds read as seconds) or no time at all
in the first events are a mapping_warning, once; without time features nothing is said."""

import json

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from connectors.kafka import KafkaSource
from stream_cl.config import KafkaConfig, MappingConfig
from stream_cl.mapping_check import SAMPLE

TP = TopicPartition("events", 0)


class ListConsumer:
    """A consumer whose polls hand out a fixed list of records, ``max_records`` at a time."""

    def __init__(self, values: list[bytes]):
        self.records = [ConsumerRecord(topic="events", partition=0, leader_epoch=0, offset=i, timestamp=0,
                                       timestamp_type=0, key=None, value=v, headers=[], checksum=None,
                                       serialized_key_size=-1, serialized_value_size=len(v), serialized_header_size=-1)
                        for i, v in enumerate(values)]

    def subscribe(self, topics=(), pattern=None, listener=None):
        pass

    def poll(self, timeout_ms=0, max_records=500):
        out, self.records = self.records[:max_records], self.records[max_records:]
        return {TP: out} if out else {}

    def partitions_for_topic(self, topic):
        return {0}

    def group_metadata(self):
        return ("g", 1, "m", None)

    def close(self, autocommit=True):
        pass


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
