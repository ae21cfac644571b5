"""Review r90 F1: merge() never checked its partition key. An unhashable key failed half way, after the
learner had adopted the part's new input and class (predictions then raised until the next learn_one), and a
NaN key was merged (contribution(nan) gave an empty part). Both are refused first, as partition= is."""

import pytest

from stream_cl import AnalyticClassifier, OnlineContinualLearner


@pytest.mark.parametrize("kind", [AnalyticClassifier, OnlineContinualLearner])
def test_a_bad_partition_key_in_merge_or_contribution_is_refused_before_anything_changes(kind):
    source = kind()
    source.learn_one({"a": 1.0, "n": 2.0}, "x", partition=1)
    source.learn_one({"a": -1.0}, "q", partition=1)
    blob = source.contribution(1).to_bytes()
    target = kind()
    target.learn_one({"a": 0.5}, "x", partition=0)
    target.learn_one({"a": -0.2}, "y", partition=2)
    before = target.predict_proba_one({"a": 0.3}, partition=0)
    with pytest.raises(TypeError, match="partition must be hashable"):
        target.merge(["bad"], blob)
    with pytest.raises(ValueError, match="partition is missing"):
        target.merge(float("nan"), blob)
    with pytest.raises(ValueError, match="partition is missing"):
        source.contribution(float("nan"))
    assert target.classes_ == ["x", "y"] and target.predict_proba_one({"a": 0.3}, partition=0) == before
