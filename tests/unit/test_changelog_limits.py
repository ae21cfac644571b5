"""PartitionStates and the model changelog's limits, without a broker (a fake changelog table).

* a partition's record (its model part and its waiting-label store) larger than
  ``changelog.max_message_bytes`` would fail every transaction that holds it
  (MessageSizeTooLargeError, a reset every ``changelog.every_seconds``): the oldest waiting
  events are evicted until it fits (counted and logged; a stop there made the shipped config a
  crash loop on a stream of 40-feature events waiting for their labels), and a model part too
  large by itself is refused with a ConfigError naming the setting;
* a changelog record of another model met at takeover stops the member with a ConfigError naming the
  setting (the daemon's assignment callback hands it to the loop: exit 2), as a checkpoint of another
  model does; taken over as if it had none, the member overwrote the group's part.
"""

from __future__ import annotations

import logging
import random

import pytest
from kafka import TopicPartition

from connectors.partitions import PartitionStates, partition_key
from stream_cl.config import ConfigError, load_config_dict
from stream_cl.events import Event
from stream_cl.pending import LabelUpdate
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores
from changelog_kit import FakeTable


TOPIC = "events"
KEY = partition_key(TOPIC, 0)
TP = TopicPartition(TOPIC, 0)


def _config(tmp_path, max_message_bytes=33_554_432, model=None):
    return load_config_dict({
        "model": model or {"kind": "analytic", "forgetting": [1.0]},
        "kafka": {"topics": [TOPIC]},
        "checkpoint": {"dir": str(tmp_path / "ckpt")},
        "changelog": {"max_message_bytes": max_message_bytes},
    })


def _states(cfg, table):
    learner, pending = build_learner(cfg), PendingStores(cfg.labels.max_pending, cfg.labels.max_age_s)
    return PartitionStates(cfg, learner, pending, metrics=None, stats=None, table=table)


def _learn(states, n_labelled, n_waiting, n_features, seed=0):
    """``n_labelled`` events learned in partition KEY, ``n_waiting`` more waiting for their label."""
    rng = random.Random(seed)
    row = lambda: {f"f{j}": rng.random() for j in range(n_features)}  # noqa: E731
    for _ in range(n_labelled):
        states.learner.learn_one(row(), rng.randrange(2), partition=KEY)
    store = states.pending.for_key(KEY)
    for i in range(n_waiting):
        store.add(Event(x=row(), id=f"w{i}"), now=1000.0)
    states.touched(KEY, n_labelled + n_waiting)


def test_labels_waiting_for_their_event_are_evicted_too_so_that_the_record_fits(tmp_path, caplog):
    """Review r56 #1: labels that came before their event (or for events that never come) were never
    evicted: 17,000 of them made a record of 35 MB against the 32 MiB limit, and every start, from the
    checkpoint too, exited 2 ("its 0 events waiting for a label the rest")."""
    cfg = _config(tmp_path, max_message_bytes=200_000)
    states = _states(cfg, FakeTable())
    states.resume_at([TP])
    _learn(states, n_labelled=50, n_waiting=200, n_features=20)  # 200 events wait, at time 1000
    store = states.pending.for_key(KEY)
    for i in range(4_000):  # then 4,000 labels whose events have not come, later than the events
        store.join(LabelUpdate(f"label-{i:05d}-" + "u" * 60, "fraud"), now=2000.0 + i)
    with caplog.at_level(logging.WARNING, logger="stream_cl.daemon"):
        [(_, key, value)] = states.records_for({TP: 250}, force=True)
    assert len(key) + len(value) + 128 <= 200_000
    counts = states.pending.counters()
    assert counts["evicted"] == 200 and len(store) == 0  # the oldest went first: the events, then labels
    assert 0 < store.waiting_labels < 4_000 and counts["unknown"] == 4_000 - store.waiting_labels
    assert f"label-{3_999:05d}-" + "u" * 60 in store._early  # the newest label stays
    [said] = [r for r in caplog.records if r.getMessage() == "labels_evicted_for_changelog"]
    assert said.stream_cl_fields["waiting_labels"] == store.waiting_labels


