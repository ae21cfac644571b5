"""Partition-mergeable learners: the source partition is the unit of learned state.

A learner keeps a *part* per source partition (an opaque hashable key; River's own
methods use the single partition ``None``). A part holds everything that depends on
the order of that partition's events:

* per ridge head, the partition's **additive statistics** (:class:`PartStats`: X'X, X'Y,
  class counts; a forgetting head decays them on the partition's own clock, one factor
  per row of *that* partition);
* the **local state** (the online learner: standardiser, SGD head, mixer records,
  drift and homeostasis state, forgetting factors): swapped in while the partition's
  events are learned.

The **served model** is a view: the heads hold the sums of the parts' statistics, so
an event of any partition is scored by one model, with its own partition's local state.
Learning a row of partition ``p`` updates ``p``'s statistics and the served heads by the
same rank-k update, so ``p``'s own events are visible at once. Forgetting heads are the
exception: the sum of parts decaying on separate clocks changes by a full-rank matrix at
every row, so between *re-sums* the served head decays its statistics by the learning
partition's share of the forgetting, and at every change of partition, every
``SUM_EVERY_ROWS`` labelled events learned and at every merge it is set to the exact sum of the parts
(the sums are installed and the head re-anchored; its inverse is not kept but computed from
the sums when next read, and a batch works from their factor; ``docs/partitions.md`` gives
the measured cost and error). A change of partition to predict re-sums too when rows were
learned since the last re-sum, and a batch is learned in segments that end where the
``SUM_EVERY_ROWS``-th row falls: a per-event loop (which swaps at the prediction of a
partition's first event) and any batching serve the same heads at every event.

A part is made when its partition first *learns* an event. Until then (predict-only events,
labels still to come) the partition is predicted as an unknown one, with the part that has
learned the most events, and its contribution is the empty part.

A learner that has only ever seen one partition keeps no copy: its heads *are* that
part, and learning costs exactly what it did before partitions existed.

``learner.contribution(p)`` exports part ``p`` (:class:`~stream_cl.contribution.Contribution`);
``learner.merge(p, c)`` installs or replaces it, aligning inputs and classes by name.

Two learners, each learning its own partitions, give by merging the model one learner
learning both would have (for the analytic model: closed-form ridge on all the rows):

>>> from river import datasets
>>> from stream_cl import AnalyticClassifier
>>> one, left, right = AnalyticClassifier(), AnalyticClassifier(), AnalyticClassifier()
>>> for i, (x, y) in enumerate(datasets.Phishing()):
...     p = i % 2  # the event's source partition
...     _ = one.learn_one(x, y, partition=p)
...     _ = (left if p == 0 else right).learn_one(x, y, partition=p)
>>> raw = right.contribution(1, offset=625).to_bytes()  # what the daemon's changelog carries
>>> _ = left.merge(1, raw)
>>> sorted(left.partitions_), bool(abs(left.coef_ - one.coef_).max() < 1e-9)
([0, 1], True)
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from .base_learner import stacked
from .local_swaps import LocalSwaps
from .part_exchange import PartExchange
from .part_stats import Part, PartStats, check_partition, classes_with_rows, install
from .served_sums import ServedSums

__all__ = ["PartStats", "Part", "PartitionedLearner", "SUM_EVERY_ROWS", "check_partition"]

# Forgetting heads of a learner serving several partitions are set to the exact sum of the
# parts this often (labelled events learned by the learner: replayed and pseudo rows are not
# counted); see the module docstring.
SUM_EVERY_ROWS = 256


class PartitionedLearner(ServedSums, PartExchange, LocalSwaps):
    """Partitions for a learner with ridge heads (module docstring). The learner provides:

    ``_ridge_heads()`` (the served :class:`~stream_cl.heads.RidgeClassHead` list),
    ``_layout(i, names, kinds)`` (labels of a head's design columns for an input index),
    ``_get_local()`` / ``_set_local(local)`` / ``_fresh_local()`` (its local state as a dict,
    empty for none), ``_local_state(local)`` / ``_local_from_state(state, rows, width)`` (that state
    as a contribution carries it; ``rows[i]`` is the local position of the exporter's input
    ``i`` among ``width``), and ``index_`` (its :class:`~stream_cl.features.FeatureIndex`).
    Moving parts between learners is :class:`~stream_cl.part_exchange.PartExchange`'s, serving their sum
    :class:`~stream_cl.served_sums.ServedSums`'."""

    def _init_parts(self) -> None:
        self._parts: dict = {}
        self._active = None  # the partition swapped in (meaningful once there are parts)
        self._multi = False
        self._since_sum = 0
        self._active_learned = False  # the active part has learned an event: it serves its partition

    @property
    def partitions_(self) -> list:
        """The partitions this learner holds a part of."""
        return list(self._parts)

    def classes_of(self, partition: Hashable) -> list:
        """The classes ``partition``'s own learned events brought, in the order it met them (none for a
        partition without a part), whatever other parts brought, and kept when a drift reset renews
        the statistics (a part from an older state: the classes its statistics showed then).

        >>> from stream_cl import AnalyticClassifier
        >>> model = AnalyticClassifier().learn_one({"a": 1.0}, "x", partition=0).learn_one({"a": 2.0}, "y", partition=1)
        >>> model.classes_of(0), model.classes_of(1), model.classes_of(2), model.classes_
        (['x'], ['y'], [], ['x', 'y'])
        """
        check_partition(partition)
        part = self._parts.get(partition)
        if part is None:
            return self._counted_classes(None) if not self._parts else []
        return list(part.classes)

    def _counted_classes(self, part) -> list:
        """The classes with rows in ``part``'s statistics (with one part, or none: a state from before
        partitions, the heads' own): what a part from before the classes were kept has met, to the
        extent its statistics still show it."""
        head = self._ridge_heads()[0]
        return classes_with_rows(head.classes, part.stats[0].counts if self._multi and part is not None else head.counts)

    # -- which part is being learned ----------------------------------------------------------
    def _enter(self, partition: Hashable, learn: bool = True) -> None:
        """Swap ``partition``'s part in, to learn its events (``learn``: its part is made if it has
        none) or to predict them (``learn=False``). A partition with no part, or whose part has
        learned no event yet, is predicted as an unknown one: with the part that has learned the
        most events. Whichever part comes in, the forgetting heads are set to the exact sums when
        a row was learned since they last were (always before learning: see the module docstring),
        so a per-event loop, which predicts each event before learning it, and a batch, which
        swaps once, serve the same heads. A key :func:`check_partition` refuses changes nothing."""
        if partition is self._active and self._active_learned:  # the common case (a key checked before): nothing to do
            return
        check_partition(partition)
        if partition == self._active and self._active_learned:
            return
        if not learn:
            if not self._parts:
                return
            part = self._parts.get(partition)
            if part is None or part.events == 0:
                partition = max(self._parts, key=lambda k: (self._parts[k].events, k == self._active))
            if partition == self._active:
                return
        elif not self._parts:  # the first part (the heads' classes: a state from before partitions)
            self._parts[partition] = Part(classes=self._counted_classes(None))
            self._active = partition
            return
        elif partition == self._active:
            return  # its part, which has learned nothing yet
        if not self._multi:
            self._go_multi()
        self._swap_begin()  # until part.local is None, a partition's local state is in two places (LocalSwaps)
        try:
            old = self._parts[self._active]
            old.local = self._get_local()
            part = self._parts.get(partition)
            if part is None:
                part = self._parts[partition] = Part([PartStats(h.la) for h in self._ridge_heads()],
                                                     self._fresh_local(), classes=[])
            self._set_local(part.local)
            part.local = None
            for head, stats in zip(self._ridge_heads(), part.stats):
                head.part = stats
            self._active = partition
        finally:
            self._swap_end()
        self._active_learned = part.events > 0
        if any(h.ridge.forgetting < 1.0 or h.approximate for h in self._ridge_heads()):
            if learn or self._since_sum:
                self._serve_sums(forgetting_only=True)  # forgetting heads: exact at every change of partition
            else:
                self._set_served_clocks()  # the incoming partition's share, should it learn next

    def _unknown_until_learned(self, xs, labelled: np.ndarray, partition: Hashable, learn_from) -> np.ndarray | None:
        """A batch's probabilities when ``partition`` has not learned yet (``None`` when it has: the
        caller learns the whole run): the events up to and including its first labelled one are
        predicted as an unknown partition's (``predict_proba_one``'s rule), and ``learn_from(first)``
        learns the rest in the partition's part, made by that event (its probabilities (b - first, c))."""
        check_partition(partition)  # before a prediction or a column changes anything
        if (partition == self._active and self._active_learned) or self._has_learned(partition):
            return None
        b = len(labelled)
        first = int(labelled.argmax()) if labelled.any() else b
        classes = len(self.classes_)
        early = (self.predict_proba_batch(xs[: first + 1], partition=partition) if classes
                 else np.zeros((min(first + 1, b), 0)))  # (events up to the first labelled, n_classes)
        self._memo = None
        if first == b:
            return early
        P = learn_from(first)
        P[0] = 0.0
        P[0, :classes] = early[first]  # its own part's prediction, before it had learned anything, is not served
        return stacked([early[:first], P])

    def _has_learned(self, partition: Hashable) -> bool:
        """Whether ``partition``'s part has learned an event (else it is predicted as an unknown partition)."""
        part = self._parts.get(partition)
        return part is not None and part.events > 0

    def _sum_cuts(self, labelled: np.ndarray) -> list[int]:
        """Ends of the segments in which a batch of the active partition is learned (``labelled``:
        its labelled mask), each followed by :meth:`_learned`: forgetting heads are set to the exact
        sums after every ``SUM_EVERY_ROWS``-th learned row, after the same rows as a per-event loop."""
        b = len(labelled)
        if not self._multi or not self._may_forget():
            return [b]
        k = np.cumsum(labelled)
        due = np.arange(SUM_EVERY_ROWS - self._since_sum, int(k[-1]) + 1 if b else 0, SUM_EVERY_ROWS)
        return [e for e in (np.searchsorted(k, due) + 1).tolist() if e < b] + [b]

    def _may_forget(self) -> bool:
        """Whether a ridge head forgets, or may be made to (then the learned rows are counted towards
        the next re-sum whatever the factors are at the moment: a batch counts as its events would)."""
        return any(h.ridge.forgetting < 1.0 for h in self._ridge_heads())

    def _go_multi(self) -> None:
        """A second partition: the heads' statistics so far become the first part's own copy."""
        part = self._parts[self._active]
        part.stats = [PartStats.from_head(h) for h in self._ridge_heads()]
        for head, stats in zip(self._ridge_heads(), part.stats):
            stats.anchor = None  # one of several parts from now on: the heads' anchor is the served sum's
            head.part = stats
        self._multi = True

    def _learned(self, n_events: int, n_rows: int, labels=()) -> None:
        """After learning ``n_events`` events (``n_rows`` rows) of the active partition, ``labels`` theirs."""
        if not self._parts:
            return
        part = self._parts[self._active]
        part.events += n_events
        part.met(labels)
        if not self._active_learned:
            self._active_learned = part.events > 0
        if self._multi and self._may_forget():
            self._since_sum += n_rows
            if self._since_sum >= SUM_EVERY_ROWS:
                self._serve_sums(forgetting_only=True)

    def _restarted(self, heads: list[int]) -> None:
        """Heads ``heads`` were just replaced by shadows of the active partition (drift responses
        "restart" and "reset"): a shadow holds that partition's rows since its alarm, so with several
        parts it becomes that partition's part of the head, and the head serves the sum again (the
        other partitions' rows stay: each partition watches its own drift). With one part the head
        is the part."""
        if not self._multi:
            return
        part = self._parts[self._active]
        for i in heads:
            head = self._ridge_heads()[i]
            stats = PartStats.from_head(head)
            stats.anchor = None  # one of several parts: the heads' anchor is the served sum's
            part.stats[i] = head.part = stats
            install(head, [p.stats[i] for p in self._parts.values()])
        self._set_served_clocks()

    # -- state --------------------------------------------------------------------------------
    def _parts_state(self) -> dict:
        if not self._parts:
            return {"active": None, "keys": [], "events": [], "multi": False}
        keys = list(self._parts)
        out = {"active": keys.index(self._active), "keys": keys, "events": [self._parts[k].events for k in keys],
               "multi": self._multi, "classes": [list(self._parts[k].classes) for k in keys]}
        if self._multi:
            out["stats"] = [[s.state_dict() for s in self._parts[k].stats] for k in keys]
            out["local"] = [None if k == self._active else self._local_state(self._parts[k].local) for k in keys]
            # the heads as served (the top-level state holds the sums): a restore resumes them exactly
            out["served"] = [h.state_dict() for h in self._ridge_heads()]
            out["served_forgetting"] = [h.served_forgetting for h in self._ridge_heads()]
            out["approximate"] = [h.approximate for h in self._ridge_heads()]
            out["since_sum"] = self._since_sum  # rows learned since the forgetting heads were last re-summed
        return out

    def _load_parts_state(self, state) -> None:
        self._init_parts()
        for head in self._ridge_heads():  # links to the parts this learner held before the load
            head.part, head.served_forgetting, head.approximate = None, None, False
        if not state or not state["keys"]:
            return
        keys = list(state["keys"])
        heads = self._ridge_heads()
        self._multi = bool(state["multi"])
        n_inputs = self.index_.width
        classes = state.get("classes") or [None] * len(keys)  # absent in older checkpoints: not known
        for i, k in enumerate(keys):
            part = Part(events=int(state["events"][i]))
            if self._multi:
                part.stats = [PartStats.from_state(h.la, s) for h, s in zip(heads, state["stats"][i])]
                raw = state["local"][i]
                part.local = self._local_from_state(raw, np.arange(n_inputs), n_inputs) if raw is not None else None
            self._parts[k] = part
        self._active = keys[int(state["active"])]
        self._active_learned = self._parts[self._active].events > 0
        for met, part in zip(classes, self._parts.values()):  # not known: what its statistics show, from now on
            part.set_classes(met if met is not None else self._counted_classes(part))
        if self._multi:
            clocks = state.get("served_forgetting") or [None] * len(heads)
            self._since_sum = int(state.get("since_sum", 0))  # absent in older checkpoints
            # absent in older checkpoints: a head that forgets now was approximate if a served clock was set
            approximate = state.get("approximate") or [c is not None for c in clocks]
            for head, stats, served, clock, approx in zip(heads, self._parts[self._active].stats, state["served"],
                                                          clocks, approximate):
                head.load_state_dict(served)
                head.part = stats
                head.served_forgetting = clock
                head.approximate = bool(approx)
