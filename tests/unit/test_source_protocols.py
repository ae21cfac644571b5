"""The protocols in stream_cl.events name what their callers use: the daemon closes a failed member's
source through PartitionedSource.abort (it reached into a KafkaSource's consumer, so any other source
was never closed), and the file run reads Source.raw, Source.error and its context manager."""

import typing

from connectors.daemon import Daemon
from connectors.files import FileSource, JsonlDeadLetterSink, JsonlPredictionSink
from connectors.kafka import KafkaSource
from stream_cl.config import MappingConfig
from stream_cl.events import DeadLetterSink, PartitionedSource, PredictionSink, Source


def _members(protocol) -> set[str]:
    """What a protocol names: its attributes and its methods (with the context-manager pair)."""
    names = set(typing.get_type_hints(protocol)) if hasattr(protocol, "__annotations__") else set()
    for name, value in vars(protocol).items():
        if callable(value) and (not name.startswith("_") or name in ("__enter__", "__exit__")):
            names.add(name)
    return names


class _Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append(name)


def test_a_failed_member_aborts_its_source_through_the_protocol():
    daemon = Daemon.__new__(Daemon)  # abort's parts only: no broker needed
    daemon.source, daemon.publisher, daemon._own_changelog = _Recorder(), _Recorder(), None
    daemon.abort()
    assert daemon.source.calls == ["abort"] and daemon.publisher.calls == ["abort"]


def test_the_sources_and_sinks_have_what_their_protocols_name(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"x": {"a": 1}, "y": 1}\n')
    with FileSource(str(path), MappingConfig()) as source:
        assert {"raw", "error", "exhausted", "poll", "take_warnings", "close", "__enter__", "__exit__"} <= _members(Source)
        assert all(hasattr(source, name) for name in _members(Source))
    assert all(hasattr(KafkaSource, name) or name in typing.get_type_hints(PartitionedSource)
               for name in _members(PartitionedSource))
    assert "abort" in _members(PartitionedSource) and callable(KafkaSource.abort)
    for sink, protocol in ((JsonlPredictionSink, PredictionSink), (JsonlDeadLetterSink, DeadLetterSink)):
        assert all(hasattr(sink, name) for name in _members(protocol))
