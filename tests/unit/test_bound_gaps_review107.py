"""Review r107 (unbounded growth over long streams): bounds that hold on the code but that no unit test
guarded. Each test here passes on the code and failed on a mutant that took the bound away
(r107_mutants.py; the unit tests naming the module all passed on each mutant):

* a replay buffer's table of shared label / task / weight objects (``RowStore.share``) forgets the values no
  row holds once it passes ``3 * size_ + 64`` entries (mutant: never cleared; with a task per event the table
  kept every task ever offered: 200k entries after 200k events);
* ``CounterRandom`` keeps one block per stream (mutant: every block drawn; 8 KiB per 1,024 numbers drawn,
  for the life of the learner)."""

from __future__ import annotations

import numpy as np

from stream_cl.replay import CounterRandom, PowerLawReplay, ReservoirReplay
from stream_cl.replay.rng import BLOCK


def test_r107_the_replay_buffers_shared_values_table_is_bounded_by_its_rows():
    for buf in (ReservoirReplay(max_samples=10, seed=1), PowerLawReplay(max_samples=10, seed=1)):
        x, m = np.ones(2), np.ones(2, dtype=bool)
        for i in range(3_000):  # a new task, a new label and a new weight per row: a session id, a timestamp
            buf.offer(x * i, m, f"label-{i}", f"task-{i}", 1.0 + i * 1e-6)
        assert buf.size_ == 10
        assert len(buf._shared_values) <= 3 * buf.size_ + 64 + 3, len(buf._shared_values)


def test_r107_counter_random_keeps_one_block_per_stream():
    r = CounterRandom(seed=3)
    for _ in range(50):
        r.uniform(BLOCK)
        r.normal(BLOCK // 2)
    assert r.pos == [50 * BLOCK, 25 * BLOCK]
    assert len(r._cache) <= 2, sorted(r._cache)


def test_r107_a_file_sources_record_texts_are_those_of_the_last_poll_only(tmp_path):
    """``FileSource.raw`` keeps each event's text for the dead letter the model may make of it, for one poll
    (mutant: never emptied; every event's text was kept for the whole run, 30 unit-test files passed)."""
    from connectors.files import FileSource
    from stream_cl.config import MappingConfig

    path = tmp_path / "events.jsonl"
    path.write_text("".join(f'{{"x": {{"a": {i}}}, "y": "c{i % 2}"}}\n' for i in range(12)))
    source = FileSource(str(path), MappingConfig())
    seen = 0
    for _ in range(3):
        records = source.poll(4)
        seen += len(records)
        assert sorted(source.raw) == sorted(r.origin for r in records), sorted(source.raw)
    assert seen == 12


def test_r107_a_revoked_partitions_offsets_are_forgotten():
    """The source forgets a revoked (or lost) partition's position, committed offset and replay bound (mutant:
    kept; every partition ever assigned stayed in them, and in the status' and exporter's offsets, over a
    topic_pattern whose topics come and go; 13 unit-test files passed)."""
    import asyncio
    from types import SimpleNamespace

    from kafka import TopicPartition

    from connectors.kafka_assignment import RebalanceCallbacks

    old, kept = TopicPartition("events-2026-12-01", 0), TopicPartition("events-2026-12-02", 0)
    told = []
    source = SimpleNamespace(hooks=SimpleNamespace(on_revoke=lambda tps, lost: told.append((set(tps), lost)),
                                                   on_wait=lambda: None),
                             assigned={old, kept}, positions={old: 7, kept: 9}, committed={old: 5, kept: 9},
                             replay_until={old: 6}, consumer=None,  # (no kafka-python loop: hooks called inline)
                             cfg=SimpleNamespace(max_poll_interval_ms=300_000))
    for lost in (False, True):
        asyncio.run(RebalanceCallbacks._on_revoked(source, {old}, lost=lost))
        assert source.positions == {kept: 9} and source.committed == {kept: 9} and source.replay_until == {}
        assert source.assigned == {kept}
        source.positions[old], source.committed[old], source.assigned = 1, 1, {old, kept}
    assert told == [({old}, False), ({old}, True)]
