"""Review r109 F1 (high): events whose new inputs pass ``max_columns`` are refused at the first input past the
bound, before the rest of their keys are indexed and before the batch's rows are laid out.

A batch's new columns were all made first (a few µs of room bookkeeping a key), then its rows, of shape
(batch, known + every new column), then the learner refused them, and the caller retried each event alone. A
file of 1,024 records with 1,500 distinct keys each ran at 62 records/s with 5 GB resident, and under a 10 GiB
address-space limit died (``Unable to allocate 11.7 GiB for an array with shape (1024, 1536000)``): no report,
an empty dead-letter file.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from stream_cl import OnlineContinualLearner
from stream_cl.replay import ReservoirReplay


def _learner(**kw) -> OnlineContinualLearner:
    learner = OnlineContinualLearner(seed=0, device="cpu", max_columns=2048, **kw)
    rng = np.random.default_rng(0)
    warm = [{"a": float(rng.normal()), "b": float(rng.normal())} for _ in range(60)]
    learner.prequential_batch(warm, [int(x["a"] > 0) for x in warm])
    return learner


WIDE = [{f"k{i}_{j}": 1.0 for j in range(1000)} for i in range(256)]  # 256,000 distinct new keys
PROBE = [{"a": 0.3, "b": -1.2}, {"a": -0.7, "b": 0.4}]


@pytest.mark.parametrize("continual", [False, True], ids=["plain", "replay"])
def test_a_batch_of_wide_events_is_refused_without_laying_out_its_rows(continual):
    learner = _learner(**({"replay": ReservoirReplay(max_samples=200, seed=0)} if continual else {}))
    width, before = learner.index_.width, learner.predict_proba_batch(PROBE)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"inputs would give the '\w+' head [\d,]+ design columns, over "
                                             r"max_columns \(2,048\)"):
            learner.prequential_batch(WIDE, [0] * len(WIDE))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # before: rows (256, 256,000 + known) as float64 and a bool mask, ~590 MiB, then the refusal
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB allocated before the refusal"
    assert learner.index_.width == width  # nothing indexed
    np.testing.assert_array_equal(learner.predict_proba_batch(PROBE), before)  # nothing learned


def test_a_wide_event_is_still_predicted_and_a_fitting_one_learned_after_the_refusal():
    learner = _learner()
    wide = WIDE[0]
    assert learner.predict_proba_batch([wide]).shape == (1, 2)  # a prediction is refused nothing
    with pytest.raises(ValueError, match="over max_columns"):
        learner.prequential_batch([wide], [1])
    fitting = {f"n{j}": 1.0 for j in range(10)}
    learner.prequential_batch([fitting], [1])
    assert set(fitting) <= set(learner.index_.names)


def _bounded() -> OnlineContinualLearner:
    learner = OnlineContinualLearner(seed=0, device="cpu", max_columns=300)  # the 'all' head starts at 257 columns
    learner.prequential_batch([{"a": 0.5, "c": "red"}, {"a": -0.5, "c": "blue"}], [0, 1])  # c=red: an indicator
    return learner


KEYS = {f"k{j}": 1.0 for j in range(30)}  # 30 new inputs: past the bound


@pytest.mark.parametrize("event, error, message", [
    # review r113: the early refusal came before a clash or a bad value later in the event, which the event was
    # refused for before (bad_features, not rejected_by_model, in a run's dead letters)
    ({"c=red": 2.0, **KEYS}, "InvalidFeatureError", "feature 'c=red': two values make this column"),
    ({**KEYS, "c=red": 2.0}, "InvalidFeatureError", "feature 'c=red': two values make this column"),
    ({**KEYS, "s": "cat", "z": float("nan")}, "InvalidFeatureError", "feature 'z': not finite (got nan)"),
    ({**KEYS, "s": "cat", "c=red": 3.0}, "InvalidFeatureError", "feature 'c=red': two values make this column"),
    # and the learner's message, counted over the whole event as before
    ({f"s{j}": f"v{j}" for j in range(40)}, "ValueError", "43 inputs would give the 'all' head 308 design columns"),
    ({f"k{j}": 1.0 for j in range(60)}, "ValueError", "63 inputs would give the 'all' head 808 design columns"),
], ids=["clash-first", "clash-last", "nan-last", "clash-after-category", "categories", "numbers"])
def test_a_lone_event_past_the_bound_is_refused_for_what_it_was_refused_for_before(event, error, message):
    learner = _bounded()
    with pytest.raises(ValueError) as refused:  # (InvalidFeatureError is a ValueError)
        learner.prequential_batch([event], [1])
    assert type(refused.value).__name__ == error and str(refused.value).startswith(message), refused.value
