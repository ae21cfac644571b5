"""Review r56 #5: the daemon's run report (``report`` in the status file and a checkpoint's stats) counted
only the model's refusals among its dead letters: 5 bad records read 0 there while /metrics, the status
file's top level, /model and the dead-letter topic held 5. A file run's report counts the decoder's too;
the daemon's now does, as it counts the model's (records re-read silently after a restore are not new)."""

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


def test_the_daemons_report_counts_the_decoders_dead_letters_as_a_file_runs_does():
    cfg = load_config_dict({"kafka": {"topics": ["events"], "dead_letter_topic": "dead"}})
    learner = build_learner(cfg.model)
    state = SimpleNamespace(add=lambda n: None, touched=lambda key, n: None)
    router = Router(cfg, Prequential(learner, window=5), learner, PendingStores(), RecordingPublisher(),
                    DaemonMetrics(), state, partitioned=False)
    decoder = EventDecoder(MappingConfig())
    good = [decoder.decode_json(f'{{"x": {{"a": {i}}}, "y": {i % 2}}}', f"events/0@{i}") for i in range(10)]
    bad = [decoder.decode_json(raw, f"events/0@{10 + i}") for i, raw in enumerate((b"[1]", b"{", b'"s"', b"\xff"))]
    router.process(PolledBatch(good + bad, {}, frozenset()))
    replayed = decoder.decode_json(b"{", "events/0@20")  # re-read silently: counted before the restore
    router.process(PolledBatch([replayed], {}, frozenset({"events/0@20"})))
    report = router.step.stats.report()
    assert report["dead_letters_total"] == 4 == sum(router.metrics.dead_letters.values())
    assert report["dead_letters"] == {"not_an_object": 2, "malformed": 2}
