"""deploy/: Prometheus config and rules (promtool), the Grafana dashboard, compose, Kubernetes,
systemd and the Dockerfile, checked statically against the one list of exported metrics
(connectors/metric_names.py).

promtool comes from Debian's ``prometheus`` package (``apt-get install -y
--no-install-recommends prometheus``); these tests fail, never skip, without it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from connectors.metric_names import EXPORTED_METRICS, METRIC_LABELS, base_metric
from stream_cl.config import Config, load_config_dict

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
RULES_YML = DEPLOY / "prometheus" / "rules" / "stream-cl.rules.yml"
RULE_TESTS_YML = DEPLOY / "prometheus" / "tests" / "stream-cl.rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "stream-cl.json"
DAEMON_TOML = DEPLOY / "config" / "daemon.toml"
METRICS_PORT = 9464

# PromQL identifiers; names with a colon are recording rules (colons are reserved for them).
TOKEN = re.compile(r"(?<![\w:$])[a-zA-Z_:][a-zA-Z0-9_:]*")
AUTOMATIC_LABELS = {"job", "instance"}
REQUIRED_ALERTS = {"StreamClConsumerLagGrowing", "StreamClNoProgress", "StreamClAccuracyDrop", "StreamClDriftAlarmStorm",
                   "StreamClCheckpointStale", "StreamClDeadLettersRising"}


# -- helpers -----------------------------------------------------------------------------------
def promtool(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool not found: install Debian's prometheus package "
                    "(apt-get install -y --no-install-recommends prometheus); CI does")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)} failed:\n{result.stdout}\n{result.stderr}"


def strip_strings(expr: str) -> str:
    """PromQL without its string literals (label values and regexes are not metric names)."""
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """(stream_cl_* series names, recording-rule names) referenced by a PromQL expression."""
    tokens = set(TOKEN.findall(strip_strings(expr)))
    return {t for t in tokens if t.startswith("stream_cl_")}, {t for t in tokens if ":" in t}


def rules() -> dict:
    return yaml.safe_load(RULES_YML.read_text())


def recorded_names() -> set[str]:
    return {r["record"] for g in rules()["groups"] for r in g["rules"] if "record" in r}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(panels: list) -> list:
    out = []
    for p in panels:
        out.append(p)
        out += all_panels(p.get("panels", []))
    return out


def dashboard_queries(dash: dict) -> list[tuple[str, str, str]]:
    """(where, expr, legendFormat) of every PromQL query: panel targets, annotations, variables."""
    out = []
    for p in all_panels(dash["panels"]):
        for t in p.get("targets", []):
            out.append((f"panel {p['title']!r}", t["expr"], t.get("legendFormat", "")))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append((f"annotation {a['name']!r}", a["expr"], a.get("textFormat", "")))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q)
            out.append((f"variable {v['name']!r}", inner.group(1) if inner else q, ""))
    return out


def grafana_to_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced, so promtool can parse it."""
    return (expr.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "1h")
            .replace("$job", ".*").replace("$instance", ".*"))


