"""Review r134: the drift detectors' parameter checks (F1, F2, F3 below).

F1 (medium): FHDDM with a ``short_window_size`` longer than its ``sliding_window_size`` (River's
default 100) passed :func:`~stream_cl.detectors.check_detector_params`, whose probe feeds four
events, and then raised ``ValueError`` (an ``islice`` of a negative start) at every labelled event
once the sliding window was full: in a learner, after the heads had learned the event, so the heads
went on learning rows that the learner's counts and the monitor never took in.

F2 (low): a count given as a numpy integer (``window_size=np.int64(60)``, from a grid or a frame)
was refused as out of River's documented ranges: River's deques refuse it as a ``maxlen``.
``make_detector`` already handed whole floats (``30.0``) on as ints; numpy ints now go the same way.

F3 (medium): ADWIN's ``max_buckets=1`` passed the checks and then panicked at the first detection.
"""

import numpy as np
import pytest

from stream_cl.detectors import check_detector_params
from stream_cl.drift import DriftMonitor
from stream_cl.learner import OnlineContinualLearner


@pytest.mark.parametrize("params", [{"short_window_size": 200}, {"sliding_window_size": 5, "short_window_size": 10}])
def test_a_short_window_longer_than_the_sliding_window_is_refused(params):
    with pytest.raises(ValueError, match="short_window_size"):
        check_detector_params("fhddm", params)
    with pytest.raises(ValueError, match="short_window_size"):
        DriftMonitor("fhddm", params=params)
    # as long as the sliding window is allowed, and runs in a learner past the full window, where a longer one failed
    learner = OnlineContinualLearner(device="cpu", drift=DriftMonitor(
        "fhddm", params={"sliding_window_size": 30, "short_window_size": 30}, response=("record",)))
    rng = np.random.default_rng(0)
    for i in range(120):
        x = {"a": float(rng.normal())}
        learner.learn_one(x, int(x["a"] > 0) if i < 60 else int(x["a"] < 0))
    assert learner.n_labelled_ == learner.drift_.n_ == 120


@pytest.mark.parametrize("detector, counts", [
    ("kswin", {"window_size": 60, "stat_size": 20}),
    ("fhddm", {"sliding_window_size": 50, "short_window_size": 10}),
])
def test_numpy_integer_counts_run_as_their_ints(detector, counts):
    plain = DriftMonitor(detector, params=counts, direction="both", response=("record",))
    numpy = DriftMonitor(detector, params={k: np.int64(v) for k, v in counts.items()}, direction="both",
                         response=("record",))
    rng = np.random.default_rng(1)
    errors = (rng.random(2000) < np.r_[np.full(1000, 0.1), np.full(1000, 0.6)]).astype(float)
    alarms = [[i for i, e in enumerate(errors) if m.update(e, e, t=i)] for m in (plain, numpy)]
    assert alarms[0] == alarms[1] != []


def test_adwin_with_one_bucket_of_each_size_is_refused():
    """F3 (medium): ADWIN's ``max_buckets=1`` was within the rules (an int >= 1) and passed the probe, then River's
    Rust ADWIN panicked (a ``BaseException``, past ``except Exception``) at its first detection, after the heads had
    learned the event. Two buckets run through the same change and alarm."""
    with pytest.raises(ValueError, match="max_buckets"):
        DriftMonitor("adwin", params={"max_buckets": 1})
    monitor = DriftMonitor("adwin", params={"max_buckets": 2}, response=("record",))
    rng = np.random.default_rng(0)
    errors = (rng.random(12000) < np.r_[np.full(10000, 0.1), np.full(2000, 0.6)]).astype(float)
    assert [i for i, e in enumerate(errors) if monitor.update(e, e, t=i)] != []
