"""The daemon's source says what a file run says of event times (TimeCensus): with
model.time_features on, times beyond 1e11 (epoch milliseconds read as seconds) or no time at all
in the first events are a mapping_warning, once; without time features nothing is said."""

import json
import threading

from kafka import TopicPartition

from connectors.kafka import KafkaSource
from stream_cl.config import KafkaConfig, MappingConfig
from stream_cl.events import Event
from stream_cl.mapping_check import SAMPLE, MappingChecks, TimeCensus

from source_kit import ListConsumer  # tests/unit/source_kit.py

TP = TopicPartition("events", 0)


def _source(values: list[bytes], time_features: bool = False, mapping: MappingConfig = MappingConfig(),
            checks: MappingChecks | None = None, consumer: ListConsumer | None = None) -> KafkaSource:
    """A source of partition events/0 holding ``values`` (or reading ``consumer``), assigned."""
    source = KafkaSource(KafkaConfig(topics=["events"]), mapping, consumer=consumer or ListConsumer(values),
                         time_features=time_features, checks=checks)
    source.assigned = {TP}
    return source


def _warnings_after(source: KafkaSource, polls: int) -> list[str]:
    said = []
    for _ in range(polls):
        source.poll(400)
        said += source.take_warnings()
    return said


def _events(ts) -> list[bytes]:
    return [json.dumps({"x": {"a": i % 7}, "y": i % 2, **({"ts": ts + i} if ts is not None else {})}).encode()
            for i in range(SAMPLE + 200)]


def test_epoch_milliseconds_are_a_warning_once_the_sample_is_complete():
    said = _warnings_after(_source(_events(1_714_601_643_000), time_features=True), polls=4)
    assert len(said) == 1
    assert f"{SAMPLE:,} of the first {SAMPLE:,} events had a time in field 'ts'" in said[0]
    assert "look like epoch milliseconds" in said[0] and said[0].endswith('set mapping.timestamp_unit = "ms"')


def test_no_time_at_all_is_a_warning_and_seconds_are_not():
    said = _warnings_after(_source(_events(None), time_features=True), polls=4)
    assert len(said) == 1 and "none of the first 1,000 events had a time in field 'ts'" in said[0]
    assert _warnings_after(_source(_events(1_714_601_643), time_features=True), polls=4) == []


def test_without_time_features_nothing_is_said_of_times():
    assert _warnings_after(_source(_events(1_714_601_643_000), time_features=False), polls=4) == []



def test_a_topic_shorter_than_the_sample_is_judged_when_the_daemon_stops():
    # 300 events in epoch milliseconds and a feature field none has: nothing while the topic is read, nor at
    # an empty poll (a live topic slower than the poll timeout would be judged by its first event)
    values = [json.dumps({"x": {"a": i % 7}, "y": i % 2, "ts": 1_714_601_643_000 + i}).encode() for i in range(300)]
    source = _source(values, time_features=True, mapping=MappingConfig(features=["x", "bb"]))
    assert len(source.poll(200).items) == 200 and source.take_warnings() == []
    assert len(source.poll(200).items) == 100 and source.take_warnings() == []
    assert not source.poll(200).items and source.take_warnings() == []
    said = source.take_warnings(final=True)  # the daemon stops
    assert len(said) == 2, said
    assert said[0].startswith("mapping.features: field 'bb' was in none of the first 300 events")
    assert "300 of the first 300 events had a time in field 'ts'" in said[1]
    assert "look like epoch milliseconds" in said[1]
    assert source.take_warnings(final=True) == []  # said once


def test_a_live_topic_is_not_judged_by_its_first_events_at_an_empty_poll():
    # one event, then nothing within a poll: a field the later events carry is not called missing
    values = [json.dumps({"x": {"a": 0}, "y": 0}).encode()]
    values += [json.dumps({"x": {"a": i}, "late": i, "y": i % 2}).encode() for i in range(1, SAMPLE + 100)]
    consumer = ListConsumer(values)
    later, consumer.records = consumer.records[1:], consumer.records[:1]
    source = _source([], mapping=MappingConfig(features=["x", "late"]), consumer=consumer)
    assert len(source.poll(200).items) == 1 and not source.poll(200).items
    assert source.take_warnings() == []
    consumer.records = later  # the next events come
    n = 1
    while batch := source.poll(400).items:
        n += len(batch)
        assert source.take_warnings() == []  # 999 of the first 1,000 had it
    assert n == SAMPLE + 100 and source.take_warnings(final=True) == []


