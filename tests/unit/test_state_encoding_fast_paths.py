"""The checkpoint encoder, its decoder and a contribution's digest write a list of plain values at once
(a partition's waiting-label store: 100,000 ids, published pairs, tasks): what they write and check must
be what the value-by-value walk gives, so checkpoints and changelog records written before still load and
still check, and ones written now load in the versions before."""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Mapping

import numpy as np

from stream_cl.checkpoint_format import _Encoder, decode_state, encode_state
from stream_cl.contribution import Contribution, _digest


def _walk_digest(tree) -> str:
    """The contribution digest as the format defines it: SHA-256 of each value's piece, in order (an array's
    dtype, shape and bytes; a mapping's keys' reprs and values in braces; a list's or tuple's items; any
    other value's repr), written out here piece by piece and hashed once."""
    return hashlib.sha256(b"".join(_pieces(tree))).hexdigest()


def _pieces(v):
    if isinstance(v, np.ndarray):
        yield f"a{v.dtype.str}{v.shape}".encode() + np.ascontiguousarray(v).tobytes()
    elif isinstance(v, Mapping):
        yield b"{"
        for k, x in v.items():
            yield repr(k).encode()
            yield from _pieces(x)
        yield b"}"
    elif isinstance(v, (list, tuple)):
        yield b"[" if isinstance(v, list) else b"("
        for x in v:
            yield from _pieces(x)
        yield b"]"
    else:
        yield repr(v).encode()


def _scalar(rng: random.Random):
    return rng.choice([
        lambda: rng.random(), lambda: rng.randint(-5, 10**20), lambda: f"s{rng.randint(0, 9)}", lambda: "é\ud800",
        lambda: None, lambda: True, lambda: False, lambda: np.float64(1.5), lambda: np.int64(3), lambda: math.nan,
        lambda: -math.inf, lambda: b"\x00b",
    ])()


def _tree(rng: random.Random, depth: int = 0):
    r = rng.random()
    if depth > 3 or r < 0.25:
        return _scalar(rng)
    if r < 0.5:
        return [_scalar(rng) for _ in range(rng.randint(0, 5))]
    if r < 0.6:
        return tuple(_tree(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    if r < 0.7:
        return np.arange(rng.randint(0, 4), dtype=rng.choice([np.float64, np.int64]))
    if r < 0.85:
        return [_tree(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["a", "b", 1, ("t", 2), None]): _tree(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _store_like(n: int) -> dict:
    return {"ids": [f"e{i}" for i in range(n)], "tasks": [None, "t1", 2] * (n // 3),
            "published": [None if i % 4 == 0 else ["a", 0.25 * (i % 3)] for i in range(n)],
            "early": [[f"x{i}", True, "events/0", 1.5] for i in range(n // 10)], "values": np.arange(n, dtype=float)}


def test_the_digest_is_the_element_by_element_walks_on_random_trees():
    rng = random.Random(0)
    trees = [_tree(rng) for _ in range(3000)] + [_store_like(999)]
    for tree in trees:
        assert _digest(tree) == _walk_digest(tree), tree
    # a list of one kind must not hash as the tuple of it, nor as its items spread out
    assert _digest([1, 2]) != _digest((1, 2)) != _digest([[1], 2])


def test_the_encoders_json_is_the_element_by_element_walks():
    rng = random.Random(1)
    for _ in range(2000):
        tree = [_tree(rng) for _ in range(3)] + [[math.inf, 1.0], [["a", math.nan]], [1, [2, (3,)]]]
        whole = _Encoder().encode(tree, "")
        one_by_one = [_Encoder().encode(x, f".{i}") for i, x in enumerate(tree)]
        assert json.dumps(whole, allow_nan=False) == json.dumps(one_by_one, allow_nan=False)


def test_plain_lists_round_trip_and_non_finite_floats_in_them_are_still_tagged():
    state = {**_store_like(300), "odd": [[1.0, math.inf], [math.nan], ["x", None, True]], "mixed": [1, (2, 3), b"\x01"]}
    back, _ = decode_state(encode_state(state))
    assert back["ids"] == state["ids"] and back["tasks"] == state["tasks"]
    assert back["published"] == state["published"] and back["early"] == state["early"]
    assert back["odd"][0] == [1.0, math.inf] and math.isnan(back["odd"][1][0]) and back["odd"][2] == ["x", None, True]
    assert back["mixed"] == [1, (2, 3), b"\x01"]


def test_a_contribution_with_a_label_store_round_trips_and_a_changed_id_is_refused():
    c = Contribution(identity={"kind": "analytic"}, partition="events/0", inputs={}, heads=[],
                     pending={"store": _store_like(600), "labels": None})
    raw = c.to_bytes()
    back = Contribution.from_bytes(raw)
    assert back.pending["store"]["ids"] == c.pending["store"]["ids"]
    assert _digest(back._tree()) == _walk_digest(c._tree())
    assert raw.count(b"e598") == 1
    tampered = raw.replace(b"e598", b"e589")  # the same length: the file still parses, its content changed
    try:
        Contribution.from_bytes(tampered)
    except ValueError as e:
        assert "SHA-256" in str(e)
    else:
        raise AssertionError("a contribution whose ids changed was read")
