"""``run.max_events`` is a bound on the records a file run reads (review r133, low): a poll that hands out a
record or two past what it was asked for (records held over a truncation's restart, an unclosed CSV record
before a gzip error) made the run count and learn them past the bound."""

from __future__ import annotations

import json

from connectors.files import FileSource
from connectors.run import run_file
from stream_cl.config import Config, RunConfig, SourceConfig


def test_a_poll_past_what_was_asked_stops_at_max_events(tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({"x": {"a": i % 3}, "y": i % 2}) + "\n" for i in range(50)))
    poll = FileSource.poll
    monkeypatch.setattr(FileSource, "poll", lambda self, n: poll(self, n + 2))  # two more than asked, each time
    config = Config(source=SourceConfig(kind="file", path=str(path)),
                    run=RunConfig(batch_size=10, max_events=25, dead_letters="", progress=False))
    report = run_file(config)
    assert report["events"] == 25 and report["complete"] is True
