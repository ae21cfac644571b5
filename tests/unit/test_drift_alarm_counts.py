"""The drift alarm counter is what this process's steps raised, over every partition (connectors/router.py).

Each source partition keeps its own drift monitor. ``stream_cl_drift_alarms_total`` must count the
alarms of all of them (the active partition's alone missed the others), and only those raised by
learning here: a part taken over from another member brings its lifetime count (summed over the
group, those alarms would count twice), and replayed events learned again raised theirs before.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.kafka import PolledBatch
from connectors.prometheus import register_metrics
from connectors.router import Router
from connectors.status import DaemonMetrics
from stream_cl.config import load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import Prequential

CONFIG = {"model": {"device": "cpu", "width": 8, "key_units": 0},
          "drift": {"detector": "page_hinkley", "response": ["record"]},
          "kafka": {"topics": ["events"], "predictions_topic": "p"}, "run": {"batch_size": 64}}


class _Publisher:
    def write(self, predictions):
        pass

    def write_dead(self, records):
        pass


def _router(learner=None, cfg=None):
    cfg = load_config_dict(CONFIG) if cfg is None else cfg
    learner = build_learner(cfg) if learner is None else learner
    state = SimpleNamespace(add=lambda n: None, touched=lambda key, n: None)
    return Router(cfg, Prequential(learner, window=50), learner, PendingStores(), _Publisher(), DaemonMetrics(),
                  state, partitioned=True)


def _shifting(partition: int, n: int = 600, seed: int = 0) -> list[Event]:
    """A concept that turns over half way: the detector raises an alarm after the turn."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = rng.normal(size=2)
        y = "p" if (x[0] > 0) == (i < n // 2) else "n"
        out.append(Event({"a": float(x[0]), "b": float(x[1])}, y, f"{partition}-{i}", None, None,
                         f"events/{partition}@{i}"))
    return out


def _counted(router) -> float:
    """``stream_cl_drift_alarms_total`` as Prometheus scrapes it from this router's daemon."""
    daemon = SimpleNamespace(metrics=router.metrics, learner=router.learner)
    registry = CollectorRegistry()
    register_metrics(registry, lambda: daemon)
    text = generate_latest(registry).decode()
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == "stream_cl_drift_alarms_total")


def test_alarms_of_every_partition_are_counted():
    router = _router()
    assert _counted(router) == 0
    a, b = _shifting(0, seed=1), _shifting(1, seed=2)
    for i in range(0, 600, 100):  # the two partitions interleaved, poll by poll
        router.process(PolledBatch(a[i : i + 100] + b[i : i + 100], {}, frozenset()))
    learner = router.learner
    assert learner.n_alarms_ >= 2 and len(learner.partitions_) == 2
    assert _counted(router) == learner.n_alarms_  # the active partition's monitor alone held about half
    assert learner.status().drift.alarms == learner.n_alarms_


def test_a_part_taken_over_and_replayed_events_add_no_alarms():
    other = _router()
    for i in range(0, 600, 100):
        other.process(PolledBatch(_shifting(5, seed=3)[i : i + 100], {}, frozenset()))
    assert other.learner.n_alarms_ >= 1
    router = _router()
    assert _counted(router) == 0
    router.process(PolledBatch(_shifting(0, n=100, seed=4), {}, frozenset()))
    before = _counted(router)
    router.learner.merge("events/5", other.learner.contribution("events/5"))  # a takeover
    assert router.learner.n_alarms_ >= other.learner.n_alarms_  # the model's totals include the part's
    replay = _shifting(6, seed=5)
    router.process(PolledBatch(replay, {}, frozenset(e.origin for e in replay)))  # re-learned, silent
    assert router.learner.n_alarms_ > other.learner.n_alarms_  # the replay raised alarms again ...
    assert _counted(router) == before  # ... and neither they nor the taken-over part's count here


def test_a_steps_alarm_lines_are_its_own_partitions(caplog):
    """The lines of a step whose partition keeps fewer alarms than the step raised (drift.max_alarms)
    named another partition's old alarms: the list of every partition's alarms was sliced."""
    import logging

    from connectors.logs import _FIELDS_ATTR

    cfg = load_config_dict({**CONFIG, "drift": {"detector": "page_hinkley", "response": ["record"], "max_alarms": 1},
                            "run": {"batch_size": 2000}})
    router = _router(cfg=cfg)
    router.process(PolledBatch(_shifting(0, n=700, seed=1), {}, frozenset()))
    theirs = [a["t"] for a in router.learner.alarms_]
    assert theirs
    rng = np.random.default_rng(2)
    flips = [Event({"a": float(x[0]), "b": float(x[1])}, "p" if (x[0] > 0) == ((i // 350) % 2 == 0) else "n",
                   f"1-{i}", None, None, f"events/1@{i}") for i, x in enumerate(rng.normal(size=(2000, 2)))]
    caplog.set_level(logging.INFO, logger="stream_cl.daemon")
    before = router.learner.n_alarms_
    router.process(PolledBatch(flips, {}, frozenset()))
    assert router.learner.n_alarms_ - before > 1  # more than partition 1's monitor keeps
    lines = [getattr(r, _FIELDS_ATTR) for r in caplog.records if r.getMessage() == "drift_alarm"]
    assert [f["t"] for f in lines if "t" in f] == [router.learner.drift_.alarms_[-1]["t"]]
    assert any("more alarms" in f.get("detail", "") for f in lines)
