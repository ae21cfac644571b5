"""The daemon against a real broker: learning and predictions, SIGTERM, delayed labels, rebalances."""

from __future__ import annotations

import json
import random
from collections import Counter

from daemon_kit import event, true_class, wait_for

from stream_cl.checkpoint import CheckpointStore


def _ids(reader) -> Counter:
    return Counter(r.key.decode() for r in reader.records)


def test_learns_from_a_topic_and_publishes_predictions(kafka_kit):
    rng = random.Random(11)
    events_topic = kafka_kit.topic("learn", partitions=3)
    preds_topic = kafka_kit.topic("learn-pred", partitions=2)
    docs = [event(i, rng) for i in range(3000)]
    sent = kafka_kit.produce(events_topic, ((d["id"], d) for d in docs))
    config = kafka_kit.config("learn", [events_topic], kafka={"predictions_topic": preds_topic, "stop_at_end": True})
    daemon = kafka_kit.start(config)
    assert daemon.wait(timeout=120) == 0, daemon.log()[-3000:]  # stop_at_end: drains the topic, exits 0

    reader = kafka_kit.reader(preds_topic)
    reader.until(lambda recs: len(recs) >= 3000, 30, "3000 predictions")
    reader.poll(200)
    assert _ids(reader) == Counter(d["id"] for d in docs)  # each event predicted exactly once, keyed by id
    where = {d["id"]: (m.partition, m.offset) for d, m in zip(docs, sent)}
    by_id = {p["id"]: p for p in reader.values()}
    for i, p in by_id.items():
        assert p["origin"] == f"{events_topic}/{where[i][0]}@{where[i][1]}"
        assert p["y_true"] == docs[int(i)]["y"] and (p["y_pred"] is None or 0 < p["proba"] <= 1)
    # prequential predictions of the last 1000 events: the model has learned the rule
    late = [by_id[str(i)] for i in range(2000, 3000)]
    assert sum(p["y_pred"] == p["y_true"] for p in late) / len(late) > 0.85

    status = daemon.status()
    assert status["state"] == "stopped" and status["events"] == {"learned": 3000}
    state, info = CheckpointStore(config[0].parent / "learn-ckpt").load_latest()
    assert sum(state["model"]["head"]["counts"]) == 3000 and state["model"]["head"]["ridge"]["n_rows"] == 3000
    assert {(t, p): o for t, p, o in state["offsets"]} == {(events_topic, p): n for p, n in kafka_kit.end_offsets(events_topic).items()}


def test_sigterm_finishes_the_batch_checkpoints_and_commits(kafka_kit):
    rng = random.Random(12)
    events_topic = kafka_kit.topic("term", partitions=2)
    preds_topic = kafka_kit.topic("term-pred")
    kafka_kit.produce(events_topic, ((str(i), event(i, rng)) for i in range(2000)))
    config = kafka_kit.config("term", [events_topic], kafka={"predictions_topic": preds_topic},
                              checkpoint={"every_events": 100_000, "every_seconds": 3600.0})  # only the final one
    daemon = kafka_kit.start(config)
    reader = kafka_kit.reader(preds_topic)
    reader.until(lambda recs: len(recs) >= 2000, 60, "2000 predictions")
    assert daemon.alive and not list((config[0].parent / "term-ckpt").glob("ckpt-*"))  # no checkpoint yet

    assert daemon.terminate(timeout=30) == 0, daemon.log()[-3000:]
    ends = kafka_kit.end_offsets(events_topic)
    assert kafka_kit.committed(f"it-term-{kafka_kit.tag}", events_topic) == ends  # the final commit
    state, _ = CheckpointStore(config[0].parent / "term-ckpt").load_latest()
    assert {p: o for _, p, o in state["offsets"]} == ends and state["model"]["head"]["ridge"]["n_rows"] == 2000
    lines = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]  # JSON lifecycle logs
    events = [(d["event"], d.get("reason"), d.get("seq")) for d in lines if d["logger"] == "stream_cl.daemon"]
    assert ("stop_requested", "SIGTERM", None) in events and ("checkpoint", "shutdown", 1) in events
    assert events[-1] == ("shutdown", None, None)
    assert daemon.status()["state"] == "stopped"


