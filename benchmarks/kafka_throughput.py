"""End-to-end throughput of the Kafka daemon against kafka-python's own consumer.

Steps, all against a real broker (``deploy/kafka/dev-broker.sh start``):

1. **fill**: a producer writes ``--events`` JSON events (``--features`` numeric features,
   three classes, an id and the send time) to a fresh topic;
2. **ceiling**: a bare ``KafkaConsumer`` (same fetch settings as the daemon, no
   decoding, no processing) drains the topic: the reference events/s;
3. **consume + publish**: kafka-python consuming the topic and publishing one keyed
   prediction record per event, with no decoding and no model, the producer in the
   consuming process or in the daemon's publisher process: what any daemon that
   publishes every prediction through kafka-python can reach here;
4. **drain**: for each ``--models`` entry (``model`` or ``model@thread``), ``python -m connectors.daemon`` drains the
   same topic from the start (its own group), learning every event and publishing a
   prediction per event; events/s is measured on the predictions' broker timestamps
   (first to last), lag over time from the same timestamps, and event latency is the
   prediction's timestamp minus the event's (in a drain this is mostly queueing);
5. **live** (``--live-rate``): a producer sends at a fixed rate while the daemon runs,
   for ``--live-seconds``: p50/p99 latency from event to prediction, without queueing;
6. **breakdown** (``--breakdown``): the default daemon in-process with timers around
   fetch, decode, model, publish and checkpoint, to show where the time goes;
7. **CPU per event** (Linux): :mod:`benchmarks.cpu_meter` samples the CPU time of the
   broker, of each run's client (this process with its publisher child, or the daemon's
   process tree) and of the whole machine; the report sets it against the CPU that 50% of
   the bare consumer's rate would leave per event on this machine's cores.

Usage::

    python benchmarks/kafka_throughput.py --bootstrap 127.0.0.1:39092 --events 100000
    python benchmarks/kafka_throughput.py --models default,analytic --live-rate 2000 --breakdown --markdown out.md
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from benchmarks.common import timed_methods
from benchmarks.cpu_meter import CpuMeter, available as cpu_meter_available, find_broker_pid
from stream_cl.config import to_toml

REPO = Path(__file__).resolve().parents[1]
MODELS = {
    "default": {},  # the [model] defaults: the online learner (random features + analytic heads)
    "analytic": {"kind": "analytic", "forgetting": [1.0]},
}
# a --models entry is "model", "model@publisher" (kafka.publisher: "process", the default, or "thread"),
# either followed by "/N" for run.batch_size = N (the daemon's micro-batch; default 1024)


def _model_and_publisher(entry: str) -> tuple[dict, str, int | None]:
    """``(model, publisher, run.batch_size or None)`` of a ``--models`` entry."""
    entry, _, batch = entry.partition("/")
    name, _, publisher = entry.partition("@")
    return MODELS[name], publisher or "process", int(batch) if batch else None


def _slug(entry: str) -> str:
    """A ``--models`` entry as a topic and file name."""
    return entry.replace("@", "-").replace("/", "-b")

CPU_SAMPLE_S = 0.25  # the CPU meter's sampling interval (a sample reads /proc: ~1.6 ms)

# the daemon's defaults, given to every consumer here (the bare one included) and to the daemon
FETCH = {"max_poll_records": 2000, "fetch_max_bytes": 52_428_800, "max_partition_fetch_bytes": 1_048_576,
         "isolation_level": "read_committed"}


# -- helpers ---------------------------------------------------------------------------------
def event_json(i: int, rng: random.Random, features: int) -> bytes:
    x = {f"f{j}": round(rng.gauss(0.0, 1.0), 6) for j in range(features)}
    y = "abc"[max(range(3), key=lambda k: x[f"f{k}"])]
    return json.dumps({"id": str(i), "x": x, "y": y, "ts": time.time()}).encode()


def percentiles(values) -> dict:
    if not len(values):
        return {"p50_ms": None, "p99_ms": None}
    a = np.asarray(values, dtype=np.float64)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99))}


def create_topic(admin: KafkaAdminClient, name: str, partitions: int, created: list[str] | None = None) -> str:
    """Create topic ``name`` and return it; it is appended to ``created`` (the caller's list of topics to
    delete when it is done) when given, before the request, so that a half-made topic is deleted too."""
    if created is not None:
        created.append(name)
    admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}}, timeout_ms=10_000,
                        wait_for_metadata=True)
    return name


def fill(bootstrap: str, topic: str, n: int, features: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024)
    values = [event_json(i, rng, features) for i in range(n)]
    t0 = time.perf_counter()
    futures = [producer.send(topic, key=str(i).encode(), value=v) for i, v in enumerate(values)]
    producer.flush()
    sent_ms = {str(i): f.get(timeout=60).timestamp for i, f in enumerate(futures)}
    dt = time.perf_counter() - t0
    producer.close()
    return {"events": n, "seconds": dt, "events_per_s": n / dt, "bytes_per_event": sum(map(len, values)) / n,
            "sent_ms": sent_ms}


def _rate(counted: int, dt: float) -> float:
    return counted / dt if counted and dt > 0 else float("nan")


def bare_consumer(bootstrap: str, topic: str, n: int) -> dict:
    """kafka-python alone: poll until every record of the topic has been returned.

    The clock starts when the first poll that returns records returns (after the group join
    and the first fetch), so that poll's records are left out of the count (``uncounted``):
    counting them would credit the window with a poll it did not time. Until then each poll
    asks for one record (``max_records=1``), so one record goes uncounted, not a whole poll
    (which may be the whole of a short run). ``passthrough`` follows the same rule."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bench-bare-{uuid.uuid4().hex[:8]}",
                             enable_auto_commit=False, auto_offset_reset="earliest", **FETCH)
    seen, counted, t0 = 0, 0, None
    deadline = time.monotonic() + 600
    while seen < n and time.monotonic() < deadline:
        polled = consumer.poll(timeout_ms=500, max_records=1 if t0 is None else None)
        batch = sum(len(records) for records in polled.values())
        if not batch:
            continue
        seen += batch
        if t0 is None:  # the first records: start the clock now, do not count them
            t0, wall0 = time.perf_counter(), time.time()
        else:
            counted += batch
    dt, wall1 = time.perf_counter() - t0, time.time()
    consumer.close()
    return {"events": counted, "uncounted": seen - counted, "seconds": dt, "events_per_s": _rate(counted, dt),
            "window": (wall0, wall1)}


