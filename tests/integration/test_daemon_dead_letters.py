"""Every kind of bad input goes to the dead-letter topic whole, explained, and the daemon keeps going.

One daemon serves the module (its topics are unique to it); each test sends one bad
record followed by a good one, and checks the dead letter, the good record's prediction,
and that the daemon is still running.
"""

from __future__ import annotations

import json

import pytest
from daemon_kit import Kit, wait_for

BIG = 3 * 1024 * 1024  # over mapping.max_event_bytes (1 MiB) and Kafka's default 1 MiB message limit


@pytest.fixture(scope="module")
def env(kafka_bootstrap, tmp_path_factory):
    kit = Kit(kafka_bootstrap, tmp_path_factory.mktemp("dead-letters"))
    events = kit.topic("dlq-events", partitions=2)
    preds, dead = kit.topic("dlq-pred"), kit.topic("dlq-dead")
    config = kit.config(
        "dlq", [events],
        mapping={"unknown_fields": "reject"},
        # the dev broker takes 16 MiB records: the oversized dead letter keeps all of its bytes
        # (max_partition_fetch_bytes stays 1 MiB: a larger record is still fetched whole)
        kafka={"predictions_topic": preds, "dead_letter_topic": dead, "max_message_bytes": 16 * 1024 * 1024},
    )
    daemon = kit.start(config)
    # a first good event: the daemon is up and has a model
    kit.produce(events, [("warmup", {"id": "warmup", "x": {"a": 1.0, "b": 0.0}, "y": "pos"})])
    readers = {"pred": kit.reader(preds), "dead": kit.reader(dead)}
    readers["pred"].until(lambda recs: any(r.key == b"warmup" for r in recs), 90, "the first prediction")
    yield kit, events, readers, daemon
    assert daemon.alive, daemon.log()[-3000:]
    assert daemon.terminate() == 0
    status = daemon.status()
    kit.close()
    assert status["state"] == "stopped"


CASES = {
    "too_deep": b'{"id": "w1", "x": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}, "b": 2}, "y": "pos"}',
    "non_finite": b'{"id": "n1", "x": {"a": NaN, "b": Infinity}, "y": "pos"}',
    "missing_features": b'{"id": "m1", "y": "pos"}',
    "unknown_field": b'{"id": "u1", "x": {"a": 1}, "y": "pos", "colour": "red"}',
    "oversized": b'{"id": "o1", "x": {"a": 1}, "y": "pos", "pad": "' + b"x" * BIG + b'"}',
    "malformed": b'{"id": "j1", "x": {"a": 1}, "y": "pos"',
}


@pytest.mark.parametrize("reason", list(CASES))
def test_bad_input_becomes_a_dead_letter(env, reason):
    kit, events, readers, daemon = env
    raw = CASES[reason]
    key = f"bad-{reason}".encode()
    good = {"id": f"after-{reason}", "x": {"a": 0.5, "b": 0.5}, "y": "neg"}
    (bad_meta, _) = kit.produce(events, [(key, raw), (good["id"], good)], partition=1)

    (letter,) = readers["dead"].until(lambda recs: [r for r in recs if r.key == key], 60, f"the {reason} dead letter")
    headers = dict(letter.headers)
    assert headers["stream-cl.reason"] == reason.encode()
    assert headers["stream-cl.detail"]
    assert headers["stream-cl.topic"] == events.encode()
    assert headers["stream-cl.partition"] == b"1"
    assert headers["stream-cl.offset"] == str(bad_meta.offset).encode()
    assert letter.value == raw  # the original bytes, whole

    # the good event after it was predicted, and the bad one never reached the model
    readers["pred"].until(lambda recs: any(r.key == good["id"].encode() for r in recs), 60, "the next prediction")
    assert not any(r.key == key for r in readers["pred"].records)
    wait_for(lambda: daemon.status().get("dead_letters", {}).get(reason), 30, f"{reason} in the daemon's counters")
    assert daemon.alive and daemon.status()["state"] == "running"


