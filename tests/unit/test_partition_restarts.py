"""Drift restarts with partitions: a shadow replaces its partition's part of the head.

The served heads are the sum of the parts' statistics and are re-summed at every change of
partition, every ``SUM_EVERY_ROWS`` rows and at merges; a restart that replaced only the
served head was undone by the next re-sum (found by review: right after a "reset" the served
row mass was 40 while the parts still summed to 354, and one event of the other partition
put it back).
"""

from __future__ import annotations

import numpy as np

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.drift import DriftMonitor


def _learner() -> OnlineContinualLearner:
    return OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu", sgd_lr=None,
                                  heads=((1.0, "all"), (0.99, "all")), control_every=4,
                                  drift=DriftMonitor("ddm", response=("reset",), restart_after=40))


def _stream(seed: int = 0) -> list:
    """Events ``(x, y, partition)``: partition 1 is every 10th of the first 300; then partition 0
    alone sees the concept flip (its monitor alarms, its shadows take over)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(900):
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        flip = i >= 300
        out.append((x, int((x["a"] > 0) != flip), 1 if i < 300 and i % 10 == 0 else 0))
    return out


def _row_mass(stats) -> float:
    return float(stats.A[0, 0]) if stats.A.shape[0] else 0.0  # X'X's bias entry: the (decayed) row count


def test_a_reset_replaces_the_alarmed_partitions_part_and_survives_the_next_resum():
    m = _learner()
    events = _stream()
    before = {}
    for t, (x, y, p) in enumerate(events):
        if p == 0 and t >= 300:
            before = {k: [_row_mass(s) for s in part.stats] for k, part in m._parts.items()}
        m.learn_one(x, y, partition=p)
        if m.n_restarts_:
            break
    assert m.n_restarts_ == 1 and t < len(events) - 1
    served = [float(h.ridge.A[0, 0]) for h in m.heads_]
    parts = {k: [_row_mass(s) for s in part.stats] for k, part in m._parts.items()}
    # the served heads are the sums of the parts, and the other partition's rows stay
    np.testing.assert_allclose(served, [sum(v[i] for v in parts.values()) for i in range(2)], rtol=1e-12)
    assert parts[1][0] == before[1][0] == 30.0  # partition 1's 30 rows in the exact memory head
    # partition 0's part is its shadow: far fewer rows than it had learned before the reset
    assert 40 <= parts[0][0] < before[0][0] / 2
    # one event of the other partition re-sums the forgetting head, a resum() every head: nothing comes back
    x, y, _ = events[t + 1]
    m.learn_one(x, y, partition=1)
    m.resum()
    assert float(m.heads_[0].ridge.A[0, 0]) == served[0] + 1.0
    assert served[1] < float(m.heads_[1].ridge.A[0, 0]) <= served[1] + 1.0


def test_restarts_with_partitions_are_the_same_per_event_and_in_batches():
    events = _stream(1)
    one = _learner()
    per_event = []
    for x, y, p in events:
        P = one.predict_proba_one(x, partition=p)
        per_event.append([P.get(c, 0.0) for c in (0, 1)])
        one.learn_one(x, y, partition=p)
    batched, rows = _learner(), []
    i = 0
    while i < len(events):  # runs of one partition, cut into batches of up to 37
        p = events[i][2]
        j = i
        while j < len(events) and j - i < 37 and events[j][2] == p:
            j += 1
        P = batched.prequential_batch([e[0] for e in events[i:j]], [e[1] for e in events[i:j]], partition=p)
        cols = {c: n for n, c in enumerate(batched.classes_)}  # classes_ order (only ever appended to)
        rows += [[P[k, cols[c]] if cols.get(c, 2) < P.shape[1] else 0.0 for c in (0, 1)] for k in range(j - i)]
        i = j
    assert one.n_restarts_ == batched.n_restarts_ >= 1
    np.testing.assert_allclose(np.array(rows), np.array(per_event), atol=1e-9)
