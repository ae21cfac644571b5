"""Work re-learned silently is not counted again in the exported counters (connectors/router.py).

After a restore the daemon re-learns, silently, the records between its state's offsets and the
group's committed ones; a member that takes a partition over re-learns it from the changelog's
offset. Whoever processed those records first (the crashed process, the member before) exported
their delayed-label joins and category overflows already: ``stream_cl_labels_total`` and
``stream_cl_category_overflow_total`` read from the label store's and the learner's lifetime
counts counted them a second time (``increase()`` across a crash: 600 joins read as 1200), and a
high-water mark held the new work of a member that started over with fewer partitions under the
old count. These tests read the counters as Prometheus scrapes them, through one collector per
process as connectors.http serves it; the events of the replay publish no prediction, so they add
no latency observation either.
"""

from __future__ import annotations

import copy
import threading
from types import SimpleNamespace

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.kafka import PolledBatch
from connectors.prometheus import register_metrics
from connectors.router import Router
from connectors.status import DaemonMetrics, StatusReporter
from stream_cl.config import load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.pending import LabelUpdate
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import Prequential
from router_kit import GroupPublisher, RecordingPublisher  # tests/unit/router_kit.py
from source_kit import ItemsSource  # tests/unit/source_kit.py

# at most 2 categories of their own per feature: every later category a learned event brings overflows
SECTIONS = {"model": {"kind": "analytic", "forgetting": [1.0], "max_categories": 2},
            "kafka": {"topics": ["events"], "predictions_topic": "p", "labels_topic": "labels"},
            "run": {"batch_size": 4}}
CONFIG = load_config_dict(SECTIONS)


def _event(part: int, i: int) -> Event:
    """Unlabelled event ``i`` of partition ``part``: its category ``c`` is its own (none repeats)."""
    a = float(np.random.default_rng(1000 * part + i).normal())
    return Event({"a": a, "c": f"v{part}-{i}"}, None, f"{part}-{i}", None, None, f"events/{part}@{i}")


def _label(part: int, i: int, offset: int | None = None) -> LabelUpdate:
    """The delayed label of :func:`_event` ``(part, i)``, at ``offset`` of labels partition ``part``."""
    y = "p" if _event(part, i).x["a"] > 0 else "n"
    return LabelUpdate(f"{part}-{i}", y, f"labels/{part}@{i if offset is None else offset}")


def _batch(items: list, silent: bool = False) -> PolledBatch:
    return PolledBatch(items, {}, frozenset(item.origin for item in items) if silent else frozenset())


