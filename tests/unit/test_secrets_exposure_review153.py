"""Review r153: secrets and exposure of a daemon run as a service.

F1 (medium): a Kafka password written in deploy/config/daemon.toml was copied by deploy/k8s/sync.py, in
clear, into configmap.yaml: a ConfigMap (read by whoever may read the namespace's ConfigMaps) kept in
the repository. sync.py now refuses it, naming the ``_env`` form and a Secret.
F2 (low): two configured secrets, one inside the other (a TLS key password ``changeit`` and a SASL
password ``changeit-sasl-42``), were masked in an order the set's hashing chose: the shorter first left
the rest of the longer one in the log (``<redacted>-sasl-42``), where docs/observability.md says a line
that holds a secret shows ``<redacted>``.
F3 (low): ``kafka.status_file`` is rewritten by a rename once a second; the new file took the umask's
bits, so a status file an operator had made 0600 was 0644 (world-readable) a second later. Its bits
are now kept, as the run report's are (review r79).
"""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.logs import Redact
from connectors.status import DaemonMetrics, StatusReporter

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _sync_with(tmp_path, monkeypatch, toml: str):
    spec = importlib.util.spec_from_file_location("deploy_k8s_sync_r153", DEPLOY / "k8s" / "sync.py")
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "daemon.toml").write_text(toml)
    rules = tmp_path / "prometheus" / "rules"
    rules.mkdir(parents=True)
    (rules / "stream-cl.rules.yml").write_text((DEPLOY / "prometheus" / "rules" / "stream-cl.rules.yml").read_text())
    (tmp_path / "k8s").mkdir()
    monkeypatch.setattr(sync, "DEPLOY", tmp_path)
    monkeypatch.setattr(sync, "HERE", tmp_path / "k8s")
    return sync


@pytest.mark.parametrize("key", ["sasl_plain_password", "ssl_password"])
def test_sync_refuses_a_password_it_would_put_in_the_configmap(tmp_path, monkeypatch, capsys, key):
    toml = (DEPLOY / "config" / "daemon.toml").read_text().replace(
        '[kafka]\n', f'[kafka]\n{key} = "hunter2-r153"\n', 1)
    sync = _sync_with(tmp_path, monkeypatch, toml)
    assert sync.main([]) == 1
    assert list((tmp_path / "k8s").iterdir()) == []  # nothing written
    err = capsys.readouterr().err
    assert f"kafka.{key}" in err and f"kafka.{key}_env" in err and "Secret" in err
    assert "hunter2-r153" not in err


def test_sync_takes_the_env_form_and_an_empty_password(tmp_path, monkeypatch):
    toml = (DEPLOY / "config" / "daemon.toml").read_text().replace(
        '[kafka]\n', '[kafka]\nsasl_plain_password_env = "STREAM_CL_KAFKA_SASL_PASSWORD"\nssl_password = ""\n', 1)
    sync = _sync_with(tmp_path, monkeypatch, toml)
    assert sync.main([]) == 0 and sync.main(["--check"]) == 0


def test_a_secret_inside_another_is_masked_whole():
    redact = Redact(["changeit", "changeit-sasl-42"])
    # the order a set of the two may iterate in (its strings' hashes decide): the shorter first
    redact.secrets = ("changeit", "changeit-sasl-42")
    assert redact.mask("login failed: changeit-sasl-42 and key changeit") == \
        "login failed: <redacted> and key <redacted>"


_LOGGED = """
import io, logging
from connectors.logs import hide_secret, setup_logging
buf = io.StringIO()
setup_logging("INFO", fmt="json", stream=buf)
hide_secret("changeit", "changeit-sasl-42")
logging.getLogger("stream_cl.daemon").error("auth failed with changeit-sasl-42")
print(buf.getvalue())
"""


@pytest.mark.parametrize("hash_seed", ["0", "1", "2", "3"])
def test_a_logged_line_shows_no_part_of_the_longer_secret(hash_seed):
    # a process of its own per string-hash seed: the seed decides the order the secrets' set iterates in
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONHASHSEED": hash_seed,
           "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
    out = subprocess.run([sys.executable, "-c", _LOGGED], env=env, capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert "auth failed with <redacted>" in out and "sasl-42" not in out


def _write_status_under(path, umask: int) -> int:
    """The status file's permission bits once the reporter has written it under ``umask``."""
    old = os.umask(umask)
    try:
        StatusReporter(DaemonMetrics(), str(path)).write_state()
    finally:
        os.umask(old)
    return stat.S_IMODE(path.stat().st_mode)


def test_the_status_file_keeps_its_permission_bits(tmp_path):
    path = tmp_path / "status.json"
    path.write_text("{}")
    path.chmod(0o600)
    assert _write_status_under(path, 0o022) == 0o600
    assert '"state": "starting"' in path.read_text()


def test_a_new_status_file_takes_the_umask(tmp_path):
    assert _write_status_under(tmp_path / "status.json", 0o027) == 0o640
