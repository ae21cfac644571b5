"""A daemon that is fenced again and again keeps one model-changelog consumer, against a real broker.

Each reset (fenced, partitions lost) rebuilds the daemon in the same process. The rebuilt
daemon used to make a new changelog table, and its consumer (an IO thread and its sockets)
was never closed: one more per reset, and all of them still alive after ``run_daemon``
returned. Now one table serves the whole run (connectors/daemon_build.py, ``RunChangelog``) and
is closed when it ends. Counted here: the ``kafka-io-<client_id>`` threads of the daemon's
clients (the group consumer's and the changelog consumer's among them).
"""

from __future__ import annotations

import random
import threading

from daemon_kit import event, wait_for
from kafka import KafkaProducer

from connectors.daemon import Daemon
from connectors.daemon_run import run_daemon
from stream_cl.config import load_config

RESETS = 3


def test_resets_keep_one_changelog_consumer_and_the_run_closes_it(kafka_kit, monkeypatch):
    topic = kafka_kit.topic("cl-life", partitions=2)
    client_id, txid = f"it-cl-life-{kafka_kit.tag}", f"it-cl-life-{kafka_kit.tag}"
    path, _ = kafka_kit.config("cl-life", [topic], kafka={
        "client_id": client_id, "transactional_id": txid, "publisher": "thread", "commit_interval_ms": 100,
        "session_timeout_ms": 6000}, metrics={"enabled": False})
    built: list[Daemon] = []
    make = Daemon.from_config.__func__

    def recorded(cls, *args, **kwargs):
        built.append(make(cls, *args, **kwargs))
        return built[-1]

    monkeypatch.setattr(Daemon, "from_config", classmethod(recorded))

    def io_threads() -> int:
        return sum(t.name == f"kafka-io-{client_id}" for t in threading.enumerate())

    def running(n: int):  # the n-th daemon of the run (or a later one) consuming
        return len(built) >= n and built[-1].metrics.state == "running" and built[-1].source.assigned

    stop, result = threading.Event(), {}
    thread = threading.Thread(target=lambda: result.setdefault("code", run_daemon(load_config(path), stop)), daemon=True)
    thread.start()
    rng = random.Random(7)
    try:
        wait_for(lambda: running(1), 120, "the daemon's partitions")
        live = io_threads()
        assert live >= 2, f"{live} IO threads: expected the group consumer's and the changelog consumer's at least"
        counts = [live]
        for n in range(RESETS):
            fencer = KafkaProducer(bootstrap_servers=kafka_kit.bootstrap, transactional_id=txid)
            fencer.init_transactions()  # a newer producer with the daemon's id: its next commit is refused
            fencer.close()
            kafka_kit.produce(topic, [(str(i), event(i, rng)) for i in range(100 * n, 100 * (n + 1))])
            wait_for(lambda: running(n + 2), 120, f"the daemon rebuilt after fence {n + 1}")
            # the closed clients' threads end as they close: a leak never comes back to `live`
            try:
                wait_for(lambda: io_threads() == live, 20, "the old daemon's clients closed")
            finally:
                counts.append(io_threads())
        assert counts == [live] * (RESETS + 1), f"IO threads after each reset: {counts}"
        tables = {id(d.state.table) for d in built}
        assert len(tables) == 1, f"{len(tables)} changelog tables for one run"
    finally:
        stop.set()
        thread.join(120)
    assert result.get("code") == 0
    wait_for(lambda: io_threads() == 0, 20, "every client of the run closed, the changelog consumer included")