class _Process:
    """One registry for the process, serving whichever daemon is current (as connectors.http.serve does)."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.registry = CollectorRegistry()
        register_metrics(self.registry, lambda: self.daemon)

    def scrape(self) -> dict:
        """The counters in question, as Prometheus reads them (the gauges refreshed first, as the loop does)."""
        StatusReporter(self.daemon.metrics).refresh(None, self.daemon.pending)
        out = {"events": 0.0}
        for fam in text_string_to_metric_families(generate_latest(self.registry).decode()):
            for s in fam.samples:
                if s.name == "stream_cl_labels_total":
                    out[s.labels["outcome"]] = s.value
                elif s.name == "stream_cl_category_overflow_total":
                    out["overflow"] = s.value
                elif s.name == "stream_cl_event_latency_seconds_count":
                    out["latency"] = s.value
                elif s.name == "stream_cl_events_total":
                    out["events"] += s.value
        return out


def _router(learner=None, pending=None, metrics=None, partitioned=True) -> Router:
    learner = build_learner(CONFIG.model) if learner is None else learner
    state = SimpleNamespace(add=lambda n: None, touched=lambda key, n: None)
    return Router(CONFIG, Prequential(learner, window=50), learner, PendingStores() if pending is None else pending,
                  RecordingPublisher(), DaemonMetrics() if metrics is None else metrics, state, partitioned=partitioned)


def _as_daemon(router: Router) -> SimpleNamespace:
    return SimpleNamespace(metrics=router.metrics, learner=router.learner, pending=router.pending, step=router.step)


def _counts(scraped: dict) -> tuple:
    return scraped["joined"], scraped["overflow"], scraped["expired"], scraped["unknown"]


# -- a partition taken over ---------------------------------------------------------------------
def test_a_partition_taken_over_adds_nothing_for_the_joins_it_replays():
    before = _router()  # the member that held partition 5: its changelog record, then three more joins committed
    before.process(_batch([_event(5, i) for i in range(6)] + [_label(5, i) for i in range(3)]))
    record = before.learner.contribution("events/5").to_bytes(), copy.deepcopy(before.pending.export("events/5"))
    before.process(_batch([_label(5, i) for i in range(3, 6)]))

    router = _router()
    proc = _Process(_as_daemon(router))
    router.process(_batch([_event(0, i) for i in range(4)] + [_label(0, i) for i in range(4)]))
    assert _counts(proc.scrape()) == (4, 2, 0, 0)  # 4 joins; c=v0-0 and c=v0-1 have columns, 2 overflow
    router.learner.merge("events/5", record[0])  # the takeover (connectors/partitions.py)
    router.pending.install("events/5", record[1])
    router.process(_batch([_label(5, i) for i in range(3, 6)], silent=True))  # from the changelog's offset
    assert router.pending.for_key("events/5").joined == 3  # joined and learned again, silently ...
    assert _counts(proc.scrape()) == (4, 2, 0, 0)  # ... and counted by the member before, not here
    router.process(_batch([_event(5, i) for i in range(6, 8)] + [_label(5, i) for i in range(6, 8)]))
    assert _counts(proc.scrape()) == (6, 4, 0, 0)  # the new work counts, once


# -- a daemon that starts over in the same process --------------------------------------------
def test_a_member_that_starts_over_with_fewer_partitions_counts_its_new_work():
    """Fenced, it restores its checkpoint and rejoins with partition 1 alone: partition 0's joins since the
    checkpoint are not re-learned here (another member has them now). A mark held at the old count hid as
    many of the new joins; nor may partition 1's replay count again."""
    first = _router()
    proc = _Process(_as_daemon(first))
    first.process(_batch([_event(p, i) for p in (0, 1) for i in range(6)]))
    first.process(_batch([_label(p, i) for p in (0, 1) for i in range(3)]))
    saved = copy.deepcopy((first.learner.state_dict(), first.pending.state_dict()))  # the checkpoint
    first.process(_batch([_label(p, i) for p in (0, 1) for i in range(3, 6)]))  # committed after it
    assert _counts(proc.scrape()) == (12, 10, 0, 0)

    learner = build_learner(CONFIG.model)
    learner.load_state_dict({k: v for k, v in saved[0].items() if k != "identity"})
    pending = PendingStores().load_state_dict(saved[1])
    again = _router(learner, pending, metrics=first.metrics)  # the process's DaemonMetrics, as run_daemon passes it
    pending.drop("events/0")  # not assigned again: its owner has it
    proc.daemon = _as_daemon(again)
    again.process(_batch([_label(1, i) for i in range(3, 6)], silent=True))  # up to the committed offset
    assert _counts(proc.scrape()) == (12, 10, 0, 0)
    again.process(_batch([_event(1, i) for i in range(6, 10)] + [_label(1, i) for i in range(6, 10)]))
    assert _counts(proc.scrape()) == (16, 14, 0, 0)


# -- latency ------------------------------------------------------------------------------------
def test_event_latency_observes_the_new_events_alone():
    router = _router(partitioned=False)
    proc = _Process(_as_daemon(router))
    events = [Event({"a": float(i)}, "p" if i % 2 else "n", str(i), None, None, f"events/0@{i}") for i in range(12)]
    router.process(PolledBatch(events, {}, frozenset(e.origin for e in events[:7])))
    got = proc.scrape()
    assert router.metrics.events["replayed"] == 7
    assert got["latency"] == got["events"] == 5  # one observation per published prediction
    assert router.metrics.step_seconds.snapshot()[2] == 4  # steps: 4 + 3 replayed, 1 + 4 new (batch_size 4)


# -- outcomes made between polls ----------------------------------------------------------------
def test_expiry_on_a_quiet_poll_and_an_eviction_at_a_commit_count_as_new():
    now = [0.0]
    router = _router(pending=PendingStores(max_age_s=10.0, clock=lambda: now[0]), partitioned=False)
    proc = _Process(_as_daemon(router))
    router.process(_batch([Event({"a": float(i)}, None, str(i), None, None, f"events/0@{i}") for i in range(5)]))
    assert router.pending.for_key(None).evict_oldest(2) == 2  # for a changelog record over its limit
    now[0] = 11.0
    router.expire()  # the daemon's quiet poll
    assert _counts(proc.scrape()) == (0, 0, 5, 0)  # 2 evicted and 3 expired: their labels never come


def test_new_events_that_expire_during_a_poll_of_silent_records_count():
    """Found by review: a poll of silent records alone (another partition catching up after a takeover)
    had its whole expiry skipped as replayed work, the expiry of events this process published too."""
    now = [0.0]
    router = _router(pending=PendingStores(max_age_s=10.0, clock=lambda: now[0]))
    proc = _Process(_as_daemon(router))
    router.process(_batch([_event(1, i) for i in range(5)]))  # published here, waiting for their labels
    now[0] = 11.0
    router.process(_batch([_event(0, i) for i in range(3)], silent=True))  # partition 0 re-read, nothing else
    assert _counts(proc.scrape()) == (0, 0, 5, 0)
    now[0] = 22.0
    router.expire()  # the re-read events expire too, here: an expiry counts where it happens
    assert _counts(proc.scrape()) == (0, 0, 8, 0)