def test_tombstones_become_dead_letters_keyed_or_not_and_the_daemon_goes_on(env):
    """A null value (a tombstone) is a malformed dead letter saying so, with a null value where the record has a
    key (review r56) and an empty one where it has none: kafka-python refuses a record with neither, and the
    daemon once started over onto such a record forever (reviews r57, r58)."""
    from kafka import KafkaProducer

    from connectors.kafka import TOMBSTONE

    kit, events, readers, daemon = env
    keyed = kit.producer.send(events, key=b"tomb-key", value=None, partition=1).get(timeout=60)
    keyless_producer = KafkaProducer(bootstrap_servers=kit.bootstrap, key_serializer=lambda key: None)
    try:  # (its key serializer turns the placeholder into no key: send itself refuses neither key nor value)
        keyless = keyless_producer.send(events, key=b"placeholder", value=None, partition=1).get(timeout=60)
    finally:
        keyless_producer.close(timeout=10)
    good = {"id": "after-tombstones", "x": {"a": 0.5, "b": 0.5}, "y": "neg"}
    kit.produce(events, [(good["id"], good)], partition=1)

    where = {(events.encode(), b"1", str(m.offset).encode()) for m in (keyed, keyless)}

    def both(records):
        found = [r for r in records if tuple(dict(r.headers).get(f"stream-cl.{h}") for h in
                                             ("topic", "partition", "offset")) in where]
        return found if len(found) == 2 else None

    letters = readers["dead"].until(both, 60, "the tombstones' dead letters")
    by_offset = {int(dict(r.headers)["stream-cl.offset"]): r for r in letters}
    assert (by_offset[keyed.offset].key, by_offset[keyed.offset].value) == (b"tomb-key", None)
    assert (by_offset[keyless.offset].key, by_offset[keyless.offset].value) == (None, b"")
    assert all(dict(r.headers)["stream-cl.detail"] == TOMBSTONE.encode() for r in letters)
    readers["pred"].until(lambda recs: any(r.key == good["id"].encode() for r in recs), 60, "the next prediction")
    assert daemon.alive and daemon.status()["state"] == "running"


def test_a_dead_letter_keeps_the_records_own_headers_and_explains_it_anew(env):
    """The input record's headers (a trace id, a schema id) travel with its dead letter, first and in order; one it
    carried under our own names (a dead letter fed back) is left out, so the reason read is this refusal's."""
    kit, events, readers, daemon = env
    own = [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), ("schema-id", b"7"),
           ("stream-cl.reason", b"too_deep"), ("empty", b"")]
    bad = kit.producer.send(events, key=b"with-headers", value=b'{"id": "h1", "x": {"a": 1}', headers=own,
                            partition=1).get(timeout=60)
    good = {"id": "after-headers", "x": {"a": 0.5, "b": 0.5}, "y": "neg"}
    kit.produce(events, [(good["id"], good)], partition=1)

    (letter,) = readers["dead"].until(lambda recs: [r for r in recs if r.key == b"with-headers"], 60,
                                      "the dead letter of the record with headers")
    names = [name for name, _ in letter.headers]
    assert letter.headers[:3] == [own[0], own[1], own[3]]  # the record's own, in order, less ours
    assert names.count("stream-cl.reason") == 1 and dict(letter.headers)["stream-cl.reason"] == b"malformed"
    assert dict(letter.headers)["stream-cl.offset"] == str(bad.offset).encode()
    readers["pred"].until(lambda recs: any(r.key == good["id"].encode() for r in recs), 60, "the next prediction")
    assert daemon.alive and daemon.status()["state"] == "running"


class _NotUtf8(str):
    """A header name kafka-python writes as bytes that are not UTF-8, as a Go client (franz-go, sarama) may."""

    def encode(self, *args, **kwargs) -> bytes:
        return b"\xff\xfetrace"


def test_a_record_kafka_python_cannot_parse_is_stepped_over_as_a_dead_letter(env):
    """kafka-python raises CorruptRecordError for a header name that is not UTF-8, naming no partition, and its
    next poll loops for ever: the daemon stopped (exit 1) at that record at every restart. It is now found,
    stepped over and dead-lettered under its offset, and the records after it are read."""
    kit, events, readers, daemon = env
    bad = kit.producer.send(events, key=b"unparsable", value=b'{"id": "u1", "x": {"a": 1}}',
                            headers=[(_NotUtf8("trace"), b"1")], partition=1).get(timeout=60)
    good = {"id": "after-unparsable", "x": {"a": 0.5, "b": 0.5}, "y": "neg"}
    kit.produce(events, [(good["id"], good)], partition=1)

    origin = f"{events}/1@{bad.offset}".encode()
    (letter,) = readers["dead"].until(lambda recs: [r for r in recs if dict(r.headers)["stream-cl.origin"] == origin],
                                      60, "the unparsable record's dead letter")
    headers = dict(letter.headers)
    assert headers["stream-cl.reason"] == b"malformed" and headers["stream-cl.offset"] == str(bad.offset).encode()
    assert b"kafka-python cannot read from this offset" in headers["stream-cl.detail"] and letter.value == b""
    readers["pred"].until(lambda recs: any(r.key == good["id"].encode() for r in recs), 60, "the next prediction")
    assert daemon.alive and daemon.status()["state"] == "running"


