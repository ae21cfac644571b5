"""Review r108: a delayed-label store kept at a revocation (r104) must not age, nor expire, while its member
does not own the partition.

An eager rebalance spans loop turns: kafka-python's join gives up at the poll's timer and leaves the
JoinGroup in flight, so the loop turns, quiet, between the revocation and the assignment, and each quiet
turn runs Router.expire over every store, the kept ones included. Events that reach labels.max_age_s in
that window were counted ``expired`` (and ``new_lost``) by a member that no longer owned them; then the
assignment installed the revocation's record, holding those very events (frozen at the revocation), and
they expired (or joined) again: counted twice, here or at the partition's new owner. Before r104 the
store was dropped at the revocation and nothing counted them here (review r86 is the same rule for a
record written after an expiry).
"""

from __future__ import annotations

from kafka import TopicPartition

from changelog_kit import FakeTable
from connectors.partitions import PartitionStates, partition_key
from stream_cl.config import load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores

TOPIC, LABELS = "events", "labels"
KEY = partition_key(TOPIC, 0)
TP, LTP = TopicPartition(TOPIC, 0), TopicPartition(LABELS, 0)


def _member(tmp_path, table, clock, name="a"):
    cfg = load_config_dict({"model": {"kind": "analytic", "device": "cpu"},
                            "kafka": {"topics": [TOPIC], "labels_topic": LABELS},
                            "labels": {"max_age_s": 100.0},
                            "checkpoint": {"dir": str(tmp_path / name)}})
    learner = build_learner(cfg)
    pending = PendingStores(cfg.labels.max_pending, cfg.labels.max_age_s, clock=clock)
    return learner, pending, PartitionStates(cfg, learner, pending, metrics=None, stats=None, table=table)


def _revoked_with_events(tmp_path, t):
    table = FakeTable()
    learner, pending, states = _member(tmp_path, table, lambda: t[0])
    states.resume_at([TP, LTP])
    learner.prequential_batch([{"a": 1.0}, {"a": -1.0}], ["p", "n"], partition=KEY)
    for i in range(10):
        pending.for_key(KEY).add_committed(Event({"a": 1.0}, id=f"e{i}", origin=f"{TOPIC}/0@{2 + i}"))
    states.touched(KEY, 12)
    t[0] += 95.0  # they have waited 95 of their 100 s
    [(_, _, value)] = states.records_for({TP: 12, LTP: 0}, force=True)  # the revocation's record, with them
    table.values[KEY] = value
    states.drop({TP, LTP})
    t[0] += 10.0  # the rebalance lasts 10 s: quiet loop turns, each expiring (Router.expire)
    pending.expire()
    return table, pending, states


def test_a_kept_store_expires_nothing_before_the_assignment(tmp_path):
    t = [1000.0]
    _, pending, _ = _revoked_with_events(tmp_path, t)
    assert pending.counters()["expired"] == 0 and pending.new_outcomes()[1] == 0, (
        f"{pending.counters()['expired']} waiting events of a partition this member no longer owns were counted "
        "expired during the rebalance")


def test_events_given_back_with_their_record_expire_once(tmp_path):
    t = [1000.0]
    _, pending, states = _revoked_with_events(tmp_path, t)
    states.resume_at([TP, LTP])  # given back; the record (with the 10 events) is installed
    pending.thaw()
    t[0] += 10.0
    pending.expire()
    assert pending.counters()["expired"] == 10 and pending.new_outcomes()[1] == 10, pending.counters()


def test_events_of_a_partition_gone_elsewhere_expire_once_in_the_group(tmp_path):
    t = [1000.0]
    table, pending, states = _revoked_with_events(tmp_path, t)
    states.resume_at([TopicPartition(TOPIC, 1), TopicPartition(LABELS, 1)])  # it went to another member
    _, other, other_states = _member(tmp_path, table, lambda: t[0], name="b")
    other_states.resume_at([TP, LTP])
    other.thaw()
    t[0] += 10.0
    other.expire()
    assert pending.counters()["expired"] + other.counters()["expired"] == 10