def load_sync():
    spec = importlib.util.spec_from_file_location("deploy_k8s_sync", DEPLOY / "k8s" / "sync.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def k8s(kind: str) -> dict:
    docs = [d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def daemon_toml() -> dict:
    return tomllib.loads(DAEMON_TOML.read_text())


# -- Prometheus --------------------------------------------------------------------------------
def test_promtool_check_config_and_rules():
    assert_ok(promtool("check", "config", "--lint=all", "--lint-fatal", str(PROMETHEUS_YML)))
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", str(RULES_YML))
    assert_ok(result)
    assert "SUCCESS" in result.stdout


def test_promtool_rule_unit_tests():
    """Each alert fires on synthetic series that should trip it, and not on healthy ones."""
    assert_ok(promtool("test", "rules", str(RULE_TESTS_YML)))


def test_prometheus_scrapes_the_daemon_and_loads_the_rules():
    cfg = yaml.safe_load(PROMETHEUS_YML.read_text())
    (job,) = [j for j in cfg["scrape_configs"] if j["job_name"] == "stream-cl"]
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"stream-cl:{METRICS_PORT}"] and job.get("metrics_path", "/metrics") == "/metrics"
    assert any(RULES_YML.match(str(PROMETHEUS_YML.parent / g)) for g in cfg["rule_files"])


def test_rules_reference_only_exported_metrics_or_recording_rules():
    recorded = recorded_names()
    alerts = {}
    for group in rules()["groups"]:
        defined = set()
        for rule in group["rules"]:
            series, recordings = names_in(rule["expr"])
            where = rule.get("record") or rule.get("alert")
            unknown = {s for s in series if base_metric(s) is None}
            assert not unknown, f"rule {where}: {sorted(unknown)} not exported (connectors/metric_names.py)"
            assert recordings <= defined, f"rule {where}: uses {sorted(recordings - defined)} before (or without) recording it"
            if "record" in rule:
                level, metric, ops = rule["record"].split(":")
                assert metric.startswith("stream_cl_") and level and ops, f"{rule['record']}: name it level:metric:operations"
                defined.add(rule["record"])
            else:
                alerts[rule["alert"]] = rule
    assert recorded and REQUIRED_ALERTS <= set(alerts), f"missing alerts: {sorted(REQUIRED_ALERTS - set(alerts))}"
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert rule["annotations"].get("summary") and rule["annotations"].get("description"), name


def test_rule_unit_tests_cover_every_alert():
    tested = {t["alertname"] for case in yaml.safe_load(RULE_TESTS_YML.read_text())["tests"]
              for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    alerts = {r["alert"] for g in rules()["groups"] for r in g["rules"] if "alert" in r}
    assert alerts <= tested, f"alerts without a firing unit test: {sorted(alerts - tested)}"


# -- Grafana -----------------------------------------------------------------------------------
def test_dashboard_references_only_exported_metrics_and_uses_them_all():
    dash = dashboard()
    recorded = recorded_names()
    used = set()
    for where, expr, legend in dashboard_queries(dash):
        series, recordings = names_in(expr)
        assert series or recordings, f"{where}: no stream_cl metric in {expr!r}"
        unknown = {s for s in series if base_metric(s) is None}
        assert not unknown, f"{where}: {sorted(unknown)} not exported (connectors/metric_names.py) in {expr!r}"
        assert recordings <= recorded, f"{where}: unknown recording rules {sorted(recordings - recorded)}"
        bases = {base_metric(s) for s in series}
        used |= bases
        # Labels in legends and `by (...)` exist on the metrics queried.
        labels = set().union(AUTOMATIC_LABELS, *(METRIC_LABELS[b] for b in bases))
        if any(EXPORTED_METRICS[b] == "histogram" for b in bases):
            labels.add("le")
        legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        by_labels = {x.strip() for grp in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr) for x in grp.split(",") if x.strip()}
        if not recordings:
            assert legend_labels <= labels, f"{where}: legend labels {sorted(legend_labels - labels)} not on {sorted(bases)}"
            assert by_labels <= labels, f"{where}: aggregation labels {sorted(by_labels - labels)} not on {sorted(bases)}"
    assert used == set(EXPORTED_METRICS), f"exported but not on the dashboard: {sorted(set(EXPORTED_METRICS) - used)}"


def test_counter_functions_take_only_counters():
    """rate(), irate() and increase() read a fall as a counter reset: on a gauge (a committed offset
    set back to reprocess) they add the whole new value. A gauge's slope is deriv()."""
    exprs = [(where, expr) for where, expr, _ in dashboard_queries(dashboard())]
    exprs += [(r.get("alert") or r.get("record"), r["expr"]) for g in rules()["groups"] for r in g["rules"]]
    for where, expr in exprs:
        for fn, series in re.findall(r"\b(rate|irate|increase)\(\s*(stream_cl_\w+)", strip_strings(expr)):
            base = base_metric(series)
            kind = EXPORTED_METRICS.get(base)
            assert kind == "counter" or (kind == "histogram" and series != base), f"{where}: {fn}() of the {kind} {series}"


def test_counter_counts_are_not_drawn_from_overlapping_windows_or_resets():
    """A count per interval (bars, an annotation) is a counter's rise since the step before (``x - x
    offset $__interval``, at a step of a minute at least; after a restart, the count since it): an increase() over $__rate_interval (four
    scrapes) at a one-scrape step drew each event about four times (one drift alarm read as four; 20
    checkpoints in 10 minutes as bars adding up to 82), and over $__interval it lost what fell between
    two steps' scrapes (about one event in four) and stretched the rest by 1.2-1.3x. changes() of a
    counter also counted the fall to 0 at a restart, which marked every restart as a drift alarm."""
    dash = dashboard()
    for p in all_panels(dash["panels"]):
        for t in p.get("targets", []):
            expr = strip_strings(t["expr"])
            assert "increase(" not in expr, f"panel {p['title']!r}: {t['expr']}"
            if "offset $__interval" in expr:
                assert p.get("interval") == "1m", f"panel {p['title']!r}: {t['expr']}"
                # the two sides of its "or" differ in __name__: summed, one series (unsummed, two of one legend)
                assert expr.startswith("sum"), f"panel {p['title']!r}: {t['expr']}"
    for where, expr, _ in dashboard_queries(dash):
        for fn, series in re.findall(r"\b(changes|resets)\(\s*(stream_cl_\w+)", strip_strings(expr)):
            assert EXPORTED_METRICS.get(base_metric(series)) != "counter", f"{where}: {fn}() of the counter {series}"


def _scraped(value_at, first_s: int, every_s: int, until_s: int, failed=(), down=(0, 0)) -> str:
    """A promtool series at 1 s resolution scraped every ``every_s`` from ``first_s``: ``value_at(t)``;
    a scrape at a time in ``failed`` failed (a staleness marker), none between the times ``down``
    (Prometheus itself down)."""
    def sample(t):
        if t < first_s or (t - first_s) % every_s or down[0] <= t < down[1]:
            return "_"
        return "stale" if t in failed else str(value_at(t))
    return " ".join(sample(t) for t in range(until_s + 1))


@pytest.mark.parametrize("failed, down, annotations", [((), (0, 0), 3), ((472,), (0, 0), 3), ((), (400, 800), 2)],
                         ids=["every scrape", "a failed scrape", "prometheus down 400-800 s"])
def test_count_panels_count_each_event_once_with_unaligned_scrapes(tmp_path, failed, down, annotations):
    """The drift-alarm bars and annotation and the checkpoint bars, as the dashboard writes them, at a
    one-minute step over 20 minutes of 15 s scrapes that fall between the steps (7 s past): each of
    three alarms is a bar of 1 and an annotation, the third raised by a new process in the step of
    its restart (a clamped difference drew 0 there), and the checkpoint bars add up to the
    checkpoints written. A failed scrape changes nothing (the step before it drew a counter's whole
    total as one step's count); with Prometheus down, what it missed shows in the step after."""
    end = 20 * 60
    def alarms(t):
        return int(t >= 930) if t > 905 else int(t >= 603) + int(t >= 700)  # restarted at 905 s
    def checkpoints(t):
        return max(0, (t - 90) // 30 + 1)  # one every 30 s from 1.5 min on
    last_at = [t for t in range(7, end + 1, 15)]
    before_first_step = max(t for t in last_at if t <= 60)
    written = checkpoints(max(last_at)) - checkpoints(before_first_step)  # what the steps 2m..20m cover
    labels = 'job="stream-cl", instance="a:9464"'
    queries = [(where, grafana_to_promql(expr)) for where, expr, _ in dashboard_queries(dashboard())]
    (alarm_bars,) = [v for k, v in queries if k == "panel 'Drift alarms'"]
    (checkpoint_bars,) = [v for k, v in queries if "stream_cl_checkpoints_total" in v]
    (annotation,) = [v for k, v in queries if k.startswith("annotation")]
    test = {"evaluation_interval": "1m", "tests": [{
        "interval": "1s",
        "input_series": [
            {"series": f'stream_cl_drift_alarms_total{{{labels}, detector="adwin", response="forget"}}',
             "values": _scraped(alarms, 7, 15, end, failed, down)},
            {"series": f"stream_cl_checkpoints_total{{{labels}}}",
             "values": _scraped(checkpoints, 7, 15, end, failed, down)}],
        "promql_expr_test": [
            {"expr": f"sum(sum_over_time(({alarm_bars})[20m:1m]))", "eval_time": "20m",
             "exp_samples": [{"labels": "{}", "value": 3}]},
            {"expr": f"sum(count_over_time(({annotation})[20m:1m]))", "eval_time": "20m",
             "exp_samples": [{"labels": "{}", "value": annotations}]},
            {"expr": f"sum(sum_over_time(({checkpoint_bars})[20m:1m]))", "eval_time": "20m",
             "exp_samples": [{"labels": "{}", "value": written}]}]}]}
    path = tmp_path / "counts.test.yml"
    path.write_text(yaml.safe_dump(test, width=1 << 20))
    assert_ok(promtool("test", "rules", str(path)))


def test_dashboard_promql_parses(tmp_path):
    """promtool parses every dashboard query (Grafana variables substituted), as recording rules."""
    queries = dashboard_queries(dashboard())
    group = {"name": "dashboard", "rules": [{"record": f"dashboard:check_{i}:expr", "expr": grafana_to_promql(expr)}
                                            for i, (_, expr, _) in enumerate(queries)]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [group]}))
    assert_ok(promtool("check", "rules", str(path)))


