"""A compensator that met design blocks before any labelled row (its statistics (0, d) per block)
restores, directly and through a checkpoint's bytes: the load reshaped them to (0, -1), which
numpy refuses for no values ("cannot reshape array of size 0 into shape (0,newaxis)")."""

import numpy as np

from stream_cl.checkpoint_format import decode_state, encode_state
from stream_cl.imbalance import ImbalanceCompensator


def _unlabelled_only() -> ImbalanceCompensator:
    comp = ImbalanceCompensator(seed=0)
    comp.step([np.ones((2, 3)), np.ones((2, 1))], [None, None])  # two blocks, no class yet
    assert [m.shape for m in comp.mean_] == [(0, 3), (0, 1)]
    return comp


def test_blocks_without_classes_restore_with_their_widths():
    state = _unlabelled_only().state_dict()
    back = ImbalanceCompensator(seed=0).load_state_dict(state)
    assert [m.shape for m in back.mean_] == [(0, 3), (0, 1)] and [m.shape for m in back.m2_] == [(0, 3), (0, 1)]


def test_blocks_without_classes_restore_from_a_checkpoints_bytes_and_learn_on():
    state, _ = decode_state(encode_state({"imbalance": _unlabelled_only().state_dict()}))
    back = ImbalanceCompensator(seed=0).load_state_dict(state["imbalance"])
    assert [m.shape for m in back.mean_] == [(0, 3), (0, 1)]
    back.step([np.ones((1, 3)), np.ones((1, 1))], ["a"])  # the next labelled row finds its blocks as they were
    assert back.classes_ == ["a"] and [m.shape for m in back.mean_] == [(1, 3), (1, 1)]


def test_a_flat_saved_block_takes_its_width_from_the_classes_or_its_columns():
    comp = ImbalanceCompensator(seed=0)
    comp.step([np.arange(6.0).reshape(2, 3)], ["a", "b"])
    state = comp.state_dict()
    flat = {**state, "mean": [m.ravel().tolist() for m in state["mean"]], "m2": [m.ravel().tolist() for m in state["m2"]]}
    back = ImbalanceCompensator(seed=0).load_state_dict(flat)  # (6,) over two classes: (2, 3)
    assert [m.shape for m in back.mean_] == [(2, 3)] and np.array_equal(back.mean_[0], comp.mean_[0])
    empty = {**_unlabelled_only().state_dict(), "mean": [[], []], "m2": [[], []], "columns": [[0, 1, 2], [3]]}
    assert [m.shape for m in ImbalanceCompensator(seed=0).load_state_dict(empty).mean_] == [(0, 3), (0, 1)]


def test_a_state_with_fewer_column_orders_than_blocks_is_refused():
    # zip stopped at the shorter list, dropping the blocks past it and their statistics, where the load refused it
    import pytest

    comp = ImbalanceCompensator(seed=0)
    comp.step([np.ones((2, 3)), np.ones((2, 1))], ["a", "b"])
    state = comp.state_dict()
    with pytest.raises(ValueError, match="column orders do not match its statistics"):
        ImbalanceCompensator(seed=0).load_state_dict({**state, "columns": state["columns"][:1]})
    with pytest.raises(ValueError, match="column orders do not match its statistics"):
        ImbalanceCompensator(seed=0).load_state_dict({**state, "m2": state["m2"][:1]})
