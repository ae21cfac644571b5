"""Review r86: a label store that changed without events left no changelog part behind. Expiries and labels
that wait for their event did not mark their partition changed, so a revocation wrote no record, and the
next owner took over the store as it was: the expired events again (counted expired twice across the group,
after waiting past labels.max_age_s); a label that only waited left the part behind its labels offset, read
again from there by the next owner. Both mark the partition now."""

from __future__ import annotations

from types import SimpleNamespace

from connectors.kafka import PolledBatch
from connectors.router import Router
from connectors.status import DaemonMetrics
from router_kit import RecordingPublisher  # tests/unit/router_kit.py
from stream_cl.config import load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.pending import LabelUpdate
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import Prequential


def _router(clock):
    cfg = load_config_dict({"model": {"kind": "analytic", "forgetting": [1.0]},
                            "kafka": {"topics": ["events"], "predictions_topic": "p", "labels_topic": "labels"}})
    learner = build_learner(cfg.model)
    touched = []
    state = SimpleNamespace(add=lambda n: None, touched=lambda key, n: touched.append((key, n)))
    router = Router(cfg, Prequential(learner, window=5), learner, PendingStores(max_age_s=60.0, clock=clock),
                    RecordingPublisher(), DaemonMetrics(), state, partitioned=True)
    return router, touched


def test_an_expiry_on_a_quiet_partition_marks_it_changed():
    now = [1000.0]
    router, touched = _router(lambda: now[0])
    events = [Event({"a": float(i)}, None, f"e{i}", None, None, f"events/1@{i}") for i in range(3)]
    router.process(PolledBatch(events, {}, frozenset()))
    assert touched == [("events/1", 3)]
    now[0] += 30.0
    router.expire()  # nothing old enough: nothing changed
    assert touched == [("events/1", 3)]
    now[0] += 31.0
    router.expire()  # the daemon's quiet poll: the three events expire here
    assert touched[1:] == [("events/1", 0)]  # (was: nothing; the part kept them for the next owner)
    assert len(router.pending.for_key("events/1")) == 0
    now[0] += 100.0
    router.expire()  # nothing left to drop
    assert touched[1:] == [("events/1", 0)]


def test_a_label_that_waits_for_its_event_marks_its_partition_changed():
    router, touched = _router(lambda: 0.0)
    router.process(PolledBatch([LabelUpdate("later", "cat", "labels/2@0")], {}, frozenset()))
    assert touched == [("events/2", 0)]  # (was: nothing; the part stayed behind the labels offset)
    assert router.pending.for_key("events/2").waiting_labels == 1


def test_a_waiting_label_of_an_int_id_still_joins_its_event_after_a_restore():
    """A library store restored its waiting labels' ids as strings, its events' as they were: an int id that
    joined in the live store no longer did in the restored one (r86 F6; the daemon's decoders give strings)."""
    from stream_cl.pending import PendingLabels

    live = PendingLabels()
    assert live.join(LabelUpdate(8, "x", "labels/0@0")) is None  # waits for its event
    restored = PendingLabels()
    restored.load_state_dict(live.state_dict())
    restored.thaw()
    found = restored.add(Event({"a": 1.0}, None, 8, None, None, "events/0@0"))
    assert found is not None and found.y == "x"
