"""Payload edges of the run loops: classes that print alike, numbers named like indicator
columns, feature names of the time columns, the raw text of refused records, label records."""

import json

import pandas as pd
import pytest

from connectors.cli import main
from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.config import MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.encoding import InvalidFeatureError
from stream_cl.events import DeadLetter, Event
from stream_cl.metrics import TaskSegments
from stream_cl.pending import LabelDecoder, LabelUpdate
from stream_cl.prequential import Prequential


def _run(tmp_path, name: str, text: str, *extra) -> tuple[dict, list[dict]]:
    source = tmp_path / name
    source.write_text(text)
    report, dead = tmp_path / "report.json", tmp_path / "dead.jsonl"
    main(["run", "--source", str(source), "--report", str(report), "--dead-letters", str(dead), "--quiet", *extra])
    return json.loads(report.read_text()), [json.loads(line) for line in dead.read_text().splitlines()]


# -- 3: classes (and tasks) whose str() is the same are two entries of the report -----------------
def test_labels_1_and_text_1_are_two_classes_of_the_report(tmp_path):
    lines = [json.dumps({"id": i, "x": {"a": float(i % 7)}, "y": 1 if i % 2 else "1"}) for i in range(60)]
    report, _ = _run(tmp_path, "ev.jsonl", "\n".join(lines) + "\n")
    assert sorted(report["classes"]) == ["'1'", "1"]
    assert report["class_counts"] == {"'1'": 30, "1": 30}  # nothing merged: the counts add up
    assert sum(report["predicted_counts"].values()) == report["events"] - 1  # the first event: no class yet


def test_report_names():
    from stream_cl.metrics import report_names

    assert report_names(["cat", 2, "dog"]) == {"cat": "cat", 2: "2", "dog": "dog"}  # the usual case: str()
    assert report_names([1, "1", "x"]) == {1: "1", "1": "'1'", "x": "x"}
    assert report_names([True, 1]) == {True: "True"}  # equal in Python: one class, named by the first
    names = report_names([1, "1", "'1'"])  # a repr that another key's str() spells: a repr each
    assert len(set(names.values())) == 3


def test_tasks_1_and_text_1_keep_their_own_retention():
    seg = TaskSegments(probe=2)
    seg.update([1] * 3 + ["1"] * 3 + [1] * 3 + ["1"] * 3, [1.0] * 3 + [0.0] * 3 + [0.0] * 3 + [1.0] * 3)
    r = seg.report()
    assert r["recurrences"] == 2 and r["retention_by_task"] == {"1": -1.0, "'1'": 1.0}


# -- 4: a number named like an indicator column (or the reverse) is refused -----------------------
@pytest.mark.parametrize("make", [lambda: OnlineContinualLearner(device="cpu"), AnalyticClassifier])
@pytest.mark.parametrize("first, second", [({"c": "r"}, {"c=r": 7.0}), ({"c=r": 7.0}, {"c": "r"})])
def test_a_number_and_an_indicator_never_share_a_column(make, first, second):
    model = make()
    for i in range(4):
        model.learn_one({**first, "a": float(i)}, i % 2)
    names, kinds = model.feature_names_in_, model.index_.kinds
    learners = [lambda: model.learn_one(second, 0), lambda: model.learn_one({**second, "a": 1.0}, 0),  # (every column)
                lambda: model.prequential_batch([{"a": 1.0}, second], [0, 1]),
                lambda: model.predict_proba_one(second),
                lambda: model.learn_many(pd.DataFrame([second]), pd.Series([0]))]
    for learn in learners:
        with pytest.raises(InvalidFeatureError, match="two values make this column") as raised:
            learn()
        assert raised.value.code == "bad_features"
    assert model.feature_names_in_ == names and model.index_.kinds == kinds  # nothing registered


def test_in_one_batch_the_later_event_is_the_dead_letter_with_the_decoders_reason():
    model = OnlineContinualLearner(device="cpu")
    events = [Event({"c": "r"}, "p", origin="o:1"), Event({"c=r": 7.0}, "q", origin="o:2"),
              Event({"a": 1.0}, "q", origin="o:3")]
    predictions, dead = Prequential(model).process(events)
    assert len(predictions) == 2 and [(d.reason, d.origin) for d in dead] == [("bad_features", "o:2")]
    assert model.feature_names_in_ == ["c=r", "a"] and model.index_.kinds == [1, 0]


# -- 5: a file run's dead letter from the model holds the record as read --------------------------
def test_a_refused_csv_row_and_json_line_keep_their_text(tmp_path):
    csv = 'c,c=r,note,y\nr,8,"two\nlines",p\nr,7,plain,p\ns,1,x,q\n'
    _, dead = _run(tmp_path, "ev.csv", csv)
    assert [(d["reason"], d["raw"]) for d in dead] == [("bad_features", 'r,8,"two\nlines",p'),
                                                       ("bad_features", "r,7,plain,p")]
    jsonl = '{"id": "a", "x": {"c": "r"}, "y": "p"}\n{"id": "b",  "x": {"c=r": 7}, "y": "q", "ts": 5}\n'
    _, dead = _run(tmp_path, "ev.jsonl", jsonl)
    assert [(d["reason"], d["raw"], d["origin"][-10:]) for d in dead] == [
        ("bad_features", '{"id": "b",  "x": {"c=r": 7}, "y": "q", "ts": 5}', "ev.jsonl:2")]


# -- 6: with time_features, a feature spelled like a time column is refused, not overwritten ------
def test_a_feature_named_like_a_time_column_is_a_dead_letter():
    event = EventDecoder(MappingConfig()).decode_json(
        b'{"id": "e1", "x": {"a": 1, "ts": {"hour_sin": 0.25}}, "y": "p", "ts": 1704067200}', "f:1")
    model = OnlineContinualLearner(device="cpu", time_features=True)
    step = Prequential(model)
    fine = Event({"a": 2.0}, "q", id="e2", ts=1704067200.0, origin="f:2")
    predictions, dead = step.process([event, fine])
    assert [p.id for p in predictions] == ["e2"] and [(d.reason, d.origin) for d in dead] == [("bad_features", "f:1")]
    assert "ts.hour_sin" in dead[0].detail and step.stats.labelled == 1 and model.classes_ == ["q"]


# -- 7: a label record is decoded by the event's rules -----------------------------------------------
@pytest.mark.parametrize("record", [
    b'\xef\xbb\xbf{"id": "e1", "y": "p"}',  # a byte-order mark
    ('{"id": %d, "y": "p"}' % 2**1001).encode(),  # an id too big for a float: still an id
    ('{"id": "e1", "y": %d}' % 2**1001).encode(),  # ... and a label
])
def test_a_label_record_is_read_as_its_event_is(record):
    event = EventDecoder(MappingConfig()).decode_json(record[:-1] + b', "x": {"a": 1}}', "e")
    label = LabelDecoder(MappingConfig()).decode(record, "l")
    assert isinstance(event, Event) and label == LabelUpdate(event.id, event.y, "l")


def test_a_label_records_bad_id_says_why():
    out = LabelDecoder(MappingConfig()).decode(b'{"id": 1.5, "y": "p"}', "l")
    assert isinstance(out, DeadLetter) and out.reason == "bad_id" and "got float" in out.detail