def test_records_after_an_unparsable_one_in_its_batch_each_have_one_output(env):
    """kafka-python parses a record batch whole: the records after an unparsable one in its batch cannot be read by
    it either (review r61). Each offset still has exactly one output, a prediction or a dead letter, the unparsable
    record's a dead letter, and the next batch is read."""
    from kafka import KafkaProducer

    kit, events, readers, daemon = env
    batching = KafkaProducer(bootstrap_servers=kit.bootstrap, linger_ms=500, batch_size=1 << 20)
    try:
        names = [f"batch-{i}" for i in range(6)]
        futures = [batching.send(events, key=name.encode(), partition=1,
                                 value=json.dumps({"id": name, "x": {"a": 0.1 * i, "b": 1.0}, "y": "neg"}).encode(),
                                 headers=[(_NotUtf8("trace"), b"1")] if i == 2 else [])
                   for i, name in enumerate(names)]
        batching.flush(timeout=60)
        offsets = [f.get(timeout=60).offset for f in futures]
    finally:
        batching.close(timeout=10)
    after = {"id": "after-batch", "x": {"a": 0.5, "b": 0.5}, "y": "neg"}
    kit.produce(events, [(after["id"], after)], partition=1)
    readers["pred"].until(lambda recs: any(r.key == after["id"].encode() for r in recs), 60, "the next batch's prediction")

    def where(r):
        return int(dict(r.headers)["stream-cl.offset"]) if dict(r.headers).get("stream-cl.topic") == events.encode() else None

    predicted = [name for name in names if any(r.key == name.encode() for r in readers["pred"].records)]

    def dead_letters(recs):
        dead = sorted(o for o in map(where, recs) if o is not None and offsets[0] <= o <= offsets[-1])
        return dead if offsets[2] in dead and len(predicted) + len(dead) >= len(names) else None

    dead = readers["dead"].until(dead_letters, 60, "the dead letters of the batch")
    assert predicted == names[:2] + [n for n, o in zip(names, offsets) if o not in dead and names.index(n) > 2]
    assert offsets[2] in dead and len(predicted) + len(dead) == len(names)  # one output an offset, none twice
    assert daemon.alive and daemon.status()["state"] == "running"


def test_unparsable_records_between_transaction_markers_and_after_an_aborted_one_do_not_stall_the_daemon(env):
    """A transactional producer (read_committed, the default): a marker just before an unparsable batch left
    kafka-python's failed fetch where the next read began, and seeking there looped for ever (review r62). Each
    unparsable record is a dead letter, the aborted one has no output, and the committed records after them are
    predicted."""
    from kafka import KafkaProducer

    kit, events, readers, daemon = env
    tx = KafkaProducer(bootstrap_servers=kit.bootstrap, transactional_id=f"it-unparsable-{events}")
    try:
        tx.init_transactions()
        sent = []
        for i, (bad, commit) in enumerate([(False, False), (True, True), (True, True), (False, True)]):
            tx.begin_transaction()
            name = f"tx-{i}"
            sent.append(tx.send(events, key=name.encode(), partition=1, headers=[(_NotUtf8("trace"), b"1")] if bad else [],
                                value=json.dumps({"id": name, "x": {"a": 0.3, "b": 0.7}, "y": "neg"}).encode()).get(60))
            (tx.commit_transaction if commit else tx.abort_transaction)()
    finally:
        tx.close(timeout=10)
    readers["pred"].until(lambda recs: any(r.key == b"tx-3" for r in recs), 60, "the committed record's prediction")
    wanted = {str(sent[1].offset).encode(), str(sent[2].offset).encode()}

    def both(recs):
        found = {dict(r.headers)["stream-cl.offset"] for r in recs if dict(r.headers).get("stream-cl.topic") == events.encode()}
        return wanted <= found or None

    readers["dead"].until(both, 60, "the unparsable records' dead letters")
    assert not any(r.key in (b"tx-0", b"tx-1", b"tx-2") for r in readers["pred"].records)  # aborted, or unparsable
    assert daemon.alive and daemon.status()["state"] == "running"
