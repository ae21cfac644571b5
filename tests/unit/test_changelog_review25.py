"""PartitionStates against changelog parts it must not install as they are (review r21), without a broker.

* F2: a changelog part of another model (a [model] setting changed since the group learned it) met
  at takeover or at a fold stops the member with a ConfigError naming the setting and the fix, as
  a checkpoint of other settings does at start. It was logged (``changelog_refused``) and taken
  as missing: the member served a new model and its next record replaced the group's learned
  state in the changelog. A damaged record is still logged and taken as missing.
* F1: at equal events offsets, the part the checkpoint restored is kept, not replaced by the
  changelog record: a record written before the heads' anchors were kept (no ``anchor`` entries)
  re-anchored the forgetting heads, and the resumed model's probabilities differed from an
  uninterrupted run's by up to 0.7. A record that covers more of the labels partition is newer
  and still replaces it.
"""

from __future__ import annotations

import copy
import logging
import random

import numpy as np
import pytest
from kafka import TopicPartition

from connectors.partitions import PartitionStates, partition_key
from stream_cl.config import ConfigError, load_config_dict
from stream_cl.contribution import Contribution
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores
from changelog_kit import FakeTable


TOPIC = "events"
KEY = partition_key(TOPIC, 0)
TP = TopicPartition(TOPIC, 0)
OTHER = partition_key(TOPIC, 1)


def _config(tmp_path, model=None, labels_topic=""):
    return load_config_dict({
        "model": {"device": "cpu", **(model or {})},
        "kafka": {"topics": [TOPIC], "labels_topic": labels_topic},
        "checkpoint": {"dir": str(tmp_path / "ckpt")},
    })


def _states(cfg, table, learner=None):
    learner = learner if learner is not None else build_learner(cfg)
    pending = PendingStores(cfg.labels.max_pending, cfg.labels.max_age_s)
    return PartitionStates(cfg, learner, pending, metrics=None, stats=None, table=table)


def _events(n, seed=1):
    """Three tasks, a string feature, a class that only the second task brings (fixed seed)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        task = i * 3 // n
        a, b, c = rnd.gauss(0, 1), rnd.gauss(0, 1), rnd.choice(["red", "green", "blue"])
        s = a + (b if task != 1 else -b) + (0.7 if c == "red" else 0.0)
        y = "q" if task == 1 and a > 1.2 else ("p" if s > 0 else "n")
        out.append(({"a": a, "b": b, "c": c, "d": rnd.random() * 1000}, y))
    return out


def _run(learner, part, key=KEY):
    return learner.prequential_batch([x for x, _ in part], [y for _, y in part], partition=key)


def _record(learner, key, offset, labels=None, group=None):
    """``key``'s changelog value as a member writes it (PartEncoder.encode, with no waiting events;
    ``group`` None: as written before the group stamp)."""
    return learner.contribution(key, offset=offset, pending={"store": None, "labels": labels, "group": group})


# -- F2: a part of another model stops the member -------------------------------------------------
def _gamma_record(tmp_path, key=KEY):
    """A changelog value of ``key`` that a gamma = 1.0 model learned (200 events), as written before records
    kept their settings: the refusal names the learner's setting."""
    old = build_learner(_config(tmp_path, model={"gamma": 1.0}))
    _run(old, _events(200), key)
    return _record(old, key, 200).to_bytes()


def test_a_changelog_part_of_another_model_stops_the_takeover_naming_the_setting(tmp_path):
    new = _states(_config(tmp_path, model={"gamma": 2.0}), FakeTable({KEY: _gamma_record(tmp_path)}))
    with pytest.raises(ConfigError) as info:
        new.resume_at([TP])
    text = str(info.value)
    assert text.startswith("changelog.topic:") and KEY in text and "'g.model'" in text
    assert "with gamma=1;" in text and "with gamma=2;" in text  # as the group's model and this member have it (r121 F4: not "1.0")
    assert "new changelog.topic" in text and "empty checkpoint.dir" in text  # the fix, either way
    assert new.learner.partitions_ == [] and KEY not in new.parts  # nothing installed
    assert new.records_for({TP: 200}, force=True) == []  # and nothing to overwrite the group's part with


