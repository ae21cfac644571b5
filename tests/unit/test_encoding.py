"""FeatureIndex and the value rules: the exact columns and values each kind of payload value gives."""

import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from stream_cl.checkpoint import load_checkpoint, save_checkpoint
from stream_cl.encoding import InvalidFeatureError, flatten, frame_rows, time_columns
from stream_cl import feature_batch
from stream_cl.features import FeatureIndex


def vec(index: FeatureIndex, xs):
    """Vectorise and commit (as a learner does), returning rows and presence masks as lists."""
    X, M, new = index.vectorize_masked(xs)
    index.commit(new)
    return X.tolist(), M.tolist()


def test_a_string_is_an_indicator_column():
    index = FeatureIndex()
    X, M = vec(index, [{"amount": 3.0, "color": "red"}, {"amount": 1.0, "color": "blue"}, {"color": "red"}])
    assert index.names == ["amount", "color=red", "color=blue"]
    assert X == [[3.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    assert M == [[True, True, False], [True, False, True], [False, True, False]]
    assert index.indicator_mask.tolist() == [False, True, True]
    assert index.categories == {"color": 2} and index.overflow == {}


def test_a_bool_is_one_numeric_column():
    index = FeatureIndex()
    X, _ = vec(index, [{"vip": True}, {"vip": False}, {"vip": np.bool_(True)}])
    assert index.names == ["vip"] and X == [[1.0], [0.0], [1.0]]
    assert index.indicator_mask is None  # numeric columns only


def test_null_and_absent_are_missing():
    index = FeatureIndex()
    X, M = vec(index, [{"a": 1.0, "b": 2.0}, {"a": None, "b": 5.0}, {"b": 6.0}, {"c": None}])
    assert index.names == ["a", "b"]  # a null alone makes no column
    assert X == [[1.0, 2.0], [0.0, 5.0], [0.0, 6.0], [0.0, 0.0]]
    assert M == [[True, True], [False, True], [False, True], [False, False]]


def test_missing_indicators_flag_nulls_not_absent_keys():
    index = FeatureIndex(missing_indicators=True)
    X, M = vec(index, [{"a": 1.0, "s": "x"}, {"a": None, "s": None}, {"s": "x"}])
    assert index.names == ["a", "s=x", "a=<missing>", "s=<missing>"]
    assert X == [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]]
    assert M[1] == [False, False, True, True]
    assert index.indicator_mask.tolist() == [False, True, True, True]


def test_nested_objects_and_arrays_are_flattened():
    index = FeatureIndex()
    X, _ = vec(index, [{"device": {"os": "ios", "ver": 17}, "v": [0.5, 2, "x", [True]], "e": {}}])
    assert index.names == ["device.os=ios", "device.ver", "v[0]", "v[1]", "v[2]=x", "v[3][0]"]
    assert X == [[1.0, 17.0, 0.5, 2.0, 1.0, 1.0]]
    with pytest.raises(InvalidFeatureError, match="nested deeper than 4 levels") as e:
        index.vectorize([{"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}])
    assert e.value.code == "too_deep"


def test_nan_is_refused_and_inf_always():
    index = FeatureIndex()
    for x, code in (({"a": float("nan")}, "non_finite"), ({"a": [1.0, float("inf")]}, "non_finite"),
                    ({"a": 10**400}, "non_finite"), ({"a": b"x"}, "wrong_type"), ({"a": {1}}, "wrong_type")):
        with pytest.raises(InvalidFeatureError) as e:
            index.vectorize([{"ok": 1.0}, x])
        assert e.value.code == code, x
    assert index.names == [] and index.width == 0  # nothing was registered
    # flatten, the rule the decoder applies, reads NaN as null on request
    assert flatten({"a": float("nan"), "b": [np.float32("nan")]}, nan="missing") == {"a": None, "b[0]": None}


def test_a_pandas_frame_spells_null_as_nan():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "c": ["x", None, pd.NA], "n": pd.array([1, None, 3], dtype="Int64"),
                          "t": pd.to_datetime(["2024-01-01", None, "2024-01-02"])})
    rows = frame_rows(frame)
    assert rows[0] == {"a": 1.0, "c": "x", "n": 1, "t": pd.Timestamp("2024-01-01")}
    assert rows[1] == {"a": None, "c": None, "n": None, "t": None}
    assert rows[2]["c"] is None and rows[2]["n"] == 3
    assert frame_rows(pd.DataFrame({"a": [1.0, 2.0]})) == [{"a": 1.0}, {"a": 2.0}]  # numeric: the fast path


def test_the_category_bound_sends_the_rest_to_other_and_counts_them():
    index = FeatureIndex(max_categories=2)
    X, _ = vec(index, [{"m": "a"}, {"m": "b"}, {"m": "c"}, {"m": "a"}, {"m": "d"}, {"k": "a"}])
    assert index.names == ["m=a", "m=b", "m=<other>", "k=a"]
    assert X == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    assert index.categories == {"m": 2, "k": 1} and index.overflow == {"m": 2} and index.overflow_total == 2
    vec(index, [{"m": "c"}, {"m": "b"}])  # later batches: the bound holds, the count goes on
    assert index.names == ["m=a", "m=b", "m=<other>", "k=a"] and index.overflow == {"m": 3}
    assert index.report()["overflow_total"] == 3 and index.report()["indicator_columns"] == 4


def test_a_batch_registers_what_a_loop_over_its_events_would():
    rng = np.random.default_rng(0)
    xs = []
    for i in range(300):
        x = {"amount": float(rng.normal()), "merchant": f"m{int(rng.zipf(1.5)) % 40}", "dev": None if i % 7 == 0 else "ios"}
        if i % 5 == 0:
            x["geo"] = {"cc": ["FR", "DE", "US"][i % 3], "lat": 1.5}
        if i % 11 == 0:
            x = {"amount": 1.0}  # all numeric, other keys
        xs.append(x)
    loop, batch = FeatureIndex(max_categories=12, missing_indicators=True), FeatureIndex(max_categories=12, missing_indicators=True)
    rows = []
    for x in xs:
        X, _ = vec(loop, [x])
        rows.append(X[0])
    Xb = []
    for i in range(0, len(xs), 64):
        X, _ = vec(batch, xs[i:i + 64])
        Xb.extend(X)
    assert batch.names == loop.names and batch.overflow == loop.overflow and batch.categories == loop.categories
    assert loop.overflow["merchant"] > 0  # the bound was reached
    width = len(loop.names)
    assert [r + [0.0] * (width - len(r)) for r in rows] == [r + [0.0] * (width - len(r)) for r in Xb]


def test_numeric_events_never_take_the_slow_path(monkeypatch):
    def fail(*args):
        raise AssertionError(f"slow path for {args}")

    monkeypatch.setattr(feature_batch, "cells", fail)  # the batch's per-value path
    index = FeatureIndex()
    vec(index, [{"a": 1, "b": 2.5, "c": True}, {"b": 1.0}])
    row, new = index.vectorize_one({"a": 1.0, "b": 2.0, "c": False})
    assert row.tolist() == [1.0, 2.0, 0.0] and not new


def test_hashing_puts_categories_in_buckets_whose_kind_is_fixed_at_first_use():
    index = FeatureIndex(hash_width=8)
    X, M = vec(index, [{"color": "red", "n": 2.0}])
    mask = index.indicator_mask
    (j,) = np.flatnonzero(mask)  # the bucket of "color=red" reads raw 0/1 from now on
    assert abs(X[0][j]) == 1.0 and sum(M[0]) == 2 and index.names == []
    assert index._kinds.count(-1) == 6  # the other buckets are still unused
    assert index.overflow == {}  # hashing bounds the width itself: no bound per feature


def test_datetimes_become_cyclical_time_columns():
    t = datetime(2024, 1, 3, 18, 0, tzinfo=timezone.utc)  # a Wednesday, 18:00
    index = FeatureIndex(time_features=True)
    X, _ = vec(index, [{"when": t, "a": 1.0}])
    assert index.names == ["when.hour_sin", "when.hour_cos", "when.dow_sin", "when.dow_cos", "a"]
    expected = [math.sin(1.5 * math.pi), math.cos(1.5 * math.pi), math.sin(2 * math.pi * 2.75 / 7), math.cos(2 * math.pi * 2.75 / 7)]
    assert np.allclose(X[0][:4], expected)
    assert time_columns("when", t.timestamp()) == dict(zip(index.names[:4], X[0][:4]))
    naive = FeatureIndex(time_features=True)
    assert np.allclose(vec(naive, [{"when": t.replace(tzinfo=None)}])[0][0], expected)  # naive = UTC
    with pytest.raises(InvalidFeatureError, match="time_features=True"):
        FeatureIndex().vectorize([{"when": t}])


def test_state_round_trips_through_a_checkpoint_and_the_bound_goes_on(tmp_path):
    index = FeatureIndex(max_categories=2, missing_indicators=True)
    vec(index, [{"m": "a", "x": 1.0}, {"m": "b"}, {"m": "c", "x": None}, {3: "z"}])
    save_checkpoint(tmp_path / "c.safetensors", {"index": index.state_dict()})
    state, _ = load_checkpoint(tmp_path / "c.safetensors")
    restored = FeatureIndex(max_categories=2, missing_indicators=True).load_state_dict(state["index"])
    assert restored.names == index.names == ["m=a", "x", "m=b", "m=<other>", "x=<missing>", "3=z"]
    assert restored.indicator_mask.tolist() == index.indicator_mask.tolist()
    assert restored.categories == {"m": 2, 3: 1} and restored.overflow == {"m": 1}
    X, _ = vec(restored, [{"m": "d"}])
    assert X == [[0, 0, 0, 1, 0, 0]] and restored.overflow == {"m": 2}
    # a state written before categories existed: every column numeric
    old = FeatureIndex().load_state_dict({"hash_width": None, "names": ["a", "b"]})
    assert old.names == ["a", "b"] and old.indicator_mask is None


def test_max_categories_is_validated():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_categories"):
            FeatureIndex(max_categories=bad)


def test_a_number_beyond_the_bound_is_refused_before_it_is_learned():
    # 1e200 is finite but its square is not: learned, it made the heads' statistics inf for good
    for big in (1e200, -1e101, 10**101, np.float32(3e38) * np.float64(1e70)):
        with pytest.raises(InvalidFeatureError, match=r"beyond \+-1e\+100") as e:
            flatten({"a": 1.0, "b": {"c": big}})
        assert e.value.code == "non_finite"
    assert flatten({"a": 1e100, "b": -(10**100)}) == {"a": 1e100, "b": -1e100}  # the bound itself is a value
    assert flatten({"a": float("nan")}, nan="missing") == {"a": None}  # NaN read as null stays null
    with pytest.raises(InvalidFeatureError, match="not finite"):
        flatten({"a": float("inf")}, nan="missing")
    # the fast paths (every value a number) send such a row to the rule above, not to the model
    index = FeatureIndex()
    for rows in ([{"a": 1.0, "b": 1e200}], [{"a": 1.0}, {"a": 1e150}]):
        with pytest.raises(InvalidFeatureError, match=r"beyond \+-1e\+100"):
            index.vectorize(rows)
    assert index.names == []
    frame = pd.DataFrame({"a": [1.0, 2e100]})
    assert frame_rows(frame) == [{"a": 1.0}, {"a": 2e100}]  # as dicts, refused by whoever learns them


def test_two_values_that_flatten_to_one_key_are_refused_whatever_their_order():
    # the later value used to overwrite the earlier one silently: the event's meaning hung on key order
    for x in ({"a.b": 1, "a": {"b": 2}}, {"a": {"b": 2}, "a.b": 1}, {"v[0]": 5, "v": [1]}, {"v": [1], "v[0]": 5}):
        with pytest.raises(InvalidFeatureError, match="two values flatten to this key") as e:
            flatten(x)
        assert e.value.code == "bad_features"
    assert flatten({"a.b": {"c": 1}, "a": {"b": 2}}) == {"a.b.c": 1.0, "a.b": 2.0}  # no key twice: fine


def test_two_values_that_make_one_column_are_refused():
    # flatten's keys differ, the columns do not: the last value used to win silently
    for x in ({"color": "red", "color=red": 7.0}, {"amount": None, "amount=<missing>": 3.0},
              {"t": datetime(2024, 1, 1, tzinfo=timezone.utc), "t.hour_sin": 0.25}):
        with pytest.raises(InvalidFeatureError, match="two values make this column") as e:
            FeatureIndex(missing_indicators=True, time_features=True).vectorize([x])
        assert e.value.code == "bad_features"


def test_pandas_nat_in_a_dict_is_null_as_in_a_frame():
    assert flatten({"t": pd.NaT, "a": 1}) == {"t": None, "a": 1.0}  # it raised a bare ValueError
    index = FeatureIndex(time_features=True)
    X, new = index.vectorize([{"a": 1.0, "t": pd.NaT}])
    assert list(new) == ["a"] and X.tolist() == [[1.0]]  # no time columns: the value is missing


def test_every_learner_refuses_a_frame_whose_column_names_repeat():
    """OnlineContinualLearner and TrainableLearner kept the last of the repeated columns silently
    (a dict of the row), where AnalyticClassifier refuses the frame."""
    import pandas as pd

    from stream_cl import AnalyticClassifier, OnlineContinualLearner
    from stream_cl.trainable import TrainableLearner

    X = pd.DataFrame([[1.0, 2.0, 3.0], [0.0, -1.0, 2.0]], columns=["a", "a", "b"])
    y = pd.Series(["p", "n"])
    for model in (OnlineContinualLearner(device="cpu"), TrainableLearner(device="cpu"), AnalyticClassifier()):
        with pytest.raises(ValueError, match=r"column names repeat: \['a'\]"):
            model.learn_many(X, y)
        with pytest.raises(ValueError, match="column names repeat"):
            model.predict_proba_many(X)


def test_pandas_na_in_an_event_is_null_as_in_a_frame():
    """A row of a nullable column (``df.to_dict("records")``) holds ``pd.NA``: null, as ``NaT`` is and as a
    frame's NA cell is, not a ``wrong_type`` refusal (review r67, finding 5)."""
    import pandas as pd

    from stream_cl import OnlineContinualLearner

    assert flatten({"a": pd.NA, "b": {"c": pd.NA}, "d": 1}) == {"a": None, "b.c": None, "d": 1.0}
    with_na, with_none = (OnlineContinualLearner(device="cpu") for _ in range(2))
    for i in range(30):
        a = float(i % 7) if i % 3 else None
        with_none.learn_one({"a": a, "c": "red" if i % 2 else None}, "uv"[i % 2])
        with_na.learn_one({"a": pd.NA if a is None else a, "c": "red" if i % 2 else pd.NA}, "uv"[i % 2])
    assert with_na.predict_proba_one({"a": pd.NA, "c": pd.NA}) == with_none.predict_proba_one({"a": None, "c": None})


def test_hashed_keys_whose_values_sum_past_the_bound_in_one_input_are_refused():
    """Each value is within ±1e100, but hashed into one input they were summed past it, and with a large
    sample weight the analytic head's statistics became inf (review r67, finding 4)."""
    from stream_cl import AnalyticClassifier
    from stream_cl.features import _stable_hash

    same_sign = [k for k in (f"k{i}" for i in range(50)) if (_stable_hash(k) >> 31) & 1 == 0][:2]
    model = AnalyticClassifier(hash_width=1).learn_one({"a": 1.0}, "u")
    with pytest.raises(InvalidFeatureError, match=f"feature '{same_sign[1]}': hashed into input 0 with 1 other "
                                                  f"key\\(s\\) of this event \\('{same_sign[0]}'\\)"):
        model.learn_one({k: 1e100 for k in same_sign}, "v")
    with pytest.raises(InvalidFeatureError, match="sum past"):
        model.predict_proba_one({k: 1e100 for k in same_sign})
    model.learn_one({same_sign[0]: 1e100}, "v", w=1e50)  # one alone is within the bound (the largest weight)
    assert np.isfinite(model.state_dict()["head"]["ridge"]["A"]).all()


def test_whether_hashed_values_sum_past_the_bound_does_not_depend_on_the_order_of_the_keys():
    """Judged after each key, {a, b, c} (a + b past the bound, c bringing it back) was refused in one order and
    learned in another, and a frame reorders its columns (review r68 L5)."""
    from stream_cl import AnalyticClassifier
    from stream_cl.features import _stable_hash

    keys = [f"k{i}" for i in range(60)]
    plus = [k for k in keys if (_stable_hash(k) >> 31) & 1 == 0][:2]
    minus = [k for k in keys if (_stable_hash(k) >> 31) & 1][:1]
    model = AnalyticClassifier(hash_width=1).learn_one({"a": 1.0}, "u")
    for order in (plus + minus, minus + plus):
        event = {k: 9e99 for k in order}  # 9e99 + 9e99 - 9e99: within the bound however it is summed
        assert set(model.predict_proba_one(event)) == {"u"}
    frame = pd.DataFrame([{k: 9e99 for k in plus + minus}, {k: 9e99 for k in minus + plus}])
    model.learn_many(frame, pd.Series(["u", "v"]))
    assert model.predict_one({k: 9e99 for k in plus + minus}) in {"u", "v"}
