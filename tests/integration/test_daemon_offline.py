"""The Kafka edge without a broker: client security options, the source's decode path, the sinks.

The property test here drives :class:`connectors.kafka.KafkaSource` with random record
values through a stand-in consumer: the source decodes events with
``EventDecoder.decode_json`` unchanged (its own property tests are in
tests/unit/test_decode.py) and labels with ``LabelDecoder``; whatever the bytes, each
record comes out as an event, a label or a dead letter with a reason, and nothing raises.
"""

from __future__ import annotations

import json
from collections import namedtuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import TopicPartition
from kafka.partitioner.default import DefaultPartitioner

from connectors.kafka import KafkaSource
from connectors.kafka_settings import client_options
from connectors.sinks import DeliveryError, PredictionWriter, dead_letter_record, prediction_row
from connectors.transaction import Fenced, TransactionalWriter
from stream_cl.config import ConfigError, KafkaConfig, MappingConfig
from stream_cl.events import REASONS, DeadLetter, Event, Prediction
from stream_cl.pending import LabelUpdate

Record = namedtuple("Record", "topic partition offset key value headers", defaults=((),))  # as kafka-python's ConsumerRecord


# -- client options ---------------------------------------------------------------------------
def test_plaintext_options():
    opts = client_options(KafkaConfig(bootstrap_servers="a:1, b:2", client_id="me", bootstrap_timeout_ms=5000))
    assert opts == {"bootstrap_servers": ["a:1", "b:2"], "client_id": "me", "security_protocol": "PLAINTEXT",
                    "bootstrap_timeout_ms": 5000, "reconnect_backoff_max_ms": 1000}


def test_sasl_scram_over_ssl_with_secrets_from_the_environment(tmp_path, monkeypatch):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("KAFKA_PASSWORD", "s3cret")
    cfg = KafkaConfig(bootstrap_servers=["broker:9093"], security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                      sasl_plain_username="svc", sasl_plain_password_env="KAFKA_PASSWORD", ssl_cafile=str(ca),
                      ssl_check_hostname=False)
    opts = client_options(cfg)
    assert opts["sasl_mechanism"] == "SCRAM-SHA-512" and opts["sasl_plain_password"] == "s3cret"
    assert opts["ssl_cafile"] == str(ca) and opts["ssl_check_hostname"] is False
    monkeypatch.delenv("KAFKA_PASSWORD")
    with pytest.raises(ConfigError, match="kafka.sasl_plain_password_env: environment variable 'KAFKA_PASSWORD' is not set"):
        client_options(cfg)


def test_ssl_files_must_exist():
    with pytest.raises(ConfigError, match="kafka.ssl_certfile: no such file"):
        client_options(KafkaConfig(security_protocol="SSL", ssl_certfile="/nonexistent/cert.pem"))


