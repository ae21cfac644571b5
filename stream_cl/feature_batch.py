"""The columns of one batch vectorisation of a growing :class:`~stream_cl.features.FeatureIndex`.

:class:`FeatureBatch` has one job: for the events of one ``FeatureIndex.vectorize_masked`` call, find
the column of each value among those the index has and those the batch creates (``new``, which the
caller commits once the whole batch is valid), create the new ones within the category bound and the
learner's column room (:class:`~stream_cl.column_bound.ColumnRoom`), and place the values in the rows.
The index stays the owner of its columns: it hands the batch its key -> column map and its column
kinds, which the batch reads and never changes.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from .column_bound import ColumnRoom, RoomFactory
from .columns import LATE, NewColumns
from .encoding import CATEGORY, NUMERIC, OTHER, SHARED, cells, column_clash, indicator_key

if TYPE_CHECKING:  # (an annotation only: features imports this module)
    from .features import FeatureIndex

__all__ = ["FeatureBatch", "KEYED_CATEGORIES"]


# Every indicator feeds the input-only heads (each category its exact weight) and the random
# features; only the first KEYED_CATEGORIES of a feature (and the shared columns) also get a
# column in the backbone heads' per-input block. Those heads' cost grows with the square of
# their width: on benchmarks/vs_river.py's Payments (5,000 merchant ids, max_categories 1000)
# keying every category ran at 602 events/s, the first 16 / 32 / 64 at 1,611 / 1,836 / 1,890,
# with accuracy 0.8161 / 0.8158 / 0.8167 / 0.8166.
KEYED_CATEGORIES = 32


class FeatureBatch:
    """The columns of one vectorisation: those the index has, those the batch creates
    (``new``, committed by the caller), and where each event's values go.

    ``pos`` and ``kinds`` are ``index``'s own key -> column map and column kinds (the objects, not
    copies: a lookup costs a dict's or a list's price), handed over by the index that owns them; the
    batch only reads them. ``room``: the learner's column room, as
    :meth:`~stream_cl.features.FeatureIndex.vectorize` takes it.
    """

    def __init__(self, index: FeatureIndex, pos: dict[Hashable, int], kinds: list[int],
                 room: RoomFactory | None = None):
        self.index, self.pos, self.n_known = index, pos, len(index.names)
        self.kinds = kinds
        self.new, self.new_pos = NewColumns(), {}
        self.placed: list = []  # (rows, columns, values (rows, columns)) of groups of events
        self.flat: tuple = ([], [], [])  # (row, column, value) of the events placed one by one
        # the learner's max_columns, drawn down by the columns made: asked of the learner at the first new
        # key (most vectorisations meet none), None if it has no bound
        self.room_factory, self.room = room, None
        # what the prediction-only event being placed would make if it were learned: its keys, and its
        # features' own categories; counted for that event alone, so its values go where a learned one's would
        self.made: set = set()
        self.own_made: dict = {}
        # the learner's check, once a learned input passed the room (ColumnRoom.refuse): the event's other keys
        # are still read (a bad value or a clash among them is refused as it was), but no longer counted
        self.refusing = None

    def column(self, key) -> int | None:
        """``key``'s column: the index's, else one this batch made; ``None`` if neither has it."""
        j = self.pos.get(key)
        return self.new_pos.get(key) if j is None else j

    def create(self, key, kind: int, base, shared: bool = False) -> int:
        """A new column; ``shared``: a category's ``k=<other>``, made for a category sent there."""
        if self.refusing is None:
            self.account(key, kind, base, shared)
        j = self.new_pos[key] = self.n_known + self.new.add(key, kind, base)
        room = self.room
        if self.refusing is None and room is not None and room.refuse is not None and (
                self.new.crowding or room.past()):
            # past max_columns: the learner refuses these inputs at the end of this event, before the batch's
            # other events and its rows (review r109: 1,024 events of 1,500 new keys each took 9 s and 5 GB of
            # rows (b, all their columns) before the refusal, and one more such poll the process's memory)
            self.refusing, room.refuse = room.refuse, None
        return j

    def refuse(self, new: NewColumns) -> None:
        """The learner's refusal of ``new`` (:attr:`refusing`), a ``ValueError``; as the room counted them
        past the bound, a check that does not refuse them is answered with the room's own refusal."""
        refuse, self.refusing = self.refusing, None
        refuse(new)
        raise ValueError(f"{len(new):,} new inputs would pass max_columns (the learner's column room is used up); "
                         "use fewer inputs, or a larger max_columns if the memory is there")

    def own(self, base) -> int:
        """The columns of ``base``'s own categories: indexed, made by the batch, or by the event predicted."""
        return self.index.categories.get(base, 0) + self.new.own.get(base, 0) + self.own_made.get(base, 0)

    def has_shared(self, base) -> bool:
        """Whether ``base``'s ``k=<other>`` has a column (the index's or the batch's), or the prediction-only
        event being placed would make it."""
        key = indicator_key(base, OTHER)
        return self.column(key) is not None or key in self.made

    def held_back(self) -> int:
        """Features of the index with categories of their own and no ``k=<other>`` yet: each may need it."""
        return sum(1 for base, n in self.index.categories.items() if n and indicator_key(base, OTHER) not in self.pos)

    def resolve(self) -> ColumnRoom | None:
        """The learner's column room, asked of it the first time (``None``: no bound)."""
        if self.room_factory is not None:
            self.room, self.room_factory = self.room_factory(), None
        return self.room

    def own_fits(self, base, kind: int) -> bool:
        """Whether a new category of ``base`` (of ``kind``) fits the room with its own column, with a
        column still held back for the ``k=<other>`` of every feature that may need one (this one too)."""
        self.room.ready(self.held_back)
        return self.room.fits(kind, keep=int(not self.own(base) and not self.has_shared(base)))

    def account(self, key, kind: int, base, shared: bool, learned: bool = True) -> None:
        """The room a new column ``key`` of ``kind`` takes: a feature's first own category holds a column
        back for its ``k=<other>``, which, once made, gives it back. Another input (a number, a missing
        value's indicator, the ``k=<other>`` of a feature with no category of its own) that takes a column
        held back is noted in ``new.crowding``."""
        if self.resolve() is None:
            return
        room = self.room
        room.ready(self.held_back)
        own = kind == CATEGORY or kind == LATE
        if shared:
            keep = -1 if self.own(base) else 0
        else:
            keep = int(own and not self.own(base) and not self.has_shared(base))
        # its own column held back for it: a k=<other> of a feature with categories of its own; any other
        # input comes out of the room the held-back columns leave (r31 F1: a new feature's first k=<other>
        # took another's, which could then never overflow)
        crowding = not own and not (shared and self.own(base)) and not room.fits(kind)
        room.take(kind, keep)
        if crowding and learned:  # (a prediction-only event makes nothing: it is refused nothing)
            self.new.crowding.append(key)

    def refuse_past_room(self, fresh: list) -> None:
        """Where a learning step asks for it (:attr:`ColumnRoom.refuse`), new numeric keys ``fresh`` (in order)
        of which one would pass the room mark the batch refused (:attr:`refusing`) before any of them is
        counted (~5 µs a key of the room's bookkeeping; the per-event retry of a wide record made 882 columns
        before its refusal, review r109): the learner's check then gets what that bookkeeping would have given
        it, every new key and the first that takes a column held back (noted here)."""
        if len(fresh) < 2 or (self.room_factory is None and (self.room is None or self.room.refuse is None)):
            return
        room = self.resolve()
        if room is None or room.refuse is None:
            return
        room.ready(self.held_back)
        # the first of them (1-based) that would not fit one design: n - k * c < kept columns left
        first = min(((n - room.kept) // c + 1 for n, c in zip(room.left, room.cost(NUMERIC)) if c > 0), default=None)
        if first is None or first > len(fresh):
            return
        self.new.crowding.append(fresh[max(first, 1) - 1])
        self.refusing, room.refuse = room.refuse, None

    def same_kind(self, key, j: int, kind: int, value) -> int:
        """``j``, the column of ``key``, unless that column holds the other kind of value (a
        number against a category's indicator): :func:`~stream_cl.encoding.column_clash`."""
        have = self.kinds[j] if j < self.n_known else self.new.kinds[j - self.n_known]
        if (have > 0) != (kind > 0):
            # a refused indicator is named by the event's feature and value: the event holds neither
            # the column's name nor the indicator's 1.0
            category = _category_of(key, kind, (*self.index.categories, *self.new.own)) if kind > 0 else None
            raise column_clash(key, value, category)
        return j

    def numeric(self, keys: tuple, V: np.ndarray) -> list[int]:
        """Columns of numeric ``keys`` (values ``V``), creating those not seen yet: the known keys' kinds are
        read first (a clash is refused before the bound), then the new ones are made, in their order."""
        cols, fresh = [], []
        for c, key in enumerate(keys):
            j = self.column(key)
            if j is None:
                fresh.append(c)
                cols.append(-1)
            else:
                cols.append(self.same_kind(key, j, NUMERIC, float(V[0, c])))
        if fresh:
            new = [keys[c] for c in fresh]
            self.refuse_past_room(new)
            if self.refusing is not None:  # past the room: the check gets every new key, none of them indexed
                self.new.add_numbers(new)
                self.refuse(self.new)
            for c, key in zip(fresh, new):
                cols[c] = self.create(key, NUMERIC, None)
            if self.refusing is not None:  # one passed the room as it was made: refused, the group's keys all read
                self.refuse(self.new)
        return cols

    def known(self, keys: tuple, V: np.ndarray) -> tuple[list[int], np.ndarray]:
        """Columns of ``keys`` that exist (or were created in this batch), and their values."""
        cols, kept = [], []
        for c, key in enumerate(keys):
            j = self.column(key)
            if j is not None:
                cols.append(self.same_kind(key, j, NUMERIC, float(V[0, c])))
                kept.append(c)
        return cols, (V if len(kept) == len(keys) else V[:, kept])

    def event(self, i: int, x: Mapping, learn: bool) -> None:
        """Place event ``i`` value by value, creating its new columns if it is learned."""
        index, new, (rows, cols, vals), same_kind = self.index, self.new, self.flat, self.same_kind
        saved = None  # the room before a prediction-only event's columns, put back after it
        for key, v, kind, base in cells(x, index.missing_indicators, index.time_features):
            j = self.column(key)
            if j is None:
                if key in self.made:  # a column this prediction-only event would make: none yet, nothing learned
                    continue
                room = self.resolve()
                if not learn and saved is None and room is not None:
                    saved = room.save()
                shared = False
                if kind == CATEGORY:
                    ordinal = self.own(base)
                    if ordinal >= KEYED_CATEGORIES:
                        kind = LATE
                    # over the bound, or its own column would not fit max_columns: the shared column
                    if ordinal >= index.max_categories or (room is not None and not self.own_fits(base, kind)):
                        key, kind, shared = indicator_key(base, OTHER), SHARED, True
                        if learn:
                            new.overflow[base] = new.overflow.get(base, 0) + 1
                        j = self.column(key)
                if j is None:
                    if not learn:  # a prediction has no column that no learned event made...
                        if key not in self.made:  # ...but counts those it would make, for its later values
                            self.account(key, kind, base, shared, learned=False)
                            self.made.add(key)
                            if kind == CATEGORY or kind == LATE:
                                self.own_made[base] = self.own_made.get(base, 0) + 1
                        continue
                    j = self.create(key, kind, base, shared)
            same_kind(key, j, kind, v)  # a category's indicator named like a number's column, or the reverse
            rows.append(i)
            cols.append(j)
            vals.append(v)
        if self.refusing is not None:  # an input passed the room: refused now, the event's values all read
            self.refuse(self.new)
        if not learn:
            self.made, self.own_made = set(), {}
            if saved is not None:
                self.room.restore(saved)

    def rows(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows (b, width + new columns) and the mask of the values present."""
        X = np.zeros((b, self.n_known + len(self.new)))  # (batch, features)
        M = np.zeros(X.shape, dtype=bool)
        rows, cols, vals = self.flat
        if rows:
            X[rows, cols] = vals
            M[rows, cols] = True
        for rws, cls, V in self.placed:
            if len(rws) == b and cls == list(range(len(cls))):
                X[:, : len(cls)] = V  # the common case: every row, known columns in order
                M[:, : len(cls)] = True
            else:
                X[np.ix_(rws, cls)] = V
                M[np.ix_(rws, cls)] = True
        return X, M


def _category_of(key: str, kind: int, features) -> tuple:
    """``(feature, value)`` of the event's value that makes indicator column ``key`` (of ``kind``), for
    :func:`~stream_cl.encoding.column_clash`: a null's ``k=<missing>`` (value ``None``), the shared
    ``k=<other>`` of a category over the bound (value ``OTHER``), else a category. The feature is the
    shortest ``"<feature>="`` prefix among ``features`` (the original keys: feature ``3``, not ``"3"``),
    else the text before the first "=" (a value holds one more often than a name does: ``k=abc==``).

    >>> _category_of("url=a=b", CATEGORY, []), _category_of("3=<missing>", SHARED, [3])
    (('url', 'a=b'), (3, None))
    """
    prefixes = {indicator_key(f, ""): f for f in features}
    if kind == SHARED:  # k=<other> or k=<missing>: neither suffix holds "="
        stem, _, suffix = key.rpartition("=")
        return prefixes.get(stem + "=", stem), (OTHER if suffix == OTHER else None)
    at = key.find("=")
    while at >= 0 and key[: at + 1] not in prefixes:
        at = key.find("=", at + 1)
    if at < 0:  # a feature neither the index nor the batch has counted
        at = key.find("=")
    return prefixes.get(key[: at + 1], key[:at]), key[at + 1:]
