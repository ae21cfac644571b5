"""How events become features (review r29), fixes F2, F3 and F5.

* F2: a number named like a category's indicator (``{"c=r": 7}`` beside ``{"c": "r"}``) is refused
  by one learner, but a merge aligned the inputs by name only: a partition's part that learned
  ``c=r`` as a number was summed into another member's indicator column without a word. A merge
  (and ``FeatureIndex.adopt``) now refuses it, changing nothing, naming the input; the daemon logs
  ``changelog_refused`` and goes on. Under ``hash_width`` the rule holds within one event only
  (README says so): buckets are shared by unrelated keys by design.
* F3: the dead letter of a category refused for that rule named the column ``c=r`` and the value
  1.0, neither of which the refused event holds; it names the event's feature and value now.
* F5: a ``Decimal`` was refused as "not a number", and a 0-d numpy array failed with a bare
  TypeError once the event held a string (the numeric fast paths read it as a number).
"""

from __future__ import annotations

import logging
import random
import re
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from kafka import TopicPartition

from connectors.partitions import PartitionStates, partition_key
from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.config import MappingConfig, load_config_dict
from stream_cl.contribution import ContributionError
from stream_cl.decode import EventDecoder
from stream_cl.encoding import CATEGORY, NUMERIC, InvalidFeatureError, flatten
from stream_cl.factory import build_learner
from stream_cl import features
from stream_cl.features import FeatureIndex
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import Prequential
from changelog_kit import FakeTable


def _learners():
    return [lambda: OnlineContinualLearner(device="cpu"), AnalyticClassifier]


def _two_members(make, seed=0):
    """A learned ``c`` as a category in partition 0 (``c=r`` an indicator), B ``c=r`` as a number in partition 1."""
    rng = random.Random(seed)
    A, B = make(), make()
    for i in range(60):
        A.learn_one({"a": rng.gauss(0, 1), "c": "rs"[i % 2]}, "pq"[i % 2], partition=0)
        B.learn_one({"a": rng.gauss(0, 1), "c=r": rng.gauss(5, 2)}, "pq"[i % 3 % 2], partition=1)
    return A, B


# -- F2: a merge refuses an input of the other kind ---------------------------------------------------
@pytest.mark.parametrize("make", _learners())
@pytest.mark.parametrize("direction", ["number into indicator", "indicator into number"])
def test_a_merge_refuses_a_part_whose_shared_input_is_of_the_other_kind(make, direction):
    A, B = _two_members(make)
    into, part, p = (A, B, 1) if direction == "number into indicator" else (B, A, 0)
    probe = [{"a": 0.3, "c": "r"}, {"a": -1.0, "c": "s"}] if into is A else [{"a": 0.3, "c=r": 4.0}]
    before = (list(into.feature_names_in_), into.index_.kinds, into.partitions_,
              into.predict_proba_batch(probe, partition=None))
    with pytest.raises(ContributionError) as refused:
        into.merge(p, part.contribution(p).to_bytes())
    text = str(refused.value)
    assert f"partition {p}" in text and "input 'c=r'" in text and "rename" in text
    assert ("is a number there and a category's indicator here" if into is A
            else "is a category's indicator there and a number here") in text
    after = (list(into.feature_names_in_), into.index_.kinds, into.partitions_,
             into.predict_proba_batch(probe, partition=None))
    assert after[:3] == before[:3] and np.array_equal(after[3], before[3])  # nothing changed


@pytest.mark.parametrize("make", _learners())
def test_parts_whose_inputs_agree_in_kind_still_merge(make):
    rng = random.Random(3)
    A, B = make(), make()
    for i in range(60):
        A.learn_one({"a": rng.gauss(0, 1), "c": "rs"[i % 2]}, "pq"[i % 2], partition=0)
        B.learn_one({"a": rng.gauss(0, 1), "c": "tr"[i % 2], "n": rng.random()}, "pq"[i % 3 % 2], partition=1)
    A.merge(1, B.contribution(1).to_bytes())
    assert sorted(A.partitions_) == [0, 1] and A.feature_names_in_ == ["a", "c=r", "c=s", "c=t", "n"]


