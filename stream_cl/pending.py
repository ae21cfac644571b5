"""Delayed labels: predicted events wait here, bounded by count and age, until their label comes.

A stream often learns a label long after the event (a chargeback, a click, a human
review). The event is predicted when it arrives and remembered by id; a later label
for that id is joined with it and learned then. A label read before its event (the
labels topic is consumed beside an event backlog) waits for the event instead. Both
sides are bounded: beyond ``max_pending`` events (``max_early`` labels) the oldest is
evicted, and entries older than ``max_age_s`` expire. Every outcome is counted.

>>> from stream_cl.events import Event
>>> store = PendingLabels(max_pending=2, max_age_s=60, clock=lambda: 0.0, max_early=1)
>>> store.add(Event({"a": 1.0}, id="e1"))
>>> store.add(Event({"a": 2.0}, id="e2"))
>>> store.add(Event({"a": 3.0}, id="e3"))  # over max_pending: e1 is evicted
>>> store.join(LabelUpdate("e2", "cat")).x, store.join(LabelUpdate("e1", "dog"))
({'a': 2.0}, None)
>>> store.join(LabelUpdate("e4", "cow"))  # e4 not read yet: its label waits; e1's is dropped (max_early)
>>> store.add(Event({"a": 4.0}, id="e4"))  # ... and is joined when e4 comes
Event(x={'a': 4.0}, y='cow', id='e4', task=None, ts=None, origin='')
>>> store.counters()
{'added': 3, 'joined': 2, 'unknown': 1, 'expired': 0, 'evicted': 1, 'replaced': 0, 'early': 2, 'pending': 1, 'waiting': 0}

Labels arrive as JSON objects holding the event id and the label, in the fields the
mapping names (``mapping.id``, ``mapping.label``); :class:`LabelDecoder` turns bytes
into a :class:`LabelUpdate` or a dead letter and never raises:

>>> from stream_cl.config import MappingConfig
>>> LabelDecoder(MappingConfig()).decode(b'{"id": 7, "y": "cat"}', "labels/0@5")
LabelUpdate(id='7', y='cat', origin='labels/0@5')
>>> LabelDecoder(MappingConfig()).decode(b'{"id": 7}', "labels/0@6").reason
'missing_label'
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from .config import MappingConfig
from .decode import UNFORESEEN, EventDecoder
from .field_values import blank_text, id_value, label_value, text_problem
from .events import DeadLetter, Event, Prediction
from .pending_state import PendingState

__all__ = ["LabelDecoder", "LabelUpdate", "PendingLabels"]


@dataclass(frozen=True, slots=True)
class LabelUpdate:
    """A label for an earlier event, joined by ``id``."""

    id: str
    y: Hashable
    origin: str = ""


class PendingLabels(PendingState):
    """Events waiting for their label, and labels waiting for their event; both bounded.

    ``events``: ``id -> (x, task, ts, origin, added_at, published, committed)``, oldest first, where
    ``published`` is ``(y_pred, proba)`` of the prediction published for the event (``None`` when the
    caller did not give it). A label usually comes after its event, but a consumer reads the labels
    topic and the events topic independently: with an event backlog, a label is often read *before* its event.
    Such a label waits (``id -> (y, origin, added_at, committed)``, at most ``max_early`` of
    them, for at most ``max_age_s``) and is joined when its event comes; only a label whose
    event never comes within those bounds counts as ``unknown``.

    ``committed`` says the entry's record was committed before a restore: the caller re-read
    it silently (:meth:`add_committed`, :meth:`join_committed`), or the entry was restored
    (:meth:`load_state_dict`). A join was made before the restore only if both its records
    were committed; the store gives the caller the other side's flag at the join.

    ``clock`` gives the time used for ages (wall-clock seconds by default). Ages count the
    time a store is live: a store restored from a checkpoint (or a changelog part) goes on
    from the time its state was saved once records come again (:meth:`thaw`), so the time the
    daemon was down, or waited to be given its partitions, ages nothing. After
    a crash the daemon re-reads, silently, the records between its checkpoint and its last
    commit; with ages from the wall clock, the restored events would be judged by a clock
    that had moved on by the downtime, and labels already joined, learned and committed
    before the crash would be lost as expired. A second event with an id already
    waiting replaces the first (counted as ``replaced``); likewise a second early label.
    """

    def __init__(self, max_pending: int = 100_000, max_age_s: float = 86_400.0, clock: Callable[[], float] = time.time,
                 max_early: int = 100_000):
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending!r}")
        if max_early < 0:
            raise ValueError(f"max_early must be >= 0 (0: a label before its event is unknown at once), got {max_early!r}")
        if not max_age_s > 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s!r}")
        self.max_pending = int(max_pending)
        self.max_early = int(max_early)
        self.max_age_s = float(max_age_s)
        self.clock = clock
        self._shift = 0.0  # now() - clock(): a restored store goes on from when its state was saved
        self._items: OrderedDict[str, tuple] = OrderedDict()
        self._early: OrderedDict[str, tuple] = OrderedDict()
        self.added = self.joined = self.unknown = self.expired = self.evicted = self.replaced = self.early = 0
        # the outcomes of new work in this process (not saved; the daemon exports them, connectors/new_work.py).
        # A join of two records both committed before a restore, and an eviction or an unknown label that a record
        # re-read silently after it caused, were made, and counted, by the process before: they follow the records.
        # Expiries follow the store's clock, and an entry's expiry counts whenever it happens here
        self.new_joined = self.new_lost = self.new_unknown = 0
        # a restored store's time stands still until records come again (:meth:`thaw`): None when running
        self._resume_at: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    def evict_oldest(self, n: int) -> int:
        """Evict the ``n`` oldest entries (fewer if fewer wait), waiting events and labels that came
        before their event alike, the oldest first by the time each came: an event counted as
        ``evicted``, as ``max_pending`` counts it, a label as ``unknown``, as ``max_early`` counts
        it. Returns how many went.

        >>> store = PendingLabels(clock=lambda: 0.0)
        >>> store.join(LabelUpdate("e9", "cow"), now=1.0)  # a label before its event
        >>> store.add(Event({"a": 1.0}, id="e1"), now=2.0)
        >>> store.evict_oldest(1), store.waiting_labels, len(store), store.unknown
        (1, 0, 1, 1)
        """
        items, early, gone = self._items, self._early, 0
        while gone < n and (items or early):
            # (each is in the order its entries came: its first is its oldest)
            if early and (not items or early[next(iter(early))][2] < items[next(iter(items))][4]):
                early.popitem(last=False)
                self.unknown += 1
                self.new_unknown += 1
            else:
                items.popitem(last=False)
                self.evicted += 1
                self.new_lost += 1
            gone += 1
        return gone

    def __contains__(self, event_id) -> bool:
        return event_id in self._items

    def now(self) -> float:
        """The store's time: its clock's, shifted so that a restored store goes on from its saved state
        (and stands still there until :meth:`thaw`)."""
        if self._resume_at is not None:
            return self._resume_at
        return self.clock() + self._shift

    def thaw(self) -> None:
        """Let a restored store's time run again, from where its state was saved: records come again.

        Between a restore and the first records read after it (a daemon's broker connection and
        group join, tens of seconds after a crash), nothing is read, so nothing should age: the
        entries that had waited close to ``max_age_s`` and were joined before the crash would
        expire there, and their labels, re-read next, be lost. A store thaws by itself at its
        first :meth:`add` or :meth:`join`; the daemon thaws every store at each poll while it holds
        partitions. Until then :meth:`expire` drops nothing: a program that restores a store and
        only expires it calls :meth:`thaw` when it reads again.

        >>> t = [100.0]
        >>> store = PendingLabels(clock=lambda: t[0])
        >>> _ = store.load_state_dict(PendingLabels(clock=lambda: 5.0).state_dict())
        >>> t[0] = 160.0; store.now()  # a minute after the restore, nothing read: still the saved time
        5.0
        >>> store.thaw(); t[0] = 161.0; store.now()
        6.0
        """
        if self._resume_at is not None:
            self._shift = self._resume_at - self.clock()
            self._resume_at = None

    def freeze(self) -> None:
        """Stop the store's time where it is, until :meth:`thaw`: its partition was revoked and the store
        is kept until the next assignment (review r108); nothing in it ages or expires meanwhile, as
        nothing of a restored store does before records come again.

        >>> t = [100.0]
        >>> store = PendingLabels(clock=lambda: t[0])
        >>> store.freeze(); t[0] = 160.0; store.now()
        100.0
        >>> store.thaw(); t[0] = 161.0; store.now()
        101.0
        """
        if self._resume_at is None:
            self._resume_at = self.now()

    @property
    def waiting_labels(self) -> int:
        """Labels that came before their event and wait for it."""
        return len(self._early)

    def add(self, event: Event, now: float | None = None, published: Prediction | None = None) -> Event | None:
        """Remember an unlabelled, predicted event (it must have an id), and the prediction
        ``published`` for it, which :meth:`join_published` gives back with its label.

        Returns the event joined with its label if that label came first (the caller
        learns it now, and has the prediction), else ``None``: the event waits.
        """
        found = self.add_committed(event, now, published)
        return None if found is None else found[0]

    def add_committed(self, event: Event, now: float | None = None, published: Prediction | None = None,
                      committed: bool = False) -> tuple[Event, bool, str] | None:
        """As :meth:`add`, for an event whose record was ``committed`` before a restore (re-read
        silently) or not; a join comes with whether the label that came first was committed, and
        where that label was read.

        >>> store = PendingLabels(clock=lambda: 0.0)
        >>> store.join_committed(LabelUpdate("e1", "cat", "labels/0@7"), committed=True)  # waits for its event
        >>> store.add_committed(Event({"a": 1.0}, id="e1"))  # True: the label was; the event is new, so is the join
        (Event(x={'a': 1.0}, y='cat', id='e1', task=None, ts=None, origin=''), True, 'labels/0@7')
        """
        if event.id is None:
            raise ValueError("an event without an id cannot wait for a label")
        self.thaw()
        now = self.now() if now is None else now
        self.expire(now)
        label = self._early.pop(event.id, None)
        if label is not None:
            self.joined += 1
            self.new_joined += not (label[3] and committed)
            return Event(event.x, label[0], event.id, event.task, event.ts, event.origin), label[3], label[1]
        items = self._items
        if event.id in items:
            del items[event.id]
            self.replaced += 1
        told = None if published is None else (published.y_pred, float(published.proba))
        items[event.id] = (event.x, event.task, event.ts, event.origin, now, told, bool(committed))
        self.added += 1
        while len(items) > self.max_pending:
            items.popitem(last=False)
            self.evicted += 1
            self.new_lost += not committed  # a silent re-read's eviction was made before the restore
        return None

    def join(self, label: LabelUpdate, now: float | None = None) -> Event | None:
        """The waiting event with ``label.y`` attached, removed from the store.

        ``None`` if no event with that id waits: the label then waits for its event
        (see the class docstring).
        """
        found = self.join_published(label, now)
        return None if found is None else found[0]

    def join_published(self, label: LabelUpdate, now: float | None = None) -> tuple[Event, Prediction | None] | None:
        """As :meth:`join`, with the prediction published for the event when it was added
        (``None`` if none was given): prequential accuracy scores the label against it,
        not against a prediction made now by a model that has learned more since.

        >>> store = PendingLabels(clock=lambda: 0.0)
        >>> store.add(Event({"a": 1.0}, id="e1"), published=Prediction("e1", "dog", 0.75))
        >>> store.join_published(LabelUpdate("e1", "cat"))
        (Event(x={'a': 1.0}, y='cat', id='e1', task=None, ts=None, origin=''), Prediction(id='e1', y_pred='dog', proba=0.75, y_true='cat', task=None, ts=None, origin='', extra={}))
        """
        found = self.join_committed(label, now)
        return None if found is None else found[:2]

    def join_committed(self, label: LabelUpdate, now: float | None = None,
                       committed: bool = False) -> tuple[Event, Prediction | None, bool] | None:
        """As :meth:`join_published`, for a label whose record was ``committed`` before a restore
        (re-read silently) or not; a join comes with whether the waiting event was committed."""
        self.thaw()
        now = self.now() if now is None else now
        self.expire(now)
        entry = self._items.pop(label.id, None)
        if entry is None:
            self._wait(label, now, committed)
            return None
        self.joined += 1
        x, task, ts, origin, _, told, event_committed = entry
        self.new_joined += not (committed and event_committed)
        event = Event(x, label.y, label.id, task, ts, origin)
        if told is None:
            return event, None, event_committed
        return event, Prediction(label.id, told[0], told[1], label.y, task, ts, origin), event_committed

    def _wait(self, label: LabelUpdate, now: float, committed: bool = False) -> None:
        early = self._early
        if label.id in early:
            del early[label.id]
            self.replaced += 1
            self.unknown += 1  # the replaced label will never be learned
            self.new_unknown += not committed  # a silent re-read's drop was made before the restore
        early[label.id] = (label.y, label.origin, now, bool(committed))
        self.early += 1
        while len(early) > self.max_early:
            early.popitem(last=False)
            self.unknown += 1
            self.new_unknown += not committed

    def expire(self, now: float | None = None) -> int:
        """Drop entries (events and early labels) older than ``max_age_s``; returns how many events."""
        now = self.now() if now is None else now
        limit = now - self.max_age_s
        n = _drop_older(self._items, limit, 4)
        self.expired += n
        self.new_lost += n
        labels = _drop_older(self._early, limit, 2)
        self.unknown += labels
        self.new_unknown += labels
        return n

    def counters(self) -> dict:
        """``unknown`` counts labels whose event never came within the bounds; ``early`` the labels
        that came before their event; ``pending`` and ``waiting`` what waits now."""
        return {"added": self.added, "joined": self.joined, "unknown": self.unknown, "expired": self.expired,
                "evicted": self.evicted, "replaced": self.replaced, "early": self.early,
                "pending": len(self._items), "waiting": len(self._early)}


def _drop_older(items: OrderedDict, limit: float, at: int) -> int:
    """Drop the oldest entries of ``items`` whose time (``entry[at]``) is at or before ``limit``."""
    n = 0
    while items:
        oldest = next(iter(items.values()))
        if oldest[at] > limit:
            break
        items.popitem(last=False)
        n += 1
    return n


class LabelDecoder:
    """Bytes of a label record -> :class:`LabelUpdate` or :class:`DeadLetter`; never raises.

    The record is a JSON object with the event id in ``mapping.id`` (a string or an
    integer) and the label in ``mapping.label`` (a string, an integer or a boolean).
    Other fields are ignored, or refused with ``mapping.unknown_fields = "reject"``
    (the task and timestamp fields are always allowed). The bytes, the id and the label are
    read by the event decoder's rules (a byte-order mark, an integer id of any size), so
    that every event's label can come on its own.
    """

    def __init__(self, mapping: MappingConfig):
        self.mapping = mapping
        self._known = frozenset(n for n in (mapping.id, mapping.label, mapping.task, mapping.timestamp) if n)  # "": none
        self._reject = mapping.unknown_fields == "reject"
        self._json = EventDecoder(mapping)  # a label record is read as an event is: one set of JSON rules

    def decode(self, raw: bytes, origin: str = "") -> LabelUpdate | DeadLetter:
        """A label record as a :class:`LabelUpdate`, or a :class:`DeadLetter` saying why not; never raises, but for
        MemoryError."""
        try:
            return self._decode(raw, origin)
        except MemoryError:  # the machine's state, not the record's: the caller's retry, not a lost label
            raise
        except Exception as e:  # the contract is "never raises": anything odd is a dead letter (UNFORESEEN
            # marks it, which the fuzz tests look for: a bug of the decoder's own is not hidden as a bad record)
            return DeadLetter(_as_bytes(raw), "malformed", f"label record: {UNFORESEEN}{type(e).__name__}", origin)

    def _decode(self, raw, origin: str) -> LabelUpdate | DeadLetter:
        m = self.mapping
        data = _as_bytes(raw)
        obj = self._json.parse_json(data, origin)
        if type(obj) is DeadLetter:  # size, encoding, bad JSON (a NaN is a float there, judged by its field below)
            return obj
        if self._reject:
            unknown = sorted(str(k)[:40] for k in obj if k not in self._known)
            if unknown:
                return DeadLetter(data, "unknown_field", f"unknown field {unknown[0]!r} in a label record", origin)
        i = obj.get(m.id)
        if i is None or blank_text(i):
            return DeadLetter(data, "bad_id", f"label record: no id in field {m.id!r}", origin)
        i = id_value(i)
        if type(i) is tuple:
            return DeadLetter(data, "bad_id", f"label record: {i[0]}", origin)
        y = obj.get(m.label)
        if y is None or blank_text(y):  # blank is no label, as in an event
            return DeadLetter(data, "missing_label", f"label record: no label in field {m.label!r}", origin)
        y = label_value(y)
        if type(y) is tuple:
            return DeadLetter(data, "bad_label", f"label record: {y[0]}", origin)
        problem = text_problem(y, i, None)
        if problem is not None:
            return DeadLetter(data, problem[0], f"label record: {problem[1]}", origin)
        return LabelUpdate(i, y, origin)


def _as_bytes(raw) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")
    try:
        return bytes(raw)
    except Exception:
        return b""

