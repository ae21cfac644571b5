"""An untrained model judges an event as a trained one does (review r67, finding 3): ``predict_proba_one``
and ``predict_one`` returned ``{}`` and ``None`` for a string, a NaN or nesting past ``max_depth`` before
the first ``learn_one``, and raised for the same input after it, as ``predict_proba_many`` always did."""

import math

import pytest

from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.encoding import InvalidFeatureError

BAD = [("abc", TypeError), ({"a": math.nan}, InvalidFeatureError),
       ({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": {"k": 1.0}}}}}}}}}}}, InvalidFeatureError)]


def _models():
    return [OnlineContinualLearner(backbone=RandomFeatures(width=8, seed=1), device="cpu"), AnalyticClassifier()]


@pytest.mark.parametrize("x, error", BAD, ids=["string", "nan", "too-deep"])
@pytest.mark.parametrize("which", [0, 1], ids=["online", "analytic"])
def test_an_untrained_model_refuses_what_a_trained_one_refuses(which, x, error):
    fresh, trained = _models()[which], _models()[which].learn_one({"a": 1.0}, "u")
    for model in (fresh, trained):
        with pytest.raises(error):
            model.predict_proba_one(x)
        with pytest.raises(error):
            model.predict_one(x)


@pytest.mark.parametrize("which", [0, 1], ids=["online", "analytic"])
def test_an_untrained_model_still_predicts_nothing_for_a_good_event_and_learns_nothing_from_it(which):
    model = _models()[which]
    assert model.predict_proba_one({"a": 1.0, "c": "red"}) == {} and model.predict_one({"a": 1.0}) is None
    model.learn_one({"b": 2.0}, "u")
    assert model.predict_proba_one({"b": 2.0}) == {"u": 1.0}  # no column of the unlearned event's was kept


@pytest.mark.parametrize("which", [0, 1], ids=["online", "analytic"])
def test_an_untrained_model_judges_a_frame_as_a_trained_one_does(which):
    """``predict_many`` returned Nones for a frame ``predict_proba_many`` refused (review r68 L6)."""
    import pandas as pd

    bad = pd.DataFrame({"a": [math.inf, 1.0]})
    fresh, trained = _models()[which], _models()[which].learn_one({"a": 1.0}, "u")
    for model in (fresh, trained):
        for predict in (model.predict_many, model.predict_proba_many):
            with pytest.raises(InvalidFeatureError):
                predict(bad)
    assert fresh.predict_many(pd.DataFrame({"a": [1.0, 2.0]})).tolist() == [None, None]
