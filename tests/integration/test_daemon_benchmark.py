"""Smoke test: benchmarks/kafka_throughput.py runs end to end against the broker (tiny sizes)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import kafka_throughput  # noqa: E402


def test_kafka_throughput_quick(kafka_bootstrap, tmp_path):
    report = kafka_throughput.main(["--bootstrap", kafka_bootstrap, "--events", "1500", "--models", "analytic,analytic@thread", "--compare-crc",
                                    "--markdown", str(tmp_path / "out.md"), "--json", str(tmp_path / "out.json")])
    for entry in ("analytic", "analytic@thread"):
        drain = report["drain"][entry]
        assert drain["predictions"] == drain["distinct_ids"] == 1500, entry
    # every record read; the first, which starts the clock, is not counted in the rate
    read = lambda run: (run["events"] + run["uncounted"], run["uncounted"])  # noqa: E731
    assert {k: read(v) for k, v in report["passthrough"].items()} == {"thread": (1500, 1), "process": (1500, 1)}
    assert read(report["ceiling"]) == (1500, 1) and drain["events_per_s"] > 0
    assert drain["lag"][-1][1] == 0  # drained
    assert "bare kafka-python consumer" in (tmp_path / "out.md").read_text()
    # CPU per event: the daemon's own process tree and the broker were metered, and the budget is stated
    cpu = report["cpu"]["daemon, analytic learner, drain"]
    assert cpu["client_us"] > 0 and cpu["broker_us"] is not None and cpu["machine_us"] >= cpu["client_us"] * 0.5
    assert "Budget: 50% of the bare consumer" in (tmp_path / "out.md").read_text()
    # the pure-Python CRC-32C rows ran (and read every record), and the C one is back in place afterwards
    pc = report["pure_python_crc"]
    assert read(pc["ceiling"]) == read(pc["passthrough"]) == (1500, 1)
    from kafka.record import default_records, util
    assert default_records.calc_crc32c is util.calc_crc32c


def test_overlap_benchmark_runs_both_ways_on_the_same_stream(kafka_bootstrap, capsys):
    from benchmarks import overlap

    assert overlap.main(["--bootstrap", kafka_bootstrap, "--events", "3000", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "run 1: one thread" in out and "beside" in out and "median beside / one thread" in out
    # what main checks: both ways learned every event of the topic, to the same accuracy
    a = {"events": 3000, "accuracy": 0.9}
    assert overlap.same_stream(a, dict(a)) and not overlap.same_stream(a, {**a, "events": 2000})
    assert not overlap.same_stream(a, {**a, "accuracy": 0.8})