def test_the_checks_carry_over_a_rebuilt_source_so_a_short_topic_is_judged_by_all_it_read():
    # a reset rebuilds the daemon and its source; the run hands the same MappingChecks to each (run_daemon)
    values = [json.dumps({"x": {"a": i % 7}, "y": i % 2}).encode() for i in range(300)]
    checks = MappingChecks.for_stream(MappingConfig(features=["x", "bb"]), time_features=False)
    first = _source(values, mapping=MappingConfig(features=["x", "bb"]), checks=checks)
    assert len(first.poll(400).items) == 300 and first.take_warnings() == []
    rebuilt = _source([], mapping=MappingConfig(features=["x", "bb"]), checks=checks)  # all committed: none re-read
    assert not rebuilt.poll(400).items
    said = rebuilt.take_warnings(final=True)
    assert len(said) == 1 and said[0].startswith("mapping.features: field 'bb' was in none of the first 300 events")


def test_the_run_hands_one_set_of_checks_to_every_daemon_it_builds(monkeypatch):
    import connectors.daemon_exits as daemon_exits
    import connectors.daemon_run as daemon_run
    from stream_cl.config import load_config_dict

    handed, codes = [], [daemon_exits.EXIT_RESET, daemon_exits.EXIT_OK]

    def build(config, stop, on_ready, server, metrics, changelog=None, checks=None, contact=None):
        handed.append(checks)
        return codes.pop(0), metrics

    monkeypatch.setattr(daemon_run, "_build_and_run_once", build)
    config = load_config_dict({"kafka": {"topics": ["events"]}})
    assert daemon_run._build_and_run(config, threading.Event(), None, None) == daemon_exits.EXIT_OK
    assert len(handed) == 2 and isinstance(handed[0], MappingChecks) and handed[1] is handed[0]


def test_a_daemon_that_fails_says_a_short_topics_warnings_too_before_its_failed_line(tmp_path, caplog):
    import logging

    from test_checkpoint import _daemon  # the daemon loop on a fake one-partition source (tests/unit)

    import connectors.daemon_exits as daemon_exits
    from stream_cl.config import ConfigError

    daemon, _ = _daemon(tmp_path, [], [])
    asked = []
    daemon.source.take_warnings = lambda final=False: asked.append(final) or (
        ["mapping.features: field 'bb' was in none of the first 300 events"] if final else [])

    def fail():
        raise ConfigError("changelog.max_message_bytes: a state of 2 MB does not fit")

    daemon.run_once = fail
    with caplog.at_level(logging.WARNING, logger="stream_cl.daemon"):
        assert daemon.run() == daemon_exits.EXIT_CONFIG
    assert asked == [True]
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["mapping_warning", "failed"]  # the closing line last
    assert "field 'bb' was in none of the first 300 events" in caplog.records[0].stream_cl_fields["detail"]


def test_records_read_again_after_a_reset_are_not_counted_twice():
    values = [json.dumps({"x": {"a": i % 7}, "y": i % 2}).encode() for i in range(300)]
    checks = MappingChecks.for_stream(MappingConfig(features=["x", "bb"]), time_features=True)
    for _ in range(2):  # the rebuilt source reads the same 300 records again (none was committed)
        source = _source(values, time_features=True, mapping=MappingConfig(features=["x", "bb"]), checks=checks)
        assert len(source.poll(400).items) == 300 and source.take_warnings() == []
    said = source.take_warnings(final=True)
    assert len(said) == 2, said
    assert said[0].startswith("mapping.features: field 'bb' was in none of the first 300 events")
    assert "none of the first 300 events had a time in field 'ts'" in said[1]


