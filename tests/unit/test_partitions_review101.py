"""Review r101: a new partition's first run does not decay every partition's statistics (a part
with no row yet holds no share of the row mass); a tuple key holding a NaN is refused as a NaN is."""

from itertools import islice

import numpy as np
import pytest
from river import datasets

from stream_cl import OnlineContinualLearner


def test_a_new_partitions_first_run_decays_no_other_partition():
    data = [(dict(x), y) for x, y in islice(datasets.Phishing(), 1250)]
    xs, ys = [x for x, _ in data], [y for _, y in data]
    model = OnlineContinualLearner(device="cpu")
    model.prequential_batch(xs[:800], ys[:800], partition=0)
    model.prequential_batch(xs[800:801], ys[800:801], partition=1)  # partition 1's first event
    forgetting = [h.served_forgetting for h, (lam, _) in zip(model.heads_, model.heads) if lam < 1.0]
    assert forgetting == [1.0] * len(forgetting)  # was each head's own factor: every partition decayed per row
    model.prequential_batch(xs[801:1000], ys[801:1000], partition=1)  # the rest of its first run (< 256 rows)
    served = model.predict_proba_batch(xs[1100:], partition=1)
    model.resum()  # the exact sum of the parts
    assert np.abs(served - model.predict_proba_batch(xs[1100:], partition=1)).max() < 0.1  # was 0.20


def test_a_tuple_key_holding_a_nan_is_refused():
    model = OnlineContinualLearner(device="cpu")
    with pytest.raises(ValueError, match="partition is missing"):
        model.learn_one({"a": 1.0}, 0, partition=("topic", float("nan")))  # a part an event, 2 MiB each
    assert model.partitions_ == []
