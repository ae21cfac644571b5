"""Checkpoints, from review 22 (r7):

1. a partition whose checkpoint offset is below its log start resumes there, never past the group's
   committed offset while that is in range, and says what was deleted (the broker side is in
   tests/integration/test_checkpoint_log_start.py);
2. a checkpoint of another ``model.kind`` is refused naming ``model.kind``, not ``model.forgetting``
   (whose default depends on the kind);
3. a flipped bit in the header's ``format`` or ``format_version`` reads as corrupt (move it away), not
   as a foreign file or another version (start afresh): the digest, which covers them, is checked first;
4. ``CheckpointStore.load_latest()`` on a directory a writer with ``keep = 1`` rotates reads the new
   newest file when the one it listed is deleted before it is read.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from kafka import TopicPartition

from stream_cl import checkpoint_format
from stream_cl.checkpoint import CheckpointStore, load_checkpoint
from stream_cl.checkpoint_format import CheckpointError, encode_state
from stream_cl.config import ConfigError, load_config_dict

MOVE_AWAY = "; move it away to resume from the one before"


# -- 1: a checkpoint offset below the log start ---------------------------------------------------
@pytest.mark.parametrize("state, committed, start, resume, fields", [
    (1000, 3000, 500, 1000, None),  # in range: resumes at the checkpoint, nothing said
    (1000, 3000, 1000, 1000, None),
    (1000, 3000, 2000, 2000, {"not_learned": "1000..1999"}),  # below, the committed offset is not
    (1000, 3000, 3000, 3000, {"not_learned": "1000..2999"}),
    (1000, 3000, 3500, 3500, {"not_learned": "1000..2999", "never_handled": "3000..3499"}),
    (1000, None, 1500, 1500, {"never_handled": "1000..1499"}),  # no committed offset: the state is all we know
])
def test_a_checkpoint_offset_below_the_log_start_resumes_at_the_first_remaining_record(
        caplog, state, committed, start, resume, fields):
    from connectors.kafka_assignment import resume_offset

    tp = TopicPartition("events", 3)
    with caplog.at_level(logging.WARNING, logger="stream_cl.kafka"):
        assert resume_offset(tp, state, committed, start) == resume
    if fields is None:
        assert not caplog.records
        return
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.getMessage() == "checkpoint_below_log_start"
    logged = record.stream_cl_fields
    assert {k: logged[k] for k in ("partition", "checkpoint_offset", "log_start", "committed")} == {
        "partition": "events/3", "checkpoint_offset": state, "log_start": start, "committed": committed}
    assert {k: logged[k] for k in ("not_learned", "never_handled") if k in logged} == fields
    assert f"records {state}..{start - 1} of events/3 were deleted" in logged["detail"]
    assert "retention.ms" in logged["detail"]


# -- 2: another model kind --------------------------------------------------------------------------
@pytest.mark.parametrize("written, now", [("analytic", "online"), ("analytic", "trainable"),
                                          ("online", "analytic"), ("trainable", "analytic"),
                                          ("online", "trainable")])
def test_a_checkpoint_of_another_model_kind_is_refused_naming_model_kind(tmp_path, written, now):
    from connectors.state import check_settings

    def config(kind):
        return load_config_dict({"model": {"kind": kind, "device": "cpu"}, "kafka": {"topics": ["t"]},
                                 "checkpoint": {"dir": str(tmp_path)}})

    saved = {"model_config": dataclasses.asdict(config(written).model)}  # what the daemon keeps
    check_settings(config(written), saved, "ckpt")  # the same kind resumes
    with pytest.raises(ConfigError) as e:
        check_settings(config(now), saved, "ckpt")
    assert str(e.value) == (
        f"model.kind: the checkpoint ckpt holds a model of kind {written!r}, the config says {now!r}; a model "
        f"cannot resume from another kind's checkpoint: set kind = {written!r} to resume it, or point "
        f"checkpoint.dir at an empty directory to start a new {now!r} model")


def test_another_model_setting_is_still_named_when_the_kind_is_the_same(tmp_path):
    from connectors.state import check_settings

    def config(**model):
        return load_config_dict({"model": {"kind": "online", "device": "cpu", **model}, "kafka": {"topics": ["t"]},
                                 "checkpoint": {"dir": str(tmp_path)}})

    saved = {"model_config": dataclasses.asdict(config().model)}
    with pytest.raises(ConfigError, match=r"^model\.forgetting: the checkpoint ckpt was written with forgetting"):
        check_settings(config(forgetting=[1.0]), saved, "ckpt")


# -- 3: a flipped bit in the header's format fields ---------------------------------------------
def _flips(raw: bytes, text: bytes):
    """Every single-bit flip of the bytes of ``text`` (its first occurrence) in ``raw``."""
    at = raw.index(text)
    for i in range(at, at + len(text)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[i] ^= 1 << bit
            yield bytes(flipped)


@pytest.mark.parametrize("value", [b'"stream-cl-checkpoint"', b'"format_version":"1"'])
def test_every_flipped_bit_in_the_format_fields_reads_as_a_file_to_move_away(tmp_path, value):
    store = CheckpointStore(tmp_path, keep=3)
    store.save({"v": 1})
    newest = store.save({"v": 2, "w": np.arange(3.0)}).path
    good = newest.read_bytes()
    messages = []
    for raw in _flips(good, value.split(b":")[-1]):  # the value only: a flipped key is an unknown key
        newest.write_bytes(raw)
        with pytest.raises(CheckpointError) as e:
            CheckpointStore(tmp_path).load_latest()
        messages.append(str(e.value))
    assert len(messages) == 8 * len(value.split(b":")[-1])
    assert all(m.startswith(f"{newest}: ") and m.endswith(MOVE_AWAY) for m in messages), messages
    assert not any("afresh" in m or "format_version" in m or "not a stream-cl" in m for m in messages)
    # refused as corrupt, or as unreadable where the flip breaks the header's JSON (a quote, a byte not UTF-8)
    corrupt = [m for m in messages if "corrupt: its content does not match the SHA-256" in m]
    assert all(m in corrupt or ": not a readable checkpoint (" in m for m in messages), messages
    assert len(corrupt) >= 6, messages  # those that leave the header readable: the digest names them
    newest.write_bytes(good)
    assert CheckpointStore(tmp_path).load_latest()[0]["v"] == 2  # the one before is good: the file, not the model


def test_a_newer_format_version_is_still_refused_naming_both_versions(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path)
    with monkeypatch.context() as m:  # a later release writes (and signs) version 3
        m.setattr(checkpoint_format, "_version_written", lambda in_tensor: 3)
        store.save({"v": 1})
    with pytest.raises(CheckpointError, match="format_version 3, this stream-cl reads versions 1, 2; run the "
                                              "stream-cl release that wrote it"):
        store.load_latest()


def test_a_file_without_a_digest_loads_as_before_and_a_foreign_one_is_named(tmp_path):
    # files written before the digest existed: loaded unchecked, their header checked as before
    path = tmp_path / "ckpt-000000000001.safetensors"
    path.write_bytes(encode_state({"v": 1, "w": np.ones(2)}, digest=False))
    state, info = CheckpointStore(tmp_path).load_latest()
    assert state["v"] == 1 and info.seq == 1 and info.size_bytes == path.stat().st_size
    from safetensors.numpy import save

    path.write_bytes(save({"w": np.ones(2)}, metadata={"format": "pytorch"}))  # a model's weights, not ours
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert str(e.value) == f"{path}: not a stream-cl checkpoint (format 'pytorch'){MOVE_AWAY}"


# -- 4: a reader racing a writer's retention --------------------------------------------------
class _RacedStore(CheckpointStore):
    """A reader whose listing is followed, ``races`` times, by a writer's save that deletes what was listed."""

    def __init__(self, directory, writer: CheckpointStore, races: int):
        super().__init__(directory)
        self.writer, self.races = writer, races

    def latest(self) -> Path | None:
        path = super().latest()
        if self.races:
            self.races -= 1
            self.writer.save({"v": self.writer.list()[-1][0] + 1})  # keep = 1: the listed file is deleted
        return path


