"""One delayed-label store per source partition: the partition is the unit of state.

A daemon in a consumer group holds the partitions the group gives it, and a partition's
events that wait for a label must move with the partition when it moves to another
member. :class:`PendingStores` keeps one :class:`~stream_cl.pending.PendingLabels` per
partition key (``None`` for a source without partitions), created on first use with the
same bounds, and answers for all of them together where a daemon reports totals.

>>> from stream_cl.events import Event
>>> from stream_cl.pending import LabelUpdate
>>> stores = PendingStores(max_pending=10, clock=lambda: 0.0)
>>> stores.for_key("events/0").add(Event({"a": 1.0}, id="e1"))
>>> stores.for_key("events/1").add(Event({"a": 2.0}, id="e2"))
>>> len(stores), stores.for_key("events/1").join(LabelUpdate("e2", "cat")).y
(2, 'cat')
>>> state = stores.export("events/0"); stores.drop("events/0"); len(stores)
0
>>> stores.install("events/0", state); sorted(stores.keys()), len(stores)
(['events/0', 'events/1'], 1)
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping

from .pending import PendingLabels

__all__ = ["PendingStores"]

_COUNTS = ("added", "joined", "unknown", "expired", "evicted", "replaced", "early")  # cumulative, unlike pending/waiting
_NEW = ("new_joined", "new_lost", "new_unknown")  # this process's new work (PendingLabels), never saved


class PendingStores:
    """Per-partition :class:`PendingLabels` with common bounds (module docstring)."""

    def __init__(self, max_pending: int = 100_000, max_age_s: float = 86_400.0, clock: Callable[[], float] = time.time,
                 max_early: int = 100_000):
        self.max_pending, self.max_age_s, self.clock, self.max_early = max_pending, max_age_s, clock, max_early
        self.stores: dict[Hashable, PendingLabels] = {}
        # the counts of stores dropped or replaced here: counters() never goes down
        self.retired: Counter = Counter()
        PendingLabels(max_pending, max_age_s, clock, max_early)  # the bounds are checked once, here

    def for_key(self, key: Hashable) -> PendingLabels:
        """``key``'s store (a partition key; ``None``: a source without partitions), made empty on first use."""
        store = self.stores.get(key)
        if store is None:
            store = self.stores[key] = PendingLabels(self.max_pending, self.max_age_s, self.clock, self.max_early)
        return store

    def keys(self):
        """The partition keys that have a store, as a list."""
        return list(self.stores)

    def holder(self, event_id, besides: Hashable) -> Hashable | None:
        """The partition key of a store other than ``besides`` (and ``None``'s) where event ``event_id``
        waits; ``None``: no other store holds it. A label joins only its own partition's store, so a
        label that waits while its event waits in another partition was keyed (or partitioned) unlike
        its event, and will never join it.

        >>> from stream_cl.events import Event
        >>> stores = PendingStores(clock=lambda: 0.0)
        >>> stores.for_key("events/1").add(Event({"a": 1.0}, id="e1"))
        >>> stores.holder("e1", besides="events/0"), stores.holder("e1", besides="events/1")
        ('events/1', None)
        """
        for key, store in list(self.stores.items()):
            if key is not None and key != besides and event_id in store:
                return key
        return None

    def _all(self) -> list[PendingLabels]:
        """The stores, copied in one step: an exporter thread reads the totals while the loop adds
        and drops stores at rebalances (iterating the dict itself could meet it resized)."""
        return list(self.stores.values())

    def __len__(self) -> int:
        return sum(len(s) for s in self._all())

    @property
    def waiting_labels(self) -> int:
        """Labels that came before their event and wait for it, in every store."""
        return sum(s.waiting_labels for s in self._all())

    def counters(self) -> dict:
        """This process's counts over every store it held (``pending`` and ``waiting``: what waits now)."""
        total: Counter = Counter(self.retired)
        for s in self._all():
            total.update(s.counters())
        return {k: total.get(k, 0) for k in (*_COUNTS, "pending", "waiting")}

    def new_outcomes(self) -> tuple[int, int, int]:
        """The outcomes of this process's new work over every store it held (``PendingLabels.new_joined``,
        ``new_lost``, ``new_unknown``): joins, events that will never get their label (evicted or expired),
        and unknown labels; never saved, never lower."""
        stores = self._all()
        return tuple(self.retired.get(name, 0) + sum(getattr(s, name) for s in stores) for name in _NEW)

    def expire(self) -> list:
        """Drop what waited too long in every store; returns the keys of the stores that dropped any
        (their state changed: a changelog part of theirs must follow)."""
        return [key for key, s in list(self.stores.items()) if s.expire()]

    def thaw(self) -> None:
        """Records come again: every restored store's time runs on (:meth:`PendingLabels.thaw`)."""
        for s in self._all():
            s.thaw()

    # -- a partition's store moves with the partition ------------------------------------------
    def export(self, key: Hashable) -> dict:
        """The state of ``key``'s store (empty if it has none): what a contribution carries."""
        return self.for_key(key).state_dict()

    def install(self, key: Hashable, state: Mapping | None, counts: bool = False) -> None:
        """Replace ``key``'s store with ``state`` (``None``: an empty store). A store taken over from
        another member brings its waiting events, not its counts (``counts=True``: a checkpoint's own)."""
        store = PendingLabels(self.max_pending, self.max_age_s, self.clock, self.max_early)
        if state is not None:
            store.load_state_dict(state)
            if not counts:
                for name in _COUNTS:
                    setattr(store, name, 0)
                # what the load dropped under this member's smaller bounds is this member's work (review r73)
                store.evicted, store.unknown = store.new_lost, store.new_unknown
        self._retire(key)
        self.stores[key] = store

    def drop(self, key: Hashable) -> None:
        """Forget ``key``'s store (its partition went to another member, with its state)."""
        self._retire(key)
        self.stores.pop(key, None)

    def _retire(self, key: Hashable) -> None:
        old = self.stores.get(key)
        if old is not None:
            self.retired.update({k: v for k, v in old.counters().items() if k in _COUNTS})
            self.retired.update({name: getattr(old, name) for name in _NEW})

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Each store's state by partition key, and the cumulative counts of the stores retired."""
        return {"partitions": [[key, s.state_dict()] for key, s in self.stores.items()],
                "retired": {k: v for k, v in self.retired.items() if k in _COUNTS}}

    def load_state_dict(self, state: Mapping) -> "PendingStores":
        """Checkpoints before per-partition stores held one store: it becomes partition ``None``'s."""
        new = dict(zip(_NEW, self.new_outcomes()))  # this process's, which a state never holds
        self.stores, self.retired = {}, Counter(state.get("retired", {}))
        self.retired.update(new)
        if "partitions" not in state:
            self.install(None, state, counts=True)
            return self
        for key, s in state["partitions"]:
            self.install(key, s, counts=True)
        return self
