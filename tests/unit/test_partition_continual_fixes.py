"""Parts that carry continual-learning state, moved between learners that met the classes or the
inputs in another order (a review of the partition-mergeable learners):

* pending drift shadows follow their head's class order (a restart had filed the other
  partitions' statistics under the wrong classes);
* a learner holding one merged part mixes the SGD head in by class name;
* the restart, skipped-restart and remix counts, and ``report()["drift"]``, are over every partition;
* replay rows, imbalance statistics and shadow heads are moved to the receiving learner's input
  order (the merge had been refused whenever a string feature's values came in another order).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.checkpoint_format import decode_state, encode_state
from stream_cl.contribution import ContributionError
from stream_cl.drift import DriftMonitor
from stream_cl.heads.class_head import RidgeClassHead
from stream_cl.homeostasis import Homeostasis
from stream_cl.imbalance import ImbalanceCompensator
from stream_cl.replay import ReservoirReplay
from stream_cl.shadows import ShadowRestarter


def gap(a: dict, b: dict) -> float:
    return max(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))


# -- 1. pending shadows in another class order ------------------------------------------------
def test_a_shadow_met_in_another_class_order_takes_its_heads_order_by_name():
    head = RidgeClassHead(1.0, 1.0)
    head.add_classes(["no", "yes", "maybe"])
    shadow = RidgeClassHead(1.0, 1.0)
    Z = np.array([[1.0, 2.0], [1.0, -1.0], [1.0, 0.5]])
    shadow.prequential(Z, ["yes", "no", "yes"])  # it met "yes" first
    before = dict(zip(shadow.classes, shadow.scores(Z).T))
    counts = dict(zip(shadow.classes, shadow.counts))
    restarter = ShadowRestarter([0], 5, lambda i: RidgeClassHead(1.0, 1.0))
    restarter.shadows_, restarter.hits_ = {0: shadow}, {0: [0, 0]}
    restarter.follow([head])
    assert shadow.classes == ["no", "yes", "maybe"]
    after = shadow.scores(Z)
    np.testing.assert_allclose(after[:, :2], np.stack([before["no"], before["yes"]], axis=1), atol=1e-12)
    assert not after[:, 2].any()  # a class it never learned: a zero column
    assert dict(zip(shadow.classes, shadow.counts)) == {**counts, "maybe": 0.0}


def _yes_no_learner(response):
    return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu", sgd_lr=None,
                                  heads=((1.0, "all"), (0.99, "all")), control_every=4,
                                  drift=DriftMonitor("ddm", response=response, restart_after=40))


@pytest.mark.parametrize("response", [("restart",), ("reset",)])
def test_a_restart_from_a_merged_parts_shadows_keeps_the_other_partitions_classes(response):
    """Member A's partition 0 has shadows pending (classes as A met them: yes, no) when member B,
    which met no before yes, takes it over. At the restart B's head took the shadow's class order
    and the other partition's columns kept B's: partition 1, which never drifted, was predicted
    inverted (p(yes | a=+2) 0.000 for 0.999)."""
    rng = np.random.default_rng(0)

    def event(flip):
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        return x, ("yes" if (x["a"] > 0) != flip else "no")

    A, B = _yes_no_learner(response), _yes_no_learner(response)
    A.learn_one({"a": 1.0, "b": 0.0}, "yes", partition=0)
    B.learn_one({"a": -1.0, "b": 0.0}, "no", partition=1)
    for _ in range(300):
        B.learn_one(*event(False), partition=1)
    for _ in range(300):
        A.learn_one(*event(False), partition=0)
    while not A.shadows_:  # partition 0's concept flips: its monitor alarms, its shadows start
        A.learn_one(*event(True), partition=0)
    B.merge(0, A.contribution(0).to_bytes())  # B takes partition 0 over, its shadows pending
    A.merge(1, B.contribution(1).to_bytes())  # A holds the same parts, partition 0's never moved
    worst = 0.0
    for _ in range(200):
        x, y = event(True)
        for p in (0, 1):
            worst = max(worst, gap(A.predict_proba_one(x, partition=p), B.predict_proba_one(x, partition=p)))
        A.learn_one(x, y, partition=0)
        B.learn_one(x, y, partition=0)
    assert A.n_restarts_ == B.n_restarts_ == 1
    assert [h.classes for h in B.heads_] == [B.classes_] * 2
    assert worst < 1e-9
    probe = {"a": 2.0, "b": 0.0}
    assert B.predict_proba_one(probe, partition=1)["yes"] > 0.5  # partition 1 never drifted (it had been 0.000)


# -- 2. one merged part: the SGD head's classes by name -----------------------------------------
def test_a_learner_holding_one_merged_part_mixes_its_sgd_head_by_class_name():
    """Partition 1 brought "no" first, so A's heads list no, yes; partition 0 met "yes" first, so
    its SGD head lists yes, no. A learner taking partition 0 alone had mixed the SGD head's p(yes)
    in as p(no) (0.590 for 0.986), unlike one holding the same part beside an empty one."""
    rng = np.random.default_rng(0)
    A = OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu")
    A.learn_one({"a": -1.0}, "no", partition=1)
    events = []
    for i in range(500):
        a = 1.0 + abs(rng.normal()) if i == 0 else float(rng.normal())
        events.append(({"a": a}, "yes" if a > 0 else "no"))
    for x, y in events[:400]:
        A.learn_one(x, y, partition=0)
    raw = A.contribution(0).to_bytes()
    B = A.clone()  # one part
    B.merge(0, raw)
    C = A.clone()  # the same part and an empty one: the same statistics, several parts
    C.merge(0, raw)
    C.merge(7, A.clone().contribution(7))
    assert B.sgd_.classes == ["yes", "no"] and B.classes_ == ["no", "yes"] and len(B.partitions_) == 1
    probes = [{"a": 2.0}, {"a": -2.0}, {"a": 0.3}]
    for x in probes:  # (A holds partition 1's event too)
        pa, pb, pc = (m.predict_proba_one(x, partition=0) for m in (A, B, C))
        assert gap(pa, pb) < 1e-2 and gap(pb, pc) < 1e-9
    np.testing.assert_allclose(B.predict_proba_batch(probes, partition=0), C.predict_proba_batch(probes, partition=0),
                               atol=1e-9)
    for x, y in events[400:]:  # learning mixes through the same function
        pb, pc = B.predict_proba_one(x, partition=0), C.predict_proba_one(x, partition=0)
        assert gap(pb, pc) < 1e-9
        B.learn_one(x, y, partition=0)
        C.learn_one(x, y, partition=0)


# -- 4. monitoring over every partition ---------------------------------------------------------
def test_restart_and_remix_counts_and_the_drift_report_are_over_every_partition():
    """They read the active partition's only: predicting one event of another partition changed
    the restart count the learner reported (1 -> 0)."""
    rng = np.random.default_rng(1)
    m = OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu", sgd_lr=None,
                               heads=((1.0, "all"), (0.99, "all")), control_every=4,
                               drift=DriftMonitor("ddm", response=("restart", "remix"), restart_after=30))
    for t in range(1200):
        p = t % 3
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        flip = p != 1 and t >= 450  # partitions 0 and 2 drift, partition 1 does not
        m.learn_one(x, int((x["a"] > 0) != flip), partition=p)
    continual = {p: m.contribution(p).local["continual"] for p in m.partitions_}
    restarts = sum(c["restarts"][0] for c in continual.values())
    skipped = sum(c["restarts"][1] for c in continual.values())
    remixes = sum(c["remixes"] for c in continual.values())
    assert sum(c["restarts"][0] > 0 for c in continual.values()) >= 2  # restarts in more than one partition
    for partition in (0, 1, 2):
        m.predict_proba_one({"a": 0.0, "b": 0.0}, partition=partition)  # swaps the partition in
        assert (m.n_restarts_, m.n_restarts_skipped_, m.n_remixes_) == (restarts, skipped, remixes)
        drift = m.report()["drift"]
        assert (drift["restarts"], drift["restarts_skipped"], drift["remixes"]) == (restarts, skipped, remixes)
        assert drift["alarms"] == m.n_alarms_ and drift["counts"] == m.alarm_counts_
        assert drift["ignored"] == sum(c["drift"]["n_ignored"] for c in continual.values())
    again = m.clone()
    again.load_state_dict(m.state_dict())
    assert (again.n_restarts_, again.n_remixes_) == (restarts, remixes)


# -- 3. parts moved between learners that met the inputs in another order -----------------------
def _replay_learner():
    return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu",
                                  replay=ReservoirReplay(max_samples=50))


def test_members_that_met_a_string_features_values_in_another_order_swap_replay_parts_exactly():
    """The review's repro: the same fixed feature list, but each partition showed "color" values in
    another order, and each merge was refused. Swapped, then learning on, the two members serve
    the same model."""
    rng = np.random.default_rng(0)
    A, B = _replay_learner(), _replay_learner()
    colors = {0: ["red", "blue"], 1: ["blue", "red"]}
    for i in range(200):
        for p, m in ((0, A), (1, B)):
            x = {"a": float(rng.normal()), "color": colors[p][0] if i == 0 else colors[p][int(rng.integers(0, 2))]}
            m.learn_one(x, int(x["a"] > 0), partition=p)
    assert A.index_.names == ["a", "color=red", "color=blue"] and B.index_.names == ["a", "color=blue", "color=red"]
    B.merge(0, A.contribution(0).to_bytes())
    A.merge(1, B.contribution(1).to_bytes())
    worst = 0.0
    for i in range(400):
        p = int(rng.integers(0, 2))
        x = {"a": float(rng.normal()), "color": ["red", "blue", "green"][int(rng.integers(0, 3 if i > 100 else 2))]}
        worst = max(worst, gap(A.predict_proba_one(x, partition=p), B.predict_proba_one(x, partition=p)))
        y = int((x["a"] > 0) != (x["color"] == "green"))
        A.learn_one(x, y, partition=p)
        B.learn_one(x, y, partition=p)
    assert A.replay_size_ == B.replay_size_ == 100 and worst < 1e-9


def _continual_learner():
    return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=2, device="cpu",
                                  heads=((1.0, "all"), (0.99, "all"), (0.995, "inputs")), control_every=4,
                                  replay=ReservoirReplay(max_samples=40, ratio=0.5, seed=1),
                                  imbalance=ImbalanceCompensator(mode="pseudo", min_count=2),
                                  homeostasis=Homeostasis(),
                                  drift=DriftMonitor("ddm", response=("restart",), restart_after=40))


def _event(rng, flip, wide=False):
    color = ["red", "blue", "green"][int(rng.integers(0, 3 if wide else 2))]
    x = {"a": float(rng.normal()), "color": color, "b": float(rng.normal())}
    if wide and rng.random() < 0.5:
        x["c"] = float(rng.normal())
    y = "yes" if ((x["a"] + (0.5 if color == "red" else -0.5)) > 0) != flip else "no"
    return x, ("maybe" if rng.random() < 0.1 else y)


def _holder(first_events: list) -> OnlineContinualLearner:
    """A learner whose inputs and classes come in the order ``first_events`` show them; its
    partition 9 then emptied (the statistics and local state of nothing learned)."""
    m = _continual_learner()
    for x, y in first_events:
        m.learn_one(x, y, partition=9)
    m.merge(9, _continual_learner().contribution(9))
    return m


@pytest.mark.parametrize("other", [False, True])
def test_a_part_with_replay_imbalance_and_pending_shadows_moves_into_another_input_order_exactly(other):
    """Partition 0's part, with a replay buffer, imbalance statistics (pseudo rows) and drift
    shadows pending, moves to a learner that met the inputs and classes in another order, and on
    to a third: it predicts, learning on, as the part that never moved (same parts held: partition
    9's empty one). The merge had been refused. ``other``: the exporter's partition 5 made inputs
    after partition 0 last learned, which partition 0 then meets (both parts move), and the
    receiver had met them in another order."""
    rng = np.random.default_rng(0)
    X = _continual_learner()
    X.learn_one({"a": 1.0, "color": "red", "b": 0.0}, "yes", partition=0)
    for _ in range(300):
        X.learn_one(*_event(rng, False), partition=0)
    while not X.shadows_:
        X.learn_one(*_event(rng, True), partition=0)
    moving = [0]
    if other:
        for _ in range(30):
            X.learn_one(*_event(rng, False, wide=True), partition=5)
        moving.append(5)
    later = [({"c": 0.5, "a": 0.2, "color": "blue", "b": 0.0}, "no"), ({"color": "green", "a": 0.2, "b": 0.0}, "no")]
    Y = _holder([({"b": 0.3, "color": "blue", "a": -1.0}, "no"), ({"b": 0.1, "color": "red", "a": 1.0}, "maybe")]
                + (later if other else []))
    Z = _holder([({"color": "blue", "a": 1.0, "b": 0.3}, "maybe"), ({"b": 0.1, "color": "red", "a": -1.0}, "no")])
    assert X.index_.names == ["a", "color=red", "b", "color=blue"] + (["color=green", "c"] if other else [])
    assert Y.index_.names == ["b", "color=blue", "a", "color=red"] + (["c", "color=green"] if other else [])
    assert Z.index_.names == ["color=blue", "a", "b", "color=red"]
    assert X.classes_ == ["yes", "maybe", "no"] and Y.classes_ == ["no", "maybe"] and Z.classes_ == ["maybe", "no"]
    for p in moving:
        Y.merge(p, X.contribution(p).to_bytes())
    for p in moving:
        Z.merge(p, Y.contribution(p).to_bytes())  # moved twice
    never = copy.deepcopy(X)
    never.merge(9, _continual_learner().contribution(9))
    restored = Y.clone()
    restored.load_state_dict(decode_state(encode_state(Y.state_dict()))[0])  # a moved part through a checkpoint
    models = (never, Y, Z, restored)
    rng = np.random.default_rng(5)
    worst = 0.0
    for i in range(400):
        x, y = _event(rng, i < 200, wide=other)
        P = [m.predict_proba_one(x, partition=0) for m in models]
        worst = max(worst, *(gap(P[0], q) for q in P[1:]))
        for m in models:
            m.learn_one(x, y, partition=0)
    assert all(m.n_restarts_ == never.n_restarts_ >= 1 for m in models)
    pseudo = [m.imbalance_.pseudo_counts_.sum() for m in models]
    assert pseudo[0] > 0 and len(set(pseudo)) == 1
    assert worst < 1e-9


def test_a_merge_whose_imbalance_statistics_do_not_fit_their_inputs_is_refused_and_changes_nothing():
    rng = np.random.default_rng(0)
    X = _continual_learner()
    for _ in range(60):
        X.learn_one(*_event(rng, False), partition=0)
    c = X.contribution(0)
    state = c.local["continual"]["imbalance"]
    state["mean"][0] = np.pad(state["mean"][0], ((0, 0), (0, 3)))  # columns past its layout
    state["m2"][0] = np.pad(state["m2"][0], ((0, 0), (0, 3)))
    Y = _holder([({"b": 0.3, "color": "blue", "a": -1.0}, "no")])
    before = Y.state_dict()
    with pytest.raises(ContributionError, match="does not fit its inputs"):
        Y.merge(0, c)
    assert Y.partitions_ == [9] and Y.index_.names == before["index"]["names"]


def test_an_imbalance_state_from_before_column_orders_loads_in_the_designs_order():
    comp = ImbalanceCompensator(mode="pseudo", max_pseudo=2, min_count=2, seed=0)
    X = np.array([[1.0, 0.0, 2.0]] * 6 + [[0.0, 1.0, -1.0]] * 2)
    comp.step([X], ["a"] * 6 + ["b"] * 2)
    state = comp.state_dict()
    del state["columns"]
    old = ImbalanceCompensator(mode="pseudo", max_pseudo=2, min_count=2, seed=0).load_state_dict(state)
    assert old.columns_ == [None]
    again = copy.deepcopy(comp)
    np.testing.assert_array_equal(old.step([X], ["b"] * 8).blocks[0], again.step([X], ["b"] * 8).blocks[0])


def test_a_moved_compensator_draws_the_same_pseudo_rows_in_the_new_column_order():
    X = np.array([[1.0, 0.0, 2.0]] * 6 + [[0.0, 1.0, -1.0]] * 2)
    ys = ["a"] * 6 + ["b"] * 2
    here, moved = (ImbalanceCompensator(mode="pseudo", max_pseudo=2, min_count=2, seed=3) for _ in range(2))
    here.step([X], ys)
    moved.step([X], ys)
    to = np.array([2, 0, 3])  # column k goes to to[k]; column 1 is new there
    moved.move_columns([to])
    more = np.array([[0.5, 1.0, -2.0]] * 3)
    wide = np.zeros((3, 4))
    wide[:, to] = more
    a, b = here.step([more], ["b"] * 3), moved.step([wide], ["b"] * 3)
    assert len(a.y) > 0 and a.y == b.y
    np.testing.assert_array_equal(b.blocks[0][:, to], a.blocks[0])
    assert not b.blocks[0][:, 1].any()