def passthrough(bootstrap: str, admin, topic: str, n: int, publisher: str, created: list[str] | None = None) -> dict:
    """kafka-python alone, consuming and publishing: one keyed prediction record out per record in.

    No decoding and no model. The records and the consumed offsets are committed in one
    Kafka transaction every 200 ms (the daemon's default ``kafka.commit_interval_ms``), or
    once the one before is committed, without waiting for it, by the daemon's own publisher:
    ``publisher="thread"`` in the consuming process,
    ``"process"`` in a child process (:class:`~connectors.publisher.ProcessPublisher`).
    This bounds any daemon that writes one prediction record per event exactly once through
    kafka-python on this machine, whatever its model. As in ``bare_consumer``, the first record
    (polled alone) is published before the clock starts and not counted.
    """
    from connectors.publisher import InlinePublisher, ProcessPublisher
    from stream_cl.events import Prediction

    out_topic = create_topic(admin, f"{topic}-passthrough-{uuid.uuid4().hex[:6]}", 1, created)
    group = f"bench-pass-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest", **FETCH)
    options = {"bootstrap_servers": bootstrap, "linger_ms": 5, "batch_size": 262_144, "acks": -1,
               "enable_idempotence": True, "transactional_id": f"{group}-tx"}
    sink = (ProcessPublisher if publisher == "process" else InlinePublisher)(options, out_topic)
    seen, counted, t0, positions, last = 0, 0, None, {}, time.monotonic()
    deadline = time.monotonic() + 600

    under_way = False

    def commit(wait: bool = False) -> bool:
        """Start a transaction once the one before is committed, as the daemon does (RESULTS.md 9l)."""
        nonlocal under_way
        if under_way and sink.finish_commit(wait) is None:
            return False
        sink.start_commit([(tp.topic, tp.partition, o) for tp, o in positions.items()], tuple(consumer.group_metadata())[:4])
        under_way = True
        return True

    while seen < n and time.monotonic() < deadline:
        batch = 0
        for tp, records in consumer.poll(timeout_ms=500, max_records=1 if t0 is None else None).items():
            sink.write([Prediction(r.key.decode(), "a", 0.5, "a", None, 1.0, f"{tp.topic}/{tp.partition}@{r.offset}")
                        for r in records])
            positions[tp] = records[-1].offset + 1
            batch += len(records)
        seen += batch
        if batch and t0 is None:  # the first records (published above): start the clock now, do not count them
            t0, wall0 = time.perf_counter(), time.time()
        elif batch:
            counted += batch
        if time.monotonic() - last >= 0.2 and commit():
            last = time.monotonic()
    commit(wait=True)
    sink.finish_commit()
    dt, wall1 = time.perf_counter() - t0, time.time()
    sink.close()
    consumer.close()
    return {"events": counted, "uncounted": seen - counted, "seconds": dt, "events_per_s": _rate(counted, dt),
            "publisher": publisher, "window": (wall0, wall1)}