def test_delayed_labels_are_joined_and_learned(kafka_kit):
    rng = random.Random(13)
    events_topic = kafka_kit.topic("delay")
    labels_topic = kafka_kit.topic("delay-labels")
    preds_topic = kafka_kit.topic("delay-pred")
    dead_topic = kafka_kit.topic("delay-dead")
    config = kafka_kit.config(
        "delay", [events_topic],
        kafka={"labels_topic": labels_topic, "predictions_topic": preds_topic, "dead_letter_topic": dead_topic},
        labels={"max_pending": 100, "max_early": 10},
        checkpoint={"every_events": 50},
    )
    daemon = kafka_kit.start(config)
    docs = [event(i, rng, label=False) for i in range(150)]
    kafka_kit.produce(events_topic, ((d["id"], d) for d in docs))
    preds = kafka_kit.reader(preds_topic)
    preds.until(lambda recs: len(recs) >= 150, 60, "150 predictions")
    assert all(p["y_pred"] is None and p["y_true"] is None for p in preds.values())  # nothing learned yet

    # labels for all 150 (the first 50 were evicted by max_pending), an unknown id, a bad record
    labels = [(d["id"], {"id": d["id"], "y": true_class(d["x"])}) for d in docs]
    labels += [("ghost", {"id": "ghost", "y": "a"}), ("bad", {"id": "7", "y": 2.5})]
    kafka_kit.produce(labels_topic, labels)
    status = wait_for(lambda: (s := daemon.status()).get("labels", {}).get("joined") == 100 and s, 60, "100 joined labels")
    # the 51 labels without a waiting event wait for it, at most max_early = 10: 41 are unknown at once
    assert status["labels"]["evicted"] == 50 and status["labels"]["unknown"] == 41 and status["labels"]["waiting"] == 10
    assert status["events"]["label_joined"] == 100 and status["waiting_labels"] == 10
    dead = kafka_kit.reader(dead_topic)
    dead.until(lambda recs: len(recs) >= 1, 30, "the bad label's dead letter")
    assert dict(dead.records[0].headers)["stream-cl.reason"] == b"bad_label"

    # the joined labels were learned: new unlabelled events are now predicted well
    fresh = [event(i, rng, label=False) for i in range(1000, 1200)]
    kafka_kit.produce(events_topic, ((d["id"], d) for d in fresh))
    preds.until(lambda recs: len(recs) >= 350, 60, "200 more predictions")
    by_id = {p["id"]: p for p in preds.values()}
    hits = sum(by_id[d["id"]]["y_pred"] == true_class(d["x"]) for d in fresh)
    assert hits / len(fresh) > 0.8
    assert daemon.terminate() == 0
    state, _ = CheckpointStore(config[0].parent / "delay-ckpt").load_latest()
    assert sum(state["model"]["head"]["counts"]) == 100  # exactly the joined labels were learned
    waiting = sum(len(store["ids"]) for _, store in state["pending"]["partitions"])  # one store per partition
    assert waiting == 100  # the fresh events wait for labels (max_pending), across restarts


def test_labels_read_before_their_events_wait_for_them(kafka_kit):
    """The labels topic is read beside the event backlog, so labels often come first: none may be lost.

    Three patterns in one stream, all produced before the daemon starts: 5,000 events then
    labels for 1,000 of them back to back; 1,000 events and their labels interleaved; 1,000
    labels produced before their events.
    """
    rng = random.Random(15)
    events_topic = kafka_kit.topic("early", partitions=2)
    labels_topic = kafka_kit.topic("early-labels", partitions=2)  # co-partitioned with the events
    preds_topic = kafka_kit.topic("early-pred", partitions=2)
    docs = [event(i, rng, label=False) for i in range(7000)]

    def label(d):
        return d["id"], {"id": d["id"], "y": true_class(d["x"])}

    kafka_kit.produce(events_topic, ((d["id"], d) for d in docs[:5000]))
    kafka_kit.produce(labels_topic, (label(d) for d in docs[:5000:5]))  # back to back after the events
    for d in docs[5000:6000]:  # interleaved: each event, then its label
        kafka_kit.produce(events_topic, [(d["id"], d)])
        kafka_kit.produce(labels_topic, [label(d)])
    kafka_kit.produce(labels_topic, (label(d) for d in docs[6000:]))  # labels before their events
    kafka_kit.produce(events_topic, ((d["id"], d) for d in docs[6000:]))
    # small fetches: every poll holds a few records of each partition, as a live daemon behind an event
    # backlog sees them (labels are produced fast and fetched at once), so many labels come before their event
    config = kafka_kit.config("early", [events_topic],
                              kafka={"labels_topic": labels_topic, "predictions_topic": preds_topic, "stop_at_end": True,
                                     "max_partition_fetch_bytes": 8192})
    daemon = kafka_kit.start(config)
    assert daemon.wait(timeout=180) == 0, daemon.log()[-3000:]

    status = daemon.status()
    n_labels = 1000 + 1000 + 1000
    assert status["labels"]["joined"] == n_labels and status["events"]["label_joined"] == n_labels
    assert status["labels"]["unknown"] == 0 and status["labels"]["waiting"] == 0 and status["waiting_labels"] == 0
    assert status["labels"]["early"] > 0  # the race this test is about did happen
    assert status["pending_labels"] == 7000 - n_labels and status["events"] == {"predicted": 7000, "label_joined": n_labels}
    state, _ = CheckpointStore(config[0].parent / "early-ckpt").load_latest()
    assert state["model"]["head"]["ridge"]["n_rows"] == n_labels  # every label learned, once
    preds = kafka_kit.reader(preds_topic)
    preds.until(lambda recs: len(recs) >= 7000, 60, "7000 predictions")
    preds.poll(200)
    assert _ids(preds) == Counter(d["id"] for d in docs)  # each event predicted exactly once


