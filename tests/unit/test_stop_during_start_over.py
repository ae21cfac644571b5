"""A stop asked for around a start over (connectors/daemon_run.py ``_build_and_run``), review r53: a SIGTERM
while a fenced daemon waited to rebuild (``rejoin_delayed``, up to 60 s) ended the process with exit 1 and
no closing line, where docs/daemon.md promises exit 0 for a signal. It now ends as a stop before the next
daemon is built: a ``shutdown`` line and exit 0. A stop asked for before the daemon had to start over (its
final commit refused) is still exit 1, now with a ``failed`` line saying why."""

from __future__ import annotations

import json
import logging
import threading

import connectors.daemon as daemon_module
import connectors.daemon_exits as daemon_exits
import connectors.daemon_run as daemon_run
from connectors.logs import JsonFormatter
from connectors.status import DaemonMetrics
from stream_cl.config import load_config_dict

CONFIG = load_config_dict({"kafka": {"topics": ["events"]}, "metrics": {"enabled": False},
                           "mapping": {"features": ["x", "bb"]}})


class _Fenced:
    """A daemon whose run ends in a start over; ``stop_first``: a stop was asked for during the run."""

    def __init__(self, stop: threading.Event, stop_first: bool):
        self.stop, self.stop_first, self.metrics = stop, stop_first, DaemonMetrics()

    def run(self) -> int:
        if self.stop_first:
            self.stop.set()
        return daemon_exits.EXIT_RESET


def _run(monkeypatch, caplog, stop_first: bool, stop_in_wait: bool) -> tuple[int, list[dict], int]:
    stop, built = threading.Event(), []

    def from_config(cls, config, stop_, metrics, **run):
        run["checks"].fields.observe({"x": 1, "y": 0})  # it read one event of a short topic
        built.append(_Fenced(stop, stop_first))
        return built[-1]

    def wait(stop_, metrics, delay):
        if stop_in_wait:
            stop.set()  # SIGTERM's handler, during rejoin_delayed

    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(from_config))
    monkeypatch.setattr(daemon_run, "_wait_before_rebuild", wait)
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        code = daemon_run._build_and_run(CONFIG, stop, None, None)
    return code, [json.loads(JsonFormatter().format(r)) for r in caplog.records], len(built)


def test_a_stop_asked_for_while_the_daemon_waits_to_start_over_is_the_clean_stop(monkeypatch, caplog):
    code, lines, built = _run(monkeypatch, caplog, stop_first=False, stop_in_wait=True)
    assert code == daemon_exits.EXIT_OK and built == 1  # no second daemon is built
    assert lines[-1]["event"] == "shutdown" and lines[-1]["exit_code"] == 0
    assert lines[-1]["detail"] == "stopped before the daemon was built"
    assert lines[-2]["event"] == "mapping_warning" and "field 'bb'" in lines[-2]["detail"]  # before the closing line


def test_a_stop_asked_for_before_the_daemon_had_to_start_over_fails_saying_why(monkeypatch, caplog):
    code, lines, built = _run(monkeypatch, caplog, stop_first=True, stop_in_wait=False)
    assert code == daemon_exits.EXIT_FAILED and built == 1
    (failed,) = [line for line in lines if line["event"] == "failed"]
    assert failed["level"] == "ERROR" and failed["exit_code"] == 1
    assert failed["detail"].startswith("stopped while the daemon had to start over")
    assert [line["event"] for line in lines][-2:] == ["mapping_warning", "failed"]
