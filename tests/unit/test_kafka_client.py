"""The Kafka client stream-cl installs: kafka-python with its C CRC-32C and every compression codec."""

import json
import tomllib
from importlib.metadata import requires
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import codec
from kafka.errors import KafkaTimeoutError, UnsupportedCodecError
from kafka.record import util

from connectors.kafka import UnreadableBatch, _unreadable
from connectors.kafka_python_install import CODECS, install_warnings, missing_codecs

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


# what the predictions' JSON was before orjson wrote it: the reference it must read back as
_stdlib_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode
_labels = st.one_of(st.none(), st.text(), st.integers(), st.booleans(),
                    st.floats(allow_nan=False), st.integers(min_value=2**63, max_value=2**80))


@settings(max_examples=400, deadline=None, derandomize=True)  # the same examples on every run: CI cannot flake
@given(id_=st.one_of(st.none(), st.text()), y_pred=_labels, y_true=_labels,
       proba=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
       task=st.one_of(st.none(), st.text()), ts=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)))
def test_a_prediction_reads_back_as_the_standard_librarys_json_of_it(id_, y_pred, y_true, proba, task, ts):
    from connectors.sinks import prediction_json

    value = {"id": id_, "y_pred": y_pred, "proba": proba, "y_true": y_true, "task": task, "ts": ts, "origin": "t/0@1"}
    try:
        expected = _stdlib_json(value).encode()
    except UnicodeEncodeError:  # a lone surrogate: neither writes it
        with pytest.raises((UnicodeEncodeError, TypeError)):
            prediction_json(value)
        return
    got = prediction_json(value)
    assert json.loads(got) == json.loads(expected)
    assert list(json.loads(got)) == list(value)  # the fields in their order
    if type(y_pred) is float or type(y_true) is float:
        assert got == expected  # float labels (infinity among them) are the standard library's bytes


def test_a_numpy_label_is_written_as_the_standard_library_writes_it():
    import numpy as np

    from connectors.sinks import prediction_json

    value = {"id": "1", "y_pred": np.int64(3), "proba": 0.5, "y_true": np.float64(2.0)}
    assert prediction_json(value) == _stdlib_json(value).encode() == b'{"id":"1","y_pred":"3","proba":0.5,"y_true":2.0}'