def pure_python_crc():
    """Make kafka-python use its pure-Python CRC-32C in this process (what an install without the
    ``crc32c`` package gets); returns the function that undoes it."""
    from kafka.record import default_records
    from kafka.record._crc32c import crc as crc_py

    original = default_records.calc_crc32c
    default_records.calc_crc32c = lambda view: crc_py(view)  # looked up at call time by the record code

    def undo():
        default_records.calc_crc32c = original

    return undo


# how long read_topic reads on past the n-th record, for duplicates, when polls keep returning records
TAIL_S = 30.0


def read_topic(bootstrap: str, topic: str, n: int, timeout_s: float = 600) -> list:
    """Every record of ``topic`` from the beginning, without a group: until ``n`` are read (or
    ``timeout_s``), then on until a poll returns nothing (or ``TAIL_S`` more), so that a prediction
    written twice past the ``n``-th is read too and :func:`failed_checks` counts it, however close
    to ``timeout_s`` the ``n``-th came."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, **FETCH)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [0])]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500)
        if not batch and len(out) >= n:  # (records past the n-th: duplicates, or a wrong n)
            break
        short = len(out) < n
        for records in batch.values():
            out.extend(records)
        if short and len(out) >= n:  # the tail read gets its own time, not what the timeout left
            deadline = time.monotonic() + TAIL_S
    consumer.close()
    return out


def daemon_config(folder: Path, bootstrap: str, topic: str, preds: str, entry: str,
                  stop_at_end: bool) -> tuple[Path, Path]:
    """A daemon config file and the path of its status file; ``entry`` as in ``--models``."""
    model, publisher, batch = _model_and_publisher(entry)
    name = uuid.uuid4().hex[:8]
    cfg = {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"bench-{name}", "topics": [topic],
                  "predictions_topic": preds, "stop_at_end": stop_at_end, "publisher": publisher, **FETCH,
                  "status_file": str(folder / f"status-{name}.json")},
        "checkpoint": {"dir": str(folder / f"ckpt-{name}")},
        "metrics": {"port": 0},  # any free port: benchmark daemons never clash with a running one
    }
    if model:
        cfg["model"] = model
    if batch:
        cfg["run"] = {"batch_size": batch}
    path = folder / f"daemon-{name}.toml"
    path.write_text(to_toml(cfg))
    return path, folder / f"status-{name}.json"


def summarise_predictions(preds: list, sent_ms: dict, produced_ms: list | None = None) -> dict:
    """events/s from prediction timestamps, latency per event, and lag over time."""
    ts = np.array(sorted(r.timestamp for r in preds), dtype=np.float64)  # ms
    span = (ts[-1] - ts[0]) / 1000.0 if len(ts) > 1 else float("nan")
    latency = [r.timestamp - sent_ms[r.key.decode()] for r in preds if r.key.decode() in sent_ms]
    # lag(t) = events in the topic by t - events predicted by t
    start = ts[0]
    grid = np.arange(start, ts[-1] + 1000, 1000.0)
    produced = np.sort(np.asarray(produced_ms if produced_ms is not None else list(sent_ms.values()), dtype=np.float64))
    lag = [(float((t - start) / 1000), int(np.searchsorted(produced, t, "right") - np.searchsorted(ts, t, "right")))
           for t in grid]
    return {"predictions": len(preds), "distinct_ids": len({r.key for r in preds}), "seconds": span,
            "window": (ts[0] / 1000.0, ts[-1] / 1000.0),
            "events_per_s": (len(ts) - 1) / span if span > 0 else None, **percentiles(latency), "lag": lag}


def wait_assigned(status_path: Path, timeout_s: float = 120) -> None:
    """Until the daemon writing ``status_path`` holds partitions (or ``timeout_s`` passed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if json.loads(status_path.read_text()).get("assigned"):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)