def test_rebalance_between_two_daemons_in_one_group(kafka_kit):
    rng = random.Random(14)
    events_topic = kafka_kit.topic("group", partitions=4)
    preds_topic = kafka_kit.topic("group-pred", partitions=2)
    group = f"it-group-{kafka_kit.tag}"
    common = {"predictions_topic": preds_topic, "group_id": group, "session_timeout_ms": 10_000}
    first = kafka_kit.start(kafka_kit.config("group-a", [events_topic], kafka=common))
    second_config = kafka_kit.config("group-b", [events_topic], kafka=common)
    preds = kafka_kit.reader(preds_topic)

    def produce(lo, hi):
        kafka_kit.produce(events_topic, ((str(i), event(i, rng)) for i in range(lo, hi)))
        preds.until(lambda recs: len(_ids(preds)) >= hi, 90, f"predictions of events up to {hi}")

    produce(0, 1500)
    wait_for(lambda: len(first.status().get("assigned", [])) == 4, 30, "the first daemon holding all partitions")
    second = kafka_kit.start(second_config)

    def split():
        a, b = set(first.status().get("assigned", [])), set(second.status().get("assigned", []))
        return a and b and not (a & b) and len(a | b) == 4

    wait_for(split, 90, "the four partitions split between the two daemons")
    produce(1500, 3000)
    wait_for(lambda: second.status().get("events", {}).get("learned", 0) > 0, 30, "the second daemon learning")

    assert first.terminate() == 0  # leaves the group: the second daemon takes over everything
    wait_for(lambda: len(second.status().get("assigned", [])) == 4, 90, "the second daemon holding all partitions")
    produce(3000, 4000)
    assert second.terminate() == 0

    ids = _ids(preds)
    assert set(ids) == {str(i) for i in range(4000)}
    assert max(ids.values()) == 1  # clean rebalances: no event predicted (or learned) twice in the group
    learned = first.status()["events"]["learned"] + second.status()["events"]["learned"]
    assert learned == 4000  # predicted and learned once in the group
    # the second daemon took over the first's partitions from the model changelog (their parts were
    # written with the offsets at each revocation), and holds one model of every event (n_rows below).
    # Usually nothing is re-learned; but the broker writes a transaction's markers after the commit
    # returns, so a takeover reading the changelog at once can stop before the first daemon's last
    # part and silently re-learn the tail that part covered (seen once in CI: 746 events). Either
    # way it re-learns less than the first daemon learned: a takeover from nothing would replay it all.
    takeovers = [json.loads(line) for line in second.log().splitlines() if '"takeover"' in line]
    assert takeovers and all(t["source"] == "changelog" for t in takeovers)
    assert second.status()["events"].get("replayed", 0) < first.status()["events"]["learned"]
    assert kafka_kit.committed(group, events_topic) == kafka_kit.end_offsets(events_topic)
    state, _ = CheckpointStore(kafka_kit.folder / "group-b-ckpt").load_latest()
    assert state["model"]["head"]["ridge"]["n_rows"] == 4000
    assert json.loads(first.status_file.read_text())["state"] == "stopped"
