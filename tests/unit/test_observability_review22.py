"""Observability review 22: the commit histogram reaches the commit timeout, the dashboard's
"Since last progress" shows the most stalled replica, and the consumer lag counts records
produced since a partition's last fetch.

The dashboard and histogram checks run the shipped PromQL through promtool (Debian's
``prometheus`` package), as tests/unit/test_deploy.py does: they fail, never skip, without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError
from prometheus_client.utils import floatToGoString

from connectors.kafka import KafkaSource
from connectors.prometheus import COMMIT_BUCKETS
from connectors.status import DaemonMetrics
from stream_cl.config import KafkaConfig, MappingConfig

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "stream-cl.json"
OBSERVABILITY_MD = ROOT / "docs" / "observability.md"


def all_panels(panels: list) -> list:
    return [q for p in panels for q in [p, *all_panels(p.get("panels", []))]]  # rows hold panels too


def panel_exprs(title: str) -> list[str]:
    panels = [p for p in all_panels(json.loads(DASHBOARD.read_text())["panels"]) if p["title"] == title]
    assert panels, f"no dashboard panel {title!r}"
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def as_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced (every job and instance selected)."""
    return expr.replace("$__rate_interval", "5m").replace("$job", ".*").replace("$instance", ".*")


def promtool_eval(tmp_path: Path, series: dict[str, str], expr: str, eval_time: str, value: float) -> None:
    """Assert that ``expr`` over ``series`` (promtool's series notation, 1 min apart) is ``value`` at ``eval_time``."""
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool not found: install Debian's prometheus package "
                    "(apt-get install -y --no-install-recommends prometheus); CI does")
    (tmp_path / "empty.rules.yml").write_text("groups: []\n")
    test = {"rule_files": ["empty.rules.yml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m",
                       "input_series": [{"series": s, "values": v} for s, v in series.items()],
                       "promql_expr_test": [{"expr": expr, "eval_time": eval_time,
                                             "exp_samples": [{"labels": "{}", "value": value}]}]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run([exe, "test", "rules", "test.yml"], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 0, f"{expr}:\n{result.stdout}\n{result.stderr}"


# -- finding 3: stream_cl_commit_duration_seconds reaches the commit timeout -----------------------
def test_commit_buckets_reach_the_commit_and_transaction_timeouts_and_keep_the_old_bounds():
    old = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    assert COMMIT_BUCKETS[:len(old)] == old  # dashboards and recorded series keep their `le` values
    kafka = KafkaConfig()
    assert COMMIT_BUCKETS[-1] >= max(kafka.commit_timeout_ms, kafka.transaction_timeout_ms) / 1000
    assert DaemonMetrics().commit_duration.buckets == COMMIT_BUCKETS


def test_docs_list_the_commit_buckets():
    (row,) = [line for line in OBSERVABILITY_MD.read_text().splitlines()
              if line.startswith("| `stream_cl_commit_duration_seconds`")]
    listed = row.split("Buckets: ", 1)[1].split(" (")[0].rstrip(". |").split(", ")
    as_seconds = [float(b[:-3]) / 1000 if b.endswith(" ms") else float(b[:-2]) for b in listed]
    assert as_seconds == pytest.approx(list(COMMIT_BUCKETS))


def test_dashboard_p99_of_40_s_commits_reads_past_10_s(tmp_path):
    """60 commits of 40 s a minute: the p99 falls in the 30-60 s bucket (59.7 by interpolation), not capped at 10 s."""
    histogram = DaemonMetrics().commit_duration
    for _ in range(60):
        histogram.observe(40.0)
    cumulative, _, _ = histogram.snapshot()
    bounds = [*map(floatToGoString, histogram.buckets), "+Inf"]  # the exporter's `le` values
    series = {f'stream_cl_commit_duration_seconds_bucket{{job="stream-cl", instance="a:9464", le="{le}"}}':
              f"0+{count}x10" for le, count in zip(bounds, cumulative)}
    (p99,) = [e for e in panel_exprs("Transaction commit time (p50, p99)") if e.startswith("histogram_quantile(0.99")]
    promtool_eval(tmp_path, series, as_promql(p99), "10m", 59.7)


# -- finding 2: the "Since last progress" stat shows the most stalled replica ----------------------
def test_since_last_progress_shows_a_stalled_replica_beside_a_healthy_one(tmp_path):
    (expr,) = panel_exprs("Since last progress")
    assert 'job=~"$job", instance=~"$instance"' in expr  # the panel follows the dashboard's variables
    series = {'stream_cl_last_progress_timestamp_seconds{job="stream-cl", instance="stuck:9464"}': "0x10",
              'stream_cl_last_progress_timestamp_seconds{job="stream-cl", instance="fine:9464"}': "0+60x10"}
    promtool_eval(tmp_path, series, as_promql(expr), "10m", 600)  # stuck since t=0, read at 10 min


# -- finding 1: the consumer lag counts what was produced since the last fetch --------------------
class LagConsumer:
    """kafka-python's consumer as lag() sees it: high watermarks as of the last fetch, end offsets on request."""

    def __init__(self, highwater: dict, ends: dict):
        self.highwaters, self.ends = highwater, ends
        self.lookups: list[int] = []  # timeout_ms of each end_offsets call
        self.fail = False
        self.closed = False

    def subscribe(self, topics=(), pattern=None, listener=None):
        pass

    def partitions_for_topic(self, topic):
        return {0, 1}

    def highwater(self, tp):
        return self.highwaters.get(tp)

    def end_offsets(self, partitions, timeout_ms=None):
        assert not self.closed, "a closed consumer raises"
        self.lookups.append(timeout_ms)
        if self.fail:
            raise KafkaTimeoutError(f"Failed to get offsets by timestamps in {timeout_ms} ms")
        return {tp: self.ends[tp] for tp in partitions}

    def close(self, autocommit=True):
        self.closed = True


P0, P1 = TopicPartition("events", 0), TopicPartition("events", 1)


def lag_source(highwater: dict, ends: dict) -> tuple[KafkaSource, LagConsumer]:
    consumer = LagConsumer(highwater, ends)
    source = KafkaSource(KafkaConfig(topics=["events"]), MappingConfig(), consumer=consumer)
    source.assigned = {P0, P1}
    source.positions = {P0: 100, P1: 50}
    source.behind = True  # the last poll came back full: a backlog (caught up, nothing is looked up: below)
    return source, consumer


def test_lag_counts_records_produced_since_the_partitions_last_fetch():
    # the last fetches saw ends 120 and 50; 40,000 records came since (the review's backlog: 12.8k exported of 39.5k)
    source, consumer = lag_source({P0: 120, P1: 50}, {P0: 20_120, P1: 20_050})
    assert source.lag() == {P0: 20_020, P1: 20_000}  # as the status writer calls it: the first call looks up
    assert consumer.lookups and all(t <= 100 for t in consumer.lookups)  # the loop is never held long


def test_lag_looks_end_offsets_up_at_most_every_5_s_and_takes_the_later_end():
    source, consumer = lag_source({P0: 120, P1: 50}, {P0: 500, P1: 50})
    assert source.lag(now=1000.0)[P0] == 400
    consumer.ends = {P0: 900, P1: 50}
    consumer.highwaters = {P0: 700, P1: 50}  # a fetch since: fresher than the last lookup
    assert source.lag(now=1004.9) == {P0: 600, P1: 0}  # no lookup yet: the later of the two ends
    assert len(consumer.lookups) == 1
    assert source.lag(now=1005.0)[P0] == 800
    assert len(consumer.lookups) == 2


def test_a_lookup_that_times_out_keeps_the_last_ends_until_the_next_try():
    source, consumer = lag_source({P0: 120, P1: 50}, {P0: 500, P1: 80})
    assert source.lag(now=1000.0) == {P0: 400, P1: 30}
    consumer.fail = True  # the consumer's own fetch parked on the broker, say
    consumer.highwaters = {P0: 130, P1: 90}
    assert source.lag(now=1005.0) == {P0: 400, P1: 40}  # no error: the last lookup and the fetches
    assert source.lag(now=1006.0) == {P0: 400, P1: 40} and len(consumer.lookups) == 2  # not retried at once


def test_lag_without_a_lookup_or_a_fetch_is_not_known_and_a_closed_source_looks_nothing_up():
    source, consumer = lag_source({}, {})
    consumer.fail = True
    assert source.lag(now=1000.0) == {P0: None, P1: None}
    source.close()
    consumer.fail = False
    consumer.highwaters = {P0: 150}
    assert source.lag(now=2000.0) == {P0: 50, P1: None}  # the last status after close: the high watermark only
    assert len(consumer.lookups) == 1


def test_a_caught_up_source_looks_nothing_up():
    """Caught up, the lookup waits behind the consumer's parked fetch for its whole timeout (~100 ms every 5 s:
    a stall that live events would wait out); the fetches' high watermarks are current then."""
    source, consumer = lag_source({P0: 120, P1: 50}, {P0: 120, P1: 50})
    source.behind = False  # the last poll returned fewer records than it asked for
    assert source.lag(now=1000.0) == {P0: 20, P1: 0} and consumer.lookups == []
    source.behind = True
    assert source.lag(now=1001.0) == {P0: 20, P1: 0} and len(consumer.lookups) == 1

