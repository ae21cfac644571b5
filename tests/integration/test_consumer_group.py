"""Scale-out on Kafka: a consumer group of daemons serves one model, exactly once.

Three daemon processes in one group share a 6-partition topic of 60,000 labelled events.
Each learns the partitions the group gives it, writes their parts to the model changelog
inside its transactions, and folds the other members' parts into the model it serves.
When the topic is drained and the changelog folded, every daemon's head statistics equal
those of one daemon that read the topic alone (and, for the analytic model, closed-form
ridge on every event), and a ``read_committed`` reader sees each prediction exactly once.
"""

from __future__ import annotations

import json
import random
import signal
from collections import Counter

import numpy as np
import pytest
from daemon_kit import event, true_class, wait_for

from stream_cl.checkpoint import CheckpointStore
from stream_cl.config import load_config
from stream_cl.model_state import sufficient_statistics

N_EVENTS = 60_000
PARTITIONS = 6
CLASSES = "abc"


def _events(seed: int) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    out = []
    for i in range(N_EVENTS):
        x = [rng.gauss(0.0, 1.0) for _ in range(5)]
        y = CLASSES[max(range(3), key=lambda k: x[k] + 0.5 * x[k + 2 if k < 1 else k - 1])]
        out.append((str(i), {"id": str(i), "x": {f"f{j}": v for j, v in enumerate(x)}, "y": y}))
    return out


def _group(kafka_kit, name: str, model: dict, events_topic: str, preds_topic: str, members: int):
    group = f"it-{name}-{kafka_kit.tag}"
    configs = []
    for k in range(members):
        configs.append(kafka_kit.config(
            f"{name}-{k}", [events_topic], model=model,
            kafka={"group_id": group, "predictions_topic": preds_topic, "session_timeout_ms": 6_000,
                   "max_poll_records": 500},
            changelog={"every_seconds": 1.0, "fold_every_seconds": 0.5},
            checkpoint={"every_events": 10_000, "every_seconds": 5.0}))
    return group, configs


def _split_between(kafka_kit, daemons) -> bool:
    """Every one of ``daemons`` holds partitions, none of them twice."""
    held = [set(d.status().get("assigned", [])) for d in daemons]
    return all(held) and sum(map(len, held)) == len(set().union(*held)) == PARTITIONS


def _drained_and_folded(kafka_kit, daemons, group, topic) -> bool:
    ends = kafka_kit.end_offsets(topic)
    if kafka_kit.committed(group, topic) != ends:
        return False
    want = {f"{topic}/{p}": o for p, o in ends.items()}
    return all(d.alive and (s := d.status()).get("state") == "running" and s.get("model_parts") == want
               for d in daemons)  # running: a fenced member's status is stale while it rebuilds


def _stats(state: dict) -> list[dict]:
    return sufficient_statistics(state["model"])


def _assert_same_heads(got: list[dict], ref: list[dict], what: str) -> None:
    """Equal statistics, classes aligned by name (members meet the classes in different orders;
    every event carries f0..f4 in that order, so the input columns line up)."""
    assert len(got) == len(ref), what
    for g, r in zip(got, ref):
        assert g["features"] == r["features"] and sorted(g["classes"]) == sorted(r["classes"]), what
        cols = [g["classes"].index(c) for c in r["classes"]]
        pairs = {"xtx": (np.asarray(g["xtx"]), np.asarray(r["xtx"])),
                 "xty": (np.asarray(g["xty"])[:, cols], np.asarray(r["xty"]))}
        for k, (a, b) in pairs.items():
            scale = max(np.abs(b).max(), 1.0)
            assert np.abs(a - b).max() <= 1e-9 * scale, f"{what}: {k} differs by {np.abs(a - b).max() / scale:.2e} relative"
        np.testing.assert_allclose(np.asarray(g["counts"])[cols], r["counts"], rtol=1e-12, err_msg=what)


def _reference(kafka_kit, name: str, model: dict, topic: str) -> list[dict]:
    """One daemon reading the same topic alone, in this process."""
    from connectors.daemon_run import run_daemon

    path, _ = kafka_kit.config(f"{name}-ref", [topic], model=model, kafka={"stop_at_end": True})
    assert run_daemon(load_config(path)) == 0
    state, _ = CheckpointStore(kafka_kit.folder / f"{name}-ref-ckpt").load_latest()
    return _stats(state)


def _exactly_once(kafka_kit, preds_topic: str) -> None:
    reader = kafka_kit.reader(preds_topic)  # read_committed
    reader.until(lambda recs: len({r.key for r in recs}) >= N_EVENTS, 120, "every prediction")
    reader.read_to_end(60)
    counts = Counter(r.key.decode() for r in reader.records)
    assert set(counts) == {str(i) for i in range(N_EVENTS)}
    twice = {k: c for k, c in counts.items() if c > 1}
    assert not twice, f"{len(twice)} events predicted more than once, e.g. {sorted(twice.items())[:5]}"