def test_a_record_keeps_its_settings_so_the_refusal_names_the_config_key(tmp_path):
    """A record written now keeps the settings it was written with: the refusal then reads as a
    checkpoint's (check_settings), naming the key of the config file, not the learner's name for it."""
    old = _states(_config(tmp_path, model={"forgetting": [1.0, 0.995]}), FakeTable())
    old.resume_at([TP])
    _run(old.learner, _events(200))
    old.touched(KEY, 200)
    [(_, _, value)] = old.records_for({TP: 200}, force=True)
    new = _states(_config(tmp_path, model={"forgetting": [0.99]}), FakeTable({KEY: value}))
    with pytest.raises(ConfigError) as info:
        new.resume_at([TP])
    assert str(info.value) == (
        f"model.forgetting: the changelog part of partition {KEY!r} in 'g.model' (the group's model) was written "
        "with forgetting = [1.0, 0.995], the config says [0.99]; restore the [model] setting, or to start a new model, "
        "give the group a new changelog.topic (or a new kafka.group_id, whose default changelog.topic is "
        "'<group_id>.model') and an empty checkpoint.dir")
    assert new.learner.partitions_ == []


def test_a_changelog_part_of_another_model_is_left_out_of_the_fold_without_stopping(tmp_path, caplog):
    """A fold never writes the partitions it folds: a part of other settings (one member started with them
    wrote it) is logged and left out; stopping there took every healthy member down with exit 2 (r22)."""
    new = _states(_config(tmp_path, model={"gamma": 2.0}), FakeTable({OTHER: _gamma_record(tmp_path, OTHER)}))
    assert new.resume_at([TP]) == {}  # its own partition has no part: nothing to refuse yet
    with caplog.at_level(logging.ERROR, logger="stream_cl.daemon"):
        assert new.fold(force=True) == 0  # another member's partition, not folded into the model it serves
    assert OTHER not in new.parts
    refused = [r for r in caplog.records if r.getMessage() == "changelog_refused"]
    assert len(refused) == 1 and "gamma=1;" in str(refused[0].__dict__)


def _stamped(tmp_path, key, model, n=200):
    """``key``'s record as a member of ``model`` settings writes it now (its settings kept in it)."""
    states = _states(_config(tmp_path, model=model), FakeTable())
    part = TopicPartition(TOPIC, int(key.rsplit("/", 1)[1]))
    states.resume_at([part])
    _run(states.learner, _events(n), key)
    states.touched(key, n)
    [(_, _, value)] = states.records_for({part: n}, force=True)
    return value


def test_a_takeover_of_the_odd_members_part_is_taken_as_missing_where_the_group_fits_this_member(tmp_path, caplog):
    """Partitions 1 and 2's records keep this member's settings, partition 0's another's (a member started
    with gamma = 2.0 over an empty checkpoint.dir wrote it): this member is not the odd one, so taking
    partition 0 over goes on without the odd part instead of stopping, and the error's fix would have been
    the odd one's."""
    third = partition_key(TOPIC, 2)
    table = FakeTable({KEY: _stamped(tmp_path / "odd", KEY, {"gamma": 2.0}),
                       OTHER: _stamped(tmp_path / "fit", OTHER, {"gamma": 1.0}),
                       third: _stamped(tmp_path / "fit2", third, {"gamma": 1.0})})
    states = _states(_config(tmp_path / "me", model={"gamma": 1.0}), table)
    with caplog.at_level(logging.ERROR, logger="stream_cl.daemon"):
        assert states.resume_at([TP]) == {}
    assert KEY not in states.parts and states.learner.partitions_ == []
    refused = [r for r in caplog.records if r.getMessage() == "changelog_refused"]
    assert len(refused) == 1 and "model.gamma" in str(refused[0].__dict__)


def test_the_odd_members_own_record_does_not_count_for_it(tmp_path):
    """A member started with gamma = 2.0 over an empty checkpoint.dir, given first a partition with no record,
    writes one there; taking over the group's partition 0 (gamma = 1.0) later, its own record must not count
    as the group agreeing with it (r26): it stops instead of overwriting the group's part."""
    table = FakeTable({KEY: _stamped(tmp_path / "group", KEY, {"gamma": 1.0})})
    odd = _states(_config(tmp_path / "odd", model={"gamma": 2.0}), table)
    other = TopicPartition(TOPIC, 1)
    assert odd.resume_at([other]) == {}
    _run(odd.learner, _events(100), OTHER)
    odd.touched(OTHER, 100)
    [(_, key, value)] = odd.records_for({other: 100}, force=True)
    table.values[key.decode()] = value  # committed: the changelog holds it now
    odd.drop([other])
    with pytest.raises(ConfigError, match=r"^model\.gamma: the changelog part of partition"):
        odd.resume_at([TP, other])


