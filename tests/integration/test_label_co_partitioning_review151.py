"""Review r151, against the broker: labels that cannot reach their event's partition are said.

* An events topic missing at start beside a labels topic of two partitions is refused (exit 2):
  created on first use with the dev broker's one partition, half the labels never joined.
* Labels keyed otherwise than their events, read by one daemon holding both partitions: the labels
  that reach the other partition number never join (nothing can join them there: a label's offset and
  the learning it causes go into one partition's changelog record), and a ``label_not_co_partitioned``
  warning now says so, where before nothing did for ``labels.max_age_s`` (a day).
"""

from __future__ import annotations

import json
import random

from daemon_kit import event, true_class, wait_for


def _lines(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def test_a_missing_events_topic_beside_a_partitioned_labels_topic_is_refused_at_start(kafka_kit):
    labels = kafka_kit.topic("noevents-labels", partitions=2)
    events = labels.replace("noevents-labels", "noevents")
    kafka_kit.topics.append(events)  # the broker may create it on the daemon's metadata request: removed with the test
    daemon = kafka_kit.start(kafka_kit.config("noevents", [events], kafka={"labels_topic": labels}))
    assert daemon.wait(timeout=120) == 2, daemon.log()[-3000:]
    [error] = [d for d in _lines(daemon.log()) if d["level"] == "ERROR"]
    assert error["detail"].startswith(f"config error: kafka.topics: '{events}' does not exist and the labels topic "
                                      f"'{labels}' has 2 partitions"), error
    assert "--partitions 2" in error["detail"]


def test_labels_keyed_otherwise_than_their_events_are_said(kafka_kit):
    rng = random.Random(151)
    events = kafka_kit.topic("mis-keyed", partitions=2)
    labels = kafka_kit.topic("mis-keyed-labels", partitions=2)
    daemon = kafka_kit.start(kafka_kit.config("mis-keyed", [events], kafka={"labels_topic": labels}))
    docs = [event(i, rng, label=False) for i in range(200)]
    placed = kafka_kit.produce(events, ((d["id"], d) for d in docs))
    wait_for(lambda: daemon.status().get("pending_labels") == 200, 120, "200 events waiting for their labels")
    sent = kafka_kit.produce(labels, ((f"label-{d['id']}", {"id": d["id"], "y": true_class(d["x"])}) for d in docs))
    apart = sum(e.partition != lab.partition for e, lab in zip(placed, sent))
    assert 0 < apart < 200  # the scenario: some labels reached another partition number than their event's
    wait_for(lambda: daemon.status().get("labels", {}).get("joined") == 200 - apart, 120, "the co-partitioned joined")
    said = wait_for(lambda: [d for d in _lines(daemon.log()) if d["event"] == "label_not_co_partitioned"], 60,
                    "a label_not_co_partitioned warning")
    assert said[0]["level"] == "WARNING" and "keyed as their events are" in said[0]["detail"]
    assert daemon.status()["waiting_labels"] == apart  # the others wait, and will never join
    assert daemon.terminate(60) == 0, daemon.log()[-3000:]
