"""Shared fixtures for integration tests that talk to real services.

CI starts the services first and exports their addresses; these tests never
skip, so a missing service is a loud failure rather than a silently green run.
"""

import os

import pytest


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap address of the real Kafka broker from deploy/kafka/dev-broker.sh."""
    bootstrap = os.environ.get("STREAM_CL_KAFKA_BOOTSTRAP", "").strip()
    if not bootstrap:
        pytest.fail(
            "STREAM_CL_KAFKA_BOOTSTRAP is not set. Start a broker and export its address:\n"
            "    deploy/kafka/dev-broker.sh start\n"
            "    eval \"$(deploy/kafka/dev-broker.sh env)\"",
            pytrace=False,
        )
    return bootstrap


@pytest.fixture
def kafka_kit(kafka_bootstrap, tmp_path):
    """Topics, producers, readers and daemon processes for one test, all removed afterwards."""
    from daemon_kit import Kit  # tests/integration/daemon_kit.py

    kit = Kit(kafka_bootstrap, tmp_path)
    yield kit
    kit.close()
