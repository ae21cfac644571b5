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
``SUM_EVERY_ROWS`` learned rows and at every merge it is set to the exact sum of the parts
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

import numbers
from collections.abc import Hashable, Mapping

import numpy as np

from .base_learner import stacked
from .contribution import Contribution, ContributionError

__all__ = ["PartStats", "Part", "PartitionedLearner", "SUM_EVERY_ROWS"]

# Settings members of one model may differ in: they pick hardware or bound memory, and leave
# the model's arithmetic alone ("backbone" is compared as the backbone's own identity). A
# contribution written while one of them was still a setting merges all the same.
_NOT_MODEL_SETTINGS = ("device", "backbone", "max_columns")

# Forgetting heads of a learner serving several partitions are set to the exact sum of the
# parts this often (rows learned by the learner); see the module docstring.
SUM_EVERY_ROWS = 256


class PartStats:
    """One partition's additive statistics for one ridge head, in the learner's column layout."""

    def __init__(self, la, A=None, B=None, counts=None, n_rows: int = 0, anchor: tuple | None = None):
        self.la = la
        self.A = la.zeros(0, 0) if A is None else A  # (d, d)
        self.B = la.zeros(0, 0) if B is None else B  # (d, c)
        self.counts = np.zeros(0) if counts is None else np.asarray(counts, dtype=np.float64)  # (c,)
        self.n_rows = n_rows
        # (decay, rows_since_anchor) of the head it was copied from, when it is a learner's only part:
        # installed alone, the head goes on with them (a forgetting head's ridge term and anchor
        # schedule), so a restart from the changelog gives the model an uninterrupted run has
        self.anchor = anchor

    @classmethod
    def from_head(cls, head) -> "PartStats":
        """A copy of a head's statistics (a learner's only part so far)."""
        la, ridge = head.la, head.ridge
        B = la.pad(ridge.B, 0, len(head.counts) - ridge.B.shape[1])  # classes added since it last learned
        return cls(la, la.own(ridge.A.clone() if hasattr(ridge.A, "clone") else ridge.A.copy()), la.own(B),
                   np.array(head.counts, dtype=np.float64), ridge.n_rows, (ridge.decay, ridge.rows_since_anchor))

    def _grow(self, d: int, c: int) -> None:
        la = self.la
        dd, dc = d - self.A.shape[0], c - self.B.shape[1]
        if dd > 0:
            self.A = la.pad(self.A, dd, dd)
            self.B = la.pad(self.B, dd, 0)
        if dc > 0:
            self.B = la.pad(self.B, 0, dc)
            self.counts = np.pad(self.counts, (0, dc))

    def absorb(self, X, Y, w, forgetting: float) -> None:
        """Learn rows ``X`` (b, d) with one-hot targets ``Y`` (b, c) and weights ``w`` (b,) or None,
        in order: ``A = l^b A + X' diag(w_i l^(b-1-i)) X`` (the ridge's own update)."""
        la = self.la
        b = X.shape[0]
        self._grow(X.shape[1], Y.shape[1])
        w = np.ones(b) if w is None else np.asarray(w, dtype=np.float64)
        scale = forgetting**b
        dw = w * forgetting ** np.arange(b - 1, -1, -1, dtype=np.float64)  # (b,)
        dwt = la.asarray(dw)
        if scale != 1.0:
            self.A *= scale
            self.B *= scale
        if b == 1:
            # one row (the per-event path): rank-1 updates in place; the product below makes a (d, d)
            # temporary per row, which was 40% of learning one event with several partitions
            la.ger_(self.A, dw[0], X[0], X[0])  # A += w x x'
            la.ger_(self.B, dw[0], X[0], Y[0])  # B += w x y'
        else:
            self.A += (X.T * dwt) @ X
            self.B += (X.T * dwt) @ Y
        self.counts += la.to_numpy((Y.T * la.asarray(w)).sum(axis=1))
        self.n_rows += b

    def aligned(self, rows: np.ndarray, d: int, cols: np.ndarray, c: int) -> "PartStats":
        """These statistics moved to another layout: input ``i`` goes to ``rows[i]`` of ``d``, class ``k``
        to ``cols[k]`` of ``c``. An input with ``rows[i] < 0`` has no column there and is left out: the
        rest are the statistics of the design without it, exactly (the Gram matrix of fewer columns)."""
        la = self.la
        A_in, B_in = la.to_numpy(self.A), la.to_numpy(self.B)
        keep = rows >= 0
        if not keep.all():
            A_in, B_in, rows = A_in[np.ix_(keep, keep)], B_in[keep], rows[keep]
        A, B = np.zeros((d, d)), np.zeros((d, c))
        A[np.ix_(rows, rows)] = A_in
        B[np.ix_(rows, cols)] = B_in
        counts = np.zeros(c)
        counts[cols] = self.counts
        return PartStats(la, la.own(la.asarray(A)), la.own(la.asarray(B)), counts, self.n_rows, self.anchor)

    def state_dict(self) -> dict:
        la = self.la
        state = {"A": la.to_numpy(self.A).copy(), "B": la.to_numpy(self.B).copy(), "counts": self.counts.copy(),
                 "n_rows": self.n_rows}
        if self.anchor is not None:
            state["anchor"] = [float(self.anchor[0]), int(self.anchor[1])]
        return state

    @classmethod
    def from_state(cls, la, state) -> "PartStats":
        A, B = (np.asarray(state[k], dtype=np.float64) for k in ("A", "B"))
        counts = np.asarray(state["counts"], dtype=np.float64).reshape(-1)
        d, c = B.shape
        if A.shape != (d, d) or counts.shape != (c,):
            raise ContributionError(f"inconsistent part statistics: A {A.shape}, B {B.shape}, counts {counts.shape}")
        if not (np.isfinite(A).all() and np.isfinite(B).all() and np.isfinite(counts).all()):
            raise ContributionError("part statistics hold NaN or infinite values")
        anchor = state.get("anchor")  # absent in older parts, and in parts of a learner of several
        if anchor is not None:
            anchor = (float(anchor[0]), int(anchor[1]))
            if not (0.0 < anchor[0] <= 1.0 and anchor[1] >= 0):
                raise ContributionError(f"part statistics hold an invalid anchor {anchor!r}")
        return cls(la, la.own(la.asarray(A.copy())), la.own(la.asarray(B.copy())), counts.copy(), int(state["n_rows"]),
                   anchor)