def _closed_form(docs: list[dict], stats: dict) -> None:
    """Analytic model: the served head equals closed-form ridge on every event (one-hot labels)."""
    features, classes = stats["features"], stats["classes"]
    X = np.array([[1.0] + [d["x"].get(f, 0.0) for f in features] for d in docs])  # (n, 1 + d)
    Y = np.array([[float(d["y"] == c) for c in classes] for d in docs])  # (n, c)
    np.testing.assert_allclose(stats["xtx"], X.T @ X, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(stats["xty"], X.T @ Y, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("model", [{"kind": "analytic", "forgetting": [1.0]},
                                   {"kind": "online", "forgetting": [1.0, 0.995]}],  # the daemon's default heads
                         ids=["analytic", "online"])
def test_consumer_group_trains_one_model_exactly_once(kafka_kit, model):
    name = f"group-{model['kind']}"
    docs = _events(7)
    events_topic = kafka_kit.topic(name, partitions=PARTITIONS)
    preds_topic = kafka_kit.topic(f"{name}-pred", partitions=PARTITIONS)
    kafka_kit.produce(events_topic, docs)
    group, configs = _group(kafka_kit, name, model, events_topic, preds_topic, members=3)
    daemons = [kafka_kit.start(c) for c in configs]
    wait_for(lambda: _drained_and_folded(kafka_kit, daemons, group, events_topic), 600,
             "the topic drained and every daemon serving every partition's final part")
    for d in daemons:
        d.proc.send_signal(signal.SIGTERM)
    assert [d.wait(120) for d in daemons] == [0, 0, 0], daemons[0].log()[-3000:]

    ref = _reference(kafka_kit, name, model, events_topic)
    for k in range(3):
        state, info = CheckpointStore(kafka_kit.folder / f"{name}-{k}-ckpt").load_latest()
        parts = state["model"].get("parts", {})
        _assert_same_heads(_stats(state), ref, f"daemon {k} (checkpoint {info.seq}, parts "
                                               f"{dict(zip(parts.get('keys', []), parts.get('events', [])))})")
    if model["kind"] == "analytic":
        _closed_form([d for _, d in docs], ref[0])
    _exactly_once(kafka_kit, preds_topic)
    changelog = {k: v for d in daemons for k, v in d.status().get("changelog", {}).items()}
    print(f"\n{name}: 3 daemons, {N_EVENTS} events; changelog of daemon 2: {json.dumps(changelog)}")


def test_a_group_with_a_killed_a_frozen_and_a_late_member_still_serves_one_model_exactly_once(kafka_kit):
    """One daemon SIGKILLed, one frozen past its session timeout and resumed (fenced), a fourth joining late."""
    import time

    model = {"kind": "analytic", "forgetting": [1.0]}
    name = "group-faults"
    docs = _events(8)
    events_topic = kafka_kit.topic(name, partitions=PARTITIONS)
    preds_topic = kafka_kit.topic(f"{name}-pred", partitions=PARTITIONS)
    group, configs = _group(kafka_kit, name, model, events_topic, preds_topic, members=4)
    killed, frozen, steady = (kafka_kit.start(c) for c in configs[:3])
    # the events come once all three members hold partitions (a slow start must not leave one member
    # to drain the topic alone before the others join, which would make the faults below vacuous)
    wait_for(lambda: _split_between(kafka_kit, (killed, frozen, steady)), 180, "the partitions split between three members")
    kafka_kit.produce(events_topic, docs)
    preds = kafka_kit.reader(preds_topic)
    rng = random.Random(9)

    def predicted() -> int:
        preds.poll(100)
        return len(preds.records)

    target = rng.randrange(8_000, 16_000)
    wait_for(lambda: predicted() >= target, 300, f"{target} predictions", interval=0)
    killed.kill()  # SIGKILL at a random point: its open transaction is aborted, its partitions move
    wait_for(lambda: predicted() >= 30_000, 300, "half of the predictions", interval=0)
    wait_for(lambda: _split_between(kafka_kit, (frozen, steady)), 180, "the killed member's partitions moved")
    frozen.proc.send_signal(signal.SIGSTOP)  # past its 6 s session timeout: the group moves on without it
    stopped = time.monotonic()
    wait_for(lambda: time.monotonic() - stopped >= 12.0, 60, "the freeze (the stimulus itself)")
    frozen.proc.send_signal(signal.SIGCONT)
    late = kafka_kit.start(configs[3])
    members = [frozen, steady, late]
    wait_for(lambda: _drained_and_folded(kafka_kit, members, group, events_topic), 600,
             "the topic drained and every live daemon serving every partition's final part")
    fenced = [json.loads(line) for line in frozen.log().splitlines() if '"fenced"' in line]
    assert fenced, "the frozen daemon was not fenced: " + frozen.log()[-3000:]
    for d in members:
        d.proc.send_signal(signal.SIGTERM)
    assert [d.wait(120) for d in members] == [0, 0, 0]

    ref = _reference(kafka_kit, name, model, events_topic)
    _closed_form([d for _, d in docs], ref[0])
    for k in (1, 2, 3):
        state, _ = CheckpointStore(kafka_kit.folder / f"{name}-{k}-ckpt").load_latest()
        _assert_same_heads(_stats(state), ref, f"daemon {k}")
    _exactly_once(kafka_kit, preds_topic)  # the zombie committed nothing after it lost its partitions
    print(f"\n{name}: fenced as {fenced[0].get('reason')!r}")


def test_a_label_that_comes_after_its_partition_moved_is_learned_once_by_the_new_owner(kafka_kit):
    """Events predicted by one member wait for their labels; the member leaves (its shutdown
    commit writes both partitions' parts, waiting events included, to the changelog); the
    labels come while a second member owns the partitions: it joins and learns each once."""
    rng = random.Random(21)
    name = "group-takeover"
    events_topic = kafka_kit.topic(name, partitions=2)
    labels_topic = kafka_kit.topic(f"{name}-labels", partitions=2)  # co-partitioned
    preds_topic = kafka_kit.topic(f"{name}-pred", partitions=2)
    group = f"it-{name}-{kafka_kit.tag}"

    def config(k: int):
        return kafka_kit.config(f"{name}-{k}", [events_topic], model={"kind": "analytic", "forgetting": [1.0]},
                                kafka={"group_id": group, "labels_topic": labels_topic,
                                       "predictions_topic": preds_topic, "session_timeout_ms": 6_000},
                                changelog={"every_seconds": 1.0, "fold_every_seconds": 0.5})

    first = kafka_kit.start(config(0))
    docs = [event(i, rng, label=False) for i in range(400)]
    kafka_kit.produce(events_topic, ((d["id"], d) for d in docs))
    preds = kafka_kit.reader(preds_topic)
    preds.until(lambda recs: len(recs) >= 400, 120, "400 predictions by the first member")
    assert first.terminate(60) == 0, first.log()[-3000:]
    state, _ = CheckpointStore(kafka_kit.folder / f"{name}-0-ckpt").load_latest()
    assert sum(state["model"]["head"]["counts"]) == 0  # nothing labelled yet: nothing learned

    second = kafka_kit.start(config(1))
    wait_for(lambda: second.status().get("pending_labels") == 400, 120,
             "the second member holding the 400 waiting events it took over from the changelog")
    kafka_kit.produce(labels_topic, ((d["id"], {"id": d["id"], "y": true_class(d["x"])}) for d in docs))
    wait_for(lambda: second.status().get("labels", {}).get("joined") == 400, 120, "400 labels joined")
    assert second.terminate(60) == 0, second.log()[-3000:]
    state, _ = CheckpointStore(kafka_kit.folder / f"{name}-1-ckpt").load_latest()
    head = state["model"]["head"]
    assert sum(head["counts"]) == 400 and head["ridge"]["n_rows"] == 400  # each label learned once, by the new owner
    preds.read_to_end(30)
    counts = Counter(r.key.decode() for r in preds.records)
    assert set(counts) == {d["id"] for d in docs} and max(counts.values()) == 1  # each event predicted once


WIDEST_INPUTS = 150  # docs/daemon.md: the widest default learner whose part fits changelog.max_message_bytes (32 MB)


def test_the_widest_promised_model_goes_through_the_changelog(kafka_kit):
    """The default learner on 150 numeric inputs: a part of about 21 MB per partition (two
    heads of width 1 + 256 + 9 * 150 = 1,607, X'X by its upper triangle) is written by one
    member at its end, and a second member takes both partitions over from the changelog."""
    rng = random.Random(5)
    name = "group-wide"
    topic = kafka_kit.topic(name, partitions=2)
    group = f"it-{name}-{kafka_kit.tag}"
    docs = [(str(i), {"id": str(i), "x": {f"f{j}": rng.gauss(0.0, 1.0) for j in range(WIDEST_INPUTS)}, "y": "ab"[i % 2]})
            for i in range(240)]
    kafka_kit.produce(topic, docs)

    def config(k: int):
        return kafka_kit.config(f"{name}-{k}", [topic], model={"kind": "online", "forgetting": [1.0, 0.995]},
                                kafka={"group_id": group, "stop_at_end": True})  # the daemon's default heads

    first = kafka_kit.start(config(0))
    assert first.wait(600) == 0, first.log()[-3000:]
    written = first.status()["changelog"]
    assert written["records"] >= 2 and written["bytes"] / written["records"] > 16_000_000, written
    second = kafka_kit.start(config(1))
    assert second.wait(600) == 0, second.log()[-3000:]
    takeovers = [json.loads(line) for line in second.log().splitlines() if '"takeover"' in line]
    assert sorted(t["partition"] for t in takeovers) == [f"{topic}/0", f"{topic}/1"]
    assert all(t["source"] == "changelog" for t in takeovers)
    assert second.status()["events"].get("learned", 0) == 0  # nothing re-learned: the parts covered everything
    a, _ = CheckpointStore(kafka_kit.folder / f"{name}-0-ckpt").load_latest()
    b, _ = CheckpointStore(kafka_kit.folder / f"{name}-1-ckpt").load_latest()
    _assert_same_heads(_stats(b), _stats(a), "the member that took the parts over")
