"""A changelog serves one group: every record names the group that wrote it, and a member of
another group that reads one (a new group_id on an explicitly named changelog.topic, or two
groups on one topic) stops with a configuration error instead of taking the other group's
parts and offsets over. Records written before the stamp name no group and are read as before."""

from __future__ import annotations

import pytest

from connectors.partitions import PartitionStates
from stream_cl.config import ConfigError, load_config_dict
from stream_cl.contribution import Contribution
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores


class Table:
    topic = "shared.model"

    def __init__(self, values: dict):
        self.values, self._changed = dict(values), set(values)

    def poll(self, timeout_ms=0):
        return 0

    def catch_up(self, timeout_s=60.0):
        return 0

    def get(self, key):
        return self.values.get(key)

    def changed(self):
        out, self._changed = self._changed, set()
        return out

    def keys(self):
        return list(self.values)


def _config(tmp_path, group: str):
    return load_config_dict({"kafka": {"group_id": group, "topics": ["events"]},
                             "changelog": {"topic": "shared.model"},
                             "checkpoint": {"dir": str(tmp_path / group)}})


def _states(tmp_path, group: str, table: Table) -> PartitionStates:
    cfg = _config(tmp_path, group)
    return PartitionStates(cfg, build_learner(cfg), PendingStores(), None, None, table=table)


def _part(tmp_path, group: str) -> bytes:
    """Partition events/1's changelog record as a member of ``group`` writes it."""
    writer = _states(tmp_path, group, Table({}))
    for i in range(20):
        writer.learner.learn_one({"f0": float(i % 5), "f1": float(i % 3)}, "ab"[i % 2], partition="events/1")
    writer.owned.add("events/1")
    return writer.encoder.encode("events/1", 20, None)


def test_every_record_names_the_group_that_wrote_it(tmp_path):
    assert Contribution.from_bytes(_part(tmp_path, "old")).pending["group"] == "old"


def test_a_member_of_another_group_stops_at_the_fold_naming_both_groups_and_the_fix(tmp_path):
    reader = _states(tmp_path, "new", Table({"events/1": _part(tmp_path, "old")}))
    with pytest.raises(ConfigError, match=r"changelog.topic: 'shared.model' holds the part of partition 'events/1' "
                                          r"that group 'old' wrote, and this member's kafka.group_id is 'new'.*"
                                          r"its own changelog.topic"):
        reader.fold(force=True)
    assert reader.parts == {}  # nothing of it was merged


def test_the_same_group_and_an_unstamped_record_are_read(tmp_path):
    same = _states(tmp_path, "old", Table({"events/1": _part(tmp_path, "old")}))
    assert same.fold(force=True) == 1 and same.parts == {"events/1": 20}
    c = Contribution.from_bytes(_part(tmp_path, "old"))
    c.pending.pop("group")  # as written before the stamp
    unstamped = _states(tmp_path, "new", Table({"events/1": c.to_bytes()}))
    assert unstamped.fold(force=True) == 1


def test_a_takeover_of_another_groups_part_is_refused_before_anything_is_installed(tmp_path):
    from kafka import TopicPartition

    reader = _states(tmp_path, "new", Table({"events/1": _part(tmp_path, "old")}))
    with pytest.raises(ConfigError, match="group 'old' wrote"):
        reader.resume_at({TopicPartition("events", 1)})
    assert reader.parts == {} and reader.learner.partitions_ == []
