"""The daemon rides out broker outages mid-stream: a broker that stops answering (frozen with
SIGSTOP, as in a long GC pause or a network partition) and a broker restart (stopped, then
started again on its data, as in a rolling upgrade). No crash, and afterwards every event is
predicted exactly once (for a read_committed reader) and learned exactly once (the model's
row count). A transaction the outage breaks is aborted: the daemon then starts over from
its last commit in the same process (kafka-python 3.0.12's transactional producer could stay
stuck after a broker restart until ``kafka.commit_timeout_ms`` gave up on it: review r118).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from daemon_kit import Kit, event, wait_for

from stream_cl.checkpoint import CheckpointStore
from stream_cl.model_state import sufficient_statistics

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from benchmarks.cpu_meter import find_broker_pid  # noqa: E402

N = 30_000  # the default learner takes several seconds for these: the outage hits mid-stream
FROZEN_S = 10.0


def run_through(kit: Kit, name: str, outage: Callable[[object], None], kafka: dict | None = None) -> None:
    """N events, a daemon with the default learner (``kafka``: more of its settings), ``outage(daemon)``
    once it is under way; then the checks."""
    events, preds = kit.topic(name), kit.topic(f"{name}-pred")
    rng = random.Random(11)
    kit.produce(events, [(str(i), event(i, rng)) for i in range(N)])
    config = kit.config(name, [events], model={"kind": "online"}, kafka={"predictions_topic": preds, **(kafka or {})},
                        checkpoint={"every_events": 1000, "every_seconds": 1.0})
    daemon = kit.start(config)
    reader = kit.reader(preds)

    def learned() -> int:
        return daemon.status().get("events", {}).get("learned", 0)

    wait_for(lambda: learned() >= 2000 or not daemon.alive, 120, "the daemon under way (its status file)")
    assert learned() < N, "done before the outage: make N larger"

    outage(daemon)
    # back to work: its status file moves on (it is rewritten about once a second while running)
    at_outage_end = learned()
    wait_for(lambda: (learned() > at_outage_end and daemon.status()["state"] == "running") or not daemon.alive, 180,
             "the daemon learning again")
    assert daemon.alive, daemon.log()[-3000:]

    reader.until(lambda recs: len(recs) >= N, 180, "every prediction after the outage")
    assert daemon.alive and daemon.terminate() == 0, daemon.log()[-3000:]
    reader.read_to_end(60)
    keys = [r.key for r in reader.records]
    assert len(keys) == len(set(keys)) == N  # every event predicted, none twice
    assert kit.committed(f"it-{name}-{kit.tag}", events) == {0: N}
    state, _ = CheckpointStore(kit.folder / f"{name}-ckpt").load_latest()
    assert all(head["n_rows"] == N for head in sufficient_statistics(state["model"]))  # every event learned once
    status = daemon.status()
    # an aborted interval's events are counted again when they are processed again
    assert status["events"]["learned"] >= N and status["transactions"]["committed"] > 0


def test_a_frozen_broker_stalls_the_daemon_but_loses_and_repeats_nothing(kafka_kit):
    broker = find_broker_pid(kafka_kit.bootstrap)
    assert broker is not None, "this test freezes the local dev broker: start it with deploy/kafka/dev-broker.sh"

    def freeze(daemon):
        os.kill(broker, signal.SIGSTOP)
        try:
            frozen_at = time.monotonic()
            # the outage itself (the stimulus, not a synchronisation): FROZEN_S
            wait_for(lambda: time.monotonic() - frozen_at >= FROZEN_S, 60, "the outage")
        finally:
            os.kill(broker, signal.SIGCONT)

    run_through(kafka_kit, "outage-freeze", freeze)


def test_a_broker_restart_mid_stream_loses_and_repeats_nothing(kafka_kit):
    before = find_broker_pid(kafka_kit.bootstrap)
    assert before is not None, "this test restarts the local dev broker: start it with deploy/kafka/dev-broker.sh"

    def restart(daemon):
        # stop (SIGTERM, a controlled shutdown), then the same broker on its data; returns when it answers
        subprocess.run(["bash", str(REPO / "deploy/kafka/dev-broker.sh"), "restart"], check=True,
                       stdout=subprocess.DEVNULL, timeout=180)
        assert find_broker_pid(kafka_kit.bootstrap) not in (None, before)  # a new broker process

    run_through(kafka_kit, "outage-restart", restart)


def _lines(daemon, event_name: str) -> list[dict]:
    """The daemon's JSON log lines of ``event_name``."""
    found = []
    for line in daemon.log().splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("event") == event_name:
            found.append(doc)
    return found


def _rebuild_found_no_broker(daemon) -> list[dict]:
    """The daemon's ``broker_unreachable`` lines of a rebuild (not a poll's: logger stream_cl.kafka)."""
    return [d for d in _lines(daemon, "broker_unreachable") if d.get("logger") == "stream_cl.daemon"]


def test_a_rebuild_that_finds_no_broker_is_built_again_once_the_broker_is_back_review118(kafka_kit):
    """Review r118 (of r115 F1's fix): the commit under way when the broker froze passes
    ``kafka.commit_timeout_ms``; the member starts over, and its rebuild's clients find no broker within
    ``kafka.bootstrap_timeout_ms``. That rebuild ended the run like a first start that never reached a
    broker (exit 1, "check the address"), so a whole group went down in an outage past ~60 s. Now it says
    ``broker_unreachable`` and is built again after the start overs' backoff, until the broker is back.
    The timeouts are short (5 s each), and the broker stays frozen until the daemon says so, not for a
    fixed time."""
    broker = find_broker_pid(kafka_kit.bootstrap)
    assert broker is not None, "this test freezes the local dev broker: start it with deploy/kafka/dev-broker.sh"

    def freeze_until_a_rebuild_finds_no_broker(daemon):
        os.kill(broker, signal.SIGSTOP)
        try:  # (the commit timeout, then the rebuild's bootstrap timeout)
            wait_for(lambda: _rebuild_found_no_broker(daemon) or not daemon.alive, 90,
                     "a rebuild after the start over that finds no broker (broker_unreachable)")
        finally:
            os.kill(broker, signal.SIGCONT)
        assert daemon.alive, f"the daemon exited during the outage:\n{daemon.log()[-3000:]}"
        (line, *_) = _rebuild_found_no_broker(daemon)
        assert line["level"] == "WARNING" and "bootstrap" in line["error"].lower(), line
        assert [d for d in _lines(daemon, "fenced") if "commit" in d.get("reason", "")], "the start over: a commit given up"
        assert not _lines(daemon, "failed")

    run_through(kafka_kit, "outage-rebuild", freeze_until_a_rebuild_finds_no_broker,
                kafka={"commit_timeout_ms": 5_000, "bootstrap_timeout_ms": 5_000, "session_timeout_ms": 10_000})
