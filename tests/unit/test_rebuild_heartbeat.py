"""Review r69 F2: while a daemon was rebuilt after a start over (its checkpoint restored, the changelog
caught up), nothing beat the run's heartbeat, and /healthz said ``stalled`` after ``stall_timeout_s``: a
liveness probe killed a member in the middle of a routine start over. The rebuild now beats it, for up to
REBUILD_ALIVE_S (the first start's start-up budget in deploy/k8s)."""

from __future__ import annotations

import threading

import connectors.daemon as daemon_module
import connectors.daemon_exits as daemon_exits
import connectors.daemon_run as daemon_run
from connectors.http import DaemonStatus
from connectors.status import DaemonMetrics
from stream_cl.config import ConfigError, load_config_dict


def _config(tmp_path):
    return load_config_dict({
        "model": {"kind": "analytic", "forgetting": [1.0]},
        "kafka": {"topics": ["events"], "predictions_topic": "p", "dead_letter_topic": "d", "group_id": "g"},
        "checkpoint": {"dir": str(tmp_path / "ckpt")},
        "metrics": {"enabled": False},
    })


class _Counted(DaemonMetrics):
    """Metrics whose beats are counted; ``beaten`` is set at the third."""

    def __init__(self):
        super().__init__()
        self.beats, self.beaten = 0, threading.Event()

    def beat(self) -> None:
        super().beat()
        self.beats += 1
        if self.beats >= 3:
            self.beaten.set()


def _beaters() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stream-cl-rebuild-beat"]


def test_a_rebuild_beats_the_heartbeat_until_its_daemon_is_built(tmp_path, monkeypatch):
    monkeypatch.setattr(daemon_run, "REBUILD_BEAT_S", 0.001)
    metrics, during = _Counted(), []
    status = DaemonStatus(stall_timeout_s=5.0, clock=lambda: metrics.heartbeat + 1.0)  # 1 s after each beat

    def slow_build(cls, config, stop, m, **kwargs):
        assert m is metrics and metrics.beaten.wait(30)  # the build goes on: the heartbeat goes on with it
        during.append(status.health()[0])
        raise ConfigError("model.kind: stands for the rest of a build")

    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(slow_build))
    status.attach(type("Old", (), {"metrics": metrics})())  # the daemon that started over
    code, _ = daemon_run._build_and_run_once(_config(tmp_path), threading.Event(), None, None, metrics)
    assert code == daemon_exits.EXIT_CONFIG and during == [True]
    assert not _beaters()  # it stops with the build


def test_the_first_build_does_not_beat_and_a_rebuild_beats_no_longer_than_its_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(daemon_run, "REBUILD_ALIVE_S", 0.0)
    with daemon_run._alive_while_rebuilt(None):  # the first build: /healthz says "starting"
        assert not _beaters()
    metrics = _Counted()
    with daemon_run._alive_while_rebuilt(metrics):
        pass
    assert metrics.beats == 0 and metrics.heartbeat is None  # past its budget: a hung rebuild is said to be stalled