def test_a_takeover_stops_where_no_part_of_the_group_fits_this_member(tmp_path):
    table = FakeTable({KEY: _stamped(tmp_path / "a", KEY, {"gamma": 1.0}),
                       OTHER: _stamped(tmp_path / "b", OTHER, {"gamma": 1.0})})
    states = _states(_config(tmp_path / "me", model={"gamma": 2.0}), table)
    with pytest.raises(ConfigError, match=r"^model\.gamma: the changelog part of partition"):
        states.resume_at([TP])


def test_a_record_of_this_config_that_another_release_spelled_otherwise_is_logged_and_taken_as_missing(
        tmp_path, caplog):
    """The record keeps the config it was written with, and it is this member's: the learner refuses it
    only because the release that wrote it spells a setting otherwise (docs/deploy.md, Upgrades), so it
    is taken as missing, as before, not a reason to stop the member."""
    cfg = _config(tmp_path)
    old = _states(cfg, FakeTable())
    old.resume_at([TP])
    _run(old.learner, _events(200))
    old.touched(KEY, 200)
    [(_, _, value)] = old.records_for({TP: 200}, force=True)
    c = Contribution.from_bytes(value)
    c.identity = {**c.identity, "settings": {**c.identity["settings"], "spelled_otherwise": "1"}}
    states = _states(cfg, FakeTable({KEY: c.to_bytes()}))
    with caplog.at_level(logging.ERROR, logger="stream_cl.daemon"):
        assert states.resume_at([TP]) == {}
    assert [r.getMessage() for r in caplog.records] == ["changelog_refused"]
    assert states.learner.partitions_ == [] and KEY not in states.parts


