"""The publisher process against the real broker: transactional delivery, failures, and an
orphaned child that aborts what its daemon never committed."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from daemon_kit import REPO, wait_for

from collections import Counter

from connectors.publisher import DeliveryError, ProcessPublisher
from stream_cl.checkpoint import CheckpointStore
from stream_cl.events import Prediction


def _predictions(n, start=0):
    return [Prediction(str(i), "cat", 0.75, "dog", "t1", 1.5, f"ev/0@{i}") for i in range(start, start + n)]


def _options(kit, name):
    return {"bootstrap_servers": kit.bootstrap, "acks": -1, "enable_idempotence": True,
            "transactional_id": f"it-{name}-{kit.tag}"}


def test_every_prediction_is_committed_keyed_and_partitioned_before_commit_returns(kafka_kit):
    topic = kafka_kit.topic("pub", partitions=3)
    pub = ProcessPublisher(_options(kafka_kit, "pub"), topic)
    try:
        for start in range(0, 3000, 256):
            pub.write(_predictions(min(256, 3000 - start), start))
        pub.commit([], (f"it-pub-{kafka_kit.tag}", -1, "", None))
        assert pub.sent == 3000
        # committed before commit returned: the end offsets count every record and a marker per partition
        assert sum(kafka_kit.end_offsets(topic).values()) == 3000 + 3
        pub.write(_predictions(10, 5000))  # never committed: closing aborts it
    finally:
        pub.close()
    assert pub._proc.returncode == 0
    reader = kafka_kit.reader(topic)  # read_committed
    reader.until(lambda recs: len(recs) >= 3000, 60, "3000 predictions")
    reader.poll(500)
    assert len(reader.records) == 3000
    by_key = {r.key.decode(): r for r in reader.records}
    assert sorted(by_key, key=int) == [str(i) for i in range(3000)]
    assert json.loads(by_key["7"].value) == {"id": "7", "y_pred": "cat", "proba": 0.75, "y_true": "dog",
                                             "task": "t1", "ts": 1.5, "origin": "ev/0@7"}
    assert len({r.partition for r in reader.records}) == 3


def test_what_is_written_while_a_commit_is_under_way_goes_into_the_next_transaction(kafka_kit):
    topic = kafka_kit.topic("pub-overlap")
    group = (f"it-pub-overlap-{kafka_kit.tag}", -1, "", None)
    pub = ProcessPublisher(_options(kafka_kit, "pub-overlap"), topic)
    try:
        pub.write(_predictions(1000))
        pub.start_commit([], group)
        pub.write(_predictions(500, 1000))  # the daemon goes on while the child commits
        with pytest.raises(RuntimeError, match="not finished"):
            pub.start_commit([], group)
        seconds = pub.finish_commit()
        assert seconds is not None and 0 < seconds < 60 and pub.sent == 1000
        assert pub.finish_commit() is None  # nothing under way any more
        reader = kafka_kit.reader(topic)  # read_committed: the open transaction's 500 stay unseen
        reader.until(lambda recs: len(recs) >= 1000, 60, "the first transaction's 1000 predictions")
        reader.poll(500)
        assert sorted(int(r.key) for r in reader.records) == list(range(1000))
        pub.commit([], group)
        assert pub.sent == 1500
        reader.until(lambda recs: len(recs) >= 1500, 60, "the second transaction's 500")
        assert sorted(int(r.key) for r in reader.records) == list(range(1500))
    finally:
        pub.close()


def test_a_producer_that_cannot_start_is_an_error_with_the_reason():
    with pytest.raises(DeliveryError, match="cannot start the predictions producer.*no_such_option"):
        ProcessPublisher({"bootstrap_servers": "127.0.0.1:9", "no_such_option": 1}, "t")


def test_a_dead_publisher_fails_the_next_write_or_commit(kafka_kit):
    pub = ProcessPublisher(_options(kafka_kit, "pub-dead"), kafka_kit.topic("pub-dead"))
    pub._proc.kill()
    pub._proc.wait()
    with pytest.raises(DeliveryError, match="publisher process"):
        for _ in range(100):  # a write may still fit in the pipe's buffer; the commit cannot
            pub.write(_predictions(256))
        pub.commit([], ("g", -1, "", None))
    pub.abort()


def test_the_child_ignores_sigterm_and_aborts_what_was_not_committed_when_the_daemon_dies(kafka_kit, tmp_path):
    topic = kafka_kit.topic("pub-orphan")
    options = _options(kafka_kit, "pub-orphan")
    script = textwrap.dedent(f"""
        import os, signal, sys
        from connectors.publisher import ProcessPublisher
        from stream_cl.events import Prediction
        pub = ProcessPublisher({options!r}, {topic!r})
        os.kill(pub.pid, signal.SIGTERM)  # a terminal's or a service manager's signal: the daemon decides
        pub.write([Prediction(str(i), "a", 1.0) for i in range(0, 500)])
        pub.commit([], ("g", -1, "", None))
        for s in range(500, 2000, 250):
            pub.write([Prediction(str(i), "a", 1.0) for i in range(s, s + 250)])
        print(pub.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # the daemon dies without committing the rest
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    child = int(proc.stdout.split()[0])

    def gone():  # exited (a zombie counts: its new parent may never reap it)
        try:
            with open(f"/proc/{child}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    wait_for(gone, 30, "the orphaned publisher to exit")
    reader = kafka_kit.reader(topic)  # read_committed: the aborted transaction's records are skipped
    reader.read_to_end(60)
    assert sorted(int(r.key) for r in reader.records) == list(range(500))


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


def test_a_daemon_whose_publisher_dies_fails_without_committing_and_a_restart_publishes_the_rest(kafka_kit):
    events = kafka_kit.topic("pubdie")
    preds_topic = kafka_kit.topic("pubdie-pred")
    records = [(str(i), {"id": i, "x": {"a": float(i % 7), "b": float(i % 3)}, "y": "ab"[i % 2]}) for i in range(4000)]
    kafka_kit.produce(events, records[:2000])
    kafka = {"predictions_topic": preds_topic, "max_poll_records": 500}
    config = kafka_kit.config("pubdie", [events], kafka=kafka, checkpoint={"every_events": 500, "every_seconds": 3600.0})
    preds = kafka_kit.reader(preds_topic)
    daemon = kafka_kit.start(config, name="pubdie-1")
    preds.until(lambda recs: len(recs) >= 2000 or not daemon.alive, 120, "the first 2000 predictions")
    assert daemon.alive, daemon.log()[-3000:]
    publisher = wait_for(lambda: _children(daemon.proc.pid), 30, "the publisher process")
    assert len(publisher) == 1
    os.kill(publisher[0], signal.SIGKILL)

    assert daemon.wait(timeout=60) != 0  # noticed at the next poll, with no new event to publish
    assert "the publisher process exited (code -9)" in daemon.log()
    kafka_kit.produce(events, records[2000:])
    group = f"it-pubdie-{kafka_kit.tag}"
    assert kafka_kit.committed(group, events)[0] <= 2000

    final_config = kafka_kit.config("pubdie", [events], kafka={**kafka, "stop_at_end": True},
                                    checkpoint={"every_events": 500, "every_seconds": 3600.0})
    final = kafka_kit.start(final_config, name="pubdie-2")
    assert final.wait(timeout=120) == 0, final.log()[-3000:]
    preds.until(lambda recs: len({r.key for r in recs}) >= 4000, 60, "all 4000 predictions")
    preds.poll(500)
    assert Counter(r.key.decode() for r in preds.records) == Counter(str(i) for i in range(4000))  # exactly once
    assert kafka_kit.committed(group, events)[0] == 4000
    state, _ = CheckpointStore(final_config[0].parent / "pubdie-ckpt").load_latest()
    assert state["model"]["head"]["ridge"]["n_rows"] == 4000  # every event learned exactly once
