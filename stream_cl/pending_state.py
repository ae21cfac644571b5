"""The delayed-label store's checkpoint state, compact: one key list per distinct key sequence of the
waiting events, their values in one float array (categories and nulls beside it), the early labels,
the lifetime counts and the store's time when it was saved (:class:`PendingState`, a part of
:class:`~stream_cl.pending.PendingLabels`). A restored store's time stands still at that saved time
until records come again (``PendingLabels.thaw``).

The store provides ``_items``, ``_early``, ``_resume_at``, ``max_pending``, ``max_early``, ``now()``,
``counters()`` and the lifetime counts.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .pending import PendingLabels

__all__ = ["PendingState"]


class PendingState:
    """:meth:`state_dict` and :meth:`load_state_dict` of :class:`~stream_cl.pending.PendingLabels`."""

    def state_dict(self) -> dict:
        """The waiting events and early labels as columns of plain lists and numbers (:meth:`load_state_dict`)."""
        ids, tasks, origins, keysets = [], [], [], []
        keyset_of: dict[tuple, int] = {}
        which, lengths, added_at, ts, has_ts = [], [], [], [], []
        published: list = []  # [y_pred, proba] of each entry, or None
        values: list[float] = []
        texts: list[list] = []  # [position, str or None]: categories and nulls, NaN in "values"
        for event_id, (x, task, t, origin, at, told, _) in self._items.items():
            keys = tuple(x)
            k = keyset_of.get(keys)
            if k is None:
                k = keyset_of[keys] = len(keysets)
                keysets.append(list(keys))
            ids.append(event_id)
            tasks.append(task)
            origins.append(origin)
            which.append(k)
            lengths.append(len(keys))
            for v in x.values():
                if type(v) is float:
                    values.append(v)
                else:
                    texts.append([len(values), v])
                    values.append(math.nan)
            added_at.append(at)
            has_ts.append(t is not None)
            ts.append(0.0 if t is None else t)
            published.append(None if told is None else list(told))
        return {
            "ids": ids,
            "tasks": tasks,
            "origins": origins,
            "keysets": keysets,
            "keyset": np.asarray(which, dtype=np.int64),
            "values": np.asarray(values, dtype=np.float64),
            "texts": texts,
            "added_at": np.asarray(added_at, dtype=np.float64),
            "ts": np.asarray(ts, dtype=np.float64),
            "has_ts": np.asarray(has_ts, dtype=bool),
            "published": published,
            # labels that came before their event: [id, label, origin, added_at] each (JSON keeps str/int/bool)
            "early": [[i, y, origin, at] for i, (y, origin, at, _) in self._early.items()],
            "counters": {k: v for k, v in self.counters().items() if k not in ("pending", "waiting")},
            "saved_at": self.now(),
        }

    def load_state_dict(self, state: Mapping) -> "PendingLabels":
        """Restore a saved store. Every entry is restored as ``committed``: a store is saved only with
        the commit of the records it holds (a checkpoint after it, a changelog record in its
        transaction), so the flag is not saved, and states of any version load the same way."""
        keysets = [list(k) for k in state["keysets"]]
        which = np.asarray(state["keyset"], dtype=np.int64).tolist()
        values = np.asarray(state["values"], dtype=np.float64).tolist()
        for position, text in state.get("texts", []):  # absent in checkpoints before categories
            values[int(position)] = text
        added_at = np.asarray(state["added_at"], dtype=np.float64).tolist()
        ts = np.asarray(state["ts"], dtype=np.float64).tolist()
        has_ts = np.asarray(state["has_ts"], dtype=bool).tolist()
        published = state.get("published") or [None] * len(state["ids"])  # none before they were kept
        items: OrderedDict[str, tuple] = OrderedDict()
        pos = 0
        for i, event_id in enumerate(state["ids"]):
            keys = keysets[which[i]]
            n = len(keys)
            x = dict(zip(keys, values[pos : pos + n]))
            pos += n
            told = None if published[i] is None else (published[i][0], float(published[i][1]))
            t = ts[i] if has_ts[i] else None
            items[event_id] = (x, state["tasks"][i], t, state["origins"][i], added_at[i], told, True)
        if pos != len(values):
            raise ValueError(f"pending-label state holds {len(values)} values, its entries {pos}")
        self._items = items
        if "saved_at" in state:  # absent in checkpoints before: ages then went on by the clock through the downtime
            self._resume_at = float(state["saved_at"])  # and stand still until records come (thaw)
        self._early = OrderedDict((i, (y, str(origin), float(at), True))  # ids as stored, as the events' are (r86)
                                  for i, y, origin, at in state.get("early", []))
        for k, v in state.get("counters", {}).items():
            if k in ("added", "joined", "unknown", "expired", "evicted", "replaced", "early"):
                setattr(self, k, int(v))
        # a smaller bound than the run that wrote it: this process drops them, and counts them as its own work
        # (stream_cl_labels_total; review r73)
        while len(self._items) > self.max_pending:
            self._items.popitem(last=False)
            self.evicted += 1
            self.new_lost += 1
        while len(self._early) > self.max_early:
            self._early.popitem(last=False)
            self.unknown += 1
            self.new_unknown += 1
        return self