class Part:
    """A partition's part: its statistics per head (``None`` while the heads are its only copy),
    its local state (``None`` while it is the one swapped in), and its event count."""

    def __init__(self, stats=None, local=None, events: int = 0):
        self.stats = stats
        self.local = local
        self.events = events


class PartitionedLearner:
    """Partitions for a learner with ridge heads (module docstring). The learner provides:

    ``_ridge_heads()`` (the served :class:`~stream_cl.heads.RidgeClassHead` list),
    ``_layout(i, names, kinds)`` (labels of a head's design columns for an input index),
    ``_get_local()`` / ``_set_local(local)`` / ``_fresh_local()`` (its local state as a dict,
    empty for none), ``_local_state(local)`` / ``_local_from_state(state, rows, width)`` (that state
    as a contribution carries it; ``rows[i]`` is the local position of the exporter's input
    ``i`` among ``width``), ``index_`` (its :class:`~stream_cl.features.FeatureIndex`) and ``_identity()``.
    """

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

    def _identity(self, canonical: bool = False) -> dict:
        """What parts of one model must share: the learner's kind, settings (not those that leave
        the model's arithmetic alone: the device, the ``max_columns`` bound) and backbone.
        ``canonical``: each setting written so that equal values read the same (:func:`_canonical`:
        ``1`` and ``1.0``, a list and a tuple, dicts in any order); what a state keeps (contributions
        keep each setting's ``repr``, as members of a group have always compared them)."""
        backbone = getattr(self, "backbone_", None)
        spell = _canonical if canonical else repr
        settings = {k: spell(v) for k, v in self._get_params().items() if k not in _NOT_MODEL_SETTINGS}
        return {"kind": type(self).__name__, "backbone": backbone.identity() if backbone is not None else None,
                "settings": settings}

    def _check_identity(self, saved: Mapping | None) -> None:
        """Refuse the state of a learner whose :meth:`_identity` (``saved``, kept in its state) differs
        from this one's, naming the settings. A setting the state does not name is newer than it: not
        compared (its default keeps the behaviour of then); a state without one is not compared.
        Loaded anyway, another backbone's weights ran as this one's, another view order broke every
        later learn, other settings went on silently."""
        if saved is None:
            return
        theirs = _model_identity(dict(saved))
        mine = self._identity(canonical=True)
        mine["settings"] = {k: v for k, v in mine["settings"].items() if k in (theirs.get("settings") or {})}
        if theirs != mine:
            raise ValueError(f"checkpoint and learner differ in settings: the checkpoint's learner is "
                             f"{_describe(theirs, mine)}, this one {_describe(mine, theirs)}: build the learner "
                             "with the checkpoint's settings")

    # -- which part is being learned ----------------------------------------------------------
    def _enter(self, partition: Hashable, learn: bool = True) -> None:
        """Swap ``partition``'s part in, to learn its events (``learn``: its part is made if it has
        none) or to predict them (``learn=False``). A partition with no part, or whose part has
        learned no event yet, is predicted as an unknown one: with the part that has learned the
        most events. Whichever part comes in, the forgetting heads are set to the exact sums when
        a row was learned since they last were (always before learning: see the module docstring),
        so a per-event loop, which predicts each event before learning it, and a batch, which
        swaps once, serve the same heads."""
        if partition == self._active and self._active_learned:  # the common case: nothing to do
            return
        if not learn:
            if not self._parts:
                return
            part = self._parts.get(partition)
            if part is None or part.events == 0:
                partition = max(self._parts, key=lambda k: (self._parts[k].events, k == self._active))
            if partition == self._active:
                return
        elif not self._parts:
            self._parts[partition] = Part()
            self._active = partition
            return
        elif partition == self._active:
            return  # its part, which has learned nothing yet
        if not self._multi:
            self._go_multi()
        old = self._parts[self._active]
        old.local = self._get_local()
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = Part([PartStats(h.la) for h in self._ridge_heads()], self._fresh_local())
        self._set_local(part.local)
        part.local = None
        for head, stats in zip(self._ridge_heads(), part.stats):
            head.part = stats
        self._active = partition
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

    def _learned(self, n_events: int, n_rows: int) -> None:
        """After learning ``n_events`` events (``n_rows`` rows) of the active partition."""
        if not self._parts:
            return
        part = self._parts[self._active]
        part.events += n_events
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
            _install(head, [p.stats[i] for p in self._parts.values()])
        self._set_served_clocks()

    # -- the served model is the sum of the parts ---------------------------------------------
    def _serve_sums(self, forgetting_only: bool = False) -> None:
        """Set the heads to the exact sums of the parts' statistics, re-anchored (``_install``: R is
        dropped, and rebuilt from the sums by one inverse only when something next reads it)."""
        self._since_sum = 0
        for i, head in enumerate(self._ridge_heads()):
            if forgetting_only and head.ridge.forgetting >= 1.0 and not head.approximate:
                continue  # exact: its served statistics are the sum (another partition's factor may be < 1)
            _install(head, [p.stats[i] for p in self._parts.values()])
        self._set_served_clocks()

    def _forgetting_changed(self) -> None:
        """A head's factor was changed (a drift response, homeostasis, ``set_forgetting``): with several
        parts, the served clocks follow it (a stale clock decayed every part by the new factor)."""
        if self._multi:
            self._set_served_clocks()

    def _set_served_clocks(self) -> None:
        """Until the next re-sum, a forgetting head decays its served statistics per row by
        ``1 - (1 - l) s``, ``s`` the learning partition's share of the decayed row mass (X'X's
        bias entry): the exact sum decays that partition's statistics only."""
        part = self._parts.get(self._active) if self._parts else None
        for i, head in enumerate(self._ridge_heads()):
            lam = head.ridge.forgetting
            if not self._multi or lam >= 1.0 or part is None or part.stats is None:
                head.served_forgetting = None
                continue
            mine, total = part.stats[i].A, head.ridge.row_mass()
            share = float(mine[0, 0]) / total if mine.shape[0] and total > 0 else 1.0
            head.served_forgetting = 1.0 - (1.0 - lam) * min(max(share, 0.0), 1.0)

    def served_statistics(self) -> list[PartStats]:
        """Per head, the sum of the parts' statistics (the heads' own when there is one part)."""
        heads = self._ridge_heads()
        if not self._multi:
            return [PartStats.from_head(h) for h in heads]
        return [_sum(h, [p.stats[i] for p in self._parts.values()]) for i, h in enumerate(heads)]

    # -- contributions ------------------------------------------------------------------------
    def contribution(self, partition: Hashable, offset: int | None = None, pending=None) -> Contribution:
        """Partition ``partition``'s part (``offset``: the next source offset it covers;
        ``pending``: what the caller keeps with it). A partition this learner holds no part of
        has learned nothing here (its events, if any, were predicted only: a part is made by
        learning): its part is empty (no statistics, no local state, no events), and the
        daemon's changelog still carries its offset and waiting events."""
        heads = self._ridge_heads()
        part = self._parts.get(partition)
        if part is None:
            stats, local, part = [PartStats(h.la) for h in heads], None, Part()
        else:
            stats = part.stats if self._multi else [PartStats.from_head(h) for h in heads]
            local = self._get_local() if partition == self._active else part.local
        return Contribution(
            identity=self._identity(), partition=partition,
            inputs={"names": list(self.index_.names), "kinds": np.array(self.index_.kinds, dtype=np.int8),
                    "hash_width": self.index_.hash_width, "categorical": list(self.index_.categories)},
            heads=[{**_packed(s.state_dict()), "classes": list(h.classes)} for s, h in zip(stats, heads)],
            local=self._local_state(local) if local else None, offset=offset, pending=pending, events=part.events)

    def merge(self, partition: Hashable, contribution: "Contribution | bytes", resum: bool = True) -> "PartitionedLearner":
        """Install or replace partition ``partition``'s part with ``contribution`` (or its bytes).

        ``resum=False`` leaves the served heads as they are (several merges in a row, then one
        :meth:`resum`: the daemon's fold); until then predictions use the heads of before.
        Raises :class:`~stream_cl.contribution.ContributionError`, changing nothing, for a
        contribution of another learner kind, settings or backbone, or one that is corrupt.
        """
        c = Contribution.coerce(contribution)
        ident = self._identity()
        if _model_identity(c.identity) != ident:
            raise ContributionError(f"contribution of partition {partition!r} was made by {_describe(c.identity, ident)}; "
                                    f"this learner is {_describe(ident, c.identity)}")
        heads = self._ridge_heads()
        if len(c.heads) != len(heads):
            raise ContributionError(f"contribution has {len(c.heads)} heads, this learner {len(heads)}")
        names, kinds = list(c.inputs["names"]), [int(k) for k in np.asarray(c.inputs["kinds"]).tolist()]
        if c.inputs.get("hash_width") != self.index_.hash_width or len(kinds) != (
                len(names) if self.index_.hash_width is None else self.index_.hash_width):
            raise ContributionError("contribution's inputs do not match this learner's index (hash_width or kinds)")
        incoming = [PartStats.from_state(h.la, _unpacked(s)) for h, s in zip(heads, c.heads)]  # validated before any change
        for i, (h, s, st) in enumerate(zip(heads, c.heads, incoming)):
            if st.B.shape[1] > len(s["classes"]) or st.A.shape[0] > len(self._layout(i, names, kinds)):
                raise ContributionError("contribution's statistics do not match its inputs and classes")
        # where the exporter's inputs go here (names this learner lacks append in their order)
        width = self.index_.width
        if self.index_.hash_width is None:
            pos = {n: i for i, n in enumerate(self.index_.names)}
            for n in names:
                if n not in pos:
                    pos[n] = len(pos)
            rows_in, width = np.array([pos[n] for n in names], dtype=np.int64), len(pos)
        else:
            rows_in = np.arange(len(kinds))
        local = self._local_from_state(c.local, rows_in, width) if c.local is not None else self._fresh_local()
        # from here on the learner changes: align inputs and classes by name
        self.index_.adopt(names, kinds, c.inputs.get("categorical", ()))  # absent in older contributions
        mine_names, mine_kinds = list(self.index_.names), self.index_.kinds
        aligned = []
        for i, (h, s, st) in enumerate(zip(heads, c.heads, incoming)):
            h.add_classes(list(s["classes"]))
            mine = self._layout(i, mine_names, mine_kinds)
            rows = _positions(self._layout(i, names, kinds)[: st.A.shape[0]], mine)
            cols = _positions(list(s["classes"])[: st.B.shape[1]], list(h.classes))
            aligned.append(st.aligned(rows, len(mine), cols, len(h.classes)))
        self._memo = None
        if not self._parts or (not self._multi and partition == self._active):
            # the only part: the heads are its statistics
            self._parts = {partition: Part(events=c.events)}
            self._active = partition
            for h, st in zip(heads, aligned):
                _install(h, [st])
            self._set_local(local)
            self._active_learned = c.events > 0
            return self
        if not self._multi:
            self._go_multi()
        for st in aligned:  # one of several parts: its heads' anchor is the served sum's (as in _go_multi)
            st.anchor = None
        part = self._parts.get(partition) or Part()
        part.stats, part.events = aligned, c.events
        self._parts[partition] = part
        if partition == self._active:
            self._set_local(local)
            for head, stats in zip(heads, aligned):
                head.part = stats
            self._active_learned = c.events > 0
        else:
            part.local = local
        if resum:
            self._serve_sums()
        return self

    def resum(self) -> None:
        """Set the served heads to the exact sums of the parts (after merges with ``resum=False``)."""
        if self._multi:
            self._serve_sums()

    # -- state --------------------------------------------------------------------------------
    def _parts_state(self) -> dict:
        if not self._parts:
            return {"active": None, "keys": [], "events": [], "multi": False}
        keys = list(self._parts)
        out = {"active": keys.index(self._active), "keys": keys, "events": [self._parts[k].events for k in keys],
               "multi": self._multi}
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
        for i, k in enumerate(keys):
            part = Part(events=int(state["events"][i]))
            if self._multi:
                part.stats = [PartStats.from_state(h.la, s) for h, s in zip(heads, state["stats"][i])]
                raw = state["local"][i]
                part.local = self._local_from_state(raw, np.arange(n_inputs), n_inputs) if raw is not None else None
            self._parts[k] = part
        self._active = keys[int(state["active"])]
        self._active_learned = self._parts[self._active].events > 0
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

    def _summed_heads_state(self, head_states: list) -> list:
        """``head_states`` with the statistics replaced by the parts' sums (what ``sufficient_statistics`` reads)."""
        if not self._multi:
            return head_states
        out = []
        for s, st in zip(head_states, self.served_statistics()):
            ridge = dict(s["ridge"])
            A, B = st.la.to_numpy(st.A), st.la.to_numpy(st.B)
            ridge["A"], ridge["B"], ridge["n_rows"] = A.copy(), B.copy(), st.n_rows
            out.append({**s, "ridge": ridge, "counts": st.counts.tolist()})
        return out


