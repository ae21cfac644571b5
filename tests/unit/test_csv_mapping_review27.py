"""Review r27 F1: a CSV with a column named ``x`` under the default ``mapping.features = "x"``.

``"x"`` is JSON's field holding the features object. A CSV row has no such field, so the
default reads every column but the label, id, task and timestamp ones, a column named ``x``
too: coordinates ``x,y,z`` are three features, not one with the other two dropped unsaid.
Learning column ``x`` alone is asked for with a list (``["x"]``, ``--features x,``).
"""

import json
import random

import pytest

from connectors.cli import main
from connectors.files import FileSource
from stream_cl.config import MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.events import Event
from stream_cl.mapping_check import check_columns

ROW = {"x": "0.5", "y": "0.25", "z": "2", "class": "hi"}


@pytest.mark.parametrize("unknown_fields", ["ignore", "reject"])
def test_the_default_features_read_every_csv_column_a_column_named_x_too(unknown_fields):
    decoder = EventDecoder(MappingConfig(label="class", unknown_fields=unknown_fields))
    event = decoder.decode_csv_row(ROW, b"0.5,0.25,2,hi", "c.csv:2")
    assert isinstance(event, Event), event  # with "reject" too: no column is unknown
    assert (event.x, event.y) == ({"x": 0.5, "y": 0.25, "z": 2.0}, "hi")


def test_the_default_label_column_y_stays_the_label_beside_a_column_x():
    event = EventDecoder(MappingConfig()).decode_csv_row({"x": "3", "z": "4", "y": "a"}, b"", "o")
    assert (event.x, event.y) == ({"x": 3.0, "z": 4.0}, "a")


def test_features_x_written_out_is_the_default_and_a_list_learns_column_x_alone():
    assert EventDecoder(MappingConfig(features="x", label="class")).decode_csv_row(ROW).x == {
        "x": 0.5, "y": 0.25, "z": 2.0}
    assert EventDecoder(MappingConfig(features=["x"], label="class")).decode_csv_row(ROW).x == {"x": 0.5}
    # another name that is a column is that column alone, as before (--features z)
    assert EventDecoder(MappingConfig(features="z", label="class")).decode_csv_row(ROW).x == {"z": 2.0}


def _coordinates(path, first: str, n: int = 1500):
    """A CSV ``<first>,y,z,class`` whose class depends on y + z alone (seeded)."""
    rng = random.Random(1)
    lines = [f"{first},y,z,class"]
    for _ in range(n):
        x, y, z = rng.random(), rng.random(), rng.random()
        lines.append(f"{x:.4f},{y:.4f},{z:.4f},{'hi' if y + z > 1 else 'lo'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_file_source_reads_a_column_named_x_as_one_feature_among_all(tmp_path):
    path = _coordinates(tmp_path / "coords.csv", "x", n=3)
    assert check_columns(MappingConfig(label="class"), ["x", "y", "z", "class"], str(path)) == []
    with FileSource(path, MappingConfig(label="class")) as source:
        events = source.poll(10)
        assert source.take_warnings() == []
    assert [sorted(e.x) for e in events] == [["x", "y", "z"]] * 3


def test_a_file_run_learns_the_same_whatever_the_first_column_is_named(tmp_path, capsys):
    accuracy = {}
    for first in ("x", "u"):
        path = _coordinates(tmp_path / f"coords_{first}.csv", first)
        report = tmp_path / f"report_{first}.json"
        code = main(["run", "--source", str(path), "--label", "class", "--dead-letters", "", "--quiet",
                     "--predictions", str(tmp_path / f"p_{first}.jsonl"), "--report", str(report)])
        assert code == 0, capsys.readouterr().err
        result = json.loads(report.read_text())
        assert result["warnings"] == []
        accuracy[first] = result["accuracy"]
    # learned from y + z both times: with x alone it was a coin toss (0.486 against 0.988 in the review). Close,
    # not equal to the last digit: measured 0.977 against 0.979, for the two names alone
    assert accuracy["x"] > 0.95 and abs(accuracy["x"] - accuracy["u"]) < 0.01, accuracy
