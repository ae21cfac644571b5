"""A poll that kafka-python fails with CorruptRecordError (reviews r61, r62): the run of offsets it cannot read
becomes dead letters, the fetch it failed in is dropped and the consumer moves past them; a fault found nowhere, a
search that fails, or a fetcher not as kafka-python 3.0 keeps it, stops the daemon with the poll's error (a restart
makes a new consumer). The search against a real broker is in tests/integration/test_daemon_dead_letters.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from kafka import TopicPartition
from kafka.errors import CorruptRecordError, KafkaTimeoutError

from connectors.kafka import KafkaSource
from connectors.unreadable_record import drop_failed_fetch
from stream_cl.config import KafkaConfig, MappingConfig
from stream_cl.events import DeadLetter

EV = TopicPartition("ev", 0)
LAB = TopicPartition("lab", 0)


class _Consumer:
    def __init__(self, positions: dict):
        self.at, self.seeks = dict(positions), []
        self._fetcher = SimpleNamespace(_next_partition_records=_Failed())  # as kafka-python's, after the failure

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


class _Failed:
    """kafka-python's fetched records of a partition whose parsing raised: the next poll would loop on them."""

    drained = False

    def drain(self):
        self.drained = True


class _Search:
    def __init__(self, answers):
        self.answers, self.asked = list(answers), []

    def find(self, positions, max_run):
        self.asked.append((dict(positions), max_run))
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
    assert source.unreadable.asked == [({EV: 5, LAB: 2}, 100)]  # a run of at most the poll's max_records
    source.unreadable.answers = [(EV, 8, 9)]
    source.poll(50_000)
    assert source.unreadable.asked[-1][1] == 10_000  # and of MAX_RUN


def test_the_failed_fetch_is_dropped_before_the_consumer_reads_on():
    source, consumer = _source([(EV, 5, 6)])
    failed = consumer._fetcher._next_partition_records
    source.poll(100)
    assert failed.drained and consumer._fetcher._next_partition_records is None


@pytest.mark.parametrize("found", [None, (EV, 5, 6)])
def test_found_nowhere_or_a_fetcher_not_as_expected_the_error_stands(found):
    source, consumer = _source([found])
    failed = consumer._fetcher._next_partition_records
    if found is not None:
        del consumer._fetcher  # another kafka-python: its failed fetch cannot be dropped, so the consumer is not read
    with pytest.raises(CorruptRecordError):
        source.poll(100)
    assert consumer.seeks == [] and (found is not None or failed.drained)  # dropped, should it be read again


def test_drop_failed_fetch_says_where_kafka_pythons_fetcher_is_not_as_it_reads_it():
    assert drop_failed_fetch(SimpleNamespace(_fetcher=SimpleNamespace(_next_partition_records=None)))
    assert not drop_failed_fetch(SimpleNamespace()) and not drop_failed_fetch(SimpleNamespace(_fetcher=object()))


def test_a_search_that_fails_reports_the_polls_error_with_its_own_as_the_cause():
    source, consumer = _source([KafkaTimeoutError("end offsets")])
    with pytest.raises(CorruptRecordError) as e:
        source.poll(100)
    assert isinstance(e.value.__cause__, KafkaTimeoutError) and consumer._fetcher._next_partition_records is None
