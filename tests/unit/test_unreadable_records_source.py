"""A poll that kafka-python fails with CorruptRecordError (review r61): the run of offsets it cannot read becomes
dead letters and the consumer moves past them; a fault found nowhere is read again once, then stops the daemon;
a search that fails itself reports the poll's error. The search against a real broker is in
tests/integration/test_daemon_dead_letters.py."""

from __future__ import annotations

import pytest
from kafka import TopicPartition
from kafka.errors import CorruptRecordError, KafkaTimeoutError

from connectors.kafka import KafkaSource
from stream_cl.config import KafkaConfig, MappingConfig
from stream_cl.events import DeadLetter

EV = TopicPartition("ev", 0)
LAB = TopicPartition("lab", 0)


class _Consumer:
    def __init__(self, positions: dict):
        self.at, self.seeks = dict(positions), []

    def subscribe(self, topics=(), pattern=None, listener=None):
        pass

    def partitions_for_topic(self, topic):
        return {0}

    def poll(self, timeout_ms=0, max_records=None):
        raise CorruptRecordError("Found invalid record structure: UnicodeDecodeError(...)")

    def position(self, tp, timeout_ms=None):
        return self.at[tp]

    def seek(self, tp, offset):
        self.seeks.append((tp, offset))
        self.at[tp] = offset

    def group_metadata(self):
        return ("g", 1, "m", None)


class _Search:
    def __init__(self, answers):
        self.answers, self.asked = list(answers), []

    def find(self, positions):
        self.asked.append(dict(positions))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _source(answers, positions=None) -> tuple[KafkaSource, _Consumer]:
    consumer = _Consumer(positions or {EV: 5, LAB: 2})
    source = KafkaSource(KafkaConfig(topics=["ev"], labels_topic="lab"), MappingConfig(), consumer=consumer)
    source.assigned = {EV, LAB}
    source.unreadable = _Search(answers)
    return source, consumer


def test_the_run_of_offsets_kafka_python_cannot_read_becomes_dead_letters_and_is_stepped_over():
    source, consumer = _source([(EV, 5, 8)])
    source.replay_until = {EV: 7}  # committed before a restore: offsets 5 and 6 were published then
    batch = source.poll(100)
    assert [(type(d), d.origin, d.reason, d.raw) for d in batch.items] == [
        (DeadLetter, f"ev/0@{o}", "malformed", None) for o in (5, 6, 7)]
    assert "--partition 0 --offset 6" in batch.items[1].detail
    assert batch.silent == {"ev/0@5", "ev/0@6"} and set(batch.raw) == {"ev/0@5", "ev/0@6", "ev/0@7"}
    assert consumer.seeks == [(EV, 8)] and source.positions[EV] == 8


def test_a_fault_found_nowhere_is_read_again_once_then_stands():
    source, consumer = _source([None, None])
    assert source.poll(100).items == []  # every partition sought to its position: the stuck fetch dropped
    assert sorted(consumer.seeks, key=str) == sorted([(EV, 5), (LAB, 2)], key=str)
    with pytest.raises(CorruptRecordError):
        source.poll(100)  # the same positions: not a fault that came and went


def test_a_search_that_fails_reports_the_polls_error_with_its_own_as_the_cause():
    source, _ = _source([KafkaTimeoutError("end offsets")])
    with pytest.raises(CorruptRecordError) as e:
        source.poll(100)
    assert isinstance(e.value.__cause__, KafkaTimeoutError)
