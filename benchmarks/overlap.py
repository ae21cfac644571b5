"""Fetching and decoding on a thread beside the model: does it pay in one Python process?

    python benchmarks/overlap.py [--events 60000] [--runs 3] [--switch-interval 0.005]

The daemon's main thread fetches a poll's records (kafka-python), decodes them and then
predicts and learns them, one stage after the other (RESULTS.md 9i: ~20 + ~14 µs of
Python per event beside the model's ~80). Moving the first two stages to a thread of their
own would overlap them with the model wherever the model's BLAS calls release the
interpreter lock. This script measures that overlap before anyone builds it into the
daemon (where rebalance callbacks, commits and positions would have to wait for the
thread): against a real broker (``deploy/kafka/dev-broker.sh start``), one topic filled
with the Kafka benchmark's events, drained in the same process two ways, each run both
(the way that goes first alternates):

- **one thread**: ``KafkaConsumer.poll`` (2,000 records), ``EventDecoder.decode_json``
  per record, then ``Prequential.process`` of the default learner, in turn;
- **beside**: a thread polls and decodes the next batch (a queue of one batch) while
  the main thread predicts and learns the last one.

Each run is a fresh consumer group from the topic's start and a fresh default learner,
with one BLAS thread as in the daemon. Nothing is published (no publisher process), so
the second core is free for the thread. Prints events/s of each way per run, the model's
µs per event on the main thread, and the median ratio beside / one thread.
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka import KafkaAdminClient, KafkaConsumer

from benchmarks.kafka_throughput import FETCH, create_topic, fill
from stream_cl.config import Config, MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.factory import build_learner
from stream_cl.prequential import Prequential
from stream_cl.runtime import set_threads, warm_up


def _consumer(bootstrap: str, topic: str) -> KafkaConsumer:
    return KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bench-overlap-{uuid.uuid4().hex[:8]}",
                         enable_auto_commit=False, auto_offset_reset="earliest", **FETCH)


def _fetch(consumer: KafkaConsumer, decoder: EventDecoder) -> list:
    """One poll, decoded: the events of up to 2,000 records (this benchmark's are all valid)."""
    out = []
    for tp, records in consumer.poll(timeout_ms=500).items():
        prefix = f"{tp.topic}/{tp.partition}@"
        out.extend(decoder.decode_json(r.value, prefix + str(r.offset)) for r in records)
    return out


def one_thread(bootstrap: str, topic: str, n: int) -> dict:
    """Fetch, decode and model in turn on this thread: :func:`_learn`'s figures."""
    consumer, decoder = _consumer(bootstrap, topic), EventDecoder(MappingConfig())
    result = _learn(lambda: _fetch(consumer, decoder), n)
    consumer.close()
    return result


def beside(bootstrap: str, topic: str, n: int) -> dict:
    """Fetch and decode on a thread, one batch ahead of the model: :func:`_learn`'s figures."""
    consumer, decoder = _consumer(bootstrap, topic), EventDecoder(MappingConfig())
    batches: queue.Queue = queue.Queue(maxsize=1)  # the thread stays at most one batch ahead
    stop = threading.Event()

    def fetcher():
        fetched = 0
        while fetched < n and not stop.is_set():
            events = _fetch(consumer, decoder)
            if events:
                batches.put(events)
                fetched += len(events)

    thread = threading.Thread(target=fetcher, name="fetch", daemon=True)
    thread.start()
    result = _learn(batches.get, n)
    stop.set()
    thread.join()
    consumer.close()
    return result


def _learn(next_batch, n: int) -> dict:
    """Predict and learn ``next_batch()``'s events with a fresh default learner until ``n`` are
    learned. Returns the events learned, events/s from the first batch on (the group's join is
    not the loop's time), the model's µs per event on this thread, and the prequential accuracy
    (the same both ways: the same events in the same order)."""
    step = Prequential(build_learner(Config()))
    got, model_s, t0 = 0, 0.0, None
    while got < n:
        events = next_batch()
        if not events:
            continue
        t0 = t0 or time.perf_counter()
        t = time.perf_counter()
        step.process(events)
        model_s += time.perf_counter() - t
        got += len(events)
    seconds = time.perf_counter() - t0
    return {"events": got, "events_per_s": got / seconds, "model_us": model_s / got * 1e6,
            "accuracy": step.stats.accuracy}


def same_stream(a: dict, b: dict) -> bool:
    """Both ways learned every event, to the same accuracy. Batches split where the polls did,
    which moves probabilities by ~1e-12 at most (RESULTS.md 9h): an argmax on a near-tie may
    flip, so two events' worth of difference is allowed."""
    return a["events"] == b["events"] and abs(a["accuracy"] - b["accuracy"]) <= 2 / a["events"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", default=os.environ.get("STREAM_CL_KAFKA_BOOTSTRAP", "127.0.0.1:39092"))
    p.add_argument("--events", type=int, default=60_000)
    p.add_argument("--features", type=int, default=10)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--switch-interval", type=float, default=None,
                   help="sys.setswitchinterval for the whole run (Python's default: 0.005 s)")
    args = p.parse_args(argv)
    set_threads(1)
    warm_up()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    topic = create_topic(admin, f"bench-overlap-{uuid.uuid4().hex[:8]}", 1)
    fill(args.bootstrap, topic, args.events, args.features)
    print(f"{args.events:,} events, {args.features} features, one partition; switch interval "
          f"{sys.getswitchinterval() * 1000:g} ms")
    ratios = []
    for run in range(1, args.runs + 1):
        if run % 2:  # the order alternates: the first drain of a run may find colder caches
            a = one_thread(args.bootstrap, topic, args.events)
            b = beside(args.bootstrap, topic, args.events)
        else:
            b = beside(args.bootstrap, topic, args.events)
            a = one_thread(args.bootstrap, topic, args.events)
        ratios.append(b["events_per_s"] / a["events_per_s"])
        print(f"run {run}: one thread {a['events_per_s']:,.0f} events/s (model {a['model_us']:.1f} µs/event); "
              f"beside {b['events_per_s']:,.0f} events/s (model {b['model_us']:.1f} µs/event); "
              f"beside / one thread {ratios[-1]:.2f}x", flush=True)
        if not same_stream(a, b):
            print(f"the two ways learned different streams: {a} against {b}")
            return 1
    admin.delete_topics([topic])
    admin.close()
    print(f"median beside / one thread: {statistics.median(ratios):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
