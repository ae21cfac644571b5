"""Review r109: a CSV whose header comes again before each batch of rows, from two writers that
alternate their column orders, said a warning at every header (5,000 lines on stderr for a
10,000-line file; the report kept the first 100). Each header met within the file is said once
now, at most MAX_HEADERS_SAID of them; the rows are read under each header all the same."""
from __future__ import annotations

import itertools
import threading

from connectors.csv_records import MAX_HEADERS_SAID
from connectors.run import run_file
from stream_cl.config import load_config_dict


def _run(tmp_path, headers):
    """A file run of one row under each header in ``headers``; (report, warnings said)."""
    lines = []
    for i, cols in enumerate(headers):
        lines.append(",".join(cols))
        vals = {c: float((i + k) % 5 - 2) for k, c in enumerate(cols) if c != "y"}
        vals["y"] = "p" if vals.get("a", 0.0) > 0 else "n"
        lines.append(",".join(str(vals[c]) for c in cols))
    path = tmp_path / "events.csv"
    path.write_text("\n".join(lines) + "\n")
    config = load_config_dict({"source": {"kind": "file", "path": str(path), "format": "csv"},
                               "run": {"progress": False, "dead_letters": str(tmp_path / "dead.jsonl")},
                               "model": {"width": 8, "key_units": 0}})
    said = []
    report = run_file(config, stop=threading.Event(), warn=said.append)
    return report, said


def test_two_alternating_column_orders_are_said_once(tmp_path):
    report, said = _run(tmp_path, [("a", "b", "y"), ("b", "a", "y")] * 500)
    assert report["events"] == 1000 and not report["dead_letters"]
    assert len(said) == 1 and "another order (b, a, y; before: a, b, y)" in said[0]
    assert "said once for each header" in said[0]


def test_alternating_renamed_headers_are_said_once_each(tmp_path):
    report, said = _run(tmp_path, [("a", "b", "y"), ("a", "c", "y"), ("a", "d", "y")] * 200)
    assert report["events"] == 600 and not report["dead_letters"]
    assert [w.split("other columns within the file ")[1][:9] for w in said] == ["(a, c, y;", "(a, d, y;"]


def test_past_the_bound_new_headers_are_read_without_a_warning(tmp_path):
    orders = [(*cols, "y") for cols in itertools.permutations("abcde")]  # 120 orders
    report, said = _run(tmp_path, orders * 2)
    assert report["events"] == 240 and not report["dead_letters"]
    assert len(said) == MAX_HEADERS_SAID == 100
    assert "past 100, new ones are read without a warning" in said[-1]
    assert all("past 100" not in w for w in said[:-1])
