"""Review r104: a partition revoked and given back in the same (eager) rebalance keeps its waiting events
although the changelog cannot show the record its revocation just wrote.

At a revocation the member writes the partition's part with its waiting events (the events predicted and
waiting for a delayed label) into the changelog, then drops its store (PartitionStates.drop); an eager
rebalance revokes every partition, and the assignment gives most of them back. The takeover then reads the
changelog read_committed, up to its last stable offset: where another transaction holds that offset (a member
whose process tree died after its commit sent its changelog records: open until transaction_timeout_ms, 60 s,
while the group rebalances on that death at session_timeout_ms, 45 s), the member's own revocation record is
not there. It kept its own model part (newer than what it could read) and resumed where it was, without
its waiting events: their labels came, found nothing, and waited as "early" labels; those events were never
learned, and the partition's next record, written with the empty store, replaced the one that held them.
Seen with a broker (r104_lso_blocked_rebalance.py): 193 of 400 waiting events lost (their labels waiting
"early"), 0 with no open transaction.

Here the fake changelog shows nothing past the held offset: the revocation's record is not in it.
"""

from __future__ import annotations

from kafka import TopicPartition

from connectors.partitions import PartitionStates, partition_key
from stream_cl.config import load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores
from changelog_kit import FakeTable

TOPIC, LABELS = "events", "labels"
KEY = partition_key(TOPIC, 0)
TP, LTP = TopicPartition(TOPIC, 0), TopicPartition(LABELS, 0)


def test_a_partition_given_back_in_the_same_rebalance_keeps_its_waiting_events(tmp_path):
    cfg = load_config_dict({"model": {"kind": "analytic", "device": "cpu"},
                            "kafka": {"topics": [TOPIC], "labels_topic": LABELS},
                            "checkpoint": {"dir": str(tmp_path / "ckpt")}})
    learner = build_learner(cfg)
    pending = PendingStores(cfg.labels.max_pending, cfg.labels.max_age_s)
    table = FakeTable()  # what a read_committed read shows while another transaction holds the LSO: not the record below
    states = PartitionStates(cfg, learner, pending, metrics=None, stats=None, table=table)
    assert states.resume_at([TP, LTP]) == {}  # a new partition
    labelled = [({"a": float(i), "b": float(-i)}, "p" if i % 2 else "n") for i in range(20)]
    learner.prequential_batch([x for x, _ in labelled], [y for _, y in labelled], partition=KEY)
    store = pending.for_key(KEY)
    for i in range(30):  # predicted, waiting for their labels
        store.add_committed(Event({"a": 1.0, "b": 2.0}, id=f"e{i}", origin=f"{TOPIC}/0@{20 + i}"))
    states.touched(KEY, 50)
    # the revocation: the commit writes the part (its 30 waiting events in the record), then the stores go
    [(topic, key, value)] = states.records_for({TP: 50, LTP: 0}, force=True)
    assert key == KEY.encode()
    states.drop({TP, LTP})
    # the same partitions back; the changelog read stops at the held offset, before that record
    resumed = states.resume_at([TP, LTP])
    assert resumed.get(TP) == 50  # it resumes where it was (its own part is newer than anything it read)
    assert len(pending.for_key(KEY)) == 30, (f"the partition resumed at {resumed.get(TP)} without its "
                                              f"{30 - len(pending.for_key(KEY))} waiting events: their labels will "
                                              "never join")


def test_a_partition_not_given_back_drops_the_waiting_events_it_kept(tmp_path):
    """The store kept at the revocation lives until the assignment that follows: a partition that went to
    another member (its owner has the events, from the changelog) leaves none here."""
    cfg = load_config_dict({"model": {"kind": "analytic", "device": "cpu"},
                            "kafka": {"topics": [TOPIC], "labels_topic": LABELS},
                            "checkpoint": {"dir": str(tmp_path / "ckpt")}})
    learner = build_learner(cfg)
    pending = PendingStores(cfg.labels.max_pending, cfg.labels.max_age_s)
    states = PartitionStates(cfg, learner, pending, metrics=None, stats=None, table=FakeTable())
    states.resume_at([TP, LTP])
    learner.prequential_batch([{"a": 1.0}, {"a": -1.0}], ["p", "n"], partition=KEY)
    for i in range(5):
        pending.for_key(KEY).add_committed(Event({"a": 1.0}, id=f"e{i}", origin=f"{TOPIC}/0@{2 + i}"))
    states.touched(KEY, 7)
    states.records_for({TP: 7, LTP: 0}, force=True)
    states.drop({TP, LTP})
    assert len(pending.for_key(KEY)) == 5  # kept through the rebalance ...
    assert states.resume_at([TopicPartition(TOPIC, 1), TopicPartition(LABELS, 1)]) is not None
    assert KEY not in pending.keys()  # ... and gone once the partition went elsewhere