def test_a_damaged_changelog_record_is_still_logged_and_taken_as_missing(tmp_path, caplog):
    value = bytearray(_gamma_record(tmp_path))
    value[len(value) // 2] ^= 0x01  # a bit flipped: its SHA-256 no longer matches
    states = _states(_config(tmp_path, model={"gamma": 1.0}), FakeTable({KEY: bytes(value)}))
    with caplog.at_level(logging.ERROR, logger="stream_cl.daemon"):
        assert states.resume_at([TP]) == {}
    assert [r.getMessage() for r in caplog.records] == ["changelog_refused"]


# -- F1: at equal offsets, the part the checkpoint restored is kept ----------------------------------
def _restored(cfg, learner, table, offsets):
    """PartitionStates as a restart builds them from a checkpoint covering ``offsets`` (its learner
    a copy of ``learner``: a checkpoint round trip continues it bit for bit), owning KEY."""
    states = _states(cfg, table, copy.deepcopy(learner))
    states.offsets = dict(offsets)
    states.load_extra({"parts": {}, "owned": [KEY]})
    return states


def _without_anchors(c: Contribution) -> bytes:
    """``c`` as releases before the heads' anchors were kept wrote it."""
    old = Contribution.from_bytes(c.to_bytes())
    for head in old.heads:
        head.pop("anchor", None)
    return old.to_bytes()


def test_a_record_without_anchors_at_the_checkpoints_offset_leaves_the_restored_part_exact(tmp_path):
    cfg = _config(tmp_path)
    evs = _events(2000)
    first, second = evs[:1000], evs[1000:]
    base = build_learner(cfg)
    _run(base, first)
    c = _record(base, KEY, 1000, group=cfg.kafka.group_id)  # (the stamp is compared, and matches)
    assert any(h.get("anchor") is not None for h in c.heads)  # what the stripping below removes
    states = _restored(cfg, base, FakeTable({KEY: _without_anchors(c)}), {TP: 1000})
    assert states.resume_at([TP]) == {TP: 1000}
    expected = _run(base, second)  # the uninterrupted run
    got = _run(states.learner, second)
    assert np.abs(got - expected).max() < 1e-9
    assert states.parts[KEY] == 1000 and KEY not in states.changed  # the changelog holds this part: none owed


def test_a_record_covering_more_labels_at_the_same_events_offset_replaces_the_restored_part(tmp_path):
    cfg = _config(tmp_path, labels_topic="labels")
    labels = TopicPartition("labels", 0)
    evs = _events(400)
    base = build_learner(cfg)
    _run(base, evs[:300])
    newer = build_learner(cfg)  # the same events, and a label joined since (learned, as a join learns)
    _run(newer, evs[:301])
    value = _record(newer, KEY, 300, labels=41).to_bytes()
    states = _restored(cfg, base, FakeTable({KEY: value}), {TP: 300, labels: 40})
    assert states.resume_at([TP]) == {TP: 300, labels: 41}  # the record's labels offset: it was installed
    assert KEY not in states.ahead

    behind = _restored(cfg, base, FakeTable({KEY: _record(base, KEY, 300, labels=39).to_bytes()}),
                       {TP: 300, labels: 40})
    assert behind.resume_at([TP]) == {TP: 300, labels: 40}  # the checkpoint covers more: kept, a record owed
    assert KEY in behind.changed and KEY in behind.ahead


def _takeovers(caplog):
    return [r.stream_cl_fields.get("source") for r in caplog.records if r.getMessage() == "takeover"]


def test_a_part_not_restored_gives_way_to_the_record_at_equal_offsets(tmp_path, caplog):
    """A part folded in (not the restored one) is replaced by the record at an equal offset, as before;
    the restored one is not."""
    cfg = _config(tmp_path)
    base = build_learner(cfg)
    _run(base, _events(300))
    value = _record(base, KEY, 300).to_bytes()
    folded = _states(cfg, FakeTable({KEY: value}), copy.deepcopy(base))
    folded.parts[KEY] = 300  # folded in: not in ``ahead``
    restored = _restored(cfg, base, FakeTable({KEY: value}), {TP: 300})
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        assert folded.resume_at([TP]) == {TP: 300}
        assert _takeovers(caplog) == ["changelog"]
        assert restored.resume_at([TP]) == {TP: 300}
        assert _takeovers(caplog) == ["changelog"]  # no second takeover from the changelog
    assert folded.parts[KEY] == restored.parts[KEY] == 300 and not folded.ahead and not restored.ahead


def test_a_restored_part_a_fold_replaced_resumes_its_labels_from_the_record(tmp_path):
    """The fold installed the record's part (labels up to 25) over the one the checkpoint restored (labels up
    to 40): taken back, the partition must resume its labels from the record's 25, not the checkpoint's 40,
    or the labels between are never learned (r22: the key stayed marked as restored)."""
    cfg = _config(tmp_path, labels_topic="labels")
    labels = TopicPartition("labels", 0)
    events = _events(400)
    group_learner = build_learner(cfg)
    _run(group_learner, events[:300])
    record = _record(group_learner, KEY, 300, labels=25, group=cfg.kafka.group_id).to_bytes()
    checkpoint_learner = build_learner(cfg)
    _run(checkpoint_learner, events[:315])  # 300 events and 15 label joins
    states = _restored(cfg, checkpoint_learner, FakeTable({KEY: record}), {TP: 300, labels: 40})
    other = TopicPartition(TOPIC, 1)
    states.resume_at([other])  # the group gives this member another partition this time
    assert states.fold(force=True) == 1  # KEY's record, folded into the model it serves
    states.drop([other])
    assert states.resume_at([TP]) == {TP: 300, labels: 25}


def test_a_tie_between_the_group_and_the_odd_member_goes_to_this_member(tmp_path, caplog):
    """Review r82: three members, one started with gamma = 2.0; when it left, each healthy member taking its
    partitions over counted the other healthy member's records (fit) against the odd one's (unfit), a tie,
    and stopped with exit 2, its error telling the operator to take the odd setting. A tie with records on
    both sides now goes to this member: the odd part is taken as missing."""
    table = FakeTable({KEY: _stamped(tmp_path / "odd", KEY, {"gamma": 2.0}),
                       OTHER: _stamped(tmp_path / "fit", OTHER, {"gamma": 1.0})})
    states = _states(_config(tmp_path / "me", model={"gamma": 1.0}), table)
    with caplog.at_level(logging.ERROR, logger="stream_cl.daemon"):
        assert states.resume_at([TP]) == {}  # (was: ConfigError naming model.gamma)
    assert KEY not in states.parts
    assert [r.getMessage() for r in caplog.records] == ["changelog_refused"]
