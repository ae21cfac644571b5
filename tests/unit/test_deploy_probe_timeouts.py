"""Every probe of the StatefulSet sets its own timeout (review r144's left-out item).

Kubernetes' default ``timeoutSeconds`` is 1 s. The liveness and readiness probes set 5 s; the startup
probe set none, so a slow answer while the daemon restores its state on a busy node counted as a failure.
"""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_every_probe_allows_more_than_the_default_second():
    (sts,) = [d for d in yaml.safe_load_all((ROOT / "deploy/k8s/statefulset.yaml").read_text())
              if d and d.get("kind") == "StatefulSet"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    probes = {k: v for k, v in container.items() if k.endswith("Probe")}
    assert set(probes) == {"startupProbe", "livenessProbe", "readinessProbe"}
    assert {k: v.get("timeoutSeconds", 1) for k, v in probes.items()} == dict.fromkeys(probes, 5)
