"""Crash equivalence: SIGKILL the daemon at random points of a 50k-event topic, restart it each time.

At the end its analytic head must equal an uninterrupted run's (weights within 1e-9),
every event must have been learned exactly once (row and class counts), and a
``read_committed`` reader of the predictions topic must see every event id exactly once:
the predictions a killed daemon made after its last commit were in a transaction that
never committed.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
from daemon_kit import wait_for

from stream_cl import AnalyticClassifier
from stream_cl.checkpoint import CheckpointStore, load_checkpoint
from stream_cl.config import load_config

N_EVENTS = 50_000
N_KILLS = 6
EVERY = 2_500  # checkpoint.every_events
POLL = 500  # kafka.max_poll_records
# Events produced beyond a kill's target (never the topic's last): the daemon cannot finish
# the topic before a kill, and it commits every 200 ms, so most kills land mid-stream.
AHEAD = 8_000


def _weights(state) -> tuple[dict, AnalyticClassifier]:
    model = AnalyticClassifier().load_state_dict(state["model"])
    W = {}
    for c, row, b in zip(model.classes_, model.coef_, model.intercept_):
        W[(c, "(intercept)")] = b
        W.update({(c, f): w for f, w in zip(model.feature_names_in_, row)})
    return W, model


def test_sigkill_restarts_learn_every_event_exactly_once(kafka_kit):
    rng = random.Random(2024)
    events = kafka_kit.topic("crash", partitions=3)
    preds_topic = kafka_kit.topic("crash-pred", partitions=3)
    values = []
    for i in range(N_EVENTS):
        x = [rng.gauss(0.0, 1.0) for _ in range(6)]
        y = "abc"[max(range(3), key=lambda k: x[k] + 0.5 * x[k + 3])]
        values.append((str(i), json.dumps({"id": i, "x": {f"f{j}": v for j, v in enumerate(x)}, "y": y}).encode()))
    sent: list = []  # the topic is produced in stages, AHEAD of each kill's target (see below)

    settings = {
        "checkpoint": {"every_events": EVERY, "every_seconds": 3600.0},
        "run": {"batch_size": 100},
    }
    kafka = {"stop_at_end": True, "max_poll_records": POLL, "session_timeout_ms": 10_000,
             "group_instance_id": f"crash-{kafka_kit.tag}"}  # static membership: a restart takes over at once
    # The killed daemons wait at the end of what has been produced; the final one stops there.
    killed = {**kafka, "predictions_topic": preds_topic, "stop_at_end": False}
    config = kafka_kit.config("crash", [events], kafka=killed, **settings)
    ckpt_dir = config[0].parent / "crash-ckpt"
    preds = kafka_kit.reader(preds_topic)
    seen: set = set()

    read = [0]

    def progress() -> int:
        preds.poll(100)
        for r in preds.records[read[0] :]:
            seen.add(r.key)
        read[0] = len(preds.records)
        return len(seen)

    resumes = []  # per kill: the offsets of the checkpoint the restart resumes from
    produced = []  # per kill: how many events the topic held
    targets = sorted(rng.sample(range(2_000, 44_000), N_KILLS))
    for k, target in enumerate(targets):
        # Without stages the daemon, at ~10k events/s, could reach the topic's end while the
        # reader below still lags behind the committed predictions, and a kill would cut nothing.
        sent += kafka_kit.produce(events, values[len(sent) : min(target + AHEAD, N_EVENTS - 1)])
        produced.append(len(sent))
        daemon = kafka_kit.start(config, name=f"crash-{k}")
        wait_for(lambda: progress() >= target or not daemon.alive, 180, f"{target} distinct predictions", interval=0)
        assert daemon.alive, f"the daemon exited before kill {k}: {daemon.log()[-2000:]}"
        daemon.kill()  # SIGKILL: no cleanup at all
        latest = CheckpointStore(ckpt_dir).latest()
        offsets = {} if latest is None else {p: o for _, p, o in load_checkpoint(latest)[0]["offsets"]}
        # the checkpoint a restart resumes from only moves forward, and never past what was produced
        previous = sum(resumes[-1].values()) if resumes else 0
        assert previous <= sum(offsets.values()) <= len(sent)
        resumes.append(offsets)

    sent += kafka_kit.produce(events, values[len(sent) :])
    where = {str(i): (m.partition, m.offset) for i, m in enumerate(sent)}
    config = kafka_kit.config("crash", [events], kafka={**killed, "stop_at_end": True}, **settings)
    final = kafka_kit.start(config, name="crash-final")
    assert final.wait(timeout=240) == 0, final.log()[-3000:]

    # the same topic, uninterrupted, in this process
    ref_config, _ = kafka_kit.config("ref", [events], kafka={**kafka, "group_instance_id": ""}, **settings)
    from connectors.daemon_run import run_daemon

    assert run_daemon(load_config(ref_config)) == 0

    crashed, _ = CheckpointStore(ckpt_dir).load_latest()
    reference, _ = CheckpointStore(config[0].parent / "ref-ckpt").load_latest()
    W_crash, m_crash = _weights(crashed)
    W_ref, m_ref = _weights(reference)
    assert set(W_crash) == set(W_ref)
    diff = max(abs(W_crash[k] - W_ref[k]) for k in W_ref)
    assert diff <= 1e-9, diff
    # exactly once: every event learned once, by rows and by class
    assert crashed["model"]["head"]["ridge"]["n_rows"] == reference["model"]["head"]["ridge"]["n_rows"] == N_EVENTS
    assert m_crash.class_counts_ == m_ref.class_counts_
    np.testing.assert_allclose(crashed["model"]["head"]["ridge"]["A"], reference["model"]["head"]["ridge"]["A"], rtol=1e-12, atol=1e-9)

    # every id predicted, exactly once, for a read_committed reader
    preds.until(lambda recs: len({r.key for r in recs}) >= N_EVENTS, 60, "every prediction")
    preds.read_to_end(60)
    counts = Counter(r.key.decode() for r in preds.records)
    assert set(counts) == set(where)
    duplicates = {i: c - 1 for i, c in counts.items() if c > 1}
    assert not duplicates, f"{sum(duplicates.values())} duplicate predictions, e.g. {sorted(duplicates.items())[:5]}"
    print(f"\ncrash test: {N_KILLS} SIGKILLs at distinct-prediction counts {targets}; 0 duplicate predictions; "
          f"restored checkpoint offsets {[sum(r.values()) for r in resumes]} "
          f"(produced {produced}); max |W - W_ref| = {diff:.2e}")


def test_labels_joined_before_a_crash_are_joined_again_after_a_long_downtime(kafka_kit):
    """The restart re-reads, silently, the labels the killed daemon had joined and committed since its
    checkpoint. Their events, restored from the checkpoint, were judged by a clock that had moved on
    by the downtime: with the downtime over labels.max_age_s, all had 'expired' and the 500 labels
    were lost (0 rows learned against 500)."""
    import time

    events_topic, labels_topic = kafka_kit.topic("late-crash"), kafka_kit.topic("late-crash-labels")
    settings = {"model": {"kind": "analytic", "forgetting": [1.0]}, "labels": {"max_age_s": 3.0},
                "checkpoint": {"every_events": 1000, "every_seconds": 3600.0}}
    kafka = {"labels_topic": labels_topic, "group_instance_id": f"late-{kafka_kit.tag}", "session_timeout_ms": 10_000}
    config = kafka_kit.config("late", [events_topic], kafka=kafka, **settings)
    kafka_kit.produce(events_topic, [(str(i), {"id": str(i), "x": {"a": float(i % 7), "b": float(i % 3)}})
                                     for i in range(1000)])
    first = kafka_kit.start(config, name="late-first")
    ckpt_dir = config[0].parent / "late-ckpt"
    wait_for(lambda: CheckpointStore(ckpt_dir).latest() is not None, 120, "the checkpoint of the 1,000 waiting events")
    kafka_kit.produce(labels_topic, [(str(i), {"id": str(i), "y": "yes" if i % 2 else "no"}) for i in range(500)])
    wait_for(lambda: kafka_kit.committed(f"it-late-{kafka_kit.tag}", labels_topic).get(0, 0) >= 500, 120,
             "the labels joined and committed")
    first.kill()  # the checkpoint still holds the 1,000 events, waiting
    down_until = time.time() + 4.0  # the scenario itself: down longer than labels.max_age_s
    wait_for(lambda: time.time() >= down_until, 10, "the downtime")
    final = kafka_kit.start(kafka_kit.config("late", [events_topic], kafka={**kafka, "stop_at_end": True}, **settings),
                            name="late-final")
    assert final.wait(timeout=120) == 0, final.log()[-3000:]
    state, _ = CheckpointStore(ckpt_dir).load_latest()
    assert state["model"]["head"]["ridge"]["n_rows"] == 500  # every label learned again, as the first run learned it
    counters = [s["counters"] for _, s in state["pending"]["partitions"]]
    assert sum(c["joined"] for c in counters) == 500 and sum(c["expired"] for c in counters) == 0