def test_adopt_refuses_a_name_of_the_other_kind_changing_nothing():
    index = FeatureIndex()
    index.adopt(["a", "c=r"], [NUMERIC, CATEGORY], features=["c"])
    for names, kinds in ((["z", "c=r"], [NUMERIC, NUMERIC]), (["a"], [CATEGORY])):
        with pytest.raises(ValueError, match="rename one of them"):
            index.adopt(names, kinds)
        assert index.names == ["a", "c=r"] and index.kinds == [NUMERIC, CATEGORY]
    assert index.categories == {"c": 1}
    index.adopt(["c=r", "a", "b"], [CATEGORY, NUMERIC, NUMERIC])  # same kinds (and a new one): fine
    assert index.names == ["a", "c=r", "b"]


def test_hashed_buckets_are_never_compared():
    index = FeatureIndex(hash_width=8)
    index.adopt(list(range(8)), [CATEGORY] * 8)
    assert features.kind_clash(index, list(range(8)), [NUMERIC] * 8) is None
    index.adopt(list(range(8)), [NUMERIC] * 8)  # unrelated keys share buckets by design: no refusal
    assert index.kinds == [CATEGORY] * 8


def test_the_same_clash_is_still_refused_within_one_event_under_hash_width():
    model = OnlineContinualLearner(device="cpu", hash_width=64)
    with pytest.raises(InvalidFeatureError, match="two values make this column") as refused:
        model.learn_one({"c=r": 7.0, "c": "r"}, "p")
    assert refused.value.code == "bad_features" and refused.value.key == "c"


# the daemon: such a changelog record is logged and taken as missing; the member goes on
TOPIC = "events"
KEY0, KEY1 = partition_key(TOPIC, 0), partition_key(TOPIC, 1)


def _states(tmp_path, table):
    cfg = load_config_dict({"model": {"device": "cpu"}, "kafka": {"topics": [TOPIC]},
                            "checkpoint": {"dir": str(tmp_path / "ckpt")}})
    pending = PendingStores(cfg.labels.max_pending, cfg.labels.max_age_s)
    return PartitionStates(cfg, build_learner(cfg), pending, metrics=None, stats=None, table=table)


def _record(tmp_path, key, events):
    """``key``'s changelog value as a member of the same config writes it after learning ``events``."""
    states = _states(tmp_path, FakeTable())
    tp = TopicPartition(TOPIC, int(key.rsplit("/", 1)[1]))
    states.resume_at([tp])
    states.learner.prequential_batch([x for x, _ in events], [y for _, y in events], partition=key)
    states.touched(key, len(events))
    [(_, _, value)] = states.records_for({tp: len(events)}, force=True)
    return value


@pytest.mark.parametrize("at", ["takeover", "fold"])
def test_the_daemon_logs_a_changelog_part_of_the_other_kind_and_goes_on(tmp_path, caplog, at):
    rng = random.Random(5)
    mine = [({"a": rng.gauss(0, 1), "c": "rs"[i % 2]}, "pq"[i % 2]) for i in range(40)]
    theirs = [({"a": rng.gauss(0, 1), "c=r": rng.gauss(5, 2)}, "pq"[i % 3 % 2]) for i in range(40)]
    member = _states(tmp_path, FakeTable({KEY1: _record(tmp_path, KEY1, theirs)}))
    member.resume_at([TopicPartition(TOPIC, 0)])
    member.learner.prequential_batch([x for x, _ in mine], [y for _, y in mine], partition=KEY0)
    names = list(member.learner.feature_names_in_)
    with caplog.at_level(logging.ERROR, logger="stream_cl.daemon"):
        if at == "takeover":
            member.resume_at([TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])  # no ConfigError: goes on
        else:
            member.fold(force=True)
    assert KEY1 not in member.learner.partitions_ and member.learner.feature_names_in_ == names
    refused = [r for r in caplog.records if r.getMessage() == "changelog_refused"]
    assert refused and all("'c=r'" in r.stream_cl_fields["detail"] for r in refused)  # the input is named (the merge's own error)


