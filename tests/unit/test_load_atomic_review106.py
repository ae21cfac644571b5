"""Review r106: ReplayBuffer.load_state_dict refuses a state "before anything changes" (47c8c09), but
the groups' counts were checked after ``_reset()`` and the rows were installed: a refused state left
the buffer holding the refused state's rows and keys with no counts (its next offer failed)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from stream_cl.replay import ClassBalancedReplay


@pytest.mark.parametrize("field, value", [("key_seen", [-1, 4]), ("key_last", [0, -3]), ("retired", [["z", -2, False]]),
                                          ("key_seen", [1])])
def test_a_refused_replay_state_changes_nothing(field, value):
    X = np.arange(8.0)[:, None]
    M = np.ones_like(X, dtype=bool)
    buf = ClassBalancedReplay(5, seed=0)
    buf.interleave(X, M, list("aabbabab"))
    before = copy.deepcopy(buf.state_dict())
    other = ClassBalancedReplay(5, seed=0)
    other.interleave(X + 100, M, list("ccddcdcd"))
    bad = other.state_dict()
    bad[field] = value
    with pytest.raises(ValueError):
        buf.load_state_dict(bad)
    after = buf.state_dict()
    assert after["keys"] == before["keys"] and after["key_seen"] == before["key_seen"]
    np.testing.assert_array_equal(after["X"], before["X"])
    buf.interleave(X, M, list("abababab"))  # still a working buffer
