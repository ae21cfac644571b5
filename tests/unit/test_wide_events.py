"""Review r55 F4: an event of 90,000 new numbers (0.6 MB, within max_event_bytes and max_features) takes
~13 MB and ~0.5 s to be refused by the learner's max_columns check, and a file poll decoded run.batch_size
(1,024) lines whatever their size: ~14 GB for 1,024 such lines. A file poll now ends at POLL_BYTES read.
(Refusing at the first input over the bound was tried and taken back: it refused predictions too, r57.)"""

from __future__ import annotations

import json

import pytest

import connectors.files as files
from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.config import MappingConfig


@pytest.mark.parametrize("make", [lambda: AnalyticClassifier(max_columns=11),
                                  lambda: OnlineContinualLearner(device="cpu", max_columns=300, seed=0)])
def test_a_model_at_its_column_bound_still_predicts_events_with_unseen_keys(make):
    """Review r57: refusing at the first input over the bound (a first fix of F4, taken back) refused
    predictions too: a prediction reads the inputs that exist, and makes none."""
    model = make()
    refused = []
    for i in range(60):  # a new numeric key every 4 events, until the bound refuses them
        try:
            model.learn_one({f"f{j}": float((i * j) % 5) for j in range(i // 4 + 1)}, "p" if i % 2 else "q")
        except ValueError:
            refused.append(i)
    # refusals begin at an event bringing a new key, and every wider one after it is refused (review r102:
    # any refusal, or none, had passed; the bound counts a head's design columns, not the keys)
    assert refused and refused == list(range(refused[0], 60)) and refused[0] % 4 == 0
    for x in ({"f0": 1.0, "f1": 2.0, "brand_new": 3.0}, {"f0": 1.0, "colour": "red"}):
        assert model.predict_one(x) in ("p", "q")


def test_a_file_poll_ends_at_poll_bytes_read(tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    lines = [json.dumps({"x": {"a": i}, "y": i % 2}) for i in range(20)]
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(files, "POLL_BYTES", 3 * (len(lines[0]) + 1) + 1)  # (a line's bytes hold its newline)
    source = files.FileSource(str(path), MappingConfig())
    assert len(source.poll(1000)) == 4  # the line that passed the budget is the poll's last
    assert sum(len(source.poll(1000)) for _ in range(5)) == 16  # and the next polls go on from there
