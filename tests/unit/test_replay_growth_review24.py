"""The replay buffer's arrays grow with the rows it holds, not toward max_samples at every offer
(review 24: a large replay.max_samples doubled the arrays at each of the first offers, so twenty
events asked for a gigabyte)."""

import numpy as np

from stream_cl.replay.buffers import ReplayBuffer


def test_the_arrays_double_only_when_full():
    buf = ReplayBuffer(max_samples=2**31 - 1, seed=0)
    rng = np.random.default_rng(0)
    for i in range(40):
        buf.offer(rng.normal(size=8), np.ones(8, dtype=bool), i % 3)
        assert buf.size_ == i + 1
        assert buf.X_.shape[0] <= max(16, 2 * buf.size_)  # doubling: never more than twice what is held
    assert buf.X_.shape == (64, 8)  # 16, 32, 64 rows as 17 and 33 rows arrived