# -- F3: the dead letter names the refused event's own feature and value ------------------------------
def test_the_dead_letter_of_a_refused_category_names_its_feature_and_value():
    decoder = EventDecoder(MappingConfig())
    step = Prequential(OnlineContinualLearner(device="cpu"))
    step.process([decoder.decode_json(b'{"id": "1", "x": {"c=r": 7, "a": 1}, "y": "ok"}', "t:1")])
    _, dead = step.process([decoder.decode_json(b'{"id": "2", "x": {"c": "r", "a": 2}, "y": "ok"}', "t:2")])
    assert [(d.reason, d.detail) for d in dead] == [(
        "bad_features", "feature 'c': its value makes the indicator column 'c=r', where feature 'c=r' (a number, in "
                        "this or an earlier event) goes: two values make this column; rename one of them (got 'r')")]


@pytest.mark.parametrize("make", _learners())
def test_each_refused_indicator_is_named_by_what_the_event_holds(make):
    model = make() if make is AnalyticClassifier else OnlineContinualLearner(device="cpu", missing_indicators=True)
    model.learn_one({"url=a=b": 1.0, "url": "x", 3: "red", "3=blue": 2.0, "n=<missing>": 5.0}, "p")
    cases = [({"url": "a=b"}, "url", "a=b", "its value makes the indicator column 'url=a=b'"),
             ({3: "blue"}, 3, "blue", "its value makes the indicator column '3=blue'")]
    if make is not AnalyticClassifier:
        cases.append(({"n": None}, "n", None, "its null makes the indicator column 'n=<missing>'"))
    for x, key, value, what in cases:
        for learn in (lambda: model.learn_one(x, "q"), lambda: model.prequential_batch([{"a": 1.0}, x], ["p", "q"])):
            with pytest.raises(InvalidFeatureError) as refused:
                learn()
            e = refused.value
            assert (e.code, e.key, e.value) == ("bad_features", key, value) and what in str(e)
    with pytest.raises(InvalidFeatureError, match=r"^feature 'url=a=b': two values make this column"):
        model.learn_one({"url": "a=b", "url=a=b": 1.0}, "q")  # the event's number after its category: named as before


def test_a_category_over_the_bound_names_the_shared_column():
    model = OnlineContinualLearner(device="cpu", max_categories=1)
    model.learn_one({"c": "r", "c=<other>": 1.5}, "p")
    with pytest.raises(InvalidFeatureError) as refused:
        model.learn_one({"c": "s"}, "q")
    assert refused.value.key == "c" and "over model.max_categories goes to the shared column 'c=<other>'" in str(
        refused.value)


def test_in_one_event_an_indicator_after_a_number_is_named_by_its_feature():
    index = FeatureIndex(missing_indicators=True)
    for x, key, value in (({"c=r": 7.0, "c": "r"}, "c", "r"), ({"c": "r", "c=r": 7.0}, "c=r", 7.0),
                          ({"n=<missing>": 1.0, "n": None}, "n", None)):
        with pytest.raises(InvalidFeatureError, match="two values make this column") as refused:
            index.vectorize([x])
        assert (refused.value.key, refused.value.value) == (key, value)