def test_a_new_label_joins_a_re_read_event_as_new_work_in_either_order():
    """Found by review: a new label read before its event came again silently was learned and counted in
    label_joined, but not exported as joined; the same join in the other order was."""
    for label_first in (False, True):
        router = _router()
        proc = _Process(_as_daemon(router))
        event, label = _batch([_event(0, 0)], silent=True), _batch([_label(0, 0)])
        for batch in ((label, event) if label_first else (event, label)):
            router.process(batch)
        assert router.metrics.events["label_joined"] == 1
        assert _counts(proc.scrape()) == (1, 0, 0, 0), label_first


def test_a_replayed_join_and_the_expiry_of_re_read_records_add_nothing():
    router = _router(partitioned=False)
    proc = _Process(_as_daemon(router))
    router.process(_batch([_event(0, 0), _event(0, 1)], silent=True))
    router.process(_batch([_label(0, 0)], silent=True))  # both records committed before the restore
    assert router.pending.counters()["joined"] == 1 and router.metrics.events["label_joined"] == 1
    assert _counts(proc.scrape()) == (0, 0, 0, 0)


def test_events_of_a_partition_taken_over_count_when_they_expire_here():
    """Found by review: a store handed over with its partition loads its entries as committed, and its last
    owner dropped them uncounted: counted by their committed flag, their expiry counted nowhere."""
    now = [0.0]
    old = PendingStores(max_age_s=10.0, clock=lambda: now[0])
    _router(pending=old).process(_batch([_event(0, i) for i in range(4)]))  # waiting at the old owner
    router = _router(pending=PendingStores(max_age_s=10.0, clock=lambda: now[0]))
    proc = _Process(_as_daemon(router))
    router.pending.install("events/0", old.export("events/0"))  # the takeover, from the changelog
    router.pending.drop("events/0")  # revoked and given back ...
    router.pending.install("events/0", old.export("events/0"))  # ... keeps the totals as they were
    router.pending.thaw()  # the daemon's next poll: it consumes the partition, so the store's ages run
    now[0] = 11.0
    router.expire()
    assert _counts(proc.scrape()) == (0, 0, 4, 0)


# -- a new process after a crash, and a daemon that starts over in it ---------------------------------
def _daemon(ckdir, items: list, group: dict, metrics=None, pending=None):
    from connectors.commit import CommitPolicy
    from connectors.daemon import Daemon

    cfg = load_config_dict({**SECTIONS, "checkpoint": {"dir": str(ckdir), "every_events": 16, "every_seconds": 3600}})
    d = Daemon(cfg, build_learner(cfg.model), lambda me: ItemsSource(me, items, group), GroupPublisher(group),
               PendingStores() if pending is None else pending, threading.Event(), metrics=metrics)
    d.commits.policy = CommitPolicy(0)  # a commit after every poll: nothing uncommitted when it "crashes"
    return d


def _until(daemon, position: int) -> None:
    while daemon.source.positions[daemon.source.tp] < position:
        daemon.run_once()
    assert daemon.source.positions[daemon.source.tp] == position


def _scrape(proc: _Process) -> tuple:
    got = proc.scrape()
    return _counts(got) + (got["latency"], got["events"])


def _stream() -> list:
    """Events and their delayed labels in the partition's order (the record at offset k is the k-th)."""
    e, lab = [_event(0, i) for i in range(24)], [_label(0, i) for i in range(24)]
    return e[:12] + lab[:8] + e[12:16] + lab[8:16] + e[16:20] + lab[16:20] + e[20:] + lab[20:]


def test_a_new_process_after_a_crash_counts_only_the_work_after_its_replay(tmp_path):
    items, group = _stream(), {}
    first = _daemon(tmp_path, items, group)
    _until(first, 32)  # checkpoint at 16; 16..31 committed after it; then the process dies
    assert group == {("events", 0): 32}
    assert _scrape(_Process(first)) == (16, 14, 0, 0, 16, 16)  # 16 joins: 2 categories with columns, 14 overflow

    second = _daemon(tmp_path, items, group)  # a new process: its own metrics and registry
    assert second.source.positions[second.source.tp] == 16  # 16..31 are re-learned silently
    proc = _Process(second)
    _until(second, 32)
    assert second.metrics.events["replayed"] == 4 and second.pending.for_key(None).joined == 16
    assert _scrape(proc) == (0, 0, 0, 0, 0, 0)  # 12 joins, 12 overflows and 4 events replayed: none counts again
    _until(second, 40)
    assert _scrape(proc) == (4, 4, 0, 0, 4, 4)

    # fenced: the daemon starts over in this process, with its metrics, served by the same collector
    third = _daemon(tmp_path, items, group, metrics=second.metrics)
    proc.daemon = third
    assert third.source.positions[third.source.tp] == 32  # 32..39 again, silently
    _until(third, 40)
    assert _scrape(proc) == (4, 4, 0, 0, 4, 4)
    _until(third, 48)
    assert _scrape(proc) == (8, 8, 0, 0, 8, 8)  # the new work after it, once


