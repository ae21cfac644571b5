"""The Kafka client stream-cl installs: kafka-python with its C CRC-32C and every compression codec."""

import tomllib
from importlib.metadata import requires
from pathlib import Path

import pytest
from kafka import codec
from kafka.errors import KafkaTimeoutError, UnsupportedCodecError
from kafka.record import util

from connectors.kafka import CODECS, UnreadableBatch, _unreadable, install_warnings, missing_codecs

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = "kafka-python[crc32c,lz4,snappy,zstd]"


def test_the_c_crc32c_and_the_codecs_are_runtime_dependencies_not_only_dev_ones():
    # without crc32c kafka-python verifies every fetched batch's CRC in pure Python (~4x slower
    # fetching); without a codec a topic compressed with it cannot be read at all
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.replace(" ", "").startswith(EXTRAS) for d in deps), deps
    assert any(EXTRAS in r.replace(" ", "") for r in requires("stream-cl")), "reinstall: pip install -e ."
    assert util.crc32c_c is not None and missing_codecs() == []


def test_install_warnings_name_what_is_missing_and_the_fix(monkeypatch):
    assert install_warnings() == []
    monkeypatch.setattr(util, "crc32c_c", None)
    monkeypatch.setattr(codec, "has_lz4", lambda: False)
    monkeypatch.setattr(codec, "has_zstd", lambda: False)
    crc, codecs = install_warnings()
    assert "pure Python" in crc and "pip install 'kafka-python[crc32c]'" in crc
    assert "cannot decompress lz4, zstd" in codecs and "pip install 'kafka-python[lz4,zstd]'" in codecs


@pytest.mark.parametrize("name", CODECS)
def test_an_unreadable_batch_names_the_package_of_its_codec(name):
    error = _unreadable(UnsupportedCodecError(f"Libraries for {name} compression codec not found"))
    assert isinstance(error, UnreadableBatch)
    assert f"pip install 'kafka-python[{name}]'" in str(error) and "restart" in str(error)


class _NoMetadataProducer:
    """kafka-python's behaviour for a topic the cluster neither has nor creates: a timeout."""

    def partitions_for(self, topic, **record):
        raise KafkaTimeoutError("Failed to update metadata after 60.0 secs.")

    send = partitions_for

    def init_transactions(self):
        pass

    begin_transaction = init_transactions


def test_a_topic_without_metadata_is_a_delivery_error_that_says_to_create_it():
    from connectors.sinks import DeliveryError, dead_letter_record
    from connectors.transaction import TransactionalWriter
    from stream_cl.events import DeadLetter

    writer = TransactionalWriter(_NoMetadataProducer(), "preds", "dead")
    with pytest.raises(DeliveryError, match="no metadata for topic 'preds'.*create the topic"):
        writer.write_rows([("1", "a", 0.9, "a", None, 1.0, "events/0@0")])
    with pytest.raises(DeliveryError, match="no metadata for topic 'dead'.*auto.create.topics.enable=false"):
        writer.write_dead([dead_letter_record(DeadLetter(b"{", "malformed", "bad JSON", "events/0@1"))])