def run_daemon_process(config: Path, log: Path, meter: CpuMeter | None = None, name: str = "daemon") -> tuple[int, float]:
    """Runs the daemon to its end; its process tree (with the publisher child) is metered as ``name``."""
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "connectors.daemon", "--config", str(config)], cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT)
        if meter is not None:
            meter.watch(name, proc.pid)
        rc = proc.wait()
    return rc, time.perf_counter() - t0


def drain(bootstrap: str, admin, topic: str, n: int, sent_ms: dict, model: str, folder: Path,
          meter: CpuMeter | None = None, created: list[str] | None = None) -> dict:
    preds = create_topic(admin, f"{topic}-pred-{_slug(model)}", 1, created)
    config, status_path = daemon_config(folder, bootstrap, topic, preds, model, stop_at_end=True)
    log = folder / f"daemon-{_slug(model)}.log"
    rc, wall = run_daemon_process(config, log, meter, f"daemon:{model}")
    if rc != 0:
        raise RuntimeError(f"daemon exited {rc}; see {log}")
    records = read_topic(bootstrap, preds, n)
    out = summarise_predictions(records, sent_ms)
    out["process_wall_s"] = wall
    status = json.loads(status_path.read_text())
    out["model_events_per_s"] = status["report"].get("model_events_per_s")
    return out


