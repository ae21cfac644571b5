"""Review r104: a rebalance while another transaction holds the changelog's last stable offset (a member whose
process tree died after its commit sent its changelog records: open until transaction_timeout_ms, 60 s, while
the group rebalances on that death at session_timeout_ms, 45 s). A member given back its own partition must
keep the events waiting for their labels, which its revocation wrote to a record it cannot read yet.
Before the fix: 0 of the kept partition's ~200 labels joined (they waited as "early" labels for good)."""

import random

from daemon_kit import event, true_class, wait_for
from kafka import KafkaProducer

N = 400


def test_waiting_events_survive_a_rebalance_while_the_changelog_is_held_by_an_open_transaction(kafka_kit):
    name = "r104-lso"
    events, labels = kafka_kit.topic(name, 2), kafka_kit.topic(f"{name}-labels", 2)
    preds = kafka_kit.topic(f"{name}-pred", 2)
    group = f"it-{name}-{kafka_kit.tag}"

    def config(k):
        return kafka_kit.config(f"{name}-{k}", [events], model={"kind": "analytic", "forgetting": [1.0]},
                                kafka={"group_id": group, "labels_topic": labels, "predictions_topic": preds,
                                       "session_timeout_ms": 6000},
                                changelog={"every_seconds": 3600.0, "every_events": 1_000_000,
                                           "fold_every_seconds": 0.5})

    b = kafka_kit.start(config(0), "B")
    wait_for(lambda: len(b.status().get("assigned", [])) == 4, 120, "B holding both partitions")
    rng = random.Random(3)
    docs = [event(i, rng, label=False) for i in range(N)]
    kafka_kit.produce(events, ((d["id"], d) for d in docs))
    wait_for(lambda: b.status().get("pending_labels") == N, 120, f"B holding {N} waiting events")
    dead = KafkaProducer(bootstrap_servers=kafka_kit.bootstrap, transactional_id=f"r104-dead-{kafka_kit.tag}",
                         transaction_timeout_ms=300_000)
    dead.init_transactions()
    dead.begin_transaction()
    dead.send(f"{group}.model", key=b"r104/none", value=b"never committed")  # the LSO is held from here
    dead.flush()
    try:
        c = kafka_kit.start(config(1), "C")
        wait_for(lambda: b.status().get("assigned") and c.status().get("assigned")
                 and len(b.status()["assigned"]) + len(c.status()["assigned"]) == 4, 120, "the split")
        held = lambda: b.status().get("pending_labels", 0) + c.status().get("pending_labels", 0)  # noqa: E731
        # (before the fix: the kept partition's ~200 waiting events gone, and this timed out)
        wait_for(lambda: held() == N, 60, f"the members holding all {N} waiting events after the rebalance")
    finally:
        dead.abort_transaction()
        dead.close()
    kafka_kit.produce(labels, ((d["id"], {"id": d["id"], "y": true_class(d["x"])}) for d in docs))
    joined = lambda: sum(d.status().get("labels", {}).get("joined", 0) for d in (b, c))  # noqa: E731
    try:
        wait_for(lambda: joined() == N, 60, f"{N} labels joined")
    except AssertionError:
        raise AssertionError(f"{joined()} of {N} labels joined; B: {b.status().get('labels')}, "
                             f"C: {c.status().get('labels')}") from None
    for d in (b, c):
        assert d.terminate(60) == 0