# -- found by the twenty-second session's review of delayed labels --------------------------------------
def test_evictions_and_unknown_labels_that_re_read_records_cause_are_not_counted_again():
    """An eviction (``labels.max_pending``) or an unknown label (``labels.max_early``) follows the records: the
    silent re-read of a replay makes the same ones the process before made and exported. They were counted
    whenever they happened, so every one after a crash was exported twice (600 evictions read as 1,200)."""
    router = _router(pending=PendingStores(max_pending=2, max_early=1, clock=lambda: 0.0))
    proc = _Process(_as_daemon(router))
    router.process(_batch([_event(0, i) for i in range(5)], silent=True))  # 3 evicted, in the process before too
    router.process(_batch([_label(1, i) for i in range(3)], silent=True))  # no events: 2 labels pushed out
    counts = router.pending.counters()
    assert (counts["evicted"], counts["unknown"]) == (3, 2)  # the store's lifetime counts have them
    assert _counts(proc.scrape())[2:] == (0, 0)
    router.process(_batch([_event(0, 5)]))  # new work: its eviction and its label's push count once
    router.process(_batch([_label(1, 3, offset=3)]))
    assert _counts(proc.scrape())[2:] == (1, 1)


def test_a_quiet_partition_expires_while_other_partitions_bring_labels():
    """Found by review: expiry ran in every store only on a poll without labels, so while one partition's labels
    kept coming, another partition's waiting events never expired (nor were counted)."""
    now = [0.0]
    router = _router(pending=PendingStores(max_age_s=10.0, clock=lambda: now[0]))
    proc = _Process(_as_daemon(router))
    router.process(_batch([_event(1, i) for i in range(3)]))  # partition 1: waits, then goes quiet
    for t in range(1, 13):  # partition 0: an event and its label every second
        now[0] = float(t)
        router.process(_batch([_event(0, t), _label(0, t)]))
    assert len(router.pending.for_key("events/1")) == 0
    assert _counts(proc.scrape())[0] == 12 and _counts(proc.scrape())[2] == 3


def test_the_predict_only_bookkeeping_is_bounded_per_partition():
    """Found by review: the events counted predict-only while they wait were bounded by ``2 * max_pending`` over
    all partitions, so with three full partitions the joins of the oldest were no longer moved to labelled and the
    report said events = labelled + predict-only + 2,000."""
    router = _router(pending=PendingStores(max_pending=10, clock=lambda: 0.0))
    router._counted_bound = 10  # as 2 * max_pending would give for max_pending = 5 (the real floor is 10,000)
    for part in range(3):
        router.process(_batch([_event(part, i) for i in range(10)]))
    for part in range(3):
        router.process(_batch([_label(part, i, offset=i) for i in range(10)]))
    report = router.step.stats.report()
    assert (report["events"], report["labelled"], report["predict_only"]) == (30, 30, 0)


def test_a_restored_label_store_does_not_age_until_the_daemon_consumes(tmp_path):
    """Found by review: a restored store's ages ran from the restore, so the tens of seconds a new process waits for
    its partitions after a crash (the group's session timeout) expired an event whose label had been joined,
    learned and committed before the crash: re-read next, the label found no event and the event was never
    learned again. Its time now stands still until the daemon consumes."""
    def run(wait: float) -> int:
        now, group = [0.0], {}
        items = [_event(0, i) for i in range(4)] + [_label(0, 0, offset=4)] + [_event(0, i) for i in range(5, 8)]
        first = _daemon(tmp_path / str(wait), items, group, pending=PendingStores(max_age_s=10.0, clock=lambda: now[0]))
        _until(first, 4)
        first.commits.commit("revoke", partitions=set(first.source.assigned))  # a checkpoint: event 0 waits
        now[0] = 9.0
        _until(first, 8)  # its label joins it 9 s after it came (max_age_s = 10): learned, committed; then a crash
        assert first.pending.counters()["joined"] == 1
        now[0] += 500.0  # down
        second = _daemon(tmp_path / str(wait), items, group,
                         pending=PendingStores(max_age_s=10.0, clock=lambda: now[0]))
        now[0] += wait  # the group join: quiet polls, no partition yet
        second.router.expire()
        _until(second, 8)
        return second.pending.counters()["joined"]

    assert run(0.0) == 1
    assert run(11.0) == 1  # was 0: expired during the join, its label re-read as unknown

