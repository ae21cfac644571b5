"""The Kafka client stream-cl installs: kafka-python with its C CRC-32C."""

import tomllib
from importlib.metadata import requires
from pathlib import Path

from kafka.record import util

from connectors.kafka import slow_crc_warning

ROOT = Path(__file__).resolve().parents[2]


def test_the_c_crc32c_is_a_runtime_dependency_not_only_a_dev_one():
    # without it kafka-python verifies every fetched batch's CRC in pure Python (~3x slower fetching)
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.replace(" ", "").startswith("kafka-python[crc32c]") for d in deps), deps
    assert any("kafka-python[crc32c]" in r.replace(" ", "") for r in requires("stream-cl")), "reinstall: pip install -e ."
    assert util.crc32c_c is not None


def test_slow_crc_warning_names_the_fix_only_when_the_c_package_is_missing(monkeypatch):
    assert slow_crc_warning() is None
    monkeypatch.setattr(util, "crc32c_c", None)
    warning = slow_crc_warning()
    assert "pure Python" in warning and "pip install 'kafka-python[crc32c]'" in warning