def test_sasl_plain_needs_credentials():
    with pytest.raises(ConfigError, match="kafka.sasl_plain_username"):
        client_options(KafkaConfig(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN"))


# -- the source's decode path -------------------------------------------------------------------
class FakeConsumer:
    """Returns the queued records once, as kafka-python's poll does (dict by partition)."""

    def __init__(self):
        self.batches = []
        self._coordinator = None

    def subscribe(self, topics=(), pattern=None, listener=None):
        self.topics, self.pattern, self.listener = topics, pattern, listener

    def poll(self, timeout_ms=0, max_records=None):
        return self.batches.pop(0) if self.batches else {}

    def partitions_for_topic(self, topic):
        return {0}

    def group_metadata(self):
        return ("g", 1, "m", None, "<stable>")


def _source(**kafka) -> tuple[KafkaSource, FakeConsumer]:
    consumer = FakeConsumer()
    cfg = KafkaConfig(topics=["ev"], labels_topic="lab", **kafka)
    source = KafkaSource(cfg, MappingConfig(max_event_bytes=4096), consumer=consumer)
    source.assigned = {TopicPartition("ev", 0), TopicPartition("lab", 0)}
    return source, consumer


def test_output_topics_may_not_be_consumed():
    with pytest.raises(ConfigError, match="both consumed and produced"):
        _source(predictions_topic="ev")
    with pytest.raises(ConfigError, match="no topics"):
        KafkaSource(KafkaConfig(), MappingConfig(), consumer=FakeConsumer())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
event_like = st.fixed_dictionaries({}, optional={"id": json_values, "x": json_values, "y": json_values,
                                                 "ts": json_values, "task": json_values})
values = st.binary(max_size=300) | (json_values | event_like).map(lambda d: json.dumps(d).encode()) | st.none()


@settings(max_examples=200, deadline=None, derandomize=True,  # the same examples on every run: CI cannot flake
          suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(st.tuples(st.sampled_from(["ev", "lab"]), values), max_size=12))
def test_any_record_value_is_an_event_a_label_or_a_dead_letter(records):
    source, consumer = _source()
    batch, next_offset = {}, {"ev": 0, "lab": 0}
    for topic, value in records:
        offset = next_offset[topic]
        next_offset[topic] += 1
        batch.setdefault(TopicPartition(topic, 0), []).append(Record(topic, 0, offset, None, value))
    consumer.batches.append(batch)
    polled = source.poll(100)
    assert len(polled.items) == len(records)
    for item in polled.items:
        if isinstance(item, DeadLetter):
            assert item.reason in REASONS and item.detail
            assert item.raw == polled.raw[item.origin][1]  # the original bytes
        else:
            assert isinstance(item, (Event, LabelUpdate))
            assert isinstance(item, LabelUpdate) == item.origin.startswith("lab/")
    assert {tp.topic: o for tp, o in source.positions.items()} == {t: n for t, n in next_offset.items() if n}


def test_records_below_the_position_are_not_returned_twice():
    source, consumer = _source()
    tp = TopicPartition("ev", 0)
    source.positions[tp] = 2
    good = json.dumps({"id": 1, "x": [1.0]}).encode()
    consumer.batches.append({tp: [Record("ev", 0, o, None, good) for o in range(5)],
                             TopicPartition("other", 0): [Record("other", 0, 0, None, good)]})  # not assigned
    polled = source.poll(100)
    assert [i.origin for i in polled.items] == ["ev/0@2", "ev/0@3", "ev/0@4"]
    assert source.positions[tp] == 5 and source.skipped == 2


# -- sinks ----------------------------------------------------------------------------------------
class FakeFuture:
    def __init__(self, error=None):
        self.exception = error

    def failed(self):
        return self.exception is not None


class FakeProducer:
    def __init__(self, partitions=(0, 1, 2), error=None):
        self.sent, self.partitions, self.error, self.flushes = [], set(partitions), error, 0

    def send(self, topic, key=None, value=None, headers=None, partition=None):
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": headers, "partition": partition})
        return FakeFuture(self.error)

    def partitions_for(self, topic):
        return self.partitions

    def flush(self, timeout=None):
        self.flushes += 1

    # a transactional producer's calls, logged in order
    def init_transactions(self):
        self.calls = ["init"]

    def begin_transaction(self):
        self.calls.append("begin")

    def send_offsets_to_transaction(self, offsets, group):
        self.calls.append(("offsets", {(tp.topic, tp.partition): om.offset for tp, om in offsets.items()}, group.generation_id))
        if self.fence:
            raise self.fence

    def commit_transaction(self):
        self.calls.append("commit")

    def abort_transaction(self):
        self.calls.append("abort")

    fence = None


def test_predictions_are_keyed_and_partitioned_like_kafkas_default_partitioner():
    producer = FakeProducer()
    writer = PredictionWriter(producer, "preds")
    writer.send_rows([prediction_row(Prediction(str(i), "cat", 0.75, "dog", None, 1.5, f"ev/0@{i}")) for i in range(50)])

    class Cluster:
        def topics(self):
            return {"preds"}

        def partitions_for_topic(self, topic):
            return {0, 1, 2}

        def available_partitions_for_topic(self, topic):
            return {0, 1, 2}

    default = DefaultPartitioner()
    for i, rec in enumerate(producer.sent):
        assert rec["key"] == str(i).encode()
        assert rec["partition"] == default.partition("preds", None, rec["key"], None, None, Cluster())
        assert json.loads(rec["value"]) == {"id": str(i), "y_pred": "cat", "proba": 0.75, "y_true": "dog",
                                            "task": None, "ts": 1.5, "origin": f"ev/0@{i}"}
    assert len({r["partition"] for r in producer.sent}) == 3


def test_dead_letters_keep_bytes_and_key_and_are_cut_to_fit():
    producer = FakeProducer()
    writer = TransactionalWriter(producer, "", "dead")
    writer.write_dead([dead_letter_record(DeadLetter(b"\xff{bad", "malformed", "invalid UTF-8 at byte 0", "ev/2@41"), b"k1", 10_000),
                       dead_letter_record(DeadLetter(b"x" * 50_000, "oversized", "too big", "ev/0@7"), None, 10_000)])
    first, second = producer.sent
    assert first["topic"] == second["topic"] == "dead"
    assert first["key"] == b"k1" and first["value"] == b"\xff{bad"
    assert dict(first["headers"]) == {"stream-cl.reason": b"malformed", "stream-cl.detail": b"invalid UTF-8 at byte 0",
                                      "stream-cl.origin": b"ev/2@41", "stream-cl.topic": b"ev",
                                      "stream-cl.partition": b"2", "stream-cl.offset": b"41"}
    assert len(second["value"]) < 10_000 and dict(second["headers"])["stream-cl.truncated-from"] == b"50000"


def test_long_headers_are_cut_between_characters():
    detail = "x" * 999 + "é" + "y" * 50  # the two bytes of "é" straddle the 1,000-byte cut
    _, _, headers = dead_letter_record(DeadLetter(b"{", "malformed", detail, "ev/0@1"))
    cut = dict(headers)["stream-cl.detail"]
    assert cut.decode("utf-8") == "x" * 999 and len(cut) <= 1000


def test_a_transaction_commits_outputs_then_offsets_and_begins_the_next():
    producer = FakeProducer()
    writer = TransactionalWriter(producer, "preds", "dead")
    writer.write_rows([prediction_row(Prediction("1", "a", 1.0))])
    assert writer.commit([("ev", 0, 7)], ("g", 3, "m", None), [("g.model", b"ev/0", b"state")]) == 1
    assert producer.calls == ["init", "begin", ("offsets", {("ev", 0): 7}, 3), "commit", "begin"]
    assert [r["topic"] for r in producer.sent] == ["preds", "g.model"]


def test_failed_deliveries_abort_the_transaction():
    producer = FakeProducer(error=OSError("broker gone"))
    writer = TransactionalWriter(producer, "preds")
    writer.write_rows([prediction_row(Prediction("1", "a", 1.0))])
    with pytest.raises(DeliveryError, match="broker gone"):
        writer.commit([("ev", 0, 1)], ("g", 1, "m", None))
    assert producer.calls[-1] == "abort" and "commit" not in producer.calls and writer.sent == 0


def test_a_stale_generation_is_fenced_and_nothing_is_committed():
    from kafka.errors import CommitFailedError

    producer = FakeProducer()
    producer.fence = CommitFailedError("generation mismatch")
    writer = TransactionalWriter(producer, "preds")
    writer.write_rows([prediction_row(Prediction("1", "a", 1.0))])
    with pytest.raises(Fenced, match="fenced"):
        writer.commit([("ev", 0, 1)], ("g", 1, "m", None))
    assert producer.calls[-1] == "abort" and "commit" not in producer.calls


def test_records_below_the_committed_offset_come_back_silent():
    source, consumer = _source()
    tp = TopicPartition("ev", 0)
    source.positions[tp], source.replay_until[tp] = 2, 4  # the state covers 2, the group committed 4
    good = json.dumps({"id": 1, "x": [1.0]}).encode()
    consumer.batches.append({tp: [Record("ev", 0, o, None, good) for o in range(2, 6)]})
    polled = source.poll(100)
    assert [i.origin for i in polled.items] == ["ev/0@2", "ev/0@3", "ev/0@4", "ev/0@5"]
    assert polled.silent == {"ev/0@2", "ev/0@3"} and tp not in source.replay_until  # caught up
    consumer.batches.append({tp: [Record("ev", 0, 6, None, good)]})
    assert source.poll(100).silent == frozenset()
