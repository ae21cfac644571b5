"""Review r103 of deploy/: points the existing deploy tests (tests/unit/test_deploy.py) leave unguarded.

promtool comes from Debian's ``prometheus`` package, as for test_deploy.py (these fail, never skip, without it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES_YML = DEPLOY / "prometheus" / "rules" / "stream-cl.rules.yml"


def promtool(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool not found: install Debian's prometheus package")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def _scrapes(up_s: float, down_s: float, until_s: int = 3600, every_s: int = 15) -> str:
    """``up`` of a daemon that serves /metrics for ``up_s`` seconds (from about 2 s after its start: the imports),
    exits 1, and is started again ``down_s`` later, scraped every ``every_s``."""
    cycle = 2 + up_s + down_s

    def up(t):
        return int(2 <= t % cycle < 2 + up_s)
    return " ".join(str(up(t)) for t in range(0, until_s, every_s))


# A daemon that cannot reach its broker exits 1 after ~35 s (measured with deploy/config/daemon.toml and a
# closed port: 35.6 s), and until then serves /metrics with every family described but no sample
# (stream_cl_last_progress_timestamp_seconds among them). systemd starts it again 15 s later (RestartSec=15s,
# StartLimitIntervalSec=0); Docker's on-failure policy after ~0.1 s (its backoff restarts from 100 ms once a
# container ran 10 s).
@pytest.mark.parametrize("down_s", [15.0, 0.1], ids=["systemd", "compose"])
def test_an_alert_fires_for_a_daemon_that_never_starts(tmp_path, down_s):
    """r103 F1: `up == 0 for 2m` never holds (each start is scraped up for ~35 s) and no other alert has a series
    to read: a daemon crash-looping for an hour raised nothing. Some alert must fire within 30 minutes, and none
    for a daemon that started in 2 minutes and makes progress."""
    healthy_progress = "_x8 " + " ".join(str(1_000 + 15 * i) for i in range(9, 240))
    test = {"rule_files": [str(RULES_YML)], "evaluation_interval": "15s", "tests": [{
        "interval": "15s",
        "input_series": [
            {"series": 'up{job="stream-cl", instance="loop:9464"}', "values": _scrapes(35.6, down_s)},
            {"series": 'up{job="stream-cl", instance="ok:9464"}', "values": "1x240"},
            {"series": 'stream_cl_last_progress_timestamp_seconds{job="stream-cl", instance="ok:9464"}',
             "values": healthy_progress},
        ],
        "promql_expr_test": [
            {"expr": 'count(ALERTS{alertstate="firing", instance="loop:9464"}) > bool 0', "eval_time": "30m",
             "exp_samples": [{"labels": "{}", "value": 1}]},
            {"expr": 'ALERTS{instance="ok:9464"}', "eval_time": "30m", "exp_samples": []},
        ]}]}
    path = tmp_path / "crash-loop.test.yml"
    path.write_text(yaml.safe_dump(test, width=1 << 20))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, f"no alert for a daemon that never starts:\n{result.stdout}\n{result.stderr}"


# -- Grafana ----------------------------------------------------------------------------------------
def _dashboard() -> dict:
    import json
    return json.loads((DEPLOY / "grafana" / "dashboards" / "stream-cl.json").read_text())


def test_overview_stats_of_freshness_show_no_value_for_a_daemon_that_is_gone():
    """r103 F2: the overview's stat panels reduce a range query with lastNotNull, so 'Since last progress' and
    'Checkpoint age' kept the value scraped before the daemon died (0.4 s, green) for the whole time range. A stat
    that says how fresh the daemon is must be an instant query (a stale series gives no value, which the panel
    shows as such), never the last value of a series that ended."""
    for p in _dashboard()["panels"]:
        if p["type"] != "stat":
            continue
        for t in p["targets"]:
            if "time() -" in t["expr"] or "_age_seconds" in t["expr"]:
                assert t.get("instant") is True and not t.get("range"), f"stat {p['title']!r}: {t['expr']}"


# -- Kubernetes probes: guards (these pass on 5c70401) ---------------------------------------------------
def _statefulset() -> dict:
    docs = [d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    return sts


def test_every_probe_asks_an_endpoint_the_daemon_serves_on_its_metrics_port():
    """Each probe (startup, liveness, readiness) asks the port named in ``ports`` for a path connectors/http.py
    answers (not 404), on the real server; test_deploy.py checks liveness and readiness paths by name only."""
    import urllib.error
    import urllib.request

    from prometheus_client import CollectorRegistry

    from connectors.http import DaemonStatus, ObservabilityServer

    (container,) = _statefulset()["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probes = {k: v for k, v in container.items() if k.endswith("Probe")}
    assert set(probes) == {"startupProbe", "livenessProbe", "readinessProbe"}
    server = ObservabilityServer("127.0.0.1", 0, DaemonStatus(120.0), CollectorRegistry())
    try:
        for name, probe in probes.items():
            get = probe["httpGet"]
            assert get["port"] in ports, f"{name}: port {get['port']!r} is not a named container port"
            try:
                code = urllib.request.urlopen(server.url + get["path"], timeout=5).status
            except urllib.error.HTTPError as e:
                code = e.code
            assert code in (200, 503), f"{name}: {get['path']} answers {code}"
    finally:
        server.close()


def test_startup_probe_budget_is_the_daemons_restart_budget():
    """docs/observability.md: a start over in the same process counts as turning for REBUILD_ALIVE_S, 'the start-up
    budget deploy/k8s gives the first start'; the startup probe's period x failures must stay that budget."""
    from connectors.daemon_run import REBUILD_ALIVE_S

    (container,) = _statefulset()["spec"]["template"]["spec"]["containers"]
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"
    assert startup["periodSeconds"] * startup["failureThreshold"] == REBUILD_ALIVE_S


def test_the_images_health_check_waits_the_restore_budget():
    """r103 L9: Docker's health check read a restore from the changelog as unhealthy after 60 s, where the
    startup probe of deploy/k8s gives it REBUILD_ALIVE_S."""
    import re

    from connectors.daemon_run import REBUILD_ALIVE_S

    (period,) = re.findall(r"--start-period=(\d+)s", (DEPLOY / "Dockerfile").read_text())
    assert int(period) == REBUILD_ALIVE_S
