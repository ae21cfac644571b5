"""The daemon rides out a broker that stops answering mid-stream (frozen with SIGSTOP, as in a
long GC pause or a network partition): no crash, and afterwards every event is predicted once.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path

from daemon_kit import event, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.cpu_meter import find_broker_pid  # noqa: E402

N = 30_000  # the default learner takes several seconds for these: the outage hits mid-stream
FROZEN_S = 10.0


def test_a_frozen_broker_stalls_the_daemon_but_loses_and_repeats_nothing(kafka_kit):
    kit = kafka_kit
    broker = find_broker_pid()
    assert broker is not None, "this test freezes the local dev broker: start it with deploy/kafka/dev-broker.sh"
    events, preds = kit.topic("outage"), kit.topic("outage-pred")
    rng = random.Random(11)
    kit.produce(events, [(str(i), event(i, rng)) for i in range(N)])
    config = kit.config("outage", [events], model={"kind": "online"}, kafka={"predictions_topic": preds},
                        checkpoint={"every_events": 1000, "every_seconds": 1.0})
    daemon = kit.start(config)
    reader = kit.reader(preds)
    reader.until(lambda recs: len(recs) >= 2000, 120, "the daemon under way")

    os.kill(broker, signal.SIGSTOP)
    try:
        frozen_at = time.monotonic()
        learned = daemon.status().get("events", {}).get("learned", 0)
        assert learned < N, "the daemon was done before the outage: make N larger"
        # the outage itself (the stimulus, not a synchronisation): FROZEN_S, or less if the daemon dies
        wait_for(lambda: time.monotonic() - frozen_at >= FROZEN_S or not daemon.alive, 60, "the outage")
        assert daemon.alive, daemon.log()[-3000:]
        stalled = daemon.status().get("events", {}).get("learned", 0)
        assert stalled < N  # it could not finish without the broker (fetching, publishing, committing)
    finally:
        os.kill(broker, signal.SIGCONT)

    reader.until(lambda recs: len(recs) >= N, 180, "every prediction after the broker came back")
    assert daemon.alive and daemon.terminate() == 0, daemon.log()[-3000:]
    reader.poll(500)
    keys = [r.key for r in reader.records]
    assert len(keys) == len(set(keys)) == N  # every event predicted, none twice (idempotent producer)
    assert kit.committed(f"it-outage-{kit.tag}", events) == {0: N}
    assert daemon.status()["events"] == {"learned": N}
