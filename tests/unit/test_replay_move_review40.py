"""Review r40: a replay buffer moved to a wider input layout (a partition's part merged into a learner
that holds more inputs, the daemon's fold at a takeover) laid all the rows it had allocated at the old
width out at the new one: its arrays held 64-71x max_bytes until a new input came, while its nbytes_
and the stream_cl_replay_buffer_bytes gauge read the rows in use."""

import numpy as np
import pytest

from stream_cl.replay import POLICIES


def _allocated(b) -> int:
    return b.X_.nbytes + b.M_.nbytes + b.time_.nbytes + b.gid_.nbytes


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_move_to_a_wider_layout_allocates_within_the_byte_budget(policy):
    b = POLICIES[policy](max_samples=2000, max_bytes=100_000, seed=0)
    d = 6
    X = np.random.default_rng(0).normal(size=(1500, d))
    b.interleave(X, np.ones_like(X, dtype=bool), ["a", "b", "c"] * 500)
    before = {"y": list(b.y_), "rows": b.X_[:b.size_].copy()}
    rows = np.arange(600, 600 + d)  # the merging learner already holds 600 other inputs
    b.move_inputs(rows)
    assert b.width_ == 606 and b.nbytes_ <= 100_000
    assert _allocated(b) <= 100_000, f"{_allocated(b):,} bytes allocated for {b.size_} rows of width {b.width_}"
    kept = b.X_[:b.size_]  # (size, 606): each kept row is one of the rows before, at its new columns
    assert not kept[:, :600].any() and all(any(np.array_equal(r, o) for o in before["rows"]) for r in kept[:, 600:])
    b.interleave(np.zeros((1, 606)), np.ones((1, 606), dtype=bool), ["a"])  # learning goes on at that width
    assert _allocated(b) <= 100_000 and b.nbytes_ <= 100_000