def test_a_newest_file_deleted_between_listing_and_reading_is_passed_over(tmp_path):
    writer = CheckpointStore(tmp_path, keep=1)
    writer.save({"v": 1})
    reader = _RacedStore(tmp_path, writer, races=3)
    state, info = reader.load_latest()  # was: CheckpointError "...FileNotFoundError...; move it away"
    assert (state["v"], info.seq) == (4, 4) and info.path.name == "ckpt-000000000004.safetensors"
    assert info.size_bytes == info.path.stat().st_size


def test_a_newest_file_deleted_after_it_was_read_still_loads(tmp_path, monkeypatch):
    writer = CheckpointStore(tmp_path, keep=1)
    first = writer.save({"v": 1}).path
    size = first.stat().st_size
    read_bytes = Path.read_bytes

    def read_then_rotate(self):  # the writer's next save deletes the file right after it was read
        raw = read_bytes(self)
        if self == first:
            writer.save({"v": 2})
        return raw

    monkeypatch.setattr(Path, "read_bytes", read_then_rotate)
    state, info = CheckpointStore(tmp_path).load_latest()  # was: a raw FileNotFoundError from stat()
    assert (state["v"], info.path, info.seq) == (1, first, 1) and not first.exists()
    assert info.size_bytes == size


def test_a_writer_faster_than_every_read_is_an_error_that_says_so(tmp_path):
    writer = CheckpointStore(tmp_path, keep=1)
    writer.save({"v": 1})
    reader = _RacedStore(tmp_path, writer, races=10**6)
    with pytest.raises(CheckpointError) as e:
        reader.load_latest()
    assert str(e.value).startswith(f"{tmp_path}: the newest checkpoint was deleted before it could be read, ")
    assert "checkpoint.keep" in str(e.value) and "move it away" not in str(e.value)


def test_a_newest_file_that_cannot_be_read_is_still_named_with_the_fix(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save({"v": 1})
    newest = store.save({"v": 2}).path
    newest.write_bytes(b"")
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(newest))}: not a readable checkpoint .*; move it away"):
        store.load_latest()
    newest.unlink()
    newest.mkdir()  # an OSError other than "gone": not retried, named with the fix
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(newest))}: not a readable checkpoint \(IsADirectoryError"):
        store.load_latest()
