"""Review r105: a partition's part (or a checkpoint) whose digest holds but whose continual-learning
state is out of range is refused when it is merged, naming the field, and changes nothing. Such
values had been taken and failed at the next event, after its row had entered the served heads: a
NaN replay row or weight, or a huge imbalance mean, made X'X NaN; a negative count divided by zero;
a replay group id past the groups made ``numpy.bincount`` abort the process."""

from __future__ import annotations

import copy
from itertools import islice

import numpy as np
import pytest
from river import datasets

from stream_cl import OnlineContinualLearner
from stream_cl.contribution import ContributionError
from stream_cl.drift import DriftMonitor
from stream_cl.homeostasis import Homeostasis
from stream_cl.imbalance import ImbalanceCompensator
from stream_cl.replay import ReservoirReplay

DATA = [(dict(x), y) for x, y in islice(datasets.Phishing(), 700)]


def _learner() -> OnlineContinualLearner:
    return OnlineContinualLearner(device="cpu", replay=ReservoirReplay(200, seed=0),
                                  drift=DriftMonitor("ddm", response=("restart",), restart_after=40),
                                  homeostasis=Homeostasis(), imbalance=ImbalanceCompensator(), control_every=8)


@pytest.fixture(scope="module")
def part():
    source = _learner()
    for x, y in DATA[:500]:
        source.learn_one(x, y, partition=0)
    return source.contribution(0)


@pytest.fixture(scope="module")
def receiver():
    learner = _learner()
    for x, y in DATA[500:]:
        learner.learn_one(x, y, partition=1)
    return learner


def _set(tree, path, value):
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value(tree[path[-1]]) if callable(value) else value


def _first(value):
    def change(a):
        a = np.array(a, copy=True)
        a.flat[0] = value
        return a
    return change


CORRUPT = [  # (path in the part's continual state, the change, the field the error names)
    (("replay", "gid"), _first(np.iinfo(np.int64).max), "replay gid"),  # had aborted the process (bincount)
    (("replay", "X"), _first(np.nan), "replay X"),
    (("replay", "w"), lambda w: [-1.0, *w[1:]], "replay w"),
    (("replay", "n_seen"), 10**30, "replay n_seen"),
    (("replay", "rng", "seed"), -5, "random seed"),
    (("drift", "n"), -5, "drift n"),
    (("drift", "detector", "_p", "__object__", "n"), -5, "drift detector"),
    (("homeostasis", "n"), -5, "homeostasis n"),
    (("homeostasis", "need"), float("nan"), "homeostasis need"),
    (("imbalance", "counts"), _first(np.nan), "imbalance counts"),
    (("imbalance", "mean", 1), _first(-1e300), "imbalance mean"),
    (("imbalance", "m2", 0), lambda a: np.asarray(a)[:-1].copy(), "differ in shape"),
    (("n_labelled",), 10**30, "n_labelled"),
]


@pytest.mark.parametrize("path, change, field", CORRUPT, ids=["/".join(map(str, c[0])) for c in CORRUPT])
def test_a_part_with_a_saved_value_out_of_range_is_refused_at_the_merge(part, receiver, path, change, field):
    corrupt = copy.deepcopy(part)
    _set(corrupt.local["continual"], path, change)
    learner = copy.deepcopy(receiver)
    before = learner.predict_proba_batch([x for x, _ in DATA[:50]], partition=1)
    with pytest.raises(ContributionError, match=field):
        learner.merge(0, corrupt.to_bytes())
    assert learner.partitions_ == [1]  # nothing installed
    np.testing.assert_array_equal(learner.predict_proba_batch([x for x, _ in DATA[:50]], partition=1), before)


def test_an_intact_part_merges_and_learns(part, receiver):
    learner = copy.deepcopy(receiver)
    learner.merge(0, part.to_bytes())
    for x, y in DATA[:100]:
        learner.learn_one(x, y, partition=0)
    assert sorted(learner.partitions_) == [0, 1]


def test_a_checkpoint_with_a_replay_group_id_past_its_groups_is_refused(part):
    state = copy.deepcopy(part.local["continual"]["replay"])
    state["gid"] = np.array(state["gid"], copy=True)
    state["gid"][0] = len(state["keys"])  # one past the last group
    buffer = ReservoirReplay(200, seed=0)
    with pytest.raises(ValueError, match="replay gid must be integers from -1"):
        buffer.load_state_dict(state)