# -- F5: a Decimal is a number, a 0-d array its item ---------------------------------------------------
def test_a_decimal_is_read_as_a_number_with_the_same_range_rule():
    assert flatten({"a": Decimal("1.5"), "b": Decimal("-2"), "v": [Decimal("0.1")]}) == {"a": 1.5, "b": -2.0,
                                                                                         "v[0]": 0.1}
    for v, reason in ((Decimal("1e400"), "beyond +-1e+100"), (Decimal("1e101"), "beyond +-1e+100"),
                      (Decimal("Infinity"), "not finite"), (Decimal("-Infinity"), "not finite"),
                      (Decimal("NaN"), "not finite"), (Decimal("sNaN"), "not finite")):
        with pytest.raises(InvalidFeatureError, match="^" + re.escape(f"feature 'a': {reason}")) as refused:
            flatten({"a": v})
        assert refused.value.code == "non_finite"
    assert flatten({"a": Decimal("NaN"), "b": Decimal("sNaN")}, nan="missing") == {"a": None, "b": None}
    with pytest.raises(InvalidFeatureError, match="beyond"):
        flatten({"a": Decimal("1e400")}, nan="missing")  # only a NaN is missing


def test_a_0d_array_is_its_item_on_every_path():
    x = {"a": np.array(1.5), "i": np.array(3, dtype=np.int64), "b": np.array(True), "s": np.array("red"),
         "f": np.array(0.1, dtype=np.float32), "n": [np.array(2.0)]}
    assert flatten(x) == {"a": 1.5, "i": 3.0, "b": 1.0, "s": "red", "f": float(np.float32(0.1)), "n[0]": 2.0}
    with pytest.raises(InvalidFeatureError, match="two values flatten to this key"):
        flatten({"a.b": 1.0, "a": {"b": np.array(2.0)}})
    with pytest.raises(InvalidFeatureError, match="not finite") as refused:
        flatten({"a": np.array(np.inf)})
    assert refused.value.code == "non_finite"
    # the numeric fast path and the general one read it alike
    index = FeatureIndex()
    X1, new1 = index.vectorize([{"a": np.array(1.5), "b": 2.0}])
    X2, new2 = FeatureIndex().vectorize([{"a": np.array(1.5), "b": 2.0, "c": "red"}])
    assert X1.tolist() == [[1.5, 2.0]] and X2.tolist() == [[1.5, 2.0, 1.0]] and list(new2) == ["a", "b", "c=red"]


def _stream(n, seed):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.gauss(0, 1), rng.gauss(0, 1)
        x = {"a": Decimal(repr(a)) if i % 3 else a, "b": np.array(b) if i % 2 else b,
             "f": Fraction(i % 7, 4), "c": rng.choice(["r", "s", "t"])}
        out.append((x, "p" if a + b > 0 else "q"))
    return out


@pytest.mark.parametrize("make", _learners())
def test_per_event_and_batched_paths_agree_on_decimals_and_0d_arrays(make):
    events = _stream(300, 11)
    one, many = make(), make()
    p_one = []
    for x, y in events:
        p = one.predict_proba_one(x)
        p_one.append([p.get(c, 0.0) for c in ("p", "q")])
        one.learn_one(x, y)
    p_many = []
    for i in range(0, len(events), 64):
        chunk = events[i:i + 64]
        P = many.prequential_batch([x for x, _ in chunk], [y for _, y in chunk])
        classes = list(many.classes_)
        p_many.extend([[row[classes.index(c)] if c in classes else 0.0 for c in ("p", "q")] for row in P])
    assert one.feature_names_in_ == many.feature_names_in_
    assert np.abs(np.array(p_one) - np.array(p_many)).max() < 1e-9
    # the same stream as plain floats learns the same model
    plain = make()
    for x, y in events:
        plain.learn_one({k: (float(v) if not isinstance(v, str) else v) for k, v in x.items()}, y)
    probe = [x for x, _ in events[:20]]
    assert np.array_equal(plain.predict_proba_batch(probe), one.predict_proba_batch(probe))


def test_a_frame_of_decimals_is_read_as_numbers():
    model = OnlineContinualLearner(device="cpu")
    X = pd.DataFrame({"a": [Decimal("1.5"), Decimal("-0.5"), None], "c": ["r", "s", "r"]})
    model.learn_many(X, pd.Series(["p", "q", "p"]))
    assert model.feature_names_in_ == ["a", "c=r", "c=s"] and model.index_.kinds == [NUMERIC, CATEGORY, CATEGORY]
