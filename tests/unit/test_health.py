"""connectors/http.py: /healthz, /readyz, /model and /metrics on a free loopback port, with a fake daemon."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from connectors.daemon import DaemonMetrics
from connectors.http import DaemonStatus, ObservabilityServer, serve
from connectors.metric_names import EXPORTED_METRICS
from connectors.prometheus import register_metrics
from stream_cl.config import ConfigError, MetricsConfig, load_config_dict
from stream_cl.status import DriftStatus, HeadStatus, LearnerStatus


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read(), r.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers["Content-Type"]


def get_json(url: str) -> tuple[int, dict]:
    code, body, ctype = get(url)
    assert ctype == "application/json"
    return code, json.loads(body)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.02)


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def fake_daemon() -> SimpleNamespace:
    snapshot = LearnerStatus(
        kind="OnlineContinualLearner", classes=["no", "yes"], features=[f"f{i}" for i in range(30)],
        heads=[HeadStatus(1.0, 1.0, "all", 0.25), HeadStatus(0.98, 0.995, "inputs", 0.75)],
        drift=DriftStatus("ddm", "forget", 1, {"ddm": {"forget": 1}}, [{"t": 10, "detector": "ddm", "response": "forget"}]),
        need=0.5)
    learner = SimpleNamespace(status=lambda: snapshot)
    m = DaemonMetrics()
    m.checkpoint_seq, m.checkpoint_at, m.checkpoint_path = 3, 1_700_000_000.5, "/ckpt/ckpt-000003.safetensors"
    m.events.update(learned=10)
    return SimpleNamespace(metrics=m, learner=learner, source=SimpleNamespace(assigned=set()))


@pytest.fixture
def server():
    clock = FakeClock()
    status = DaemonStatus(stall_timeout_s=0.5, clock=clock)
    registry = CollectorRegistry()
    register_metrics(registry, status.get_daemon)
    srv = ObservabilityServer("127.0.0.1", 0, status, registry)
    srv.clock = clock
    yield srv
    srv.close()


def test_probes_follow_the_daemon_lifecycle(server):
    url, clock = server.url, server.clock
    # before the model is loaded: neither healthy nor ready; /metrics already answers
    assert get_json(url + "/healthz") == (503, {"status": "starting", "detail": "loading the model"})
    assert get_json(url + "/readyz")[0] == 503
    code, body, ctype = get(url + "/metrics")
    assert code == 200 and ctype.startswith("text/plain") and b"# TYPE stream_cl_events_total counter" in body

    daemon = fake_daemon()
    server.attach(daemon)
    assert daemon.metrics.http_port == server.port
    assert get_json(url + "/healthz")[0] == 503  # built, the loop has not turned yet
    m = daemon.metrics
    m.state, m.heartbeat = "running", clock()
    code, body = get_json(url + "/healthz")
    assert code == 200 and body["status"] == "ok"
    code, body = get_json(url + "/readyz")
    assert code == 503 and body["detail"] == "no partitions assigned"  # model loaded, no partitions yet
    daemon.source.assigned.add(("events", 0))
    assert get_json(url + "/readyz") == (200, {"status": "ready", "state": "running", "partitions": 1})

    clock.t += 0.4  # within the stall timeout (0.5 s)
    assert get_json(url + "/healthz")[0] == 200
    clock.t += 0.2  # 0.6 s since the last turn: stalled
    code, body = get_json(url + "/healthz")
    assert code == 503 and body["status"] == "stalled" and body["last_loop_s"] == pytest.approx(0.6)
    m.heartbeat = clock()  # the loop turns again
    assert get_json(url + "/healthz")[0] == 200

    daemon.source.assigned.clear()  # a rebalance took the partitions away
    assert get_json(url + "/readyz")[0] == 503
    daemon.source.assigned.add(("events", 0))
    m.state = "stopping"  # SIGTERM: drain, no new traffic
    assert get_json(url + "/readyz")[0] == 503 and get_json(url + "/healthz")[0] == 200
    m.state = "stopped"
    assert get_json(url + "/healthz") == (503, {"status": "stopped"})


def test_healthz_turns_503_when_a_real_loop_stops_turning(server):
    """A thread beats like the daemon's loop (real clock); when it stops, /healthz says stalled within the timeout."""
    server.status.clock = time.monotonic
    # 3 s against beats every 50 ms: a loaded two-core machine that holds the beating thread back for a
    # while does not read as a stall (review r102: 0.5 s could flake)
    server.status.stall_timeout_s = 3.0
    daemon = fake_daemon()
    daemon.metrics.state = "running"
    server.attach(daemon)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            daemon.metrics.beat()
            stop.wait(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        wait_for(lambda: get(server.url + "/healthz")[0] == 200, 5, "healthz 200 while the loop turns")
        for _ in range(5):  # stays healthy: turns every 50 ms, timeout 3 s
            assert get(server.url + "/healthz")[0] == 200
        stop.set()
        thread.join()
        stopped = time.monotonic()
        wait_for(lambda: get(server.url + "/healthz")[0] == 503, 5, "healthz 503 after the loop stopped")
        assert time.monotonic() - stopped >= 2.9  # not before the stall timeout
    finally:
        stop.set()


def test_model_describes_the_served_model(server):
    daemon = fake_daemon()
    server.attach(daemon)
    code, body = get_json(server.url + "/model")
    assert code == 200
    assert body["version"] == 3 and body["kind"] == "OnlineContinualLearner"
    assert body["classes"] == ["no", "yes"] and body["n_classes"] == 2
    assert body["features"] == 30 and body["feature_names"] == [f"f{i}" for i in range(20)]  # the first 20
    assert body["heads"] == [{"index": 0, "forgetting": 1.0, "base_forgetting": 1.0, "view": "all", "weight": 0.25},
                             {"index": 1, "forgetting": 0.98, "base_forgetting": 0.995, "view": "inputs", "weight": 0.75}]
    ckpt = body["checkpoint"]
    assert ckpt["seq"] == 3 and ckpt["path"] == "/ckpt/ckpt-000003.safetensors"
    assert ckpt["time"] == "2023-11-14T22:13:20.500Z" and ckpt["unix"] == 1_700_000_000.5
    assert body["events"] == {"learned": 10} and body["need"] == 0.5
    assert body["drift"]["alarms"] == 1 and body["drift"]["by"] == {"ddm": {"forget": 1}}


def test_unknown_paths_are_404(server):
    code, body = get_json(server.url + "/nope")
    assert code == 404 and "/metrics" in body["endpoints"]


def test_serve_binds_the_configured_port_and_refuses_a_taken_one():
    srv = serve(MetricsConfig(port=0, stall_timeout_s=1.0))
    try:
        code, body, _ = get(srv.url + "/metrics")
        assert code == 200 and all(name.removesuffix("_total").encode() in body for name in EXPORTED_METRICS)
        with pytest.raises(OSError):
            serve(MetricsConfig(port=srv.port))
    finally:
        srv.close()


def test_metrics_config():
    assert load_config_dict({}).metrics == MetricsConfig(enabled=True, host="127.0.0.1", port=9464, stall_timeout_s=120.0)
    cfg = load_config_dict({"metrics": {"host": "0.0.0.0", "port": 0, "stall_timeout_s": 5}}).metrics
    assert (cfg.host, cfg.port, cfg.stall_timeout_s) == ("0.0.0.0", 0, 5.0)
    for bad, message in (({"port": 70000}, "metrics.port: must be in [0, 65535]"),
                         ({"stall_timeout_s": 0}, "metrics.stall_timeout_s: must be > 0"),
                         ({"host": ""}, "metrics.host: must not be empty"),
                         ({"prot": 1}, "metrics.prot: unknown key; did you mean 'port'?")):
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_config_dict({"metrics": bad})


@pytest.mark.parametrize("host", ["::1", "::"])
def test_an_ipv6_host_is_served(host):
    # found by review: metrics.host = "::" passed validation, then the daemon exited 1 ("Address family
    # for hostname not supported; free the port ..."): the server bound IPv4 only
    status = DaemonStatus(stall_timeout_s=0.5, clock=FakeClock())
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:  # a machine without IPv6: the bind fails as any taken port does (the daemon exits 1)
        with pytest.raises(OSError):
            ObservabilityServer(host, 0, status, CollectorRegistry())
        return
    srv = ObservabilityServer(host, 0, status, CollectorRegistry())
    try:
        assert srv.url == f"http://[::1]:{srv.port}"
        assert get_json(srv.url + "/healthz") == (503, {"status": "starting", "detail": "loading the model"})
    finally:
        srv.close()


@pytest.mark.parametrize("host, fix", [
    ("192.0.2.1", 'set metrics.host to an address of this machine'),  # TEST-NET-1: on no machine
    ("127.0.0.1", "free the port or change metrics.port"),  # the port is taken (below)
])
def test_a_metrics_server_that_cannot_bind_names_the_right_fix(host, fix, caplog):
    # found by review: every bind error said "free the port or change metrics.port", an address
    # this machine lacks included
    from connectors.daemon_exits import EXIT_FAILED
    from connectors.daemon_run import run_daemon

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        config = load_config_dict({"source": {"kind": "kafka"}, "kafka": {"topics": ["events"]},
                                   "metrics": {"host": host, "port": taken.getsockname()[1]}})
        with caplog.at_level(logging.ERROR, logger="stream_cl.daemon"):
            assert run_daemon(config) == EXIT_FAILED
    finally:
        taken.close()
    detail = next(getattr(r, "stream_cl_fields")["detail"] for r in caplog.records if r.getMessage() == "failed")
    assert f"cannot serve [metrics] on {host}:" in detail and fix in detail


def test_a_privileged_metrics_port_names_the_port_not_the_host(monkeypatch, caplog):
    # found by review: a bind refused for want of privileges (port 80 as a user) was told to change metrics.host
    import errno

    from connectors import http
    from connectors.daemon_exits import EXIT_FAILED
    from connectors.daemon_run import run_daemon

    def refused(cfg):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(http, "serve", refused)
    config = load_config_dict({"source": {"kind": "kafka"}, "kafka": {"topics": ["events"]},
                               "metrics": {"host": "127.0.0.1", "port": 80}})
    with caplog.at_level(logging.ERROR, logger="stream_cl.daemon"):
        assert run_daemon(config) == EXIT_FAILED
    detail = next(getattr(r, "stream_cl_fields")["detail"] for r in caplog.records if r.getMessage() == "failed")
    assert "use a metrics.port of 1024 or more" in detail and "metrics.host" not in detail