def live(bootstrap: str, admin, rate: float, seconds: float, features: int, model: str, folder: Path,
         created: list[str] | None = None) -> dict:
    """The daemon keeps up with a producer at ``rate`` events/s: latency without queueing."""
    topic = create_topic(admin, f"bench-live-{uuid.uuid4().hex[:8]}", 1, created)
    preds = create_topic(admin, f"{topic}-pred", 1, created)
    config, status_path = daemon_config(folder, bootstrap, topic, preds, model, stop_at_end=False)
    log = open(folder / "daemon-live.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "connectors.daemon", "--config", str(config)], cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    wait_assigned(status_path)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    rng = random.Random(1)
    n = int(rate * seconds)
    futures = []
    t0 = time.perf_counter()
    for i in range(n):
        target = t0 + i / rate
        while (now := time.perf_counter()) < target:
            time.sleep(min(target - now, 0.005))
        futures.append(producer.send(topic, key=str(i).encode(), value=event_json(i, rng, features)))
    achieved = n / (time.perf_counter() - t0)
    producer.flush()
    sent_ms = {str(i): f.get(timeout=60).timestamp for i, f in enumerate(futures)}
    producer.close()
    records = read_topic(bootstrap, preds, n, timeout_s=120)
    proc.terminate()
    proc.wait(timeout=60)
    log.close()
    out = summarise_predictions(records, sent_ms)
    out.update(rate=rate, seconds=seconds, achieved_rate=achieved, events=n)
    return out


def breakdown(bootstrap: str, admin, topic: str, n: int, model: str, folder: Path,
              created: list[str] | None = None) -> dict:
    """The daemon in this process with timers around each stage (adds ~1 us per timed call)."""
    from connectors import commit as commit_mod
    from connectors import daemon as daemon_mod
    from connectors import daemon_run as daemon_run_mod
    from connectors import kafka as kafka_mod
    from connectors import partitions as partitions_mod
    from connectors import publisher as publisher_mod
    from stream_cl import decode, prequential
    from stream_cl.config import load_config

    totals: dict[str, float] = {}
    patches = [
        (KafkaConsumer, "poll", "kafka fetch (KafkaConsumer.poll)"),
        (decode.EventDecoder, "decode_json", "decode + validate (EventDecoder)"),
        (prequential.Prequential, "process", "model: predict + learn (Prequential)"),
        (publisher_mod.ProcessPublisher, "write", "hand predictions to the publisher process (pipe)"),
        (commit_mod.CommitCoordinator, "commit", "commit (start the transaction; wait for the one before, and for this one when a checkpoint follows)"),
        (commit_mod.CommitCoordinator, "settle", "wait for a transaction to commit (inside commit, or once answered)"),
        (publisher_mod.ProcessPublisher, "start_commit", "send the commit to the publisher process (pipe; inside commit)"),
        (partitions_mod.PartitionStates, "records_for", "changelog records (the changed parts, serialised; inside commit)"),
        (daemon_mod.Daemon, "process", "process (all per-batch work)"),
        (kafka_mod.KafkaSource, "poll", "source.poll (fetch + decode)"),
    ]
    preds = create_topic(admin, f"{topic}-pred-breakdown", 1, created)
    config = load_config(daemon_config(folder, bootstrap, topic, preds, model, stop_at_end=True)[0])
    with timed_methods(patches, totals):
        t0 = time.perf_counter()
        rc = daemon_run_mod.run_daemon(config)
        wall = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"in-process daemon exited {rc}")
    return {"wall_s": wall, "events": n, "stages_s": totals}


def cpu_per_event(meter: CpuMeter, report: dict) -> dict:
    """CPU microseconds per event of each run's client tree, the broker and the whole machine.

    The client is this benchmark process (with the publisher child) for the bare consumer
    and the consume + publish runs, and the daemon's process tree for a drain. ``busy_cores``
    is the machine's busy CPU time over the window's length: at the core count, the run was
    bound by CPU.
    """
    runs = [("bare kafka-python consumer", report["ceiling"], "bench")]
    runs += [(f"consume + publish, producer in {k}", v, "bench") for k, v in report.get("passthrough", {}).items()]
    runs += [(f"daemon, {k} learner, drain", v, f"daemon:{k}") for k, v in report["drain"].items()]
    out = {}
    for label, run, client in runs:
        (t0, t1), n = run["window"], run.get("predictions") or run["events"]
        used = meter.between(t0, t1)
        per_event = {k: 1e6 * v / n if n else float("nan") for k, v in used.items()}  # n = 0: nothing timed
        out[label] = {"events_per_s": run["events_per_s"], "client_us": per_event.get(client),
                      "broker_us": per_event.get("broker"), "machine_us": per_event["machine"],
                      "busy_cores": used["machine"] / (t1 - t0) if t1 > t0 else None}
    return out


