"""Review r82 F3: a partition whose last records were dead letters kept a changelog part one record short
of the committed offset for good: the router marked a partition changed for its events and label joins only,
and the changelog writes only changed partitions. A poll of dead letters alone now marks it too."""

from __future__ import annotations

from types import SimpleNamespace

from connectors.kafka import PolledBatch
from connectors.router import Router
from connectors.status import DaemonMetrics
from router_kit import RecordingPublisher  # tests/unit/router_kit.py
from stream_cl.config import MappingConfig, load_config_dict
from stream_cl.decode import EventDecoder
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import Prequential


def test_a_poll_of_dead_letters_alone_marks_its_partition_changed():
    cfg = load_config_dict({"kafka": {"topics": ["events"], "dead_letter_topic": "dead"}})
    learner = build_learner(cfg.model)
    touched = []
    state = SimpleNamespace(add=lambda n: None, touched=lambda key, n: touched.append((key, n)))
    router = Router(cfg, Prequential(learner, window=5), learner, PendingStores(), RecordingPublisher(),
                    DaemonMetrics(), state, partitioned=True)
    decoder = EventDecoder(MappingConfig())
    good = [decoder.decode_json(f'{{"x": {{"a": {i}}}, "y": {i % 2}}}', f"events/0@{i}") for i in range(4)]
    router.process(PolledBatch(good, {}, frozenset()))
    assert touched == [("events/0", 4)]
    router.process(PolledBatch([decoder.decode_json(b"{", "events/0@4"), decoder.decode_json(b"[1]", "events/1@0")],
                               {}, frozenset()))
    assert sorted(touched[1:]) == [("events/0", 0), ("events/1", 0)]  # (was: nothing, the parts stayed behind)
    mixed = [decoder.decode_json(b"{", "events/0@5"), decoder.decode_json(b'{"x": {"a": 1}, "y": 0}', "events/0@6")]
    router.process(PolledBatch(mixed, {}, frozenset()))
    assert touched[-1] == ("events/0", 1)  # a partition with events is marked by them, once