def test_a_record_larger_than_the_changelog_limit_evicts_the_oldest_waiting_events_until_it_fits(tmp_path, caplog):
    cfg = _config(tmp_path, max_message_bytes=200_000)
    states = _states(cfg, FakeTable())
    states.resume_at([TP])
    _learn(states, n_labelled=50, n_waiting=2_000, n_features=20)
    with caplog.at_level(logging.WARNING, logger="stream_cl.daemon"):
        [(_, key, value)] = states.records_for({TP: 2_050}, force=True)
    assert key == KEY.encode() and len(key) + len(value) + 128 <= 200_000
    store = states.pending.for_key(KEY)
    kept, evicted = len(store), states.pending.counters()["evicted"]
    assert kept + evicted == 2_000 and 0 < kept < 2_000
    assert len(key) + len(value) + 128 > 200_000 - 10 * (200_000 // kept)  # it fits closely: few more went than needed
    assert f"w{2_000 - kept}" in store and f"w{1_999 - kept}" not in store  # the oldest went, the newest stay
    assert [r.levelname for r in caplog.records if "labels_evicted_for_changelog" in r.getMessage()] == ["WARNING"]
    # what the record carries is what the member keeps: a takeover from it has the same waiting events
    other = _states(cfg, FakeTable({KEY: value}))
    other.resume_at([TP])
    assert len(other.pending.for_key(KEY)) == kept


def test_a_model_part_larger_than_the_changelog_limit_is_refused_with_a_config_error(tmp_path):
    cfg = _config(tmp_path, max_message_bytes=2_000)  # the analytic part of 20 inputs alone takes more
    states = _states(cfg, FakeTable())
    states.resume_at([TP])
    _learn(states, n_labelled=50, n_waiting=10, n_features=20)
    with pytest.raises(ConfigError) as info:
        states.records_for({TP: 60}, force=True)
    text = str(info.value)
    assert text.startswith("changelog.max_message_bytes:") and "2000 bytes" in text and KEY in text
    assert "its 10 events waiting" in text


def test_a_record_within_the_limit_goes_out(tmp_path):
    cfg = _config(tmp_path, max_message_bytes=33_554_432)
    states = _states(cfg, FakeTable())
    states.resume_at([TP])
    _learn(states, n_labelled=50, n_waiting=2_000, n_features=20)
    records = states.records_for({TP: 2_050}, force=True)
    assert [(t, k) for t, k, _ in records] == [("g.model", KEY.encode())]
    assert 200_000 < len(records[0][2]) < 33_554_432  # the waiting events count: what the first test refuses


def test_a_changelog_part_of_another_model_stops_the_member_at_takeover(tmp_path):
    old_cfg = _config(tmp_path, model={"kind": "analytic", "forgetting": [1.0]})
    old = _states(old_cfg, FakeTable())
    old.resume_at([TP])
    _learn(old, n_labelled=30, n_waiting=5, n_features=4)
    [(_, _, value)] = old.records_for({TP: 35}, force=True)

    new_cfg = _config(tmp_path, model={"kind": "analytic", "forgetting": [0.99]})  # a [model] setting changed
    new = _states(new_cfg, FakeTable({KEY: value}))
    # a ConfigError (the daemon stops, exit 2), as over a checkpoint: going on with a new model overwrote
    # the group's part in the changelog
    with pytest.raises(ConfigError, match="forgetting"):
        new.resume_at([TP])
    assert new.learner.partitions_ == [] and KEY not in new.parts
    assert len(new.pending.for_key(KEY)) == 0  # the refused record's waiting events are not installed


def test_waiting_events_of_a_partition_assigned_elsewhere_after_a_restart_are_dropped(tmp_path):
    """A member restarted onto another partition kept the restored store of the one it had held
    (the new owner takes it from the changelog): it reported its events as pending, then counted
    every one as expired, though the new owner joined all their labels (an expiry alert for nothing)."""
    cfg = _config(tmp_path)
    states = _states(cfg, FakeTable())
    other = partition_key(TOPIC, 1)
    states.pending.for_key(other).add(Event(x={"a": 1.0}, id="w"), now=1000.0)  # restored, held before the restart
    states.resume_at([TP])  # this time the group gives it partition 0
    assert states.pending.keys() == [KEY] or states.pending.keys() == []
    assert other not in states.pending.keys() and len(states.pending) == 0
    assert states.pending.counters()["added"] == 1  # its counts are kept: counters never go down


def _restored_ahead(tmp_path, waiting_in_record: int):
    """A member as a restart leaves it: its changelog record covers 20 labelled events and
    ``waiting_in_record`` waiting ones; its checkpoint (the model, 19 waiting events) covers 30 labelled
    events more, offset ``49 + waiting_in_record``: its own part is ahead of the record, and nothing has
    changed since the restore."""
    table = FakeTable()
    states = _states(_config(tmp_path), table)
    states.resume_at([TP])
    _learn(states, n_labelled=20, n_waiting=waiting_in_record, n_features=3)
    [(_, _, old)] = states.records_for({TP: 20 + waiting_in_record}, force=True)
    table.values[KEY] = old
    _learn(states, n_labelled=30, n_waiting=19, n_features=3, seed=1)
    states.changed.clear()
    states.owned.clear()
    states.offsets = {TP: 69 + waiting_in_record}
    states.load_extra({"parts": {}, "owned": [KEY]})
    assert states.parts[KEY] == 69 + waiting_in_record
    return states, table


def test_a_part_newer_than_the_changelog_is_written_before_a_revocation_drops_its_waiting_events(tmp_path):
    """Found by review against a broker: a member restored from a checkpoint newer than the
    changelog kept its own part; a rebalance before the partition's next event revoked it with no
    changelog record (nothing had changed since the restore), dropping its waiting events, and took
    it back from its own part without them: 19 of 40 labels never joined."""
    states, table = _restored_ahead(tmp_path, waiting_in_record=0)
    states.resume_at([TP])  # assigned: it resumes from its own part
    assert len(states.pending.for_key(KEY)) == 19
    records = states.records_for({TP: 69}, force=True)  # the revocation's commit
    assert [k for _, k, _ in records] == [KEY.encode()]
    table.values[KEY] = records[0][2]
    states.drop([TP])
    assert len(states.pending.for_key(KEY)) == 19  # kept until the assignment that follows (review r104)
    assert states.resume_at([TP]) == {TP: 69}  # the same partition back: from the record, with its waiting events
    assert len(states.pending.for_key(KEY)) == 19


def test_eviction_reaches_a_fitting_record_when_the_oldest_waiting_events_are_the_smallest(tmp_path):
    """Found by review: each pass evicted the excess over the average event's size; with small old
    events and large new ones every pass fell short, and after 8 passes the daemon stopped (exit 2)
    though the newest events alone fitted."""
    cfg = _config(tmp_path, max_message_bytes=200_000)
    states = _states(cfg, FakeTable())
    states.resume_at([TP])
    _learn(states, n_labelled=20, n_waiting=0, n_features=2)
    store = states.pending.for_key(KEY)
    rng = random.Random(1)
    for i in range(20_000):  # old, small (a 1.46 MB record in all)
        store.add(Event(x={"f0": rng.random(), "f1": rng.random()}, id=f"s{i}"), now=1000.0)
    for i in range(40):  # new, large
        store.add(Event(x={f"g{j}": rng.random() for j in range(400)}, id=f"b{i}"), now=1000.0)
    states.touched(KEY, 20_040)
    [(_, key, value)] = states.records_for({TP: 20_060}, force=True)
    assert len(key) + len(value) + 128 <= 200_000
    assert all(f"b{i}" in store for i in range(40))  # the newest stay


@pytest.mark.parametrize("how", ["restarted onto another partition", "lost"])
def test_a_part_ahead_of_its_record_whose_waiting_events_are_dropped_is_not_taken_back_without_them(tmp_path, how):
    """A member restored from a checkpoint newer than the changelog drops the waiting events of a
    partition it is not given (or loses it before a commit); its own newer part must not then be
    taken back without them: the partition resumes from its changelog record, waiting events included."""
    states, table = _restored_ahead(tmp_path, waiting_in_record=5)
    assert len(states.pending.for_key(KEY)) == 19  # (w0-w4 came again)
    if how == "lost":
        states.resume_at([TP])
        states.drop([TP])  # lost: no commit, no record
    else:
        states.resume_at([TopicPartition(TOPIC, 1)])  # the group gives it another partition
    assert len(states.pending.for_key(KEY)) == 0
    assert states.resume_at([TP]) == {TP: 25}  # back: from the record (offset 25), not the part without its events
    assert len(states.pending.for_key(KEY)) == 5


def _checkpointed_at(tmp_path, offset: int) -> PartitionStates:
    """States of 50 learned events and 2,000 waiting, too many for a 200 kB record, whose last checkpoint
    covered ``offset`` of partition TP and nothing since (its policy counts no records)."""
    from connectors.status import DaemonMetrics
    from stream_cl.prequential import Prequential

    states = _states(_config(tmp_path, max_message_bytes=200_000), FakeTable())
    states.metrics, states.stats = DaemonMetrics(), Prequential(states.learner).stats
    states.resume_at([TP])
    _learn(states, n_labelled=50, n_waiting=2_000, n_features=20)
    states.offsets, _ = {TP: offset}, states.policy.reset()
    return states

def test_entries_evicted_for_a_record_are_checkpointed_so_a_restart_does_not_bring_them_back(tmp_path):
    """Review r58: a checkpoint of the same offsets written before an eviction for the changelog won the
    restore's tie, so a restart brought the evicted entries back where a takeover from the changelog did not
    (3,000 labels joined after a restart against 1,952 after a takeover). The next commit now checkpoints
    the store the changelog holds, due or not."""
    states = _checkpointed_at(tmp_path, 2_050)  # a checkpoint of the record's offsets was just written
    assert states.snapshot({TP: 2_050}, "interval") is None  # nothing new: none is due
    [(_, _, value)] = states.records_for({TP: 2_050}, force=True)  # the changelog write evicts
    kept = len(states.pending.for_key(KEY))
    assert 0 < kept < 2_000
    snapshot = states.snapshot({TP: 2_050}, "interval")  # the commit's checkpoint: due now, holding the eviction
    assert snapshot is not None and len(dict(snapshot.state["pending"]["partitions"])[KEY]["ids"]) == kept
    assert states.snapshot({TP: 2_050}, "interval") is None  # and once only


def test_an_eviction_at_an_offset_past_the_last_checkpoint_forces_none(tmp_path):
    """Review r60: forcing a checkpoint at every evicting write made one every changelog write on a stream
    whose waiting events stay at the limit; only a record at the last checkpoint's very offset needs one (a
    newer record wins the restore anyway)."""
    states = _checkpointed_at(tmp_path, 1_000)  # the last checkpoint covers less than the record
    states.records_for({TP: 2_050}, force=True)  # evicts
    assert 0 < len(states.pending.for_key(KEY)) < 2_000
    assert not states.checkpoint_due("interval")
