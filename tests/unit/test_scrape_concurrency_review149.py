"""Review r149: reads of a running daemon's state from other threads (the metrics scrape, the signal handler).

F1 (low): a scrape during a change of partition counted one partition's replay buffer twice and missed
another's (review r139 F3, left then): ``OnlineParts._every_local`` summed the parts' local states and the
learner's attributes while the loop moved a partition's local state between the two in several statements.
The test pauses the reader half-way through its read (on an instrumented part's local state, no sleeps),
lets the loop's thread change partition meanwhile, then lets the reader finish.

F2 (low): ``/readyz`` answered 200 ``ready`` after SIGTERM until the loop's turn ended (the batch in flight, a
changelog fold, a poll held by a rebalance: seconds to minutes, up to ``kafka.shutdown_timeout_s``), where
docs/observability.md says 503 "while it is stopping after SIGTERM": the handler sets the stop flag alone, and
the loop says ``stopping`` only once it reads the flag. The test holds the real loop in its poll, sends SIGTERM
through the daemon's own handlers, and asks for readiness.
"""

from __future__ import annotations

import random
import signal
import threading

from connectors.daemon import Daemon
from connectors.daemon_exits import EXIT_OK
from connectors.daemon_signals import install_signal_handlers
from connectors.http import DaemonStatus
from router_kit import GroupPublisher  # tests/unit/router_kit.py
from source_kit import ItemsSource  # tests/unit/source_kit.py
from stream_cl.config import load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.learner import OnlineContinualLearner
from stream_cl.pending_stores import PendingStores
from stream_cl.replay import ReplayBuffer

WAIT_S = 30.0  # a bound on the handshakes only: each is answered at once unless the test is broken


def _events(n: int, rng: random.Random):
    for _ in range(n):
        x = {f"f{j}": rng.random() for j in range(3)}
        yield x, int(x["f0"] > 0.5)


class _PausingLocal(dict):
    """A part's local state whose ``replay_`` entry, read once on ``reader``'s thread, pauses that thread
    until the loop's thread has done what the test wants done in the middle of the read."""

    def __init__(self, local: dict, reader: list, inside: threading.Event, resume: threading.Event):
        super().__init__(local)
        self.reader, self.inside, self.resume, self.paused = reader, inside, resume, False

    def __getitem__(self, key):
        if key == "replay_" and not self.paused and self.reader and threading.get_ident() == self.reader[0]:
            self.paused = True
            self.inside.set()
            self.resume.wait(WAIT_S)
        return super().__getitem__(key)


def test_a_scrape_during_a_change_of_partition_counts_each_replay_buffer_once():
    rng = random.Random(0)
    learner = OnlineContinualLearner(replay=ReplayBuffer(100, seed=0), device="cpu")
    for x, y in _events(40, rng):
        learner.learn_one(x, y, partition=0)
    for x, y in _events(10, rng):
        learner.learn_one(x, y, partition=1)  # partition 1 active now; partition 0's local state is in its part
    total = learner.status().replay_samples
    assert total == 50  # 40 + 10: every event kept (a buffer of 100)

    reader_ident: list = []
    inside, resume = threading.Event(), threading.Event()
    part0 = learner._parts[0]
    part0.local = _PausingLocal(part0.local, reader_ident, inside, resume)
    seen: list = []

    def scrape():
        reader_ident.append(threading.get_ident())
        seen.append(learner.status().replay_samples)

    reader = threading.Thread(target=scrape, name="scrape")
    reader.start()
    assert inside.wait(WAIT_S)  # the scrape has read partition 0's part, not yet the learner's own buffer
    x, _ = next(_events(1, rng))
    learner.predict_proba_one(x, partition=0)  # the loop serves partition 0: its local state is swapped in
    resume.set()
    reader.join(WAIT_S)
    assert not reader.is_alive()
    assert seen == [total]  # before the fix: 90 (partition 0's 40 counted twice, with partition 1's 10)
    assert learner.status().replay_samples == total


# -- F2 ----------------------------------------------------------------------------------------------------
class _HeldSource(ItemsSource):
    """The kit's one-partition source whose ``hold_at``-th poll waits (on the loop's thread) until released."""

    def __init__(self, daemon, items, group, hold_at: int):
        super().__init__(daemon, items, group, batch=4)
        self.polls, self.hold_at = 0, hold_at
        self.holding, self.release = threading.Event(), threading.Event()

    def poll(self, max_records):
        self.polls += 1
        if self.polls == self.hold_at:
            self.holding.set()
            self.release.wait(WAIT_S)
        return super().poll(max_records)


def test_readyz_is_503_as_soon_as_sigterm_asks_for_a_stop(tmp_path):
    cfg = load_config_dict({"model": {"kind": "analytic", "forgetting": [1.0]},
                            "kafka": {"topics": ["events"], "predictions_topic": "p", "shutdown_timeout_s": 60},
                            "checkpoint": {"dir": str(tmp_path / "ckpt"), "every_events": 10**9, "every_seconds": 3600}})
    items = [Event({"a": float(i % 7)}, "p" if i % 3 else "n", str(i), None, None, f"events/0@{i}") for i in range(40)]
    sources: list = []

    def source(daemon):
        sources.append(_HeldSource(daemon, items, {}, hold_at=3))
        return sources[0]

    stop = threading.Event()
    daemon = Daemon(cfg, build_learner(cfg.model), source, GroupPublisher({}), PendingStores(), stop)
    status = DaemonStatus(stall_timeout_s=60)
    status.attach(daemon)
    codes: list = []
    loop = threading.Thread(target=lambda: codes.append(daemon.run()), name="loop")
    restore = install_signal_handlers(stop, cfg.kafka.shutdown_timeout_s)  # the daemon's own (main thread)
    try:
        loop.start()
        assert sources[0].holding.wait(WAIT_S)  # the loop's third turn, in its poll
        assert status.ready()[0]  # running, one partition
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set()
        ok, body = status.ready()
        assert not ok and body["status"] == "not_ready"  # before the fix: 200 {"status": "ready"}
        sources[0].release.set()
        loop.join(WAIT_S)
    finally:
        sources[0].release.set()
        restore()
    assert codes == [EXIT_OK] and daemon.metrics.state == "stopped"
    assert not status.ready()[0]