def test_dashboard_structure():
    dash = dashboard()
    assert dash["uid"] == "stream-cl" and dash["title"]
    panels = all_panels(dash["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for p in panels:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, f"panel {p['title']!r} outside the 24-column grid"
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            assert p["targets"], p["title"]
    titles = " | ".join(p["title"].lower() for p in panels)
    for topic in ("outcome", "accuracy", "drift", "lag", "latency", "checkpoint", "pending", "replay", "homeostatic",
                  "forgetting"):
        assert topic in titles, f"no dashboard panel about {topic}"
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "job", "instance"} <= variables


def test_grafana_provisioning_points_at_the_dashboard():
    (ds,) = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/stream-cl.yml").read_text())["providers"]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]


# -- compose, Kubernetes, systemd, Docker ------------------------------------------------------
def test_compose_stack():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "stream-cl", "prometheus", "grafana"} <= set(services)
    kafka = services["kafka"]
    assert "apache/kafka" in kafka["image"] and kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    daemon = services["stream-cl"]
    assert (DEPLOY / daemon["build"]["context"] / daemon["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert "TORCH_INDEX_URL" in daemon["build"]["args"]
    assert int(daemon["stop_grace_period"].rstrip("s")) > daemon_toml()["kafka"]["shutdown_timeout_s"]
    assert f"127.0.0.1:{METRICS_PORT}:{METRICS_PORT}" in daemon["ports"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"service {name}: mounts missing {source}"
            else:
                assert source in compose["volumes"], f"service {name}: undeclared volume {source}"
    assert "./config/daemon.toml:/etc/stream-cl/config.toml:ro" in daemon["volumes"]


def test_k8s_manifests():
    for path in (DEPLOY / "k8s").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["apiVersion"] and doc["kind"], path
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in (DEPLOY / "k8s").glob("*.yaml")
                                                        if p.name != "kustomization.yaml")
    sts, svc, sm, pdb, cm = (k8s(k) for k in ("StatefulSet", "Service", "ServiceMonitor", "PodDisruptionBudget", "ConfigMap"))
    pod = sts["spec"]["template"]
    labels = pod["metadata"]["labels"]
    (container,) = pod["spec"]["containers"]
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items() and pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port_names["metrics"] == METRICS_PORT and {p["name"] for p in svc["spec"]["ports"]} == {"metrics"}
    assert sm["spec"]["endpoints"][0]["port"] == "metrics" and sm["spec"]["endpoints"][0]["path"] == "/metrics"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert grace >= 60 and grace > daemon_toml()["kafka"]["shutdown_timeout_s"]
    assert "lifecycle" not in container, "stop with the default SIGTERM, no preStop hook"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert mounts[claim["metadata"]["name"]] == "/var/lib/stream-cl"
    assert daemon_toml()["checkpoint"]["dir"].startswith("/var/lib/stream-cl/")
    assert mounts["config"] == "/etc/stream-cl"
    (config_volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "config"]
    assert config_volume["configMap"]["name"] == cm["metadata"]["name"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_k8s_copies_match_their_sources():
    """configmap.yaml = deploy/config/daemon.toml, prometheusrule.yaml = the rules (python deploy/k8s/sync.py)."""
    sync = load_sync()
    for name, make in sync.TARGETS.items():
        assert (DEPLOY / "k8s" / name).read_text() == make(), f"deploy/k8s/{name} is stale: run python deploy/k8s/sync.py"
    assert k8s("ConfigMap")["data"]["config.toml"] == DAEMON_TOML.read_text()
    assert k8s("PrometheusRule")["spec"] == rules()


def test_example_config_is_valid():
    data = daemon_toml()
    sections = {f.name for f in dataclasses.fields(Config)}
    metrics = data.get("metrics")
    assert metrics == {"host": "0.0.0.0", "port": METRICS_PORT}
    if "metrics" not in sections:  # [metrics] not in stream_cl.config yet: validate the rest
        data = {k: v for k, v in data.items() if k != "metrics"}
    config = load_config_dict(data)
    assert config.source.kind == "kafka" and config.kafka.topics
    assert config.checkpoint.dir.startswith("/var/lib/stream-cl/")
    assert config.kafka.shutdown_timeout_s < 60


def systemd_unit() -> dict[str, str]:
    """deploy/systemd/stream-cl.service as ``{"Section.Key": value}`` (the last value of a repeated key)."""
    text = (DEPLOY / "systemd" / "stream-cl.service").read_text()
    keys: dict[str, list[str]] = {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#"):
            key, value = line.split("=", 1)
            keys.setdefault(f"{section}.{key}", []).append(value)
    return {k: v[-1] for k, v in keys.items()}


def test_systemd_unit():
    one = systemd_unit()
    assert one["Service.ExecStart"].endswith("stream-cl run --config /etc/stream-cl/config.toml")
    assert one["Service.Restart"] == "on-failure" and one["Service.KillSignal"] == "SIGTERM"
    assert int(one["Service.TimeoutStopSec"]) > daemon_toml()["kafka"]["shutdown_timeout_s"]
    assert one["Service.User"] not in ("root", "0") and one["Service.StateDirectory"] == "stream-cl"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes"}.items():
        assert one[f"Service.{key}"] == value, key
    assert one["Install.WantedBy"] == "multi-user.target"


def test_systemd_unit_never_gives_up_on_a_failure_and_never_restarts_a_config_error():
    """r20 F1: with no broker at start each start exits 1 after ~35 s; the unit's start limit (5 starts in
    300 s) left it failed for good after ~3.5 min. Exit 1 must restart for as long as it fails, exit 2 never."""
    one = systemd_unit()
    assert one["Service.Restart"] == "on-failure"  # exit 1 restarts
    assert "2" in one["Service.RestartPreventExitStatus"].split()  # a configuration error does not
    # no start limit: 0 turns it off (left unset, systemd's default is 5 starts in 10 s)
    assert one.get("Unit.StartLimitIntervalSec") == "0", "the unit must never give up restarting after exit 1"
    assert not any(k.startswith("Service.StartLimit") for k in one)  # (the old place, which would override it)
    restart_s = float(one["Service.RestartSec"].removesuffix("s"))
    assert 5 <= restart_s <= 60  # not a fast-failing loop several times a second; a broker back is found soon
    for doc in (DEPLOY / "systemd" / "README.md", ROOT / "docs" / "deploy.md"):
        text = " ".join(doc.read_text().split())
        assert f"restart after {restart_s:g} s" in text or f"{restart_s:g} s later (`RestartSec={restart_s:g}s`)" in text, doc
        assert "`StartLimitIntervalSec=0`" in text, doc


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile():
    instructions = dockerfile_instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert len(froms) >= 2 and all(" AS " in f.upper() for f in froms), "multi-stage, named stages"
    final = instructions[max(i for i, (w, _) in enumerate(instructions) if w == "FROM"):]
    words = dict(final)
    assert words["USER"].split(":")[0] not in ("root", "0")
    assert json.loads(words["ENTRYPOINT"]) == ["stream-cl", "run", "--config", "/etc/stream-cl/config.toml"]
    assert "/var/lib/stream-cl" in words["VOLUME"] and words["EXPOSE"] == str(METRICS_PORT)
    assert any(w == "ARG" and r.startswith("TORCH_INDEX_URL") for w, r in instructions)
    healthcheck = words["HEALTHCHECK"]
    cmd = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    assert cmd[:2] == ["python", "-c"] and "/healthz" in cmd[2]
    compile(cmd[2], "HEALTHCHECK", "exec")  # valid Python
    # Everything COPY'd from the context is let through by deploy/Dockerfile.dockerignore.
    allowed = [line[1:].rstrip("/") for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")]
    for word, rest in instructions:
        if word == "COPY" and "--from" not in rest:
            *sources, _ = rest.split()
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
                assert src.rstrip("/") in allowed, f"COPY {src}: excluded by deploy/Dockerfile.dockerignore"


def test_sync_refuses_an_unknown_argument_before_writing(tmp_path, monkeypatch, capsys):
    # found by review: any argument but --check (a typo, --help) rewrote the manifests
    sync = load_sync()
    monkeypatch.setattr(sync, "HERE", tmp_path)  # every target is missing here: a write would show
    for argv, code in ((["--chek"], 2), (["--help"], 0)):
        with pytest.raises(SystemExit) as info:
            sync.main(argv)
        assert info.value.code == code and list(tmp_path.iterdir()) == []
    assert sync.main(["--check"]) == 1 and list(tmp_path.iterdir()) == []
    assert sync.main([]) == 0 and sorted(p.name for p in tmp_path.iterdir()) == sorted(sync.TARGETS)


def _sync_in(tmp_path, monkeypatch, toml: str, rules: str):
    """sync.py with its sources (daemon.toml, the rules) and its targets in ``tmp_path``."""
    sync = load_sync()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "daemon.toml").write_text(toml)
    (tmp_path / "prometheus" / "rules").mkdir(parents=True)
    (tmp_path / "prometheus" / "rules" / "stream-cl.rules.yml").write_text(rules)
    (tmp_path / "k8s").mkdir()
    monkeypatch.setattr(sync, "DEPLOY", tmp_path)
    monkeypatch.setattr(sync, "HERE", tmp_path / "k8s")
    return sync


@pytest.mark.parametrize("first, end", [
    ("  # my cluster (an indented first line)\n", "\n"), ("\t# a tab first\n", "\n"), ("   \n", "\n"),
    ("\n\n  # after empty lines\n", "\n"), ("", ""), ("", "\n\n\n"), ("  # both\n", ""),
])
def test_sync_copies_any_valid_daemon_toml_exactly(tmp_path, monkeypatch, first, end):
    """r20 F3: an indented first line (valid TOML) made `config.toml: |` take its indentation from it: invalid
    YAML (kubectl apply -k refused it) that --check passed. The copy must read back as the file, ends included."""
    toml = first + DAEMON_TOML.read_text().rstrip("\n") + '\nnote = """\n  \n"""' + end  # a line of blanks in a string
    tomllib.loads(toml)
    sync = _sync_in(tmp_path, monkeypatch, toml, RULES_YML.read_text())
    assert sync.main([]) == 0 and sync.main(["--check"]) == 0
    assert yaml.safe_load((tmp_path / "k8s" / "configmap.yaml").read_text())["data"]["config.toml"] == toml


def test_sync_takes_a_rules_file_that_starts_with_groups(tmp_path, monkeypatch, capsys):
    """r20 F3: a rules file without header comments (valid for promtool) crashed sync.py (it looked for '\\ngroups:')."""
    bare = "".join(line for line in RULES_YML.read_text().splitlines(keepends=True) if not line.startswith("#"))
    assert bare.startswith("groups:")
    sync = _sync_in(tmp_path, monkeypatch, DAEMON_TOML.read_text(), bare)
    assert sync.main([]) == 0 and sync.main(["--check"]) == 0
    assert yaml.safe_load((tmp_path / "k8s" / "prometheusrule.yaml").read_text())["spec"] == rules()
    (tmp_path / "prometheus" / "rules" / "stream-cl.rules.yml").write_text("# no rules\nrules: []\n")
    assert sync.main(["--check"]) == 1 and "no top-level 'groups:' line" in capsys.readouterr().err


def test_sync_check_reads_the_copy_back(tmp_path, monkeypatch, capsys):
    """A copy equal to what sync.py writes can still be wrong: --check (and a write) read it back as YAML."""
    toml = "  # an indented first line\n" + DAEMON_TOML.read_text()
    sync = _sync_in(tmp_path, monkeypatch, toml, RULES_YML.read_text())
    monkeypatch.setattr(sync, "_block_header", lambda text: "  config.toml: |\n")  # the old header
    assert sync.main([]) == 1 and list((tmp_path / "k8s").iterdir()) == []  # nothing written
    assert "configmap.yaml as sync.py makes it is not valid YAML" in capsys.readouterr().err
    assert sync.main(["--check"]) == 1


def test_count_panels_at_a_ten_minute_step_count_what_came_before_a_stop(tmp_path):
    """A view of days steps by 10 minutes or more: the last value in a step is taken over the step
    (a fixed [5m] missed the alarms and checkpoints of a daemon's last minutes before it stopped)."""
    end, stop = 60 * 60, 2000
    def alarms(t):
        return int(t >= 1805) + int(t >= 1925)
    def checkpoints(t):
        return max(0, (t - 90) // 30 + 1)
    labels = 'job="stream-cl", instance="a:9464"'
    queries = [(where, grafana_to_promql(expr.replace("$__interval", "10m"))) for where, expr, _ in
               dashboard_queries(dashboard())]
    (alarm_bars,) = [v for k, v in queries if k == "panel 'Drift alarms'"]
    (checkpoint_bars,) = [v for k, v in queries if "stream_cl_checkpoints_total" in v]
    (annotation,) = [v for k, v in queries if k.startswith("annotation")]  # (its 1 m step is a minimum too)
    written = checkpoints(max(t for t in range(7, stop, 15)))
    test = {"evaluation_interval": "1m", "tests": [{
        "interval": "1s",
        "input_series": [
            {"series": f'stream_cl_drift_alarms_total{{{labels}, detector="adwin", response="forget"}}',
             "values": _scraped(alarms, 7, 15, end, down=(stop, end + 1))},
            {"series": f"stream_cl_checkpoints_total{{{labels}}}",
             "values": _scraped(checkpoints, 7, 15, end, down=(stop, end + 1))}],
        "promql_expr_test": [
            {"expr": f"sum(sum_over_time(({alarm_bars})[60m:10m]))", "eval_time": "60m",
             "exp_samples": [{"labels": "{}", "value": 2}]},
            {"expr": f"sum(count_over_time(({annotation})[60m:10m]))", "eval_time": "60m",
             "exp_samples": [{"labels": "{}", "value": 1}]},  # both alarms fall in one step
            {"expr": f"sum(sum_over_time(({checkpoint_bars})[60m:10m]))", "eval_time": "60m",
             "exp_samples": [{"labels": "{}", "value": written}]}]}]}
    path = tmp_path / "counts.test.yml"
    path.write_text(yaml.safe_dump(test, width=1 << 20))
    assert_ok(promtool("test", "rules", str(path)))
