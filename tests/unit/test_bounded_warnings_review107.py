"""Review r107 (unbounded growth over long streams): a followed file run (source.follow = true, a run that may
never end) kept every warning it said in the list its report gives (connectors/run.py, run_file's
``warnings``). A CSV whose writer appends its header with each batch of rows, its columns in alternating
order (two writers, or pandas ``to_csv(mode="a")`` of frames whose columns come in another order), makes a
warning per header: measured 78 KB of kept text per 1,000 rows with a header every second row, 2.1 MB per
1,000 rows with 1,000-character column names (r107_follow_csv.py), without end. So does a path that cannot be
opened (again every 10 minutes while it lasts). Each is still said as it happens; the report keeps a bounded
number of them (proposed: the first 100, and a count of those left out)."""

from __future__ import annotations

import itertools
import threading

from connectors import csv_records
from connectors.run import run_file
from stream_cl.config import load_config_dict

REPORT_WARNINGS_BOUND = 100  # the proposed bound (the first ones kept), plus one line counting those left out


def test_r107_a_followed_runs_report_keeps_a_bounded_number_of_warnings(tmp_path, monkeypatch):
    # a header before every row, each in an order of its own: 599 warnings said (each header is said once
    # since r109, at most MAX_HEADERS_SAID of them: lifted here, for the report's own bound to be the one met)
    monkeypatch.setattr(csv_records, "MAX_HEADERS_SAID", 10_000)
    path = tmp_path / "events.csv"
    lines = []
    for i, cols in zip(range(600), itertools.permutations("abcdef")):
        lines.append(",".join([*cols, "y"]))
        vals = {c: (i + k) % 7 - 3.0 for k, c in enumerate("abcdef")}
        lines.append(",".join([str(vals[c]) for c in cols] + ["p" if vals["a"] + vals["b"] > 0 else "n"]))
    path.write_text("\n".join(lines) + "\n")
    config = load_config_dict({"source": {"kind": "file", "path": str(path), "format": "csv", "follow": True,
                                          "follow_idle_timeout_s": 0.3},
                               "run": {"progress": False, "dead_letters": str(tmp_path / "dead.jsonl")},
                               "model": {"width": 8, "key_units": 0}})
    said = []
    report = run_file(config, stop=threading.Event(), warn=said.append)
    assert report["events"] == 600
    assert len(said) >= 599  # each is still said as it happens
    assert len(report["warnings"]) <= REPORT_WARNINGS_BOUND + 1, (
        f"the report kept {len(report['warnings'])} warnings of a followed file (one per header in another order)")
