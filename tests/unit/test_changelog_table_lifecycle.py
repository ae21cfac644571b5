"""The model changelog's table over a run's daemons, without a broker (a fake changelog topic).

* one table per :func:`~connectors.daemon_run.run_daemon`, handed to every daemon rebuilt after a
  reset and closed once when the run ends, however it ends: a table made at each reset leaked its
  consumer (an IO thread and 3 sockets), and none was ever closed, not even at a clean stop;
* the changelog is read in the loop's thread before the source subscribes (the group join), so the
  assignment callback, which runs on the consumer's IO thread where no heartbeat goes out while it
  reads, reads only what came since: a member whose whole read there outlasted the session timeout
  was expelled during its own assignment, again at each rebuild;
* a member rebuilt on a kept table folds every key it holds (its learner is new);
* a learner with no part per partition (``model.kind = "trainable"``) and the changelog on is a
  ``config_warning``: each member serves a model of only its own partitions.
"""

from __future__ import annotations

import json
import logging
import threading

import pytest

import connectors.daemon as daemon_module
import connectors.daemon_exits as daemon_exits
import connectors.daemon_run as daemon_run
from connectors.daemon_build import RunChangelog, changelog_table
from connectors.kafka import PolledBatch
from connectors.logs import JsonFormatter
from connectors.partitions import PartitionStates
from source_kit import CommitAtOncePublisher, OnePartitionSource  # tests/unit/source_kit.py
from stream_cl.config import ConfigError, load_config_dict
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores


class Changelog:
    """The changelog topic: ``records`` (key, value) in offset order; ``journal``: what happened, in order."""

    def __init__(self, records=()):
        self.records = list(records)
        self.journal: list = []


class FakeTable:
    """A :class:`connectors.changelog.ChangelogTable` over a :class:`Changelog`: a position, the latest
    value per key, the keys changed since :meth:`changed`; ``catch_up`` reads to the end as of the call
    (at most ``chunk`` records a call, raising TimeoutError short of the end, as the real one does at its
    deadline)."""

    topic = "g.model"

    def __init__(self, changelog: Changelog, chunk: int | None = None):
        self.changelog, self.chunk = changelog, chunk
        self.position = self.records = self.closed = 0
        self.values: dict = {}
        self._changed: set = set()

    def _read(self, end: int) -> int:
        n = 0
        while self.position < end:
            key, value = self.changelog.records[self.position]
            self.values[key] = value
            self._changed.add(key)
            self.position += 1
            n += 1
        self.records += n
        return n

    def catch_up(self, timeout_s: float = 60.0) -> int:
        end = len(self.changelog.records)
        n = self._read(end if self.chunk is None else min(end, self.position + self.chunk))
        self.changelog.journal.append(("catch_up", n))
        if self.position < end:
            raise TimeoutError("not read to its end in time")
        return n

    def poll(self, timeout_ms: int = 0) -> int:
        return self._read(len(self.changelog.records))

    def get(self, key):
        return self.values.get(key)

    def changed(self) -> set:
        out, self._changed = self._changed, set()
        return out

    def keys(self):
        return list(self.values)

    def close(self) -> None:
        self.closed += 1
        self.changelog.journal.append("close")


