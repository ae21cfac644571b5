"""Review r55 F4: an event of 90,000 new numbers (0.6 MB, within max_event_bytes and max_features) was
refused by the learner's max_columns check only after all its columns were made (0.5 s and 13 MB an
event), and a file poll decoded run.batch_size (1,024) lines whatever their size: ~14 GB for 1,024 such
lines. The feature index now hands the learner's check the new inputs as soon as they pass the bound (the
same ValueError, raised at the first input over it), and a file poll ends at POLL_BYTES read."""

from __future__ import annotations

import json

import pytest

import connectors.files as files
from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.config import MappingConfig
from stream_cl.trainable import TrainableLearner


@pytest.mark.parametrize("make, said", [
    (lambda: AnalyticClassifier(max_columns=10), "10 inputs would give the head 11 design columns, over max_columns (10)"),
    (lambda: OnlineContinualLearner(max_columns=600), "inputs would give the"),
    (lambda: TrainableLearner(max_columns=10, device="cpu"), "10 new inputs would give the network's first layer 11 inputs"),
])
def test_an_event_past_max_columns_is_refused_at_its_first_input_over_the_bound(make, said):
    model = make()
    model.learn_one({"a0": 1.0}, 0)
    before = list(model.feature_names_in_)
    with pytest.raises(ValueError, match="over max_columns") as refused:
        model.learn_one({f"a{i}": float(i) for i in range(50_000)}, 1)
    assert said in str(refused.value) and "50,0" not in str(refused.value) and "49,9" not in str(refused.value)
    assert list(model.feature_names_in_) == before  # nothing indexed


def test_a_file_poll_ends_at_poll_bytes_read(tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    lines = [json.dumps({"x": {"a": i}, "y": i % 2}) for i in range(20)]
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(files, "POLL_BYTES", 3 * (len(lines[0]) + 1) + 1)  # (a line's bytes hold its newline)
    source = files.FileSource(str(path), MappingConfig())
    assert len(source.poll(1000)) == 4  # the line that passed the budget is the poll's last
    assert sum(len(source.poll(1000)) for _ in range(5)) == 16  # and the next polls go on from there