def test_a_time_that_overflows_as_written_is_said_not_raised():
    # 1.7976931348623157e308 microseconds: a finite time in seconds, infinite again times 1e6
    census = TimeCensus(MappingConfig(timestamp_unit="us"), time_features=True, sample=2)
    census.observe([Event({"a": 1.0}, 0, ts=1.7976931348623157e308 / 1e6)] * 2)
    (said,) = census.take()
    assert said.startswith("model.time_features: 2 of the first 2 events had a time in field 'ts'")
    # the float the producer wrote, not the inf it overflows to once multiplied back
    assert "(e.g. 1.7976931348623158e+308)" in said and float("1.7976931348623158e+308") == 1.7976931348623157e308


def test_a_run_that_ends_through_a_start_over_says_a_short_topics_warnings(monkeypatch, caplog):
    import logging

    import connectors.daemon_exits as daemon_exits
    import connectors.daemon_run as daemon_run
    from stream_cl.config import load_config_dict

    stop = threading.Event()

    def build(config, stop_, on_ready, server, metrics, changelog=None, checks=None, contact=None):
        checks.fields.observe({"x": 1, "y": 0})  # one event read, then fenced while a stop was asked for
        stop.set()
        return daemon_exits.EXIT_RESET, metrics

    monkeypatch.setattr(daemon_run, "_build_and_run_once", build)
    config = load_config_dict({"kafka": {"topics": ["events"]}, "mapping": {"features": ["x", "bb"]}})
    with caplog.at_level(logging.WARNING, logger="stream_cl.daemon"):
        assert daemon_run._build_and_run(config, stop, None, None) == daemon_exits.EXIT_FAILED
    said = [r.stream_cl_fields["detail"] for r in caplog.records if r.getMessage() == "mapping_warning"]
    assert said == ["mapping.features: field 'bb' was in none of the first event (fields seen: x, y)"]
    assert [r.getMessage() for r in caplog.records] == ["mapping_warning", "failed"]  # the closing line last


def test_a_rebuild_that_fails_says_what_the_daemon_before_it_read_before_its_failed_line(monkeypatch, caplog):
    import logging

    import connectors.daemon as daemon_module
    import connectors.daemon_exits as daemon_exits
    import connectors.daemon_run as daemon_run
    from stream_cl.config import ConfigError, load_config_dict

    class Fenced:  # read one event, then had to start over
        def __init__(self, checks):
            checks.fields.observe({"x": 1, "y": 0})
            self.metrics = None

        def run(self):
            return daemon_exits.EXIT_RESET

    def from_config(cls, config, stop, metrics, changelog=None, checks=None, contact=None):
        if built:
            raise ConfigError("changelog.topic: written by another group")  # the rebuild meets a setting to fix
        built.append(Fenced(checks))
        return built[-1]

    built = []
    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(from_config))
    config = load_config_dict({"kafka": {"topics": ["events"]}, "mapping": {"features": ["x", "bb"]},
                               "metrics": {"enabled": False}})
    with caplog.at_level(logging.WARNING, logger="stream_cl.daemon"):
        assert daemon_run._build_and_run(config, threading.Event(), None, None) == daemon_exits.EXIT_CONFIG
    assert [r.getMessage() for r in caplog.records] == ["mapping_warning", "failed"]
    assert "field 'bb' was in none of the first event" in caplog.records[0].stream_cl_fields["detail"]


def test_checks_that_fail_neither_stop_the_daemon_nor_fail_its_clean_stop(tmp_path, caplog):
    import logging

    from test_checkpoint import _daemon  # the daemon loop on a fake one-partition source (tests/unit)

    import connectors.daemon_exits as daemon_exits

    daemon, _ = _daemon(tmp_path, [], [])

    def broken(final=False):
        raise RuntimeError("a fault of ours in the checks")

    daemon.source.take_warnings = broken
    daemon.stop.set()  # a clean stop: the final judgement of a short topic meets the fault
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        assert daemon.run() == daemon_exits.EXIT_OK
    lines = [r.getMessage() for r in caplog.records]
    assert "mapping checks failed; the daemon goes on" in lines and lines[-1] == "shutdown", lines
