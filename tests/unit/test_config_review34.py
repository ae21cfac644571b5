"""Review r34 F3 and F4: two time settings that did nothing useful, silently.

F3: ``model.time_features = true`` with ``mapping.timestamp = ""`` (no event time) made no time
feature, and said nothing. F4: ``mapping.features`` naming the ``mapping.timestamp`` field learned
each ISO time as a category of its own (1,001 indicator columns, 9.5x slower), where the same
mistake with the id field is a config error. Both are now config warnings (stream_cl.config.unread_keys,
which the file run and the daemon report), naming both keys and the fix.
"""

from __future__ import annotations

import json

from connectors.cli import main
from stream_cl.config import load_config_dict, unread_keys

NO_TIME = ('model.time_features: set, but mapping.timestamp = "" names no event time, so no time features are made: '
           "remove it, or set mapping.timestamp to the field or column holding the event time")


def _notes(tables: dict) -> list[str]:
    return unread_keys(load_config_dict(tables), tables)


def test_time_features_without_a_time_field_is_warned_of():
    assert _notes({"model": {"time_features": True}, "mapping": {"timestamp": ""}}) == [NO_TIME]
    assert _notes({"model": {"time_features": True}}) == []  # the default field: TimeCensus says if it is absent
    assert _notes({"model": {"time_features": False}, "mapping": {"timestamp": ""}}) == []
    assert _notes({"mapping": {"timestamp": ""}}) == []


def test_the_time_field_among_the_features_is_warned_of_not_refused():
    (note,) = _notes({"mapping": {"features": ["amount", "ts"]}})
    assert note == ("mapping.features: names 'ts', the event-time field (mapping.timestamp): its value is learned as a "
                    "raw input too, an ISO 8601 time as a category of its own for every event; remove it from "
                    "mapping.features, and set model.time_features = true for hour-of-day and day-of-week inputs "
                    "(keep it only for a numeric time meant as a raw input)")
    (note,) = _notes({"mapping": {"features": ["amount", "when"], "timestamp": "when"}, "model": {"time_features": True}})
    assert note.startswith("mapping.features: names 'when', the event-time field (mapping.timestamp)")
    assert "remove it from mapping.features: model.time_features (on) already gives the hour-of-day" in note
    assert _notes({"mapping": {"features": ["amount", "ts"], "timestamp": ""}}) == []  # no time field
    assert _notes({"mapping": {"features": ["amount"]}, "model": {"time_features": True}}) == []


def test_a_file_run_reports_both(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text("amount,ts,y\n" + "".join(f"{i % 3},2024-05-{1 + i % 28:02d}T10:00:00Z,{'pq'[i % 2]}\n"
                                              for i in range(40)))
    cfg, report = tmp_path / "cfg.toml", tmp_path / "report.json"
    cfg.write_text('[mapping]\ntimestamp = ""\n[model]\ntime_features = true\n')
    code = main(["run", "--source", str(path), "--config", str(cfg), "--quiet", "--dead-letters", "", "--report", str(report)])
    assert code == 0 and json.loads(report.read_text())["warnings"] == [NO_TIME]
    assert f"warning: {NO_TIME}" in capsys.readouterr().err
    cfg.write_text("[model]\ntime_features = true\n")
    code = main(["run", "--source", str(path), "--config", str(cfg), "--features", "amount,ts", "--quiet",
                 "--dead-letters", "", "--report", str(report)])
    (note,) = json.loads(report.read_text())["warnings"]
    assert code == 0 and note.startswith("mapping.features: names 'ts', the event-time field (mapping.timestamp)")
