"""Review r73: entries a store drops when it is loaded under smaller bounds than the state was written with
(labels.max_pending, labels.max_early lowered between runs, or smaller on the member taking a partition over)
were missing from stream_cl_labels_total, and a takeover's drop was counted nowhere."""

from stream_cl.events import Event
from stream_cl.pending import LabelUpdate
from stream_cl.pending_stores import PendingStores


def _state() -> dict:
    big = PendingStores(max_pending=5, max_early=5, clock=lambda: 0.0)
    store = big.for_key(None)
    for i in range(5):
        store.add(Event({"a": 1.0}, None, f"e{i}", None, None, f"events/0@{i}"))
        store.join(LabelUpdate(f"x{i}", "y", f"labels/0@{i}"))  # labels before their events: they wait
    return big.state_dict()


def test_a_restore_under_smaller_bounds_counts_what_it_drops_as_this_process_work():
    small = PendingStores(max_pending=2, max_early=1, clock=lambda: 0.0).load_state_dict(_state())
    assert small.new_outcomes() == (0, 3, 4)  # (joined, lost, unknown): 3 events evicted, 4 early labels dropped
    assert (small.counters()["evicted"], small.counters()["unknown"]) == (3, 4)
    assert (small.counters()["pending"], small.counters()["waiting"]) == (2, 1)


def test_a_takeover_under_smaller_bounds_counts_what_it_drops_though_it_brings_no_counts():
    stores = PendingStores(max_pending=2, max_early=1, clock=lambda: 0.0)
    stores.install("events/0", _state()["partitions"][0][1])  # counts=False: the other member's stay there
    assert stores.new_outcomes() == (0, 3, 4)
    counts = stores.counters()
    assert (counts["evicted"], counts["unknown"], counts["added"], counts["early"]) == (3, 4, 0, 0)