# -- report ----------------------------------------------------------------------------------
def failed_checks(report: dict) -> list[str]:
    """One line for each run that did not see every event exactly once: a drain or the live run whose
    predictions (records, and distinct ids) are not one per event sent, or a consumer that timed out
    before reading every record. A figure from such a run measures something else (README's
    "exactly once" rests on these counts), so :func:`main` exits non-zero on any."""
    n = report["meta"]["events"]
    runs = [(f"daemon, {model} learner, drain", d, n) for model, d in report.get("drain", {}).items()]
    if report.get("live"):
        runs.append((f"daemon, {report['meta']['live_model']} learner, live", report["live"], report["live"]["events"]))
    out = [f"{label}: {run['predictions']:,} predictions of {expected:,} events, {run['distinct_ids']:,} distinct ids"
           for label, run, expected in runs if not run["predictions"] == run["distinct_ids"] == expected]
    consumers = [("bare kafka-python consumer", report.get("ceiling"))]
    consumers += [(f"consume + publish, producer in {k}", v) for k, v in report.get("passthrough", {}).items()]
    out += [f"{label}: read {run['events'] + run['uncounted']:,} of {n:,} records (timed out)"
            for label, run in consumers if run and run["events"] + run["uncounted"] != n]
    return out


def markdown(r: dict) -> str:
    lines = [f"### Kafka daemon throughput ({r['meta']['events']:,} events, {r['meta']['features']} features, "
             f"{r['meta']['partitions']} partition(s))", "",
             f"Machine: {r['meta']['machine']}; broker: dev-broker (Kafka 4.x KRaft, single node, same host).", "",
             "| run | events/s | vs bare consumer | p50 latency ms | p99 latency ms | notes |",
             "|:---|---:|---:|---:|---:|:---|"]
    if r.get("failed_checks"):  # above the table: its figures do not count every event once
        lines[2:2] = ["**FAILED checks** (not every event predicted exactly once):", "",
                      *(f"- FAILED: {c}" for c in r["failed_checks"]), ""]
    ceiling = r["ceiling"]["events_per_s"]
    lines.append(f"| producer fill (kafka-python) | {r['fill']['events_per_s']:,.0f} | | | | "
                 f"{r['fill']['bytes_per_event']:.0f} B/event |")
    lines.append(f"| bare kafka-python consumer (ceiling) | {ceiling:,.0f} | 100% | | | poll only |")
    notes = {"thread": "no decoding, no model; transactions every 200 ms, producer in the consuming process",
             "process": "no decoding, no model; transactions every 200 ms, not waited for, the daemon's ProcessPublisher"}
    for publisher, pt in r.get("passthrough", {}).items():
        lines.append(f"| kafka-python consume + publish one record per event, producer in {publisher} | "
                     f"{pt['events_per_s']:,.0f} | {pt['events_per_s'] / ceiling:.1%} | | | {notes[publisher]} |")
    if r.get("pure_python_crc"):
        pc = r["pure_python_crc"]
        lines.append(f"| bare kafka-python consumer, pure-Python CRC-32C | {pc['ceiling']['events_per_s']:,.0f} | "
                     f"{pc['ceiling']['events_per_s'] / ceiling:.1%} | | | an install without the crc32c package |")
        lines.append(f"| consume + publish, producer in thread, pure-Python CRC-32C | "
                     f"{pc['passthrough']['events_per_s']:,.0f} | {pc['passthrough']['events_per_s'] / ceiling:.1%} "
                     "| | | an install without the crc32c package |")
    for model, d in r["drain"].items():
        lines.append(f"| daemon, {model} learner, drain | {d['events_per_s']:,.0f} | {d['events_per_s'] / ceiling:.1%} "
                     f"| | | model alone (inside the daemon) {d['model_events_per_s'] or 0:,.0f} ev/s |")
    if r.get("live"):
        lv = r["live"]
        lines.append(f"| daemon, {r['meta']['live_model']} learner, live | {lv['events_per_s']:,.0f} | "
                     f"| {lv['p50_ms']:,.0f} | {lv['p99_ms']:,.0f} | producer at {lv['achieved_rate']:,.0f} ev/s for "
                     f"{lv['seconds']:.0f} s; latency = event sent -> prediction written (broker timestamps) |")
    lines += ["", "Drain: the topic is filled first, then the daemon reads it from the start (its own group) with "
              "`kafka.stop_at_end`; events/s from the first to the last prediction's broker timestamp.", ""]
    for model, d in r["drain"].items():
        lag = d["lag"]
        step = max(1, len(lag) // 12)
        lines.append(f"Consumer lag over time, {model} learner (s: events behind): "
                     + ", ".join(f"{t:.0f}: {v:,}" for t, v in lag[::step]) + ".")
    if r.get("cpu"):
        cores = os.cpu_count() or 1
        target = 0.5 * ceiling
        lines += ["", f"CPU per event (from /proc, sampled every {r['meta']['cpu_sample_s']} s over each run's window; "
                      "client = the consuming "
                      "process with its publisher child, or the daemon's process tree; machine = every busy core, "
                      "the broker and the kernel included):", "",
                  "| run | events/s | client us/event | broker us/event | machine us/event | busy cores |",
                  "|:---|---:|---:|---:|---:|---:|"]
        fmt = lambda v: "" if v is None else f"{v:,.1f}"  # noqa: E731
        for label, c in r["cpu"].items():
            lines.append(f"| {label} | {c['events_per_s']:,.0f} | {fmt(c['client_us'])} | {fmt(c['broker_us'])} | "
                         f"{fmt(c['machine_us'])} | {fmt(c['busy_cores'])} |")
        budget = f"Budget: 50% of the bare consumer is {target:,.0f} events/s; at that rate this machine's " \
                 f"{cores} cores give at most {1e6 * cores / target:,.1f} us of CPU per event, for everything."
        io = [c["machine_us"] for label, c in r["cpu"].items() if label.startswith("consume + publish")]
        if io:
            budget += f" kafka-python consuming and publishing alone (no decoding, no model) used {min(io):,.1f} of them."
        models = [(m, 1e6 / d["model_events_per_s"]) for m, d in r["drain"].items() if d.get("model_events_per_s")]
        if models:
            budget += " The model alone, inside the daemon: " + ", ".join(f"{m} {us:,.1f} us" for m, us in models) + "."
        lines += ["", budget]
    if r.get("breakdown"):
        b = r["breakdown"]
        lines += ["", f"Where the time goes (default learner, in-process, {b['events']:,} events, "
                      f"{b['wall_s']:.1f} s wall). Stages nest (process includes the model, and the hand-over "
                      "to the publisher process); the publisher process itself runs beside them, "
                      "so shares do not add up to 100%:",
                  "", "| stage | seconds | share of wall | us/event |",
                  "|:---|---:|---:|---:|"]
        for label, s in sorted(b["stages_s"].items(), key=lambda kv: -kv[1]):
            lines.append(f"| {label} | {s:.2f} | {s / b['wall_s']:.0%} | {1e6 * s / b['events']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bootstrap", default=os.environ.get("STREAM_CL_KAFKA_BOOTSTRAP", "127.0.0.1:39092"))
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--features", type=int, default=10)
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--models", default="default,analytic,default@thread",
                   help="comma-separated; model@thread runs the daemon with kafka.publisher = \"thread\", "
                        "model/N with run.batch_size = N")
    p.add_argument("--live-rate", type=float, default=0.0, help="events/s of the live run (0 = skip it)")
    p.add_argument("--live-seconds", type=float, default=20.0)
    p.add_argument("--breakdown", action="store_true")
    p.add_argument("--compare-crc", action="store_true",
                   help="also run the bare consumer and consume + publish with kafka-python's pure-Python CRC-32C")
    p.add_argument("--json")
    p.add_argument("--markdown")
    args = p.parse_args(argv)

    from kafka import __version__ as kafka_version
    from kafka.record.util import crc32c_c

    from stream_cl.runtime import set_threads

    set_threads(1)
    crc = "C" if crc32c_c is not None else "pure-Python (slow: pip install 'kafka-python[crc32c]')"
    folder = Path(tempfile.mkdtemp(prefix="kafka-bench-"))
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    topic = create_topic(admin, f"bench-{uuid.uuid4().hex[:8]}", args.partitions)
    created = [topic]  # with every topic the runs below create: deleted at the end
    report: dict = {"meta": {"events": args.events, "features": args.features, "partitions": args.partitions,
                             "machine": f"{os.cpu_count()} CPUs, {sys.platform}, Python {sys.version.split()[0]}, "
                                        f"kafka-python {kafka_version} with the {crc} CRC-32C",
                             "live_model": args.models.split(",")[0]}}
    meter = None
    if cpu_meter_available():
        broker = find_broker_pid(args.bootstrap)
        meter = CpuMeter({"bench": os.getpid(), **({"broker": broker} if broker else {})}, interval=CPU_SAMPLE_S).start()
        report["meta"]["cpu_sample_s"] = CPU_SAMPLE_S
    print(f"filling {topic} with {args.events:,} events ...", file=sys.stderr)
    filled = fill(args.bootstrap, topic, args.events, args.features)
    sent_ms = filled.pop("sent_ms")
    report["fill"] = filled
    print(f"  {filled['events_per_s']:,.0f} events/s", file=sys.stderr)
    report["ceiling"] = bare_consumer(args.bootstrap, topic, args.events)
    print(f"bare consumer: {report['ceiling']['events_per_s']:,.0f} events/s", file=sys.stderr)
    report["passthrough"] = {}
    for publisher in ("thread", "process"):
        pt = passthrough(args.bootstrap, admin, topic, args.events, publisher, created)
        report["passthrough"][publisher] = pt
        print(f"consume + publish [{publisher}]: {pt['events_per_s']:,.0f} events/s", file=sys.stderr)
    if args.compare_crc:
        undo = pure_python_crc()
        try:
            report["pure_python_crc"] = {"ceiling": bare_consumer(args.bootstrap, topic, args.events),
                                         "passthrough": passthrough(args.bootstrap, admin, topic, args.events, "thread",
                                                                     created)}
        finally:
            undo()
        print(f"pure-Python CRC: bare {report['pure_python_crc']['ceiling']['events_per_s']:,.0f}, consume + publish "
              f"{report['pure_python_crc']['passthrough']['events_per_s']:,.0f} events/s", file=sys.stderr)
    report["drain"] = {}
    for model in args.models.split(","):
        d = drain(args.bootstrap, admin, topic, args.events, sent_ms, model, folder, meter, created)
        report["drain"][model] = d
        print(f"daemon [{model}]: {d['events_per_s']:,.0f} events/s "
              f"({d['events_per_s'] / report['ceiling']['events_per_s']:.1%} of bare)", file=sys.stderr)
    if args.live_rate > 0:
        report["live"] = live(args.bootstrap, admin, args.live_rate, args.live_seconds, args.features,
                              report["meta"]["live_model"], folder, created)
        print(f"live: p50 {report['live']['p50_ms']:.0f} ms, p99 {report['live']['p99_ms']:.0f} ms", file=sys.stderr)
    if meter is not None:
        meter.stop()
        report["cpu"] = cpu_per_event(meter, report)
    if args.breakdown:
        report["breakdown"] = breakdown(args.bootstrap, admin, topic, args.events, "default", folder, created)
    try:
        admin.delete_topics(created)
    except Exception:
        pass
    admin.close()
    report["failed_checks"] = failed_checks(report)
    text = markdown(report)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    if report["failed_checks"]:  # after the files are written: they show which run failed
        raise SystemExit("FAILED: " + "; ".join(report["failed_checks"]))
    return report


if __name__ == "__main__":
    main()
