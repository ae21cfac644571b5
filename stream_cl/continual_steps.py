"""The continual-learning path of :class:`~stream_cl.learner.OnlineContinualLearner`.

With replay, imbalance compensation, drift responses or homeostasis on, a batch is
learned as a :class:`~stream_cl.row_plan.RowPlan` (each event's row, then the rows
replayed at it, then the pseudo rows generated after it) cut into segments at control
points (:func:`~stream_cl.base_learner.control_ends`): after every ``control_every``-th
labelled event of the learner's life the adaptive heads' forgetting factors are set
(homeostatic need, the "forget" response), the "remix" response resets the mixture's
records, and the :class:`~stream_cl.shadows.ShadowRestarter` starts shadow heads or
restarts heads from them. Every step depends only on the stream, never on its batching: the same draws,
alarms, restarts and remixes at any batch size, and the arithmetic the same to rounding (~1e-12).

The host learner provides the ensemble (:class:`~stream_cl.ensemble.AnalyticEnsemble`),
``scaler_``, ``index_``, ``heads``, ``heads_``, the optional parts' hyperparameters and
``_restarted(heads)`` (:class:`~stream_cl.parts.PartitionedLearner`: heads just replaced by
their shadows).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import numpy as np

from .base_learner import control_ends
from .checks import check_int
from .drift import DriftMonitor
from .ensemble import VIEWS, cat_rows, head_hits, take_rows
from .heads.class_head import RidgeClassHead
from .homeostasis import Homeostasis
from .imbalance import ImbalanceCompensator
from .replay import ReplayBuffer
from .refusal import undo_on_refusal
from .replayed_designs import ReplayedDesigns
from .row_plan import RowKind
from .shadows import ShadowRestarter
from .state_checks import saved_count

__all__ = ["ContinualSteps", "check_parts"]

# the continual-learning parameters: the kind each must be, with an example of one
_PARTS = (
    ("replay", ReplayBuffer, "ReservoirReplay()"),
    ("drift", DriftMonitor, "DriftMonitor()"),
    ("homeostasis", Homeostasis, "Homeostasis()"),
    ("imbalance", ImbalanceCompensator, "ImbalanceCompensator()"),
)


def check_parts(**parts) -> None:
    """Refuse a continual-learning part (``replay=``, ``drift=``, ``homeostasis=``, ``imbalance=``)
    that is not ``None`` or of its kind, naming it: a string such as ``drift="adwin"`` would
    otherwise fail later with an ``AttributeError`` that names nothing; and the drift response
    ``"need"`` without the homeostasis whose need it raises (the rule for every learner that takes both)."""
    for name, kind, example in _PARTS:
        value = parts.get(name)
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{name} must be a {kind.__name__} such as {example}, or None; got {value!r}")
    drift = parts.get("drift")
    if drift is not None and "need" in drift.response and parts.get("homeostasis") is None:
        raise ValueError("the drift response 'need' raises the homeostatic need: give homeostasis=Homeostasis() too")


class ContinualSteps(ReplayedDesigns):
    """Replay, imbalance compensation and drift/homeostatic control (module docstring)."""

    @property
    def _continual(self) -> bool:
        return any(p is not None for p in (self.replay, self.drift, self.homeostasis, self.imbalance))

    def _init_continual(self) -> None:
        check_parts(**{name: getattr(self, name) for name, _, _ in _PARTS})
        check_int(self.control_every, "control_every", 1, 32)  # True would be taken as 1
        self.replay_ = self.replay.clone() if self.replay is not None else None
        self.drift_ = self.drift.clone() if self.drift is not None else None
        self.homeostasis_ = self.homeostasis.clone() if self.homeostasis is not None else None
        self.imbalance_ = self.imbalance.clone() if self.imbalance is not None else None
        base = [float(lam) for lam, _ in self.heads]
        self.adaptive_ = [i for i, lam in enumerate(base) if lam < 1.0] or list(range(len(base)))
        self.n_labelled_ = 0
        self.n_events_ = 0
        self.restarter_ = None  # with the "restart"/"reset" responses: shadow heads since the last alarm
        if self.drift_ is not None and self.drift_.trains_shadows:
            covered = range(len(base)) if "reset" in self.drift_.response else self.adaptive_
            factors = tuple(float(lam) for lam, _ in self.heads)
            make_head = partial(_fresh_head, self.gamma, factors, self.device_)
            self.restarter_ = ShadowRestarter(covered, self.drift_.restart_after, make_head,
                                              balanced=self.imbalance_ is not None)
        self.remixes_ = 0  # this partition's mixture records reset by the "remix" response

    # -- monitoring ------------------------------------------------------------------------
    def _every_local(self, attr: str) -> list:
        """``attr`` of every partition's continual-learning state that has one (here the learner's
        own; a learner of several partitions sums its monitoring counts over all of them)."""
        mine = getattr(self, attr)
        return [] if mine is None else [mine]

    @property
    def forgetting_(self) -> list[float]:
        """Each head's forgetting factor now (a drift response or homeostasis may have lowered it)."""
        return [h.ridge.forgetting for h in self.heads_]

    @property
    def shadows_(self) -> dict:
        """``{head index: shadow head}`` learning beside the served heads since an alarm (``restart`` response)."""
        return self.restarter_.shadows_ if self.restarter_ is not None else {}

    @property
    def n_restarts_(self) -> int:
        """Heads restarted from their shadows, over every partition."""
        return sum(r.n_restarts_ for r in self._every_local("restarter_"))

    @property
    def n_restarts_skipped_(self) -> int:
        """Shadow trials that ended with every head kept (no shadow was better), over every partition."""
        return sum(r.n_restarts_skipped_ for r in self._every_local("restarter_"))

    @property
    def n_remixes_(self) -> int:
        """Mixture resets after an alarm (``remix`` response), over every partition."""
        return sum(self._every_local("remixes_"))

    def report(self) -> dict:
        """The continual-learning state as a JSON-ready dict (merged into run reports). The drift
        counts are every partition's; the rest is the active partition's."""
        out = {"forgetting": self.forgetting_, "head_weights": self.head_weights_.tolist()}
        if self.replay_ is not None:
            out["replay"] = self.replay_.report()
        if self.drift_ is not None:
            monitors = self._every_local("drift_")
            out["drift"] = {**self.drift_.report(), "alarms": self.n_alarms_,
                            "ignored": sum(d.n_ignored_ for d in monitors), "counts": self.alarm_counts_,
                            "recent_alarms": [dict(a) for a in self.alarms_[-20:]],
                            "restarts": self.n_restarts_, "remixes": self.n_remixes_,
                            "restarts_skipped": self.n_restarts_skipped_}
        if self.homeostasis_ is not None:
            out["homeostasis"] = self.homeostasis_.report()
        if self.imbalance_ is not None:
            out["imbalance"] = self.imbalance_.report()
        return out

    # -- one batch -------------------------------------------------------------------------
    def _prequential_continual(self, xs, ys, labelled, sample_weight, tasks) -> np.ndarray:
        """``prequential_batch`` with the continual-learning parts (module docstring); ``ys``, their
        ``labelled`` mask and ``tasks`` come checked, for the whole run before its first segment
        (:func:`~stream_cl.base_learner.checked_labels`, :func:`~stream_cl.base_learner.check_tasks`)."""
        X, M, new = self._rows(xs, labelled)  # only learned events make columns
        b = len(ys)
        w = np.ones(b) if sample_weight is None else np.array(sample_weight, dtype=np.float64).reshape(b)  # (b,)
        # refused, a fresh row (before the buffer had it): the batch changes nothing
        with undo_on_refusal(self.backbone_, self.scaler_, self.index_, new):
            self._commit_inputs(new)  # within max_columns, or a ValueError
            designs, plan, row_y, row_w = self._standardised_designs(X, M, ys, tasks, labelled, w)
        views = self._views()
        # 2. imbalance compensation on the fresh rows' designs
        if self.imbalance_ is not None:
            la = self.heads_[0].la
            comp = self.imbalance_.step([la.to_numpy(designs[v][:b]) for v in views], ys, labelled)
            for i in np.flatnonzero(labelled):
                row_w[i] *= comp.weights[i]
            if len(comp.y):
                for v, P in zip(views, comp.blocks):
                    designs[v] = cat_rows(designs[v], P)
                plan.add(RowKind.PSEUDO, comp.pos)
                row_y += comp.y
                # each at the sample weight of the event it follows: at 1, sample weights of 10 had
                # halved the compensation, of 0.1 raised it (review r94)
                row_w += w[comp.pos].tolist()
        order = plan.order()
        designs = {v: take_rows(D, order) for v, D in designs.items()}
        row_y = [row_y[j] for j in order]
        row_w = np.asarray(row_w)[order]
        fresh_pos = plan.fresh_positions(order)  # event i's own row sits at fresh_pos[i]
        # 3. segments between control points
        controlled = self.drift_ is not None or self.homeostasis_ is not None
        ends = [plan.n_rows]
        if controlled:
            ends = control_ends(labelled, self.n_labelled_, self.control_every, fresh_pos, plan.n_rows)
        out_rows, start = [], 0
        for end in ends:
            if end == start:
                continue
            fresh = fresh_pos[(fresh_pos >= start) & (fresh_pos < end)]
            events = plan.event_of(order, fresh)
            probas = self._segment(designs, row_y, row_w, slice(start, end), fresh - start, events, ys, labelled)
            out_rows.append((events, probas))
            self.n_events_ += len(events)
            n_lab = int(labelled[events].sum())
            self.n_labelled_ += n_lab
            if controlled and n_lab and self.n_labelled_ % self.control_every == 0:
                self._control()  # the segment ended at a control point
            start = end
        out = np.zeros((b, len(self.heads_[0].classes)))
        for events, probas in out_rows:
            out[events, : probas.shape[1]] = probas
        return out

    def _views(self) -> list[str]:
        """The design views learned: the heads' and, with an SGD head, ``"inputs"`` (one imbalance
        block each, in this order)."""
        views = {view for _, view in self.heads}
        return [v for v in VIEWS if v in views or (v == "inputs" and self.sgd_ is not None)]

    def _segment(self, designs, row_y, row_w, seg, fresh, events, ys, labelled) -> np.ndarray:
        """Learn the ordered rows ``seg``; score the fresh ones (positions ``fresh`` inside it)."""
        weights = None if np.all(row_w[seg] == 1.0) else row_w[seg]
        fy = [ys[i] for i in events]
        lab = labelled[events]
        seg_designs = {v: D[seg] for v, D in designs.items()}
        if self.shadows_:  # the classes another partition (or a merge) gave the heads, before they learn
            self.restarter_.follow(self.heads_)
        probas, hits = self._learn_members(seg_designs, row_y[seg], weights, fresh, fy)
        if self.shadows_ and lab.any():
            rows = fresh[lab]
            self.restarter_.learn(lambda i: take_rows(seg_designs[self.heads[i][1]], rows),
                                  [fy[j] for j in np.flatnonzero(lab)], None if weights is None else weights[rows],
                                  [h[lab] for h in hits], head_hits)
        P = self._mix(probas, hits, lab)
        self._watch(P, self.heads_[0].classes, fy, lab)
        return P

    def _on_alarm(self, alarm: dict) -> None:
        if self.restarter_ is not None:
            self.restarter_.alarm(self.drift_.n_)

    def _control(self) -> None:
        """At a control point: set the adaptive heads' forgetting factors; remix; start or apply restarts."""
        override = self.drift_.control_forgetting() if self.drift_ is not None else None
        for i in self.adaptive_:
            lam = float(self.heads[i][0])
            if self.homeostasis_ is not None:
                lam = self.homeostasis_.forgetting(lam)
            if override is not None:
                lam = min(lam, override)
            self.heads_[i].ridge.set_forgetting(lam)
        self._forgetting_changed()
        if self.drift_ is not None and self.drift_.take_remix():
            self.mixer_.reset()
            self.remixes_ += 1
        if self.restarter_ is not None:
            replaced = self.restarter_.control(self.heads_, self.drift_.n_)
            if replaced:
                self._restarted(replaced)

    # -- state -----------------------------------------------------------------------------
    def _continual_state(self) -> dict:
        restarter = self.restarter_.state_dict() if self.restarter_ is not None else {}
        return {
            "n_labelled": self.n_labelled_, "n_events": self.n_events_,
            "replay": self.replay_.state_dict() if self.replay_ is not None else None,
            "drift": self.drift_.state_dict() if self.drift_ is not None else None,
            "homeostasis": self.homeostasis_.state_dict() if self.homeostasis_ is not None else None,
            "imbalance": self.imbalance_.state_dict() if self.imbalance_ is not None else None,
            "shadows": restarter.get("shadows", []), "shadow_start": restarter.get("shadow_start", -1),
            "shadow_started": restarter.get("shadow_started", -1),
            "alarm_at": restarter.get("alarm_at", -1),
            "restarts": restarter.get("restarts", [0, 0]),
            "remixes": self.remixes_,
        }

    def _load_continual_state(self, state: Mapping) -> None:
        n_labelled, n_events = saved_count(state["n_labelled"], "n_labelled"), saved_count(state["n_events"], "n_events")
        remixes = saved_count(state.get("remixes", 0), "remixes")  # absent in checkpoints before "remix"
        self._load_part_states(state, ("replay", "drift", "homeostasis", "imbalance"))
        if self.restarter_ is not None:
            self.restarter_.load_state_dict(state, state["drift"])
        self.n_labelled_, self.n_events_, self.remixes_ = n_labelled, n_events, remixes


def _fresh_head(gamma: float, factors: tuple, device: str, i: int) -> RidgeClassHead:
    """A new head like head ``i`` (a module function, so the restarter pickles without its learner)."""
    return RidgeClassHead(gamma, factors[i], device)
