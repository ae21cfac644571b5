"""A state whose strings pass safetensors' 100 MB header bound (the ids and texts of 400,000 waiting
labels, long feature names) is written with its JSON tree in a tensor (format version 2); a state
that fits is written as before (version 1), which every release reads."""

import json

import numpy as np
import pytest

from stream_cl import checkpoint_format
from stream_cl.checkpoint import load_checkpoint, save_checkpoint
from stream_cl.checkpoint_format import CheckpointError, decode_state, encode_state


def _header(raw: bytes) -> dict:
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n])["__metadata__"]


def test_a_state_past_the_header_bound_is_written_and_read_back(tmp_path):
    # 460,000 ids of 220 characters: ~110 MB of JSON, past safetensors' 100 MB header bound
    ids = [f"{i:012d}-" + "u" * 207 for i in range(460_000)]
    state = {"pending": {"ids": ids, "ages": np.arange(3.0)}, "classes": [1, "1", True]}
    path = tmp_path / "ckpt-000000000001.safetensors"
    size = save_checkpoint(path, state, meta={"seq": 1})
    assert size > 100_000_000
    loaded, header = load_checkpoint(path)
    assert header["format_version"] == 2 and header["meta"] == {"seq": 1}
    assert loaded["pending"]["ids"] == ids and loaded["classes"] == [1, "1", True]
    np.testing.assert_array_equal(loaded["pending"]["ages"], np.arange(3.0))


def test_a_tree_that_fits_the_header_is_still_version_1(tmp_path):
    raw = encode_state({"w": np.ones(2), "names": ["a"]})
    header = _header(raw)
    assert header["format_version"] == "1" and json.loads(header["state"]) == {"w": {"$array": "w"}, "names": ["a"]}
    assert checkpoint_format.FORMAT_VERSION == 2 and checkpoint_format.READ_VERSIONS == (1, 2)


def test_the_tree_in_a_tensor_is_covered_by_the_digest_and_named_apart(monkeypatch):
    monkeypatch.setattr(checkpoint_format, "HEADER_TREE_MAX", 10)
    state = {"$state": np.arange(4.0), "names": ["x" * 20, 2]}  # a key that spells the tree's own name
    raw = encode_state(state)
    header = _header(raw)
    assert header["format_version"] == "2" and "state" not in header and header["state_tensor"] == "$state#2"
    back, _ = decode_state(raw)
    assert back["names"] == ["x" * 20, 2]
    np.testing.assert_array_equal(back["$state"], np.arange(4.0))
    at = raw.rindex(b'"names"')  # a flipped bit in the tree: corrupt, not another model
    flipped = raw[:at] + b'"namez"' + raw[at + 7 :]
    with pytest.raises(CheckpointError, match="corrupt: its content does not match the SHA-256"):
        decode_state(flipped)


def test_a_release_that_reads_version_1_only_names_both_versions(monkeypatch):
    monkeypatch.setattr(checkpoint_format, "HEADER_TREE_MAX", 10)
    raw = encode_state({"names": ["x" * 20]})
    monkeypatch.setattr(checkpoint_format, "READ_VERSIONS", (1,))
    with pytest.raises(CheckpointError, match="format_version 2, this stream-cl reads versions 1; run the stream-cl "
                                              "release that wrote it"):
        decode_state(raw)


def test_a_state_the_writer_refuses_is_a_checkpoint_error(monkeypatch):
    import safetensors.numpy

    def refuse(tensors, metadata=None):
        raise RuntimeError("Error while serializing: header too large")

    monkeypatch.setattr(safetensors.numpy, "save", refuse)
    with pytest.raises(CheckpointError, match="state cannot be written as a checkpoint .*header too large"):
        encode_state({"v": 1})
