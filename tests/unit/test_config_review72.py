"""Review r72: two [kafka] settings passed every check and failed only at run time."""

import pytest

from connectors.kafka import KafkaSource
from stream_cl.config import HEARTBEAT_INTERVAL_MS, ConfigError, load_config_dict


@pytest.mark.parametrize("ms", [1000, HEARTBEAT_INTERVAL_MS])
def test_a_session_timeout_not_above_the_heartbeat_interval_is_a_config_error(ms):
    """kafka-python refuses it when the consumer is made: a traceback at start, exit 1, restarted for ever."""
    with pytest.raises(ConfigError) as raised:
        load_config_dict({"kafka": {"session_timeout_ms": ms}})
    assert str(raised.value) == (f"kafka.session_timeout_ms: must be above the consumer's heartbeat interval (3000 ms) "
                                 f"(got {ms}); use a timeout such as 45000 (ms), and at least the broker's "
                                 "group.min.session.timeout.ms (6000 by default)")
    assert load_config_dict({"kafka": {"session_timeout_ms": 6000}}).kafka.session_timeout_ms == 6000


def test_the_consumer_is_given_the_heartbeat_interval_the_check_is_against(monkeypatch):
    made = {}

    class Consumer:
        def __init__(self, **options):
            made.update(options)
            raise RuntimeError("stop here")

    monkeypatch.setattr("connectors.kafka.KafkaConsumer", Consumer)
    config = load_config_dict({"kafka": {"topics": ["e"], "session_timeout_ms": 6000}})
    with pytest.raises(RuntimeError, match="stop here"):
        KafkaSource(config.kafka, config.mapping)
    assert (made["heartbeat_interval_ms"], made["session_timeout_ms"]) == (HEARTBEAT_INTERVAL_MS, 6000)


def test_a_labels_topic_among_the_event_topics_is_a_config_error():
    """Every record of it was decoded as a label: the daemon predicted and learned nothing, as healthy as ever."""
    with pytest.raises(ConfigError, match=r"^kafka\.labels_topic: 'e' is also in kafka\.topics"):
        load_config_dict({"kafka": {"topics": ["e", "f"], "labels_topic": "e"}})
    assert load_config_dict({"kafka": {"topics": ["e"], "labels_topic": "l"}}).kafka.labels_topic == "l"
