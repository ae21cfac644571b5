"""Review r121 F1: under pandas 3 a labels Series made from strings (or ints) and ``None`` holds NaN, not the
``None`` that ``learn_many`` reads as a row only predicted: the whole batch was refused, its message telling the
user to do what they did. A Series that cannot hold ``None`` (str, string, Int64, boolean, category) reads its
missing cells as ``None``; a float one (ints and ``None``) is refused with the fix."""

import numpy as np
import pandas as pd
import pytest

from stream_cl import AnalyticClassifier, OnlineContinualLearner

LEARNERS = [lambda: OnlineContinualLearner(device="cpu"), AnalyticClassifier]


@pytest.mark.parametrize("make", LEARNERS)
@pytest.mark.parametrize("dtype", [None, "string", "category"])
def test_none_in_a_str_label_series_is_predict_only(make, dtype):
    # pandas 3 makes ["z", None] a str Series holding NaN: the None the user wrote, a row only predicted
    X = pd.DataFrame({"a": np.r_[np.zeros(50), np.ones(50)]})
    y = pd.Series([None] * 5 + ["z"] * 45 + ["o"] * 50, dtype=dtype)
    model, same = make(), make()
    model.learn_many(X, y)
    same.learn_many(X, pd.Series(y.tolist(), dtype=object).where(y.notna(), None))
    assert model.classes_ == ["z", "o"] == same.classes_
    probe = {"a": 0.3}
    assert model.predict_proba_one(probe) == same.predict_proba_one(probe)


@pytest.mark.parametrize("make", LEARNERS)
def test_none_in_a_nullable_int_series_is_predict_only_and_in_a_float_one_is_explained(make):
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0]})
    model = make().learn_many(X, pd.Series([None, 0, 1], dtype="Int64"))
    assert model.classes_ == [0, 1]
    with pytest.raises(ValueError, match=r"float64 Series \(row 0\).*astype\(object\)"):
        make().learn_many(X, pd.Series([None, 0, 1]))  # pandas made 0.0, 1.0 and NaN


@pytest.mark.parametrize("make", LEARNERS)
def test_none_in_a_nullable_float_series_is_predict_only_and_times_stay_refused(make):
    # review r122: Float64 holds <NA> for None (it was refused as "pandas turns None among numbers into NaN"),
    # and a datetime Series' NaT became "predict only" where it had been refused
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0]})
    model = make().learn_many(X, pd.Series([None, 0.5, 1.5], dtype="Float64"))
    assert model.classes_ == [0.5, 1.5]
    with pytest.raises(ValueError, match="NaT"):
        make().learn_many(X, pd.Series([None, "2024-01-01", "2024-01-02"], dtype="datetime64[ns]"))
