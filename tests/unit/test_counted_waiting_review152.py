"""Review r152 (memory of a daemon that runs for months): the router's record of the events it counted as
predict-only while they wait for a delayed label (``Router._counted_waiting``) is bounded by
``max(2 * labels.max_pending, 10_000)`` per label store held *now*, but it gave back one entry per new
waiting event: once a rebalance left the member fewer partitions (their stores dropped), it stayed at the
size the old bound allowed for the life of the process (12 partitions' worth, 2.4 million entries at the
default max_pending, for a member then holding 2). It now drops its oldest entries down to the bound."""

from __future__ import annotations

from types import SimpleNamespace

from connectors.kafka import PolledBatch
from connectors.router import Router
from connectors.status import DaemonMetrics
from router_kit import RecordingPublisher  # tests/unit/router_kit.py
from stream_cl.config import load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import Prequential


def _waiting(start: int, n: int) -> PolledBatch:
    return PolledBatch([Event({"a": float(i % 3)}, None, f"e{i}", origin=f"events/0@{i}") for i in range(start, start + n)],
                       {}, frozenset())


def test_r152_counted_waiting_shrinks_to_the_bound_of_the_stores_held_now():
    cfg = load_config_dict({"model": {"kind": "analytic"},
                            "kafka": {"topics": ["events"], "labels_topic": "labels"}})
    learner = build_learner(cfg.model)
    pending = PendingStores(max_pending=1000, clock=lambda: 0.0)
    state = SimpleNamespace(add=lambda n: None, touched=lambda key, n: None)
    router = Router(cfg, Prequential(learner), learner, pending, RecordingPublisher(), DaemonMetrics(), state,
                    partitioned=False)
    router._counted_bound = 5  # per store (the default, 10,000 at least, made the same shape slowly)
    pending.for_key("events/1"), pending.for_key("events/2")  # three stores held: room for 15
    router.process(_waiting(0, 15))
    assert len(router._counted_waiting) == 15
    pending.drop("events/1"), pending.drop("events/2")  # a rebalance took two partitions away: room for 5
    router.process(_waiting(15, 10))
    assert len(router._counted_waiting) == 5, len(router._counted_waiting)  # stayed at 15 before
    assert list(router._counted_waiting)[-1] == (None, "e24")  # the newest kept
