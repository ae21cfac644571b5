"""Review r102 (tests that cannot fail): hand-made mutants of the engine that no unit test killed.
Each test below fails on its mutant (named in the test's comment) and passes on the code as it is."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
from river import datasets

from stream_cl import OnlineContinualLearner
from stream_cl.checks import holds_missing
from stream_cl.field_values import MAX_TEXT_CHARS, text_problem
from stream_cl.drift import DIRECTION_WINDOW, DriftMonitor
from stream_cl.events import Event
from stream_cl.pending import LabelUpdate, PendingLabels
from stream_cl.replay import ReservoirReplay


# -- replay: the draws per labelled row follow floor(ratio (c + 1)) - floor(ratio c) (mutant: round) -----------
def test_r102_a_fractional_ratio_draws_after_every_other_row():
    buf = ReservoirReplay(max_samples=50, ratio=0.5, seed=0)
    X = np.arange(9.0)[:, None]
    draw = buf.interleave(X, np.ones_like(X, dtype=bool), list("abcabcabc"))
    assert draw.pos.tolist() == [1, 3, 5, 7]  # c = 1, 3, 5, 7 (round: 1, 2, 5, 6)
    buf = ReservoirReplay(max_samples=50, ratio=2.5, seed=0)
    draw = buf.interleave(X[:4], np.ones((4, 1), dtype=bool), list("abca"))
    assert np.bincount(draw.pos, minlength=4).tolist() == [0, 3, 2, 3]  # 2, 5, 7, 10 cumulative; the first has no row


# -- drift: the short window judges a direction only with as many signals before it (mutant: rest < k dropped) --
def test_r102_the_direction_window_needs_as_many_signals_before_it():
    m = DriftMonitor("adwin")
    m.last_.extend([1.0] * DIRECTION_WINDOW)  # the window: every signal an error
    m.recent_, m.since_n_, m.since_sum_ = 0.5, DIRECTION_WINDOW + 5, float(DIRECTION_WINDOW)  # 5 correct before it
    assert m._went_down(m.since_sum_ / m.since_n_)  # too few before the window: the average (at the mean) decides
    m.since_n_ = 2 * DIRECTION_WINDOW  # 10 before it: the window's rise, far above them, is a rise
    assert not m._went_down(m.since_sum_ / m.since_n_)


# -- delayed labels -------------------------------------------------------------------------------------------
def test_r102_an_entry_is_dropped_at_max_age_exactly():
    # docs/daemon.md: "an event waits less than this long for its label ... (at this age it is dropped)" (mutant: >=)
    store = PendingLabels(max_age_s=10.0, clock=lambda: 0.0)
    store.add(Event({"a": 1.0}, id="e1"), now=0.0)
    store.join(LabelUpdate("e9", "cat"), now=0.0)  # a label before its event
    assert store.expire(now=9.5) == 0 and store.waiting_labels == 1
    assert store.expire(now=10.0) == 1 and store.waiting_labels == 0
    assert store.counters()["expired"] == 1 and store.counters()["unknown"] == 1


def test_r102_an_early_label_replaced_by_a_second_counts_as_unknown():
    # the first will never be learned: unknown in the lifetime counts as in the new work (mutant: unknown not counted)
    store = PendingLabels(clock=lambda: 0.0)
    store.join(LabelUpdate("e1", "cat"))
    store.join(LabelUpdate("e1", "dog"))
    assert store.add(Event({"a": 1.0}, id="e1")).y == "dog"
    c = store.counters()
    assert (c["replaced"], c["unknown"], c["joined"], store.new_unknown) == (1, 1, 1, 1)


# -- partitions (a part's anchor out of range: test_part_safety_review74.CASES) ---------------------------------
def test_r102_a_factor_changed_with_several_parts_sets_the_served_clocks():
    # ServedSums._forgetting_changed (mutant: the served clock kept the old factor, decaying the served sums)
    data = [(dict(x), y) for x, y in islice(datasets.Phishing(), 600)]
    xs, ys = [x for x, _ in data], [y for _, y in data]
    model = OnlineContinualLearner(device="cpu")
    model.prequential_batch(xs[:300], ys[:300], partition=0)
    model.prequential_batch(xs[300:500], ys[300:500], partition=1)
    model.resum()
    i = next(k for k, (lam, _) in enumerate(model.heads) if lam < 1.0)
    model.set_forgetting(i, 1.0)  # from now on this head keeps every row: its served sums are exact again
    assert model.heads_[i].served_forgetting is None
    model.prequential_batch(xs[500:600], ys[500:600], partition=1)  # fewer rows than a re-sum's period
    ridge, exact = model.heads_[i].ridge, model.served_statistics()[i]  # the served head; the sum of the parts
    assert np.abs(ridge.A - exact.A).max() < 1e-9 * np.abs(exact.A).max()
    assert np.abs(ridge.B - exact.B).max() < 1e-9 * np.abs(exact.B).max()


def test_r102_a_frozenset_key_holding_a_nan_is_missing():
    # the r102 base commit's claim: holds_missing looks inside frozensets too (mutant: tuples only)
    assert holds_missing(frozenset({"t", float("nan")})) and not holds_missing(frozenset({"t", 1}))
    model = OnlineContinualLearner(device="cpu")
    with pytest.raises(ValueError, match="partition is missing"):
        model.learn_one({"a": 1.0}, 0, partition=frozenset({"topic", float("nan")}))


# -- decoding: the least integer of more than MAX_TEXT_CHARS digits is refused (mutant: <= at the bound) -------
def test_r102_an_integer_label_of_one_digit_too_many_is_refused():
    assert text_problem(10**MAX_TEXT_CHARS - 1, "e1", None) is None  # 1,024 digits
    assert text_problem(10**MAX_TEXT_CHARS, "e1", None)[0] == "bad_label"  # 1,025 digits
    assert text_problem("y", -(10**MAX_TEXT_CHARS), None)[0] == "bad_id"
