"""prequential_batch given a frame or one event (review r76's nit): an error that names the fix, from every
learner that has the method, before anything is learned."""

import pandas as pd
import pytest

from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.trainable import TrainableLearner


@pytest.mark.parametrize("make", [OnlineContinualLearner, AnalyticClassifier, TrainableLearner])
def test_a_frame_or_one_event_is_refused_with_the_fix(make):
    model = make()
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [0.5, -1.0]})
    with pytest.raises(TypeError, match=r'got a DataFrame: pass df.to_dict\("records"\), or learn a frame with learn_many'):
        model.prequential_batch(frame, [0, 1])
    with pytest.raises(TypeError, match=r"got one event \(a dict\); one event: \[x\]"):
        model.prequential_batch({"a": 1.0, "b": 2.0}, [0, 1])
    assert len(model.classes_) == 0  # nothing learned from either
    proba = model.prequential_batch(frame.to_dict("records"), [0, 1])  # the fix works
    assert len(proba) == 2
