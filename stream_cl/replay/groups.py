"""The groups a replay buffer balances over (tasks or classes): their ids, rows offered and last-seen
times, and forgetting a group once none of its rows is stored.

:class:`RowGroups` is a part of :class:`~stream_cl.replay.ReplayBuffer` (a mixin): it reads the
buffer's ``gid_`` (capacity,) (each stored row's group id, -1 for a row that is its own group),
``size_`` (rows stored), ``group_by`` and ``capacity()``.

A group is forgotten once none of its rows is stored, so the groups held are at most the rows
stored plus one however many tasks or classes the stream shows (a task per session would
otherwise grow the buffer, its checkpoints and every draw's cost without bound). Its last-seen
time is not needed (a group's rows come back only through an offer, which sets it to now), but
its rows offered and whether it is full (:class:`~stream_cl.replay.ClassBalancedReplay`) are: the
last ``max(capacity(0), 1000)`` groups forgotten keep them, a few hundred bytes each in memory
(``capacity(0)``: the rows the sample and byte budgets allow at no inputs; so beside a byte budget
alone, up to about ten times it), so a group that comes back is admitted as it would have been. One that comes back after more groups than
that were forgotten starts afresh (not full, its rows counted anew).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping

import numpy as np

from ..state_checks import saved_count, saved_counts

__all__ = ["RowGroups", "key_from_state", "key_to_state"]


class RowGroups:
    """Group ids, rows offered and last-seen times of a replay buffer's rows (module docstring)."""

    MIN_FORGOTTEN_KEPT = 1000  # groups forgotten whose rows offered and full flag are kept: max(this, capacity(0))

    def _reset_groups(self) -> None:
        self.keys_: list = []  # group keys, by id
        self.key_seen_: list[int] = []  # rows of each group offered so far
        self.key_last_: list[int] = []  # time each group was last offered
        self._key_pos: dict = {}
        self.n_grouped_seen_ = 0  # labelled rows offered with a group (forgotten groups' included)
        self._retired: OrderedDict = OrderedDict()  # forgotten group key -> (rows offered, full), oldest first

    def _key(self, y: Hashable, task: Hashable | None) -> Hashable | None:
        """The group a row belongs to (None: the row is its own group)."""
        if self.group_by == "label":
            return y
        if self.group_by in ("task", "task_or_label", "task_or_sample"):
            if task is not None:
                return ("task", task)
            if self.group_by == "task_or_label":
                return ("label", y)
            return None
        return None

    def _gid(self, key) -> int:
        if key is None:
            return -1
        g = self._key_pos.get(key)
        if g is None:
            seen, full = self._retired.pop(key, (0, False))  # a forgotten group comes back as it was
            g = self._key_pos[key] = len(self.keys_)
            self.keys_.append(key)
            self.key_seen_.append(seen)
            self.key_last_.append(0)  # offer() sets it to now before anything reads it
            if full:
                self._set_full(g)
        return g

    def _set_full(self, g: int) -> None:
        """Mark group ``g`` full (groups are full only in :class:`ClassBalancedReplay`)."""

    def _is_full(self, g: int) -> bool:
        return False

    def _forget_if_empty(self, g: int) -> None:
        """Forget group ``g`` if none of its rows is stored: the group created last takes its id (its
        rows are renumbered); its rows offered and full flag go to the memory of forgotten groups."""
        if g < 0 or g >= len(self.keys_) or np.any(self.gid_[: self.size_] == g):
            return
        key, last = self.keys_[g], len(self.keys_) - 1
        self._retired[key] = (self.key_seen_[g], self._is_full(g))
        # as many as the rows the budgets allow at no inputs: max_samples set huge for a byte budget alone
        # had kept 198,000 forgotten groups (58 MB) beside 2,000 rows of 100 kB (review r91)
        while len(self._retired) > max(self.capacity(0), self.MIN_FORGOTTEN_KEPT):
            self._retired.popitem(last=False)
        self._move_group(g, last)
        del self._key_pos[key]
        self.keys_.pop()
        self.key_seen_.pop()
        self.key_last_.pop()

    def _move_group(self, g: int, last: int) -> None:
        """Give group ``last``'s id to ``g`` (being forgotten; ``last`` is the highest id), or drop ``g``'s
        id if it is the last."""
        if g == last:
            return
        self.keys_[g], self.key_seen_[g], self.key_last_[g] = self.keys_[last], self.key_seen_[last], self.key_last_[last]
        self._key_pos[self.keys_[g]] = g
        live = self.gid_[: self.size_]
        live[live == last] = g

    def _forget_empty_groups(self) -> None:
        """Forget every group with no row stored (a checkpoint from before groups were forgotten), the
        earliest last seen first into the memory of forgotten groups."""
        counts = self.group_counts()
        empty = sorted(np.flatnonzero(counts == 0).tolist(), key=lambda g: self.key_last_[g])
        for key in [self.keys_[g] for g in empty]:
            self._forget_if_empty(self._key_pos[key])

    def group_counts(self) -> np.ndarray:
        """Stored rows per group id (``len(keys_)``,)."""
        g = self.gid_[: self.size_]
        return np.bincount(g[g >= 0], minlength=len(self.keys_))

    def _groups_state(self) -> dict:
        return {"keys": [key_to_state(k) for k in self.keys_], "key_seen": list(self.key_seen_),
                "key_last": list(self.key_last_), "grouped_seen": self.n_grouped_seen_,
                "retired": [[key_to_state(k), seen, full] for k, (seen, full) in self._retired.items()]}

    def _install_groups(self, groups: tuple) -> None:
        """Restore :meth:`_groups_state` as :meth:`_checked_groups_state` read it (checkpoints from before
        groups were forgotten hold every group ever seen: the rows offered with a group are their sum)."""
        self.keys_, self.key_seen_, self.key_last_, self.n_grouped_seen_, self._retired = groups
        self._key_pos = {k: i for i, k in enumerate(self.keys_)}

    @staticmethod
    def _checked_groups_state(state: Mapping) -> tuple:
        """:meth:`_groups_state`'s values, each in its range (a ``ValueError`` otherwise), changing nothing."""
        keys = [key_from_state(k) for k in state["keys"]]
        # (groups,) each, flat whatever the saved nesting
        key_seen = saved_counts(state["key_seen"], "replay key_seen").reshape(-1).tolist()
        key_last = saved_counts(state["key_last"], "replay key_last").reshape(-1).tolist()
        if not len(keys) == len(key_seen) == len(key_last):
            raise ValueError(f"the checkpoint's replay buffer has {len(keys)} groups, {len(key_seen)} "
                             f"counts and {len(key_last)} clocks")
        if len(set(keys)) != len(keys):  # one key, two ids: the rows of one were never its key's (review r132)
            raise ValueError(f"the checkpoint's replay buffer names a group twice among {len(keys)} groups (a "
                             "corrupt checkpoint or part: restore an intact one, or start afresh)")
        grouped_seen = saved_count(state.get("grouped_seen", sum(key_seen)), "replay grouped_seen")
        retired = OrderedDict((key_from_state(k), (saved_count(seen, "replay retired seen"), bool(full)))
                              for k, seen, full in state.get("retired", []))
        return keys, key_seen, key_last, grouped_seen, retired


def key_to_state(key):
    """A group key as a checkpoint keeps it: ("task", t), ("label", y), a bare label, or None; lists
    survive any checkpoint format."""
    return list(key) if isinstance(key, tuple) else key


def key_from_state(key):
    return tuple(key) if isinstance(key, list) else key
