"""Payload-shaped events (strings, nulls, nested objects, arrays, ISO times) through the daemon and a real
broker: every one is predicted and learned, none is a dead letter; the default online model learns a rule
that only the categories carry; the category bound's overflow is counted in the status and the metrics."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta, timezone

from stream_cl.checkpoint import CheckpointStore

N = 1500
MERCHANTS = [f"shop-{i}" for i in range(60)]
RISKY = set(MERCHANTS[:40:4])  # among the 40 merchants of the first events: each gets a column of its own


def payment(i: int, rng: random.Random) -> dict:
    merchant = rng.choice(MERCHANTS[:40] if i < 400 else MERCHANTS)  # shop-40.. come later: k=<other>
    country = rng.choice(["FR", "DE", "US", None])
    fraud = merchant in RISKY or country is None
    t = datetime(2024, 5, 1, tzinfo=timezone.utc) + timedelta(minutes=7 * i)
    return {
        "id": f"p{i}", "ts": t.isoformat(), "y": "fraud" if fraud else "ok",
        "x": {
            "amount": round(rng.lognormvariate(3, 1), 2) if i % 10 else None,
            "merchant": merchant,
            "card": {"country": country, "brand": rng.choice(["visa", "mc"]), "3ds": rng.random() < 0.5},
            "items": [rng.choice(["book", "game", "food"]) for _ in range(rng.randint(0, 2))],
            "device": None if i % 7 == 0 else {"os": rng.choice(["ios", "android", "web"])},
        },
    }


def test_payload_events_are_predicted_and_learned_not_dead_lettered(kafka_kit):
    rng = random.Random(21)
    events_topic = kafka_kit.topic("payloads", partitions=2)
    preds_topic, dead_topic = kafka_kit.topic("payloads-pred"), kafka_kit.topic("payloads-dead")
    docs = [payment(i, rng) for i in range(N)]
    # one event nested past mapping.max_depth: the only dead letter
    deep = {"id": "deep", "y": "ok", "x": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}
    kafka_kit.produce(events_topic, [(d["id"], d) for d in docs[:700]] + [("deep", deep)] +
                      [(d["id"], d) for d in docs[700:]], partition=0)
    config = kafka_kit.config(
        "payloads", [events_topic],
        model={"kind": "online", "forgetting": [1.0, 0.995], "device": "cpu", "width": 64,
               "max_categories": 40, "missing_indicators": True, "time_features": True},
        kafka={"predictions_topic": preds_topic, "dead_letter_topic": dead_topic, "stop_at_end": True},
    )
    daemon = kafka_kit.start(config)
    assert daemon.wait(timeout=240) == 0, daemon.log()[-3000:]

    preds = kafka_kit.reader(preds_topic)
    preds.until(lambda recs: len(recs) >= N, 60, f"{N} predictions")
    preds.poll(200)
    by_id = {p["id"]: p for p in preds.values()}
    assert Counter(p["id"] for p in preds.values()) == Counter(d["id"] for d in docs)  # each once, none dropped
    late = [by_id[d["id"]] for d in docs[1000:]]
    accuracy = sum(p["y_pred"] == p["y_true"] for p in late) / len(late)
    majority = max(Counter(d["y"] for d in docs[1000:]).values()) / len(late)
    assert accuracy > 0.9 > majority, (accuracy, majority)  # the categories carry the rule, and were learned

    dead = kafka_kit.reader(dead_topic)
    dead.until(lambda recs: len(recs) >= 1, 30, "the dead letter")
    dead.poll(200)
    assert [(r.key, dict(r.headers)["stream-cl.reason"]) for r in dead.records] == [(b"deep", b"too_deep")]

    status = daemon.status()
    assert status["state"] == "stopped" and status["events"] == {"learned": N, "dead_letter": 1}
    features = status["report"]["features"]
    assert features["overflow_total"] > 0 and set(features["overflow"]) == {"merchant"}  # 60 merchants, 40 columns
    state, _ = CheckpointStore(config[0].parent / "payloads-ckpt").load_latest()
    names = state["model"]["index"]["names"]
    for name in ("merchant=<other>", "card.country=FR", "card.country=<missing>", "card.3ds", "device.os=ios",
                 "items[0]=book", "amount=<missing>", "ts.hour_sin", "ts.dow_cos"):
        assert name in names, name
    assert sum(n.startswith("merchant=") for n in names) == 41  # 40 of their own and the shared one