def _canonical(value) -> str:
    """``value`` written so that equal settings read the same: numbers as floats, sequences as tuples,
    mappings sorted, River estimators (replay, drift, homeostasis parts) as their kind and parameters.

    >>> _canonical([(1, "all")]) == _canonical(((1.0, "all"),)), _canonical({"b": 2, "a": np.float64(1)})
    (True, "{'a': 1.0, 'b': 2.0}")
    """
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_canonical(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, Mapping):
        items = sorted(((_canonical(k), _canonical(v)) for k, v in value.items()))
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if hasattr(value, "_get_params") and not isinstance(value, type):
        return type(value).__name__ + _canonical(value._get_params())
    return repr(value)


def _model_identity(identity: dict) -> dict:
    """``identity`` without the settings that are not the model's (``_NOT_MODEL_SETTINGS``)."""
    settings = identity.get("settings")
    if not isinstance(settings, dict):
        return identity
    return {**identity, "settings": {k: v for k, v in settings.items() if k not in _NOT_MODEL_SETTINGS}}


def _packed(state: dict) -> dict:
    """A part's statistics as a contribution carries them: X'X by its upper triangle (half the bytes)."""
    A = state.pop("A")
    return {**state, "A_upper": A[np.triu_indices(A.shape[0])]}


def _unpacked(state) -> dict:
    try:
        B, upper = np.asarray(state["B"]), np.asarray(state["A_upper"], dtype=np.float64)
        d = B.shape[0]
        if upper.shape != (d * (d + 1) // 2,):
            raise ContributionError(f"X'X has {upper.size} upper-triangle values for {d} design columns")
        A = np.zeros((d, d))
        A[np.triu_indices(d)] = upper
        A = A + np.triu(A, 1).T  # mirror the strict upper triangle
        return {**state, "A": A}
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise ContributionError(f"contribution's head statistics are malformed ({type(e).__name__}: {e})") from None


def _positions(names: list, mine: list) -> np.ndarray:
    """Where each of ``names`` is in ``mine``, -1 where it is not: a category among the first
    KEYED_CATEGORIES of its feature where the part was learned (a block of design columns) and
    a later one here (no block) after the two met the feature's values in other orders."""
    pos = {n: i for i, n in enumerate(mine)}
    return np.array([pos.get(n, -1) for n in names], dtype=np.int64)


def _sum(head, parts: list[PartStats]) -> PartStats:
    la = head.la
    d = max([head.ridge.n_features] + [p.A.shape[0] for p in parts])
    c = max([len(head.classes)] + [p.B.shape[1] for p in parts])
    A, B, counts, n = la.zeros(d, d), la.zeros(d, c), np.zeros(c), 0
    for p in parts:
        dp, cp = p.B.shape
        A[:dp, :dp] += p.A
        B[:dp, :cp] += p.B
        counts[: p.counts.shape[0]] += p.counts
        n += p.n_rows
    return PartStats(la, A, B, counts, n)


def _install(head, parts: list[PartStats]) -> None:
    """Set ``head`` to the sum of ``parts``, re-anchored (unless the one part installed carries its
    head's anchor: then the head goes on from it, as if never interrupted). The inverse is dropped,
    not rebuilt: ``R`` is computed from the installed ``A`` when next read (one d^3 inverse), and a
    batch works from the factor of ``A`` instead."""
    total = _sum(head, parts)
    ridge = head.ridge
    d, c = total.B.shape
    ridge.grow(d, c)
    ridge.A, ridge.B = ridge.la.own(total.A), ridge.la.own(total.B)
    ridge.n_rows = total.n_rows
    ridge.refresh()
    if len(parts) == 1 and parts[0].anchor is not None:
        ridge.decay, ridge.rows_since_anchor = parts[0].anchor
    head.counts = np.pad(total.counts, (0, max(len(head.classes) - c, 0)))[: len(head.classes)].tolist()
    head.approximate = False


def _describe(identity: dict, other: dict) -> str:
    """``identity``'s kind, and where it differs from ``other``: its backbone and settings."""
    out = str(identity.get("kind"))
    if identity.get("backbone") != other.get("backbone"):
        out += " with backbone " + " ".join(str(identity.get("backbone")).split())
    mine, theirs = identity.get("settings") or {}, other.get("settings") or {}
    diff = [f"{k}={mine.get(k)}" for k in sorted(set(mine) | set(theirs), key=str) if mine.get(k) != theirs.get(k)]
    if diff and identity.get("kind") == other.get("kind"):
        out += " with " + ", ".join(diff)
    return out
