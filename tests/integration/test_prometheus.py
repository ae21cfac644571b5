"""A real Prometheus scrapes the daemon: what it stores equals the daemon's own counts, exactly.

The daemon runs against the real broker with ``[metrics] port = 0`` on loopback and a
drift detector; Debian's ``/usr/bin/prometheus`` scrapes it every second from its own
temporary config and storage. A known input (labelled events with one abrupt concept
drift, and invalid records of known reasons) goes in; once the daemon says (on its own
/metrics) that it has processed everything, Prometheus' HTTP API is polled until its
counters equal the daemon's: events by outcome, dead letters by reason, drift alarms by
detector and response. No sleeps: every wait is a bounded polling loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from daemon_kit import event, wait_for
from prometheus_client.parser import text_string_to_metric_families

PROMETHEUS = "/usr/bin/prometheus"
N_BEFORE, N_AFTER = 1000, 1000  # labelled events before and after the drift
FLIP = {"a": "b", "b": "c", "c": "a"}  # the drift: every class becomes the next one
BAD = [  # (record, reason), each sent the number of times given
    (b"not json", "malformed", 3),
    (b"[1, 2]", "not_an_object", 2),
    (json.dumps({"id": "m", "y": "a"}).encode(), "missing_features", 2),
    (json.dumps({"id": "w", "x": {"f0": [[[[[1.0]]]]]}, "y": "a"}).encode(), "too_deep", 4),
    (json.dumps({"id": "l", "x": {"f0": 1.0}, "y": [1]}).encode(), "bad_label", 1),
]
EXPECTED_DEAD = {reason: n for _, reason, n in BAD}
N_BAD = sum(EXPECTED_DEAD.values())


def require_prometheus() -> None:
    if not (os.path.isfile(PROMETHEUS) and os.access(PROMETHEUS, os.X_OK)):
        pytest.fail(f"{PROMETHEUS} not found: install Debian's prometheus package "
                    "(apt-get install -y --no-install-recommends prometheus); CI does", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


class Prometheus:
    """Debian's prometheus on loopback, scraping one target every second; :meth:`close` stops it."""

    def __init__(self, folder: Path, target: str):
        require_prometheus()
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: stream-cl\n    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: [\"{target}\"]\n")
        self.log_path = folder / "prometheus.log"
        self._log = open(self.log_path, "ab")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.proc.poll() is not None or http_get(self.url + "/-/ready")[0] == 200, 60, "prometheus /-/ready")
        assert self.proc.poll() is None, f"prometheus exited:\n{self.log_path.read_text()[-3000:]}"

    def query(self, promql: str) -> list[dict]:
        code, body = http_get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert code == 200, f"{promql}: HTTP {code} {body[:500]!r}"
        data = json.loads(body)
        assert data["status"] == "success", data
        return data["data"]["result"]

    def vector(self, promql: str, *labels: str) -> dict:
        """``{label values: value}`` of an instant vector query."""
        out = {}
        for r in self.query(promql):
            key = tuple(r["metric"].get(label, "") for label in labels)
            out[key if len(key) != 1 else key[0]] = float(r["value"][1])
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def daemon_counts(url: str) -> dict:
    """The daemon's own counters, from its /metrics."""
    code, body = http_get(url + "/metrics")
    assert code == 200
    out = {"events": {}, "dead": {}, "alarms": {}, "classes": None, "features": None}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            if s.name == "stream_cl_events_total":
                out["events"][s.labels["outcome"]] = s.value
            elif s.name == "stream_cl_dead_letters_total":
                out["dead"][s.labels["reason"]] = s.value
            elif s.name == "stream_cl_drift_alarms_total":
                out["alarms"][(s.labels["detector"], s.labels["response"])] = s.value
            elif s.name in ("stream_cl_classes", "stream_cl_features"):
                out[s.name.removeprefix("stream_cl_")] = s.value
    return out


def test_prometheus_stores_exactly_the_daemons_counts(kafka_kit, tmp_path):
    require_prometheus()  # before starting anything: a missing server fails, never skips
    topic = kafka_kit.topic("prom")  # one partition: the learner sees the drift exactly once, in order
    config = kafka_kit.config(
        "prom", [topic],
        model={"kind": "online", "device": "cpu", "width": 8, "key_units": 0, "forgetting": [0.99], "input_forgetting": []},
        drift={"detector": "adwin", "response": ["record"]},
        run={"window": 200},
        metrics={"host": "127.0.0.1", "port": 0, "stall_timeout_s": 30.0},
    )
    daemon = kafka_kit.start(config)
    prometheus = None
    try:
        url = daemon.http_url()
        prometheus = Prometheus(tmp_path / "prometheus", url.removeprefix("http://"))

        # the known input: labelled events, an abrupt drift half way, invalid records in between
        rng = random.Random(21)
        records = []
        for i in range(N_BEFORE + N_AFTER):
            doc = event(i, rng)
            doc["task"] = "before" if i < N_BEFORE else "after"
            if i >= N_BEFORE:
                doc["y"] = FLIP[doc["y"]]
            records.append((doc["id"], doc))
        bad = [(None, raw) for raw, _, n in BAD for _ in range(n)]
        for k, rec in enumerate(bad):  # spread over the stream
            records.insert((k + 1) * len(records) // (len(bad) + 1), rec)
        kafka_kit.produce(topic, records)

        total = N_BEFORE + N_AFTER + N_BAD
        own = wait_for(lambda: (c := daemon_counts(url)) and sum(c["events"].values()) >= total and c, 90,
                       f"the daemon to process {total} records (its own /metrics)")
        # the daemon's own counts: exactly the known input
        assert own["events"] == {"learned": N_BEFORE + N_AFTER, "predicted_only": 0, "dead_lettered": N_BAD}
        assert {r: n for r, n in own["dead"].items() if n} == EXPECTED_DEAD
        assert own["classes"] == 3 and own["features"] == 4
        code, body = http_get(url + "/model")
        model = json.loads(body)
        n_alarms = model["drift"]["alarms"]
        assert n_alarms >= 1, f"no drift alarm on an abrupt drift: {model['drift']}"
        assert own["alarms"] == {("adwin", "record"): n_alarms}
        assert set(model["task_accuracy"]) == {"before", "after"}

        # Prometheus: poll until its latest samples equal the daemon's counts, then compare exactly
        def scraped():
            return (prometheus.vector('stream_cl_events_total{job="stream-cl"}', "outcome"),
                    prometheus.vector('stream_cl_dead_letters_total{job="stream-cl"}', "reason"),
                    prometheus.vector('stream_cl_drift_alarms_total{job="stream-cl"}', "detector", "response"))

        want = (own["events"], own["dead"], own["alarms"])
        events, dead, alarms = wait_for(lambda: (s := scraped()) == want and s, 30, "Prometheus to hold the daemon's counts")
        assert events == {"learned": N_BEFORE + N_AFTER, "predicted_only": 0, "dead_lettered": N_BAD}
        assert {r: n for r, n in dead.items() if n} == EXPECTED_DEAD and dead == own["dead"]
        assert alarms == {("adwin", "record"): n_alarms}
        assert prometheus.vector('sum(stream_cl_events_total{job="stream-cl"})') == {(): total}
        assert prometheus.vector('up{job="stream-cl"}', "job") == {"stream-cl": 1.0}
        assert set(prometheus.vector('stream_cl_task_accuracy_ratio{job="stream-cl"}', "task")) == {"before", "after"}

        assert daemon.terminate(timeout=30) == 0, daemon.log()[-3000:]
    finally:
        if prometheus is not None:
            prometheus.close()
        with contextlib.suppress(Exception):
            daemon.close()
