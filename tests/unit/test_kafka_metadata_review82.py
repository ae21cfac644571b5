"""Review r82 (a consumer group through kills and rebalances, 8 trials: every id exactly once, every
member's model and the changelog's the one a single learner makes): partitions added to a consumed topic
were assigned only at kafka-python's metadata refresh, every 300 s by default, and read by no one
meanwhile. The consumer now refreshes every kafka.metadata_max_age_ms, 30 s by default."""

import pytest

import connectors.kafka as kafka_module
from connectors.kafka import KafkaSource
from stream_cl.config import ConfigError, KafkaConfig, MappingConfig, load_config_dict


class _Made(Exception):
    pass


@pytest.mark.parametrize("given, expected", [({}, 30_000), ({"metadata_max_age_ms": 5_000}, 5_000)])
def test_the_consumer_refreshes_its_metadata_as_configured(monkeypatch, given, expected):
    made = {}

    def consumer(*topics, **options):
        made.update(options)
        raise _Made

    monkeypatch.setattr(kafka_module, "KafkaConsumer", consumer)
    with pytest.raises(_Made):
        KafkaSource(KafkaConfig(topics=["events"], **given), MappingConfig())
    assert made["metadata_max_age_ms"] == expected  # (was: not given, kafka-python's 300000)


def test_the_refresh_interval_is_checked_by_key():
    assert load_config_dict({"kafka": {"metadata_max_age_ms": 10_000}}).kafka.metadata_max_age_ms == 10_000
    with pytest.raises(ConfigError, match=r"kafka\.metadata_max_age_ms"):
        load_config_dict({"kafka": {"metadata_max_age_ms": 0}})
