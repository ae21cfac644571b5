"""Compressed topics against the real broker: every codec Kafka has is read, predictions go out
compressed as configured, and a codec missing from the install stops the daemon with the fix named.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from daemon_kit import Kit, event
from kafka import KafkaProducer, codec
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.record import MemoryRecords

from connectors.daemon_run import run_daemon
from stream_cl.config import load_config

CODECS = ("gzip", "snappy", "lz4", "zstd")
N = 200


def produce_compressed(kit: Kit, topic: str, codec_name: str, n: int) -> None:
    rng = random.Random(7)
    producer = KafkaProducer(bootstrap_servers=kit.bootstrap, compression_type=codec_name, linger_ms=20)
    try:
        for i in range(n):
            doc = event(i, rng)
            doc["id"] = f"{codec_name}-{i}"
            producer.send(topic, key=doc["id"].encode(), value=json.dumps(doc).encode())
        producer.flush(timeout=60)
    finally:
        producer.close()


def batch_codecs(kit: Kit, topic: str) -> set[int]:
    """The compression attribute of every data batch on disk of ``topic``/0 (the broker is local); transaction
    markers (control batches, never compressed) are not data."""
    configs = kit.admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")
    folder = Path(configs["broker"]["1"]["log.dirs"]["value"].split(",")[0]) / f"{topic}-0"
    records = MemoryRecords(b"".join(p.read_bytes() for p in sorted(folder.glob("*.log"))))
    found = set()
    while records.has_next():
        batch = records.next_batch()
        if not batch.is_control_batch:
            found.add(batch.compression_type)
    return found


def test_the_daemon_reads_every_codec_and_publishes_compressed_predictions(kafka_bootstrap, tmp_path):
    kit = Kit(kafka_bootstrap, tmp_path)
    try:
        topics = {name: kit.topic(f"comp-{name}") for name in CODECS}
        for name, topic in topics.items():
            produce_compressed(kit, topic, name, N)
        preds = kit.topic("comp-pred")
        config = kit.config("comp", list(topics.values()),
                            kafka={"predictions_topic": preds, "compression_type": "zstd", "stop_at_end": True})
        daemon = kit.start(config)
        assert daemon.wait(180) == 0, daemon.log()[-3000:]
        for topic in topics.values():
            assert kit.committed(f"it-comp-{kit.tag}", topic) == {0: N}
        reader = kit.reader(preds)
        reader.until(lambda recs: len(recs) >= len(CODECS) * N, 60, "every prediction")
        assert {r.key.decode() for r in reader.records} == {f"{c}-{i}" for c in CODECS for i in range(N)}
        assert batch_codecs(kit, topics["lz4"]) == {3}  # the input really was lz4 (Kafka's codec ids: 1..4)
        assert batch_codecs(kit, preds) == {4}  # every prediction batch went out zstd-compressed
    finally:
        kit.close()


def test_a_codec_missing_from_the_install_stops_the_daemon_with_the_fix_and_commits_nothing(
        kafka_bootstrap, tmp_path, monkeypatch, caplog):
    kit = Kit(kafka_bootstrap, tmp_path)
    try:
        topic = kit.topic("nolz4")
        produce_compressed(kit, topic, "lz4", N)
        path, status = kit.config("nolz4", [topic], kafka={"stop_at_end": True})
        monkeypatch.setattr(codec, "has_lz4", lambda: False)  # as if the lz4 package were not installed
        with caplog.at_level(logging.WARNING):
            rc = run_daemon(load_config(path))
        assert rc == 1
        assert "cannot decompress lz4 here" in caplog.text  # warned at start
        assert "Libraries for lz4 compression codec not found" in caplog.text
        assert "pip install 'kafka-python[lz4]'" in caplog.text  # the failure names the fix
        assert kit.committed(f"it-nolz4-{kit.tag}", topic) == {}
    finally:
        kit.close()
