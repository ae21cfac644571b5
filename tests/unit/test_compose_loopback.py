"""The compose stack publishes its ports on the loopback interface only (review r153's left-out item).

``deploy/docker-compose.yml`` published Kafka's PLAINTEXT listener, the daemon's unauthenticated
``/model`` (category values among its feature names), Prometheus with ``--web.enable-lifecycle`` and
Grafana with ``admin``/``admin`` unless set, on every interface of the host.
"""

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "docker-compose.yml"


def test_every_published_port_is_bound_to_127_0_0_1():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    published = {name: svc.get("ports", []) for name, svc in services.items() if svc.get("ports")}
    assert set(published) == {"kafka", "stream-cl", "prometheus", "grafana"}
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port!r} is published on every interface"
