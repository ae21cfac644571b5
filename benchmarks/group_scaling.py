"""A consumer group of daemons on one topic: throughput by members, changelog and fold costs, commit latency.

Against a real broker (``deploy/kafka/dev-broker.sh start``):

1. **scaling**: a ``--partitions``-partition topic of ``--events`` JSON events is drained by
   a group of 1, 2, ... ``--members`` daemon processes (a fresh group, predictions topic and
   changelog each time). events/s from the predictions' broker timestamps (first to last,
   rebalances included); each member's changelog records and bytes, folds and fold time
   from its status file; the daemons are stopped (SIGTERM) once the group's committed
   offsets reach the topic's end;
2. **latency** (``--commit-intervals``): one daemon in a group keeps up with a producer at
   ``--live-rate`` events/s for ``--live-seconds``; a ``read_committed`` reader notes the
   wall time each prediction becomes visible: the latency from an event's send to its
   committed prediction, per ``kafka.commit_interval_ms``.

The machine's cores are shared by the broker, the producer and every member: the report
prints the core count, and each run's events/s is what all of them together left.

    python benchmarks/group_scaling.py --events 60000 --partitions 6 --members 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from benchmarks.kafka_throughput import FETCH, REPO, create_topic, event_json, fill, percentiles, read_topic, \
    summarise_predictions, wait_assigned
from stream_cl.config import to_toml


def member_config(folder: Path, bootstrap: str, group: str, topic: str, preds: str, k: int,
                  commit_interval_ms: int = 200) -> tuple[Path, Path]:
    name = f"{group}-{k}"
    cfg = {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": group, "topics": [topic], "predictions_topic": preds,
                  "commit_interval_ms": commit_interval_ms, **FETCH, "status_file": str(folder / f"{name}.json")},
        "checkpoint": {"dir": str(folder / f"{name}-ckpt")},
        "metrics": {"port": 0},
    }
    path = folder / f"{name}.toml"
    path.write_text(to_toml(cfg))
    return path, folder / f"{name}.json"


def start(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "connectors.daemon", "--config", str(config)], cwd=REPO,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def committed(admin, group: str, topic: str) -> dict:
    offsets = admin.list_group_offsets({group: None})[group]
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        consumer.close()
    return {tp.partition: o for tp, o in ends.items()}


def scaling_run(bootstrap: str, admin, topic: str, n: int, partitions: int, members: int, sent_ms: dict,
                folder: Path) -> dict:
    group = f"scale-{members}-{uuid.uuid4().hex[:6]}"
    preds = create_topic(admin, f"{topic}-pred-{members}", partitions)
    configs = [member_config(folder, bootstrap, group, topic, preds, k) for k in range(members)]
    procs = [start(c, folder / f"{group}-{k}.log") for k, (c, _) in enumerate(configs)]
    ends = end_offsets(bootstrap, topic, partitions)
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline and committed(admin, group, topic) != ends:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a member exited early; see {folder}/{group}-*.log")
        time.sleep(0.5)
    time.sleep(3.0)  # the last changelog writes and folds (changelog.every_seconds, fold_every_seconds)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    rcs = [p.wait(timeout=120) for p in procs]
    records = read_topic(bootstrap, preds, n)
    out = summarise_predictions(records, sent_ms)
    out.pop("lag")
    out["exit_codes"] = rcs
    statuses = [json.loads(s.read_text()) for _, s in configs]
    out["changelog"] = [s.get("changelog", {}) for s in statuses]
    out["learned"] = [s.get("events", {}).get("learned", 0) for s in statuses]
    written = sum(c.get("bytes", 0) for c in out["changelog"])
    out["changelog_bytes_per_event"] = written / n
    out["changelog_bytes_per_s"] = written / out["seconds"] if out["seconds"] else None
    folds = sum(c.get("folded_records", 0) for c in out["changelog"])
    out["fold_seconds_per_record"] = (sum(c.get("fold_seconds", 0.0) for c in out["changelog"]) / folds) if folds else None
    return out


def latency_run(bootstrap: str, admin, rate: float, seconds: float, features: int, interval_ms: int,
                folder: Path) -> dict:
    """One member keeps up with a producer; when does each prediction become visible to read_committed?"""
    topic = create_topic(admin, f"lat-{interval_ms}-{uuid.uuid4().hex[:6]}", 1)
    preds = create_topic(admin, f"{topic}-pred", 1)
    group = f"lat-{uuid.uuid4().hex[:6]}"
    config, status = member_config(folder, bootstrap, group, topic, preds, 0, commit_interval_ms=interval_ms)
    proc = start(config, folder / f"{group}.log")
    wait_assigned(status)
    seen: dict[str, float] = {}
    stop = threading.Event()

    def reader():
        c = KafkaConsumer(preds, bootstrap_servers=bootstrap, isolation_level="read_committed",
                          auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
        while not stop.is_set():
            for recs in c.poll(timeout_ms=20).values():
                now = time.time() * 1000.0
                for r in recs:
                    seen.setdefault(r.key.decode(), now)
        c.close()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    rng = random.Random(1)
    n = int(rate * seconds)
    sent: dict[str, float] = {}
    t0 = time.perf_counter()
    for i in range(n):
        target = t0 + i / rate
        while (now := time.perf_counter()) < target:
            time.sleep(min(target - now, 0.002))
        sent[str(i)] = time.time() * 1000.0
        producer.send(topic, key=str(i).encode(), value=event_json(i, rng, features))
    producer.flush()
    producer.close()
    deadline = time.monotonic() + 60
    while len(seen) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    t.join(5)
    proc.terminate()
    proc.wait(timeout=60)
    latency = [seen[k] - sent[k] for k in sent if k in seen]
    return {"commit_interval_ms": interval_ms, "rate": rate, "seconds": seconds, "visible": len(latency), "sent": n,
            **percentiles(latency)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", default=os.environ.get("STREAM_CL_KAFKA_BOOTSTRAP", "127.0.0.1:39092"))
    p.add_argument("--events", type=int, default=60_000)
    p.add_argument("--features", type=int, default=10)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--commit-intervals", default="200,50", help="kafka.commit_interval_ms values of the latency runs")
    p.add_argument("--live-rate", type=float, default=500.0)
    p.add_argument("--live-seconds", type=float, default=15.0)
    p.add_argument("--json")
    a = p.parse_args(argv)
    admin = KafkaAdminClient(bootstrap_servers=a.bootstrap)
    folder = Path(tempfile.mkdtemp(prefix="group-scaling-"))
    topic = create_topic(admin, f"scale-{uuid.uuid4().hex[:8]}", a.partitions)
    filled = fill(a.bootstrap, topic, a.events, a.features)
    sent_ms = filled["sent_ms"]
    report = {"cores": os.cpu_count(), "events": a.events, "partitions": a.partitions, "features": a.features,
              "scaling": {}, "latency": []}
    print(f"{os.cpu_count()} cores shared by the broker and every member; {a.events:,} events, "
          f"{a.partitions} partitions, {a.features} features, default learner")
    for m in range(1, a.members + 1):
        r = scaling_run(a.bootstrap, admin, topic, a.events, a.partitions, m, sent_ms, folder)
        report["scaling"][m] = r
        one = report["scaling"][1]["events_per_s"]
        print(f"{m} member(s): {r['events_per_s']:,.0f} events/s ({r['events_per_s'] / one:.2f}x one member), "
              f"{r['distinct_ids']:,} distinct ids in {r['predictions']:,} predictions; changelog "
              f"{r['changelog_bytes_per_event']:,.0f} B/event, {r['changelog_bytes_per_s'] / 1e6:.2f} MB/s; "
              f"fold {1e3 * (r['fold_seconds_per_record'] or 0):.1f} ms per merged part; learned per member {r['learned']}")
    for interval in [int(v) for v in a.commit_intervals.split(",") if v]:
        r = latency_run(a.bootstrap, admin, a.live_rate, a.live_seconds, a.features, interval, folder)
        report["latency"].append(r)
        print(f"commit_interval_ms={interval}: event -> committed prediction p50 {r['p50_ms']:.0f} ms, "
              f"p99 {r['p99_ms']:.0f} ms ({r['visible']:,}/{r['sent']:,} visible at {a.live_rate:.0f} events/s)")
    admin.close()
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1, default=str))
    return report


if __name__ == "__main__":
    main()
