"""The drift responses "restart" and "reset": shadow heads trained since an alarm, and warm restarts.

After an alarm, each covered head (the adaptive ones; with "reset" every head) gets a
*shadow*: a fresh ridge head, started at the learner's next control point. From then on
the shadow learns the fresh labelled rows its head learns (its own design of each event,
with the weight the head gives it), but not the other rows the head learns: rows
replayed from a replay buffer and the pseudo rows of imbalance compensation. Those come
from the whole history, mostly from before the alarm (stored rows, or class statistics
gathered over them), and a shadow is meant to hold only the concept since the alarm.
That is acceptable because a shadow is judged only on the fresh rows since it started:
the restarter counts, on those labelled rows, how often the shadow's prequential
prediction was right and how often its head's was, so both are scored on the same rows
whatever else the head learned. Once the drift monitor has
watched ``restart_after`` labelled events since the control point where the shadows
started, each head whose shadow was right strictly more often is replaced by it (its
forgetting factor kept); the others stay. A new alarm before that starts the shadows
again (at the next control point, the count starting over); one in the control period
where they are due starts new shadows after the due ones are judged.

With ``balanced`` (the learner compensates class imbalance), "right more often" is the
mean over the classes met since the shadows started of each class's rate of right
predictions: a compensated head trades plain accuracy for the rare classes' recall, and a
shadow, which learns no pseudo row, predicts the majority class and beat it on plain hits
after nearly every false alarm (review r94: a stationary 95/5 stream, "reset", 25 restarts
in 25 alarms, balanced accuracy 0.839 to 0.819).

A shadow keeps its head's classes, in the head's order (:meth:`ShadowRestarter.follow`, at
the start of every segment the head learns): with several partitions, another partition
may bring a class while the shadows learn only their own partition's rows, and a restart
must leave the head every class it serves, in its order (the order the other partitions'
statistics keep their columns in).

The schedule is the restarter's own: the monitor only says when an alarm happened
(:meth:`ShadowRestarter.alarm`) and how many labelled events it has watched; shadows start
and restarts happen at the learner's control points (:meth:`ShadowRestarter.control`), so
any batching of the stream gives the same restarts. Counting from the start rather than
from the alarm means a shadow has always learned ``restart_after`` labelled events when it
is judged, however far the alarm was from the next control point.

>>> from stream_cl.heads import RidgeClassHead
>>> heads = [RidgeClassHead(1.0, 0.99, "cpu")]
>>> r = ShadowRestarter(covered=[0], restart_after=2, make_head=lambda i: RidgeClassHead(1.0, 0.99, "cpu"))
>>> r.alarm(watched=10)
>>> r.control(heads, watched=10)   # the shadows start at the next control point (no head replaced)
[]
>>> sorted(r.shadows_), r.control(heads, watched=12), r.n_restarts_ + r.n_restarts_skipped_
([0], [], 1)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .state_checks import saved_count, saved_counts

__all__ = ["ShadowRestarter"]


class ShadowRestarter:
    """Shadow heads for the heads ``covered``; ``make_head(i)`` builds a fresh head like head ``i``."""

    def __init__(self, covered: Sequence[int], restart_after: int, make_head: Callable[[int], object],
                 balanced: bool = False):
        self.covered = list(covered)
        self.restart_after = int(restart_after)
        self.make_head = make_head
        self.balanced = bool(balanced)
        self.by_class_: dict = {}  # with balanced: head index -> {class: [rows, shadow hits, head hits]}
        self.alarm_at_ = -1  # the monitor's watched count at the latest alarm (-1: none pending)
        self.start_ = -1  # the alarm the current shadows started from
        self.started_at_ = -1  # the monitor's watched count at the control point where they started
        self.shadows_: dict = {}  # head index -> shadow head
        self.hits_: dict = {}  # head index -> [shadow hits, head hits] since the shadows started
        self.n_restarts_ = 0
        self.n_restarts_skipped_ = 0  # no shadow was better than its head: all heads kept

    def alarm(self, watched: int) -> None:
        """An alarm was raised when the monitor had watched ``watched`` labelled events."""
        self.alarm_at_ = watched

    def follow(self, heads: list) -> None:
        """Give each shadow the classes its head has and it lacks, in the head's order; called before
        the heads learn a segment, so that a class first seen in the segment is new to the shadow
        too (scored as unknown on its first row, as the head scores it) and is appended to both
        lists alike: from then on the lists stay equal."""
        for i, shadow in self.shadows_.items():
            _take_classes(shadow, heads[i].classes)

    def learn(self, designs: Callable[[int], object], ys: list, weights, head_hits: Sequence[np.ndarray],
              hits: Callable) -> None:
        """The shadows learn the labelled rows ``ys`` (``designs(i)``: head ``i``'s rows) and count
        their prequential hits against their heads' (``head_hits[i]`` for those rows);
        ``hits(scores, head, ys)`` tells which predictions were right."""
        for i, shadow in self.shadows_.items():
            scores = shadow.prequential(designs(i), ys, weights)
            mine, theirs = hits(scores, shadow, ys), head_hits[i]
            self.hits_[i][0] += int(mine.sum())
            self.hits_[i][1] += int(theirs.sum())
            if self.balanced:
                record = self.by_class_.setdefault(i, {})
                for y, a, b in zip(ys, mine.tolist(), theirs.tolist()):
                    r = record.setdefault(y, [0, 0, 0])
                    r[0], r[1], r[2] = r[0] + 1, r[1] + int(a), r[2] + int(b)

    def _better(self, i: int) -> bool:
        """Whether shadow ``i`` was right more often than its head (module docstring: with ``balanced``,
        class by class)."""
        if not self.balanced:
            return self.hits_[i][0] > self.hits_[i][1]
        rows = list(self.by_class_.get(i, {}).values())
        return bool(rows) and sum(a / n for n, a, _ in rows) > sum(b / n for n, _, b in rows)

    def control(self, heads: list, watched: int) -> list[int]:
        """At a control point: restart the heads once due; start shadows for a new alarm. Returns
        the indices of the heads replaced by their shadows (usually none)."""
        replaced: list[int] = []
        if self.shadows_ and watched - self.started_at_ >= self.restart_after:
            for i, shadow in self.shadows_.items():
                if self._better(i):
                    _take_classes(shadow, heads[i].classes)  # as a rule it has them all (follow)
                    lam = heads[i].ridge.forgetting
                    heads[i].load_state_dict(shadow.state_dict())
                    heads[i].ridge.set_forgetting(lam)
                    replaced.append(i)
            if replaced:
                self.n_restarts_ += 1
            else:
                self.n_restarts_skipped_ += 1
            # an alarm since they started is kept: its shadows start below (it had discarded these; r94)
            newer = self.alarm_at_ if self.alarm_at_ != self.start_ else -1
            self.shadows_, self.hits_, self.by_class_, self.start_, self.alarm_at_, self.started_at_ = \
                {}, {}, {}, -1, newer, -1
        if self.alarm_at_ >= 0 and self.start_ != self.alarm_at_:
            self.shadows_, self.hits_, self.by_class_ = {}, {}, {}
            for i in self.covered:
                self.shadows_[i] = self.make_head(i)
                _take_classes(self.shadows_[i], heads[i].classes)  # the heads' classes, in their order
                self.hits_[i] = [0, 0]
            self.start_, self.started_at_ = self.alarm_at_, watched
        return replaced

    def move_columns(self, positions: Mapping[int, np.ndarray]) -> None:
        """The learner lays the designs out in another order (a partition's part merged into a learner
        that met the inputs in another order): shadow ``i``'s design column ``k`` is now column
        ``positions[i][k]`` (-1: it has none here, and its statistics are dropped)."""
        for i, shadow in self.shadows_.items():
            state = shadow.state_dict()
            state["ridge"] = _ridge_moved(state["ridge"], np.asarray(positions[i], dtype=np.int64))
            shadow.load_state_dict(state)

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Each shadow head's state, hits and per-class counts, the shadow's start and alarm, and the restart counts."""
        return {"shadows": [{"head": i, "state": sh.state_dict(), "hits": list(self.hits_[i]),
                             "by_class": [[y, *r] for y, r in self.by_class_.get(i, {}).items()]}
                            for i, sh in self.shadows_.items()],
                "shadow_start": self.start_, "shadow_started": self.started_at_, "alarm_at": self.alarm_at_,
                "restarts": [self.n_restarts_, self.n_restarts_skipped_]}

    def load_state_dict(self, state: Mapping, drift_state: Mapping | None = None) -> "ShadowRestarter":
        """``drift_state``: the monitor's, for checkpoints from before the restarter, where the
        monitor kept the pending alarm as its ``shadow_start``. A checkpoint from before
        ``shadow_started`` counts ``restart_after`` from the alarm, as it was written to."""
        self.shadows_, self.hits_, self.by_class_ = {}, {}, {}
        for entry in state.get("shadows", []):  # a checkpoint before per-head shadows: none pending
            i = int(entry["head"])
            self.shadows_[i] = self.make_head(i)
            self.shadows_[i].load_state_dict(entry["state"])
            self.hits_[i] = saved_counts(entry["hits"], "shadow hits", size=2).reshape(2).tolist()  # (2,): shadow, head
            if self.balanced:  # (a state from before: judged on the rows from here on)
                self.by_class_[i] = {y: saved_counts([n, a, b], f"shadow hits of class {y!r}").tolist()
                                     for y, n, a, b in entry.get("by_class", [])}
        self.start_ = saved_count(state["shadow_start"], "shadow_start", -1) if self.shadows_ else -1
        self.started_at_ = saved_count(state.get("shadow_started", self.start_), "shadow_started", -1) if self.shadows_ else -1
        legacy = int(drift_state.get("shadow_start", -1)) if drift_state is not None else -1
        self.alarm_at_ = saved_count(state.get("alarm_at", legacy), "alarm_at", -1)
        # (2,): restarts, restarts skipped
        self.n_restarts_, self.n_restarts_skipped_ = saved_counts(state["restarts"], "restarts", size=2).reshape(2).tolist()
        return self


def _take_classes(shadow, classes: list) -> None:
    """Put ``shadow``'s classes in the order of its head's (``classes``), then append those it lacks,
    each with a zero column: the shadow learned no row of them (another partition's, or learned
    before the shadow started). A shadow that came with a merged part was started by a learner that
    may have met the classes in another order: a restart loads the shadow's class order into the
    head, and the other partitions' statistics keep their columns in the head's order."""
    own = list(shadow.classes)
    if own != list(classes[: len(own)]):
        _reorder(shadow, [c for c in classes if c in own] + [c for c in own if c not in classes])
    if len(shadow.classes) == len(classes):  # its classes are among its head's, in its order: the same ones
        return
    shadow.add_classes(classes)
    if shadow.ridge.n_features:  # one that has learned no row yet grows at its first
        shadow.ridge.grow(shadow.ridge.n_features, len(shadow.classes))


def _reorder(shadow, order: list) -> None:
    """Move ``shadow``'s classes, their X'Y columns and counts, to ``order`` (the same classes), by name."""
    state = shadow.state_dict()
    own = list(state["classes"])
    perm = [own.index(c) for c in order]
    B = state["ridge"]["B"]
    B = np.pad(B, ((0, 0), (0, len(own) - B.shape[1])))  # classes added since it last learned: zero columns
    state["ridge"]["B"] = B[:, perm]
    state["counts"] = [state["counts"][k] for k in perm]
    state["classes"] = list(order)
    shadow.load_state_dict(state)


def _ridge_moved(ridge: dict, to: np.ndarray) -> dict:
    """A ridge state (``RecursiveRidge.state_dict``) whose design column ``k`` moves to ``to[k]`` (-1: dropped).
    A column it gains is one it never had a value in: zero statistics, and in ``R`` what growing adds."""
    A, B = np.asarray(ridge["A"]), np.asarray(ridge["B"])
    d = A.shape[0]
    if len(to) < d:
        raise ValueError(f"a shadow head has {d} design columns, its layout {len(to)}")
    to = to[:d]
    keep = to >= 0
    cols = to[keep]
    n = int(cols.max()) + 1 if len(cols) else 0
    out = {k: v for k, v in ridge.items() if k != "R"}
    out["A"] = np.zeros((n, n))
    out["A"][np.ix_(cols, cols)] = A[np.ix_(keep, keep)]
    out["B"] = np.zeros((n, B.shape[1]))
    out["B"][cols] = B[keep]
    if ridge.get("R") is not None and keep.all():  # else computed from A when next read
        R = np.eye(n) / (float(ridge["gamma"]) * float(ridge["decay"]))
        R[np.ix_(cols, cols)] = np.asarray(ridge["R"])
        out["R"] = R
    return out