class FakePublisher(CommitAtOncePublisher):
    """Commits at once, as InlinePublisher does; takes InlinePublisher's arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__([], {})


class GroupSource(OnePartitionSource):
    """Partition events/0 of an empty topic: subscribing is the group join, whose assignment runs the
    daemon's ``on_assign`` (as the real callback does). ``script[build]`` says what the build's first
    poll meets: "lost" (the group moved on: a reset), "crash" (the loop fails), or nothing (the end:
    ``stop_at_end`` stops it)."""

    builds: list = []  # (the table the build's state holds, its close count then)
    script: dict = {}
    changelog: Changelog

    def __init__(self, cfg, mapping, label_policy, hooks=None, changelog_topic="", time_features=None, checks=None):
        build = len(GroupSource.builds)
        table = getattr(hooks.state, "table", None)
        GroupSource.builds.append((table, table.closed if table is not None else None))
        self.changelog.journal.append("subscribe")
        if GroupSource.script.get(build) == "config error":
            raise ConfigError("kafka.test: refused at this build")
        self.hooks, self.build = hooks, build
        super().__init__(hooks, {}, 7)

    def size(self) -> int:
        return 0

    def poll(self, max_records):
        what = GroupSource.script.get(self.build)
        if what == "lost":
            self.hooks.on_revoke({self.tp}, lost=True)
        elif what == "crash":
            raise RuntimeError("the loop failed")
        return PolledBatch([], {}, frozenset())


@pytest.fixture
def fake_clients(monkeypatch):
    """Every Kafka client of Daemon.from_config faked; yields the Changelog and the tables made."""
    import kafka.admin

    from connectors import changelog as changelog_module
    from connectors import kafka as kafka_module
    from connectors import publisher as publisher_module

    changelog, made = Changelog([("events/1", b"part")]), []

    class Admin:
        def __init__(self, **options):
            pass

        def close(self):
            pass

    def table(options, topic, max_message_bytes):
        made.append(FakeTable(changelog))
        return made[-1]

    GroupSource.builds, GroupSource.script, GroupSource.changelog = [], {}, changelog
    monkeypatch.setattr(kafka.admin, "KafkaAdminClient", Admin)
    monkeypatch.setattr(changelog_module, "ensure_changelog_topic", lambda *args: False)
    monkeypatch.setattr(changelog_module, "ChangelogTable", table)
    monkeypatch.setattr(kafka_module, "KafkaSource", GroupSource)
    monkeypatch.setattr(publisher_module, "InlinePublisher", FakePublisher)
    monkeypatch.setattr(publisher_module, "ProcessPublisher", FakePublisher)
    return changelog, made


def _config(tmp_path, name="ckpt", **sections):
    return load_config_dict({
        "model": {"kind": "analytic", "forgetting": [1.0]},
        "kafka": {"topics": ["events"], "group_id": "g", "stop_at_end": True},
        "checkpoint": {"dir": str(tmp_path / name)},
        "metrics": {"enabled": False},
        **sections,
    })


# -- one table per run, closed once ---------------------------------------------------------------
@pytest.mark.parametrize("end, code", [(None, 0), ("crash", 1), ("config error", 2)])
def test_one_table_serves_every_rebuild_of_a_run_and_is_closed_once_when_it_ends(tmp_path, fake_clients, end, code):
    """Two resets (partitions lost), then the run ends: stopped, failed, or refused at the third build."""
    changelog, made = fake_clients
    GroupSource.script = {0: "lost", 1: "lost", 2: end}
    assert daemon_run._build_and_run(_config(tmp_path), threading.Event(), None, None) == code
    assert len(GroupSource.builds) == 3
    assert len(made) == 1, f"{len(made)} tables made for one run: each reset leaked one"
    (table,) = made
    assert GroupSource.builds == [(table, 0)] * 3  # the same table, open, at every build
    assert table.closed == 1 and changelog.journal[-1] == "close"


def test_a_daemon_built_without_a_run_closes_its_own_table_when_it_stops_or_resets(tmp_path, fake_clients):
    changelog, made = fake_clients
    stopped = daemon_module.Daemon.from_config(_config(tmp_path, "a"))
    assert stopped.run() == daemon_exits.EXIT_OK
    GroupSource.script = {1: "lost"}
    reset = daemon_module.Daemon.from_config(_config(tmp_path, "b"))
    assert reset.run() == daemon_exits.EXIT_RESET
    assert [t.closed for t in made] == [1, 1]  # a clean stop used to close none


# -- the read before the join ----------------------------------------------------------------------
def _daemon(tmp_path, table):
    cfg = _config(tmp_path)
    return daemon_module.Daemon(cfg, build_learner(cfg), lambda me: GroupSource(cfg.kafka, None, "optional", hooks=me),
                                FakePublisher(), PendingStores(), threading.Event(),
                                state_factory=lambda *args: PartitionStates(*args, table=table))


def test_the_changelog_is_read_before_the_group_join_and_the_assignment_reads_only_what_came_since(tmp_path):
    changelog = Changelog([(f"events/{1 + i % 3}", b"part") for i in range(500)])
    GroupSource.builds, GroupSource.script, GroupSource.changelog = [], {}, changelog

    class Joining(FakeTable):
        """Another member commits a record while this one joins."""

        def catch_up(self, timeout_s=60.0):
            if changelog.journal and changelog.journal[-1] == "subscribe":
                changelog.records.append(("events/2", b"newer part"))
            return super().catch_up(timeout_s)

    _daemon(tmp_path, Joining(changelog))
    assert changelog.journal == [("catch_up", 500), "subscribe", ("catch_up", 1)]


def test_a_long_read_before_the_join_goes_on_while_it_progresses_and_a_stalled_one_raises(tmp_path):
    cfg = _config(tmp_path)
    changelog = Changelog([(f"events/{i % 4}", b"part") for i in range(450)])
    states = PartitionStates(cfg, build_learner(cfg), PendingStores(), None, None,
                             table=FakeTable(changelog, chunk=100))
    assert states.catch_up() == 450  # five table timeouts' worth: no group waits on it yet
    assert [n for _, n in changelog.journal] == [100, 100, 100, 100, 50]
    stalled = PartitionStates(cfg, build_learner(cfg), PendingStores(), None, None,
                              table=FakeTable(Changelog([("events/0", b"part")]), chunk=0))
    with pytest.raises(TimeoutError):
        stalled.catch_up()


# -- a kept table and the fold -----------------------------------------------------------------------
def test_a_member_rebuilt_on_a_kept_table_folds_every_part_it_holds(tmp_path):
    """The table's keys were folded (changed() taken) into the learner that reset: the new learner,
    restored from an older checkpoint or from nothing, must get them too."""
    cfg = _config(tmp_path)
    other = build_learner(cfg)
    for i in range(30):
        other.learn_one({"f0": float(i % 5), "f1": float(i % 3)}, "ab"[i % 2], partition="events/1")
    changelog = Changelog([("events/1", other.contribution("events/1", offset=30).to_bytes())])
    table = FakeTable(changelog)
    first = PartitionStates(cfg, build_learner(cfg), PendingStores(), None, None, table=table)
    table.catch_up()
    assert first.fold(force=True) == 1
    rebuilt = PartitionStates(cfg, build_learner(cfg), PendingStores(), None, None, table=table)
    table.catch_up()  # nothing new
    assert rebuilt.fold(force=True) == 1 and rebuilt.parts == {"events/1": 30}
    assert rebuilt.fold(force=True) == 0  # once: then only what changes


# -- a learner without partition parts -------------------------------------------------------------
def _warnings(records) -> list[dict]:
    lines = [json.loads(JsonFormatter().format(r)) for r in records if r.levelno == logging.WARNING]
    return [line for line in lines if line.get("event") == "config_warning"]


def test_a_model_kind_without_partition_parts_and_the_changelog_on_is_a_config_warning(tmp_path, caplog):
    cfg = _config(tmp_path, model={"kind": "trainable"})
    no_parts = object()  # a learner with no contribution/merge, as the trainable one
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        assert changelog_table(cfg, no_parts) is None
    (line,) = _warnings(caplog.records)
    detail = line["detail"]
    assert detail.startswith("model.kind = 'trainable' is not partition-mergeable")
    assert "each member of group 'g' serves a model of only the partitions it consumes" in detail
    assert "Run one member (and set changelog.enabled = false)" in detail
    assert 'model.kind = "online" or "analytic"' in detail
    caplog.clear()
    off = _config(tmp_path, model={"kind": "trainable"}, changelog={"enabled": False})
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        assert changelog_table(off, no_parts) is None
    assert _warnings(caplog.records) == []  # said: no changelog, one member


def test_the_warning_comes_once_per_run_not_at_each_rebuild(tmp_path, caplog):
    cfg = _config(tmp_path, model={"kind": "trainable"})
    run = RunChangelog()
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        assert run.table_for(cfg, object()) is None and run.table_for(cfg, object()) is None
    assert len(_warnings(caplog.records)) == 1
