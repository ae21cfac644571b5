"""Review r35: against.py primes each tree's numba cache before its timed runs; kafka_throughput fails a
run whose events were not each predicted exactly once (no broker: the Kafka calls are replaced)."""

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import against, kafka_throughput  # noqa: E402


def test_against_runs_each_tree_once_untimed_before_the_timed_runs(monkeypatch, tmp_path):
    # the earlier tree is extracted with an empty numba cache: its first timed run compiled a loop
    calls = []

    def fake_run(root, script, args, out_json, log):
        calls.append((root, list(args), f"{out_json.parent.name}/{out_json.name}"))
        batched = 1000.0 if len(calls) <= 2 else 2000.0  # a priming run's figures must not reach the table
        return {"streams": {"SEA": {"results": [{"model": "ours [batch 256]", "events_per_s": batched}]}}}

    monkeypatch.setattr(against, "extract", lambda rev, into: "abc1234")
    monkeypatch.setattr(against, "run_once", fake_run)
    text = against.main(["--rev", "abc1234", "--runs", "2", "--out", str(tmp_path), "vs_river", "--",
                         "--n", "20000", "--models", "ours"])
    tree, repo = Path(against.tempfile.gettempdir()), against.REPO
    assert [c[0] == repo for c in calls] == [False, True, False, True, False, True]
    assert calls[0][0] != repo and tree in calls[0][0].parents
    assert [c[1] for c in calls[:2]] == [["--models", "ours", "--n", "600"]] * 2  # untimed, small, first
    assert all(c[1] == ["--n", "20000", "--models", "ours"] for c in calls[2:])
    assert [c[2] for c in calls[:2]] == ["prime/vs_river-abc1234.json", "prime/vs_river-today.json"]
    assert "| SEA: batch 256, events/s | 2,000 | 2,000 | 2,000 | 2,000 | 1.00x |" in text


def _drain(predicted, n=10_000):
    """A drain's summary as kafka_throughput.drain makes it, for prediction records with these ids."""
    sent_ms = {str(i): 1_000_000.0 + i * 0.05 for i in range(n)}
    recs = [SimpleNamespace(key=str(i).encode(), timestamp=1_000_100.0 + k * 0.05) for k, i in enumerate(predicted)]
    out = kafka_throughput.summarise_predictions(recs, sent_ms)
    out["model_events_per_s"] = 25_000.0
    return out


def _report(drain, n=10_000):
    return {"meta": {"events": n, "features": 10, "partitions": 1, "machine": "x", "live_model": "default"},
            "fill": {"events_per_s": 1.0, "bytes_per_event": 1.0},
            "ceiling": {"events_per_s": 50_000.0, "events": n - 1, "uncounted": 1},
            "drain": {"default": drain}}


@pytest.mark.parametrize("predicted, line", [
    ([*range(5000), 7], "daemon, default learner, drain: 5,001 predictions of 10,000 events, 5,000 distinct ids"),
    ([*range(9999), 7], "daemon, default learner, drain: 10,000 predictions of 10,000 events, 9,999 distinct ids"),
])
def test_a_drain_short_of_or_duplicating_predictions_is_a_failed_check(predicted, line):
    report = _report(_drain(predicted))
    assert kafka_throughput.failed_checks(report) == [line]
    report["failed_checks"] = kafka_throughput.failed_checks(report)
    assert f"- FAILED: {line}" in kafka_throughput.markdown(report).splitlines()


def test_exactly_once_runs_pass_and_a_timed_out_consumer_fails():
    report = _report(_drain(range(10_000)))
    assert kafka_throughput.failed_checks(report) == []
    assert "FAILED" not in kafka_throughput.markdown(report)
    report["passthrough"] = {"thread": {"events": 8000, "uncounted": 1}}
    assert kafka_throughput.failed_checks(report) == [
        "consume + publish, producer in thread: read 8,001 of 10,000 records (timed out)"]


def test_main_exits_non_zero_on_a_failed_check(monkeypatch, tmp_path):
    # main with every Kafka call replaced: a daemon that published half its predictions
    n = 2000
    monkeypatch.setattr("stream_cl.runtime.set_threads", lambda n: None)  # not this test process's threads
    monkeypatch.setattr(kafka_throughput, "KafkaAdminClient", lambda **kw: SimpleNamespace(
        delete_topics=lambda topics: None, close=lambda: None))
    monkeypatch.setattr(kafka_throughput, "create_topic", lambda admin, name, parts: name)
    monkeypatch.setattr(kafka_throughput, "cpu_meter_available", lambda: False)
    monkeypatch.setattr(kafka_throughput, "fill", lambda *a: {
        "events_per_s": 1.0, "bytes_per_event": 1.0, "sent_ms": {str(i): 1_000_000.0 + i for i in range(n)}})
    monkeypatch.setattr(kafka_throughput, "bare_consumer", lambda *a: {"events_per_s": 9.0, "events": n - 1,
                                                                         "uncounted": 1})
    monkeypatch.setattr(kafka_throughput, "passthrough", lambda *a: {"events_per_s": 9.0, "events": n - 1,
                                                                      "uncounted": 1})
    monkeypatch.setattr(kafka_throughput, "drain", lambda *a: _drain(range(n // 2), n))
    md = tmp_path / "out.md"
    with pytest.raises(SystemExit) as stop:
        kafka_throughput.main(["--events", str(n), "--models", "default", "--markdown", str(md)])
    assert str(stop.value) == "FAILED: daemon, default learner, drain: 1,000 predictions of 2,000 events, 1,000 distinct ids"
    assert "- FAILED: daemon, default learner, drain: 1,000 predictions" in md.read_text()


def _consumer_of(batches, clock=None):
    """A KafkaConsumer stand-in whose polls return ``batches`` in turn (then nothing), each poll
    moving ``clock[0]`` on by a little over half a second where a clock is given."""

    class FakeConsumer:
        def __init__(self, *args, **kwargs):
            pass

        def partitions_for_topic(self, topic):
            return {0}

        def assign(self, parts):
            pass

        def seek_to_beginning(self, *parts):
            pass

        def poll(self, timeout_ms):
            if clock is not None:
                clock[0] += 0.55
            records = batches.pop(0) if batches else []
            return {"tp": records} if records else {}

        def close(self):
            pass

    return FakeConsumer


def test_read_topic_reads_a_duplicate_past_the_nth_record(monkeypatch):
    # it stopped at n records, so a prediction written twice after the n-th was never counted
    monkeypatch.setattr(kafka_throughput, "KafkaConsumer", _consumer_of([[1, 2, 3], [4, 5], [5], []]))
    assert kafka_throughput.read_topic("127.0.0.1:1", "t", 5) == [1, 2, 3, 4, 5, 5]


def test_read_topic_reads_the_duplicate_when_the_nth_record_comes_at_the_deadline(monkeypatch):
    # the tail read was bounded by what the timeout left: the n-th record in the last poll before it skipped it
    clock = [0.0]

    class Clock:
        @staticmethod
        def monotonic():
            return clock[0]

    monkeypatch.setattr(kafka_throughput, "KafkaConsumer", _consumer_of([[1, 2, 3], [4, 5], [5], []], clock))
    monkeypatch.setattr(kafka_throughput, "time", Clock)  # each poll takes a little over half the timeout below
    assert kafka_throughput.read_topic("127.0.0.1:1", "t", 5, timeout_s=1.0) == [1, 2, 3, 4, 5, 5]
