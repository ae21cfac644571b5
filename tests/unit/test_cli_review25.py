"""Review 25 (r20 F2): a SIGTERM or Ctrl-C while ``stream-cl run`` starts (its imports, its warm-up) is a clean
stop, as docs/daemon.md promises for the daemon: the image's, the unit's and the StatefulSet's entry point is
``stream-cl run`` (connectors.cli:main), which had no early handler, so SIGTERM killed it (exit 143), or, as a
container's PID 1, was dropped and the daemon started anyway.

The signals are raised by the process itself at a known point of the start (a patched step, or an import hook
in a child process): no sleeps. In-process, a handler of the test's stands where the default action would be
(death, which would end pytest): the signal must reach the run, never that handler.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import connectors.cli as cli
import connectors.daemon_run as daemon_run
from stream_cl.config import to_toml

REPO = Path(__file__).resolve().parents[2]


def _kafka_config(tmp_path) -> Path:
    path = tmp_path / "d.toml"
    path.write_text(to_toml({  # nothing answers there: a start that went on would fail, not hang
        "source": {"kind": "kafka"}, "model": {"kind": "analytic"},
        "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["events"], "bootstrap_timeout_ms": 1000},
        "checkpoint": {"dir": str(tmp_path / "ckpt")}, "metrics": {"enabled": False}}))
    return path


def _events(tmp_path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({"x": {"a": i % 3}, "y": i % 2}) + "\n" for i in range(50)))
    return path


def _signal_during(monkeypatch, target, name: str, sig=signal.SIGTERM) -> None:
    """``target.name`` raises ``sig`` in this process first, then does its work: a stop at that point of the start."""
    original = getattr(target, name)

    def signalled(*args, **kwargs):
        signal.raise_signal(sig)  # its Python handler has run when this returns
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, signalled)


@pytest.fixture
def missed():
    """Signals that reached the handler in place before main() ran: the default action's stand-in."""
    got: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: got.append(signum))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield got
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_stream_cl_run_reads_a_daemon_config_is_a_clean_stop(tmp_path, monkeypatch, caplog, missed,
                                                                            sig):
    built = []
    monkeypatch.setattr(daemon_run, "_build_and_run", lambda *args: built.append(args) or 1)
    monkeypatch.setattr("connectors.logs.setup_logging", lambda *a, **k: None)  # caplog's handler stays
    monkeypatch.setattr("stream_cl.runtime.warm_up", lambda: None)  # (seconds; skipped anyway after a stop)
    _signal_during(monkeypatch, cli, "_tables_from_args", sig)  # before the daemon's module is imported
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        code = cli.main(["run", "--config", str(_kafka_config(tmp_path))])
    assert missed == [] and built == [] and code == 0  # kept, taken over by run_daemon: nothing was built
    events = [r.getMessage() for r in caplog.records if r.name == "stream_cl.daemon"]
    assert events[-2:] == ["stop_requested", "shutdown"]
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("where", ["config", "warm_up"])
def test_a_signal_while_a_file_run_starts_stops_it_before_any_record(tmp_path, monkeypatch, capsys, missed, where):
    import connectors.run as run_module

    if where == "config":
        _signal_during(monkeypatch, cli, "_tables_from_args")
    else:  # inside run_file, before its own handlers: the keeper's stop flag is the run's
        _signal_during(monkeypatch, run_module, "warm_up")
    report, predictions = tmp_path / "r.json", tmp_path / "p.jsonl"
    code = cli.main(["run", "--source", str(_events(tmp_path)), "--report", str(report),
                     "--predictions", str(predictions), "--quiet"])
    assert missed == [] and code == 0
    assert json.loads(report.read_text())["events"] == 0  # the run's own clean stop: its report, nothing read
    assert predictions.read_text() == ""
    assert "stopped by a signal before any record was read" in capsys.readouterr().err


def test_main_puts_back_the_handlers_it_found(tmp_path, missed):
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    assert cli.main(["run", "--source", str(_events(tmp_path)), "--report", "", "--quiet"]) == 0
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    assert {sig: signal.getsignal(sig) for sig in before} == before


SIGNAL_AT_IMPORT = """
import os, signal, sys

module, times = sys.argv[1], int(sys.argv[2])


class SignalAtImport:
    '''Sends SIGTERM to this process ``times`` times when ``module`` is first imported.'''

    def find_spec(self, name, path=None, target=None):
        if name == module:
            sys.meta_path.remove(self)
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGTERM)
        return None


sys.meta_path.insert(0, SignalAtImport())
sys.argv = ["stream-cl", *sys.argv[3:]]
from connectors.cli import main  # as the console script does (pyproject.toml [project.scripts])
sys.exit(main())
"""


# stream_cl.config: the first import main() does; stream_cl.checkpoint_format: the daemon module's first heavy one
@pytest.mark.parametrize("module, times, code", [("stream_cl.config", 1, 0), ("stream_cl.checkpoint_format", 1, 0),
                                                 ("stream_cl.config", 2, 1)])
def test_a_sigterm_during_the_commands_imports_is_kept(tmp_path, module, times, code):
    done = subprocess.run([sys.executable, "-c", SIGNAL_AT_IMPORT, module, str(times), "run", "--config",
                           str(_kafka_config(tmp_path)), "--log-format", "json"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == code, out[-3000:]  # not -15: death by SIGTERM
    assert "Traceback" not in out
    if code == 0:  # one signal: a clean stop; a second one exits at once (1), as it does later
        events = [json.loads(x)["event"] for x in out.splitlines() if x.startswith("{")]
        assert events[-2:] == ["stop_requested", "shutdown"], out[-3000:]
    assert not (tmp_path / "ckpt").exists()  # nothing was built


def test_importing_the_command_line_module_installs_no_handler():
    probe = ("import signal\nimport connectors.cli\n"
             "print([signal.getsignal(s) is h for s, h in ((signal.SIGTERM, signal.SIG_DFL), "
             "(signal.SIGINT, signal.default_int_handler))])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[True, True]"  # a library importing it keeps its own


def test_the_report_command_keeps_no_signal(tmp_path, monkeypatch, missed):
    """Only a run has a stop of its own: Ctrl-C during `stream-cl report` still reaches the handler in place."""
    import connectors.report as report_module

    monkeypatch.setattr(report_module, "main", lambda path, out: signal.raise_signal(signal.SIGINT) or 0)
    assert cli.main(["report", str(tmp_path / "run.json")]) == 0
    assert missed == [signal.SIGINT]
