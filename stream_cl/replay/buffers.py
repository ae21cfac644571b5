"""Replay buffers: reservoir, class-balanced and power-law recency.

A buffer stores rows of the stream (the vectorised raw inputs ``x``, which inputs
were present, the label, the task and the time each was seen) under a budget in
samples and in bytes, and draws rows to rehearse. Each policy is two rules:

* **admission** -- which stored row, if any, a new row replaces once the buffer is full;
* **sampling** -- the probability of drawing each stored row (:meth:`ReplayBuffer.probabilities`).

=====================  ======================================  =====================================
policy                 admission                               sampling
=====================  ======================================  =====================================
``ReservoirReplay``    reservoir (uniform over the history)    uniform over stored rows
``ClassBalancedReplay`` class-balanced reservoir (CBRS)        each class 1/C, uniform inside
``PowerLawReplay``     group-balanced reservoir                group k with probability
                                                               proportional to (t - last_seen_k)^-alpha
=====================  ======================================  =====================================

The power-law policy follows the naturalistic-environment result (catastrophic
interference is mitigated when a past task recurs with a probability that falls as a
power of the time since it was last seen, as the need for a memory does in Anderson
and Schooler's rational analysis): time ``t`` counts labelled events, a task's
``last_seen`` is updated every time the stream shows it, and the task the stream is
on now is left out (the fresh events already rehearse it) unless nothing else is
stored. Rows without a task are grouped by ``group`` (label, or each row alone, its
last-seen time then being its arrival).

Time is the number of labelled rows offered; rows are drawn *before* the row at time
``t`` is offered, so ``t - last_seen >= 1``. Every random decision comes from a
:class:`~stream_cl.replay.rng.CounterRandom`, and :meth:`ReplayBuffer.state_dict`
holds everything, so a restored buffer continues the exact same sequence.

>>> import numpy as np
>>> buf = ReservoirReplay(max_samples=3, seed=0)
>>> X = np.arange(10.0)[:, None]
>>> draw = buf.interleave(X, np.ones_like(X, dtype=bool), list("abcdefghij"))
>>> buf.size_, buf.n_seen_, len(draw.y)  # ratio 1: one replayed row per labelled row (after the first)
(3, 10, 9)
>>> sorted(buf.y_)
['c', 'i', 'j']
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from river import base

from ..bounds import MAX_REPLAY_RATIO, MIN_POSITIVE, is_nonnegative, is_ratio
from ..checks import check_bool, check_int, check_seed
from ..encoding import MAX_ABS_VALUE
from ..state_checks import saved_array, saved_count, saved_counts
from .groups import RowGroups, key_from_state, key_to_state
from .rng import CounterRandom
from .rows import RowStore

__all__ = ["MAX_REPLAY_RATIO", "ReplayBuffer", "ReservoirReplay", "ClassBalancedReplay", "PowerLawReplay", "ReplayDraw",
           "is_ratio", "make_replay", "POLICIES"]

@dataclass
class ReplayDraw:
    """Rows drawn by :meth:`ReplayBuffer.interleave`: ``pos[k]`` is the fresh row replay row ``k`` follows."""

    X: np.ndarray  # (k, d)
    M: np.ndarray  # (k, d) bool
    y: list
    task: list
    pos: np.ndarray  # (k,) int
    w: list = field(default_factory=list)  # the sample weight given with each row's event (before imbalance reweighting)


class ReplayBuffer(RowStore, RowGroups, base.Base):
    """Time, admission and the draw loop shared by every policy; the rows and their budgets are :class:`~stream_cl.replay.rows.RowStore`'s.

    Parameters
    ----------
    max_samples
        Most rows stored.
    max_bytes
        Most bytes stored (``None``: no byte budget). A row of ``d`` inputs costs
        ``9 d + 32`` bytes (float64 values, a presence flag each, time, group, label
        and task); as inputs appear the capacity shrinks and rows are evicted by the
        policy's rule. Rows holding equal labels, tasks or weights share one object of
        each (:meth:`~stream_cl.replay.rows.RowStore.share`): the distinct values, and a
        weight's reference, come on top (a few of each, unless every event brings a new one).
    ratio
        Replayed rows per fresh labelled row (0.5: one every other row; 2: two each), at most
        :data:`MAX_REPLAY_RATIO`.
    seed
        Seed of the buffer's random numbers.

    Attributes (learned state; exported for monitoring)
    ---------------------------------------------------
    size_, nbytes_, n_seen_, n_replayed_
        Rows stored, bytes they take, labelled rows offered, rows replayed.
    keys_, key_seen_, key_last_
        The groups with a row stored (and the latest row's), their rows offered and last-seen
        time (:mod:`~stream_cl.replay.groups`: a group is forgotten once none of its rows is stored).
    """

    group_by = "none"  # what the balanced policies balance over

    def __init__(self, max_samples: int = 1000, max_bytes: int | None = None, ratio: float = 1.0, seed: int = 0):
        check_int(max_samples, "max_samples", 1, 1000)
        check_int(max_bytes, "max_bytes", 1, 1_000_000, optional=True)
        if not is_ratio(ratio):
            raise ValueError(f"ratio must be a number in [0, {MAX_REPLAY_RATIO:g}], got {ratio!r}; use replayed rows "
                             "per fresh row such as 1.0")
        check_seed(seed)
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self.ratio = ratio
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        self._reset_rows()
        self._reset_groups()
        self.last_key_: Hashable | None = None  # group of the latest row offered
        self.n_seen_ = 0  # labelled rows offered (the clock)
        self.n_replayed_ = 0
        self.rng_ = CounterRandom(self.seed)

    # -- policy rules (overridden) -----------------------------------------------------
    def _admit_slot(self, gid: int) -> int:
        """Slot the new row (group ``gid``, already counted as seen) replaces; -1 = drop it.

        Called only when the buffer is full. Default: reservoir over all rows."""
        j = int(self.rng_.integers(self.n_seen_ + 1)[0])
        return j if j < self.size_ else -1

    def _evict_slot(self) -> int:
        """Slot to remove when the capacity shrinks. Default: uniform."""
        return int(self.rng_.integers(self.size_)[0])

    def probabilities(self) -> np.ndarray:
        """Probability of drawing each stored row (``size_``,) now; sums to 1 (empty: ``[]``)."""
        n = self.size_
        return np.full(n, 1.0 / n) if n else np.zeros(0)

    # -- offering and drawing ------------------------------------------------------------
    def offer(self, x: np.ndarray, m: np.ndarray, y: Hashable, task: Hashable | None = None, w: float = 1.0) -> None:
        """Offer one labelled row, learned at sample weight ``w``, at the current time (then the clock advances)."""
        d = x.shape[0]
        self._fit_width(d)
        key = self._key(y, task)
        gid = self._gid(key)
        t = self.n_seen_
        if gid >= 0:
            self.key_seen_[gid] += 1
            self.key_last_[gid] = t
            self.n_grouped_seen_ += 1
        cap = self.capacity()
        replaced = -1  # group of the row this one replaces
        if cap == 0:
            slot = -1
        elif self.size_ < cap:
            slot = self.size_
            self.size_ += 1
            self.y_.append(None)
            self.task_.append(None)
            self.w_.append(1.0)
        else:
            slot = self._admit_slot(gid)
            replaced = int(self.gid_[slot]) if slot >= 0 else -1
        if slot >= 0:
            self.X_[slot, :d], self.X_[slot, d:] = x, 0.0
            self.M_[slot, :d], self.M_[slot, d:] = m, False
            self.time_[slot], self.gid_[slot] = t, gid
            self.y_[slot], self.task_[slot], self.w_[slot] = self.share(y), self.share(task), self.share(float(w))
        self.last_key_ = key
        self.n_seen_ += 1
        # the group of the row replaced, or this row's if it was dropped, may have no row left; the higher
        # id first, as forgetting a group renumbers the group created last
        for g in sorted({replaced, gid if slot < 0 else -1}, reverse=True):
            self._forget_if_empty(g)

    def draw(self, k: int) -> np.ndarray:
        """Slots of ``k`` rows drawn (with replacement) from :meth:`probabilities`."""
        p = self.probabilities()
        if k <= 0 or p.size == 0:
            return np.zeros(0, dtype=np.int64)
        cdf = np.cumsum(p)
        idx = np.searchsorted(cdf, self.rng_.uniform(k) * cdf[-1], side="right")
        return np.minimum(idx, p.size - 1)

    def interleave(self, X: np.ndarray, M: np.ndarray, ys: Sequence, tasks: Sequence | None = None,
                   labelled: np.ndarray | None = None, weights: Sequence | None = None) -> ReplayDraw:
        """Offer every labelled row of a batch in order, drawing replay rows as it goes.

        Before labelled row ``i`` is offered, ``floor(ratio (c + 1)) - floor(ratio c)``
        rows are drawn from the buffer as it then is (``c``: labelled rows offered so
        far, over the buffer's life), so the rows drawn do not depend on how the
        stream was batched. They are meant to be learned right after fresh row ``i``.

        The buffer's width follows the labelled rows, not the batch's width ``d``: before
        labelled row ``i`` is offered it is widened to one past the last input present in
        that row or an earlier one (never narrowed), which is the width the inputs had when
        the row was learned (an input's column is made by the first labelled row that has
        it; with hashed inputs, the highest bucket used so far). So with ``max_bytes`` the
        capacity shrinks, and rows are evicted, at the same event however the stream is
        batched. Columns past the buffer's width are absent from every stored row; the
        rows drawn are padded to ``d``.

        ``weights``: each row's sample weight (1 where None), kept with the row and given back with
        each draw of it: an event learned at a weight of 1e-6 is replayed at 1e-6, not at 1 (review
        r71).
        """
        b, d = X.shape
        tasks = [None] * b if tasks is None else list(tasks)
        weights = [1.0] * b if weights is None else list(weights)
        labelled = np.array([y is not None for y in ys]) if labelled is None else np.asarray(labelled, dtype=bool)
        last = np.zeros(b, dtype=np.int64)  # 1 + the last input present in each labelled row (0: none)
        if b and d:
            last = np.where(M.any(axis=1), d - np.argmax(M[:, ::-1], axis=1), 0) * labelled
        widths = np.maximum(np.maximum.accumulate(last), self.width_) if b else last
        parts, pos, ry, rt, rw = [], [], [], [], []
        for i in np.flatnonzero(labelled):
            w = int(widths[i])
            self._fit_width(w)
            c = self.n_seen_
            k = int(np.floor(self.ratio * (c + 1)) - np.floor(self.ratio * c))
            slots = self.draw(k) if self.size_ else np.zeros(0, dtype=np.int64)
            if slots.size:
                parts.append((self.X_[slots], self.M_[slots]))  # fancy indexing copies
                pos.extend([i] * slots.size)
                ry.extend(self.y_[s] for s in slots.tolist())
                rt.extend(self.task_[s] for s in slots.tolist())
                rw.extend(self.w_[s] for s in slots.tolist())
            self.offer(X[i, :w], M[i, :w], ys[i], tasks[i], weights[i])
        self.n_replayed_ += len(pos)
        if not parts:
            return ReplayDraw(np.zeros((0, d)), np.zeros((0, d), dtype=bool), [], [], np.zeros(0, dtype=np.int64))
        RX = np.zeros((len(pos), d))
        RM = np.zeros((len(pos), d), dtype=bool)
        r = 0
        for rows_x, rows_m in parts:
            n, w = rows_x.shape[0], min(rows_x.shape[1], d)
            RX[r : r + n, :w], RM[r : r + n, :w] = rows_x[:, :w], rows_m[:, :w]
            r += n
        return ReplayDraw(RX, RM, ry, rt, np.asarray(pos, dtype=np.int64), rw)

    # -- monitoring --------------------------------------------------------------------
    def report(self) -> dict:
        """The policy's class name, rows stored, their bytes, the capacity, rows offered and rows replayed."""
        return {"policy": type(self).__name__, "size": self.size_, "bytes": self.nbytes_,
                "capacity": self.capacity(), "seen": self.n_seen_, "replayed": self.n_replayed_}

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The stored rows, groups, counts and random state, with the policy and grouping that
        :meth:`load_state_dict` checks: a restored buffer continues the same sequence."""
        n = self.size_
        return {
            "X": self.X_[:n].copy(), "M": self.M_[:n].copy(), "width": self.width_,
            "time": self.time_[:n].copy(), "gid": self.gid_[:n].copy(),
            "y": list(self.y_), "task": list(self.task_), "w": list(self.w_),
            **self._groups_state(), "last_key": key_to_state(self.last_key_),
            "n_seen": self.n_seen_, "n_replayed": self.n_replayed_, "rng": self.rng_.state_dict(),
            "policy": self.policy_name, "group_by": self.group_by,
        }

    @property
    def policy_name(self) -> str:
        """The policy's name in :data:`POLICIES` (a class outside it: the class name)."""
        return next((name for name, cls in POLICIES.items() if cls is type(self)), type(self).__name__)

    def load_state_dict(self, state: Mapping) -> "ReplayBuffer":
        """Restore :meth:`state_dict`; a checkpoint of another policy or grouping is refused
        (its rows, groups and random numbers mean something else). Checkpoints from before
        the policy was saved load unchecked."""
        saved = (state.get("policy", self.policy_name), state.get("group_by", self.group_by))
        if saved != (self.policy_name, self.group_by):
            raise ValueError(f"the checkpoint's replay buffer is policy {saved[0]!r} grouped by {saved[1]!r}, this "
                             f"learner's is policy {self.policy_name!r} grouped by {self.group_by!r}: restore with the "
                             "replay policy (and power_law group) the checkpoint was written with, or start afresh")
        n, d = len(state["y"]), saved_count(state["width"], "replay width")
        if n:  # each saved value's range, before anything changes (review r105)
            X = saved_array(state["X"], "replay X", -MAX_ABS_VALUE, MAX_ABS_VALUE).reshape(n, d)  # (n, d): raw inputs
            present = np.asarray(state["M"])
            if present.size != n * d:  # read before the reset below: a wrong size had left the buffer emptied (r132)
                raise ValueError(f"saved state: replay M must be {n * d} flags, got {present.size} (a corrupt "
                                 "checkpoint or part: restore an intact one, or start afresh)")
            time = saved_counts(state["time"], "replay time").reshape(n)  # (n,)
            # a group id past the groups made numpy.bincount abort the process; a row without a group (-1)
            # where the policy groups every row (by label) failed every later admission and draw (review r132)
            lowest = 0 if self.group_by in ("label", "task_or_label") else -1  # -1: a row alone (RowGroups._key None)
            gid = saved_counts(state["gid"], "replay gid", lowest, len(state["keys"]) - 1).reshape(n)  # (n,)
        weights = saved_array(state.get("w", [1.0] * n), "replay w", MIN_POSITIVE)  # (states before weights: 1)
        if len(weights) != n or len(state["task"]) != n:
            raise ValueError(f"the checkpoint's replay buffer holds {n} rows, {len(weights)} weights and "
                             f"{len(state['task'])} tasks")
        n_seen, n_replayed = saved_count(state["n_seen"], "replay n_seen"), saved_count(state["n_replayed"],
                                                                                        "replay n_replayed")
        rng = CounterRandom.from_state(state["rng"])
        groups = self._checked_groups_state(state)
        self._reset()
        cap = max(n, min(self.capacity(d), max(16, n)))
        self.X_ = np.zeros((cap, d))
        self.M_ = np.zeros((cap, d), dtype=bool)
        self.time_ = np.zeros(cap, dtype=np.int64)
        self.gid_ = np.zeros(cap, dtype=np.int64)
        if n:
            self.X_[:n] = X
            self.M_[:n] = present.astype(bool).reshape(n, d)  # (n, d)
            self.time_[:n], self.gid_[:n] = time, gid
        self.y_, self.task_, self.size_ = [self.share(y) for y in state["y"]], [self.share(t) for t in state["task"]], n
        self.w_ = [self.share(float(w)) for w in weights]
        self._install_groups(groups)
        self.last_key_ = key_from_state(state["last_key"])
        self.n_seen_, self.n_replayed_ = n_seen, n_replayed
        self.rng_ = rng
        # checkpoints from before groups were forgotten hold every group ever seen: their groups
        # without a row are forgotten once full_ is known
        self._load_groups(state)
        self._forget_empty_groups()
        return self

    def _load_groups(self, state: Mapping) -> None:
        """Restore a policy's own group state (before groups without a row are forgotten)."""


class ReservoirReplay(ReplayBuffer):
    """Reservoir sampling: every labelled row seen has the same chance to be stored; draws are uniform.

    >>> import numpy as np
    >>> buf = ReservoirReplay(max_samples=4, seed=1)
    >>> for i in range(100):
    ...     buf.offer(np.array([float(i)]), np.array([True]), i % 2)
    >>> buf.size_, buf.probabilities().tolist()
    (4, [0.25, 0.25, 0.25, 0.25])
    """


class ClassBalancedReplay(ReplayBuffer):
    """Class-balanced reservoir (CBRS, Chrysakis and Moens 2020), drawing each class equally.

    A class becomes *full* once it is a largest class (most rows stored) of the full
    buffer, and stays full. When the buffer is full, a row of a class that is not full
    replaces a random row of a largest class; a row of a full class replaces a random row
    of its own class with probability stored/seen for that class, else it is dropped (a
    reservoir within the class: every row the class has shown is kept with the same
    probability). Deciding from the current counts alone would not do: once the buffer
    is balanced a frequent class is often not the strict largest, its new rows would
    then be stored outright and its old rows almost never kept. A full class with no row
    stored (only when the buffer holds fewer rows than there are classes) is treated as
    not full: stored/seen = 0 would shut it out for good. Draws pick a class uniformly,
    then a row of it uniformly.

    Attributes
    ----------
    full_
        The full classes (for :class:`PowerLawReplay`, the full groups), as positions in ``keys_``;
        saved in :meth:`state_dict`.
    """

    group_by = "label"

    def _reset(self) -> None:
        super()._reset()
        self.full_: set[int] = set()

    def _admit_slot(self, gid: int) -> int:
        counts = self.group_counts()
        self.full_.update(np.flatnonzero(counts == counts.max()).tolist())
        mine = np.flatnonzero(self.gid_[: self.size_] == gid)
        if gid not in self.full_ or mine.size == 0:
            slots = self._largest_group_slots(counts)
            return int(slots[self.rng_.integers(slots.size)[0]])
        if self.rng_.uniform(1)[0] < mine.size / self.key_seen_[gid]:
            return int(mine[self.rng_.integers(mine.size)[0]])
        return -1

    def state_dict(self) -> dict:
        """:meth:`ReplayBuffer.state_dict` with the full groups (``full_``)."""
        return {**super().state_dict(), "full": sorted(self.full_)}

    def load_state_dict(self, state: Mapping) -> "ClassBalancedReplay":
        """:meth:`ReplayBuffer.load_state_dict`; a full group's id past the groups is refused first: it
        had loaded, and the group later made with that id was full before its first row (review r132)."""
        if "full" in state:
            saved_counts(state["full"], "replay full", 0, len(state["keys"]) - 1)
        return super().load_state_dict(state)

    def _load_groups(self, state: Mapping) -> None:
        self.full_ = {int(g) for g in state["full"]} if "full" in state else self._full_before_saved()

    def _set_full(self, g: int) -> None:
        self.full_.add(g)

    def _is_full(self, g: int) -> bool:
        return g in self.full_

    def _move_group(self, g: int, last: int) -> None:
        full = last in self.full_
        self.full_.discard(g)
        self.full_.discard(last)
        if full and g != last:
            self.full_.add(g)
        super()._move_group(g, last)

    def _full_before_saved(self) -> set[int]:
        """The full groups of a checkpoint written before ``full_`` was saved. Under that code too, a
        group lost a row (one dropped or replaced) only while it was a largest group of a full buffer,
        so each group with fewer rows stored than seen has been full; so are the groups now largest if
        the buffer is full, as the next admission would mark them."""
        counts = self.group_counts()
        full = {g for g, seen in enumerate(self.key_seen_) if counts[g] < seen}
        if counts.size and self.size_ >= self.capacity():
            full.update(np.flatnonzero(counts == counts.max()).tolist())
        return full

    def _evict_slot(self) -> int:
        slots = self._largest_group_slots(self.group_counts())
        return int(slots[self.rng_.integers(slots.size)[0]])

    def _largest_group_slots(self, counts: np.ndarray) -> np.ndarray:
        """Slots of the rows in a largest group. A row that is its own group (gid -1, a
        :class:`PowerLawReplay` row without a task) is in none: ``counts[-1]`` would read the
        count of the group created last and take the row for one of its members."""
        g = self.gid_[: self.size_]
        return np.flatnonzero((g >= 0) & (counts[np.maximum(g, 0)] == counts.max()))

    def probabilities(self) -> np.ndarray:
        """(``size_``,): each class stored 1 / (classes stored), shared evenly by its rows; sums to 1."""
        n = self.size_
        if not n:
            return np.zeros(0)
        g = self.gid_[:n]
        counts = self.group_counts()
        present = np.count_nonzero(counts)
        return 1.0 / (present * counts[g])


class PowerLawReplay(ClassBalancedReplay):
    """Power-law recency replay: draw group k with probability proportional to ``(t - last_seen_k) ** -alpha``.

    Parameters
    ----------
    alpha
        Exponent of the recency law (0: uniform over groups; larger: recent groups more).
        The default 0.5 is flatter than the environment's own law: in
        ``benchmarks/continual.py`` (permuted digits in an alpha-1 environment) alpha 1
        starved the tasks not seen for long and forgot more than uniform reservoir replay,
        while 0.5 forgot less.
    group
        What a row's group is when it carries no task: ``"label"`` (its class) or
        ``"sample"`` (the row alone; its last-seen time is its arrival). Rows with a
        task are grouped by task.
    exclude_current
        Leave out the group of the latest row offered (the stream is rehearsing it already),
        unless it is the only one stored: its task, or its class with ``group="label"``. A row
        that is its own group (no task, ``group="sample"``) is never left out, and the newest
        rows are then the likeliest draws. The draws for a row are made before it is offered,
        so at a task switch the task that just ended is the one left out, for that row's draws.

    Storage is balanced over groups (as :class:`ClassBalancedReplay` over classes); rows
    that are their own group (no task, ``group="sample"``) are kept by a reservoir over
    such rows. When only some rows carry a task the two kinds are balanced first: a row
    of the kind with fewer rows stored replaces a row of the other (of the largest task,
    or any row without a task), else it is admitted within its kind. A shrinking byte
    budget evicts rows with a task first, from the largest task; admissions then restore
    the balance.

    >>> import numpy as np
    >>> buf = PowerLawReplay(max_samples=30, alpha=1.0, seed=0)
    >>> for t, task in enumerate([0] * 10 + [1] * 10 + [2] * 10):
    ...     buf.offer(np.zeros(1), np.ones(1, dtype=bool), "y", task=task)
    >>> p = buf.probabilities()  # t = 30; task 0 last seen at 9, task 1 at 19, task 2 is current
    >>> [round(float(p[np.array(buf.task_) == k].sum()), 3) for k in (0, 1, 2)]
    [0.344, 0.656, 0.0]
    """

    def __init__(self, max_samples: int = 1000, max_bytes: int | None = None, ratio: float = 1.0, alpha: float = 0.5,
                 group: str = "sample", exclude_current: bool = True, seed: int = 0):
        if not is_nonnegative(alpha):
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        if group not in ("label", "sample"):
            raise ValueError(f"group must be 'label' or 'sample', got {group!r}")
        check_bool(exclude_current, "exclude_current")
        self.alpha = alpha
        self.group = group
        self.exclude_current = exclude_current
        super().__init__(max_samples=max_samples, max_bytes=max_bytes, ratio=ratio, seed=seed)

    @property
    def group_by(self) -> str:  # type: ignore[override]
        """Rows are grouped by task, else by label or alone (``group``): ``"task_or_label"`` or ``"task_or_sample"``."""
        return "task_or_label" if self.group == "label" else "task_or_sample"

    def _admit_slot(self, gid: int) -> int:
        counts = self.group_counts()
        grouped = int(counts.sum())
        alone = self.size_ - grouped  # rows that are their own group (no task, group="sample")
        g = self.gid_[: self.size_]
        # the kind with fewer rows stored takes a row of the other: were rows without a task a reservoir
        # over every row, they would push out the rows with one, which can only replace each other
        if gid < 0 and alone < grouped:
            slots = self._largest_group_slots(counts)
        elif gid >= 0 and grouped < alone:
            slots = np.flatnonzero(g < 0)
        elif gid >= 0:
            return super()._admit_slot(gid)  # CBRS among the tasks
        else:  # a reservoir among the rows without a task, over those offered (this one included)
            j = int(self.rng_.integers(self.n_seen_ + 1 - self.n_grouped_seen_)[0])
            return int(np.flatnonzero(g < 0)[j]) if j < alone else -1
        return int(slots[self.rng_.integers(slots.size)[0]])

    def _evict_slot(self) -> int:
        if not self.group_counts().any():
            return ReplayBuffer._evict_slot(self)
        return super()._evict_slot()

    def probabilities(self) -> np.ndarray:
        """(``size_``,): a group's weight ``(t - last_seen) ** -alpha`` (a row alone: its own age) shared by its
        rows, the current group's rows 0 with ``exclude_current``; sums to 1."""
        n = self.size_
        if not n:
            return np.zeros(0)
        g = self.gid_[:n]
        grouped = g >= 0
        drawn = ~self._current_rows(g)
        # gap ** -alpha in log space, relative to the smallest gap drawn (weight 1): computed directly, every
        # weight underflows to 0 once alpha * log10(gap) > 323 (alpha 200 at a gap of 60), and 0 / 0 is NaN
        # (the logs' offsets from the smallest first: alpha near float64's largest made -alpha * log(gap)
        # overflow to -inf everywhere, and -inf - -inf NaN; review r91)
        lg = np.log(self._gaps(g)[drawn])
        w = np.zeros(n)
        with np.errstate(over="ignore"):  # an overflow is -inf: a weight of 0
            w[drawn] = np.exp(-self.alpha * (lg - lg.min(initial=np.inf)))
        if grouped.any():
            w[grouped] /= self.group_counts()[g[grouped]]  # a group's weight is shared by its rows
        return w / w.sum()

    def _gaps(self, g: np.ndarray) -> np.ndarray:
        """Each stored row's time since its group was last seen (a row alone: since it arrived), >= 1."""
        t = self.n_seen_
        gap = np.maximum(t - self.time_[: self.size_], 1)
        grouped = g >= 0
        if grouped.any():
            gap[grouped] = np.maximum(t - np.asarray(self.key_last_, dtype=np.int64)[g[grouped]], 1)
        return gap.astype(float)

    def _current_rows(self, g: np.ndarray) -> np.ndarray:
        """Rows left out of the draw: those of the latest row's group with ``exclude_current``, unless
        they are every row stored. A latest row that is its own group (no task, ``group="sample"``)
        leaves nothing out: the law over rows alone weighs each by its own age, the newest most."""
        mask = np.zeros(g.size, dtype=bool)
        if self.exclude_current and self.last_key_ is not None:
            mask = g == self._key_pos.get(self.last_key_, -2)
        return mask if not mask.all() else np.zeros(g.size, dtype=bool)


POLICIES = {"reservoir": ReservoirReplay, "class_balanced": ClassBalancedReplay, "power_law": PowerLawReplay}


def make_replay(policy: str, **params) -> ReplayBuffer | None:
    """A buffer by policy name (``"none"``: ``None``).

    >>> make_replay("power_law", max_samples=10, alpha=0.5).alpha
    0.5
    """
    if policy == "none":
        return None
    try:
        cls = POLICIES[policy]
    except KeyError:
        raise ValueError(f"unknown replay policy {policy!r}; use one of none, {', '.join(POLICIES)}") from None
    if cls is not PowerLawReplay:  # the power-law keys alone are dropped: a misspelt key is a TypeError
        params = {k: v for k, v in params.items() if k not in ("alpha", "group", "exclude_current")}
    return cls(**params)
