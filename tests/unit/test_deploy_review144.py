"""Review r144: deploy/ against docs/deploy.md, docs/daemon.md and docs/observability.md.

Finding (low): the Kubernetes steps of docs/deploy.md were "edit deploy/config/daemon.toml, run sync.py,
kubectl apply -k". The daemon reads its config only when it starts, and applying a changed ConfigMap
changes no pod template, so Kubernetes restarts nothing: the running pods kept the old config, and each
pod that restarted later for its own reasons (a failure, a drain) took the new one, leaving the group on
two configs indefinitely. The steps now end with a rolling restart, and the generated ConfigMap says so.
Compose had the same gap (`up -d` recreates no container for a changed bind-mounted file): its section
now says to restart the daemon's service.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _kubernetes_commands() -> list[str]:
    """The command lines of docs/deploy.md's Kubernetes section, in order."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("## Kubernetes", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_the_config_is_read_only_at_start():
    """What the finding rests on: the pods get the config as a mounted file that only the pod template's
    start reads (ENTRYPOINT --config), and nothing in the template changes with the ConfigMap's text."""
    docs = [d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    template = yaml.safe_dump(sts["spec"]["template"])
    assert cm["data"]["config.toml"] not in template and "checksum" not in template


def test_the_kubernetes_steps_roll_the_pods_after_applying_a_config():
    commands = _kubernetes_commands()
    applies = [i for i, c in enumerate(commands) if c.startswith("kubectl apply -k deploy/k8s")]
    rolls = [i for i, c in enumerate(commands) if c.startswith("kubectl rollout restart statefulset/stream-cl")]
    assert applies and rolls and rolls[0] > applies[0], commands


def test_the_generated_configmap_says_the_pods_must_be_rolled():
    head = "".join(line for line in (DEPLOY / "k8s" / "configmap.yaml").read_text().splitlines(keepends=True)
                   if line.startswith("#"))
    assert "kubectl rollout restart statefulset/stream-cl" in head


def test_the_compose_steps_restart_the_daemon_after_a_config_edit():
    """The same for compose: the config is a bind mount, and `up -d` recreates no container for its text."""
    text = " ".join((ROOT / "docs" / "deploy.md").read_text().split("## Docker Compose", 1)[1]
                    .split("\n## ", 1)[0].split())
    assert "docker compose -f deploy/docker-compose.yml restart stream-cl" in text
