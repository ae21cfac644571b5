"""Batches: ``prequential_batch`` and ``predict_proba_batch`` of the online learner.

Every other way in comes here: River's ``learn_many``/``predict_proba_many``
(:class:`~stream_cl.base_learner.StreamingClassifier`), and ``learn_one``/``predict_proba_one``
whenever the per-event path (:mod:`~stream_cl.one_event`) does not apply. A batch of one
partition's events is learned in its part (:mod:`~stream_cl.online_parts`), in segments after
which the forgetting heads of several partitions are re-summed; each segment goes through the
plain composite (:meth:`BatchPath._prequential`) or, with continual-learning parts, through
:class:`~stream_cl.continual_steps.ContinualSteps`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from .backbones.standardize import OnlineStandardizer
from .base_learner import check_event_batch, check_tasks, checked_labels, stacked
from .encoding import memo_values
from .one_event import RowMemo
from .refusal import Undo, undo_on_refusal
from .runtime import one_blas_thread

__all__ = ["BatchPath"]


class BatchPath:
    """The online learner's batch methods (module docstring)."""

    def _rows(self, xs: Sequence[Mapping], learn=None):
        """(X, M, new keys) of ``xs``; raises before any state changes. ``learn`` given (a learning step: the
        events learned): inputs past ``max_columns`` are refused as soon as one is met (:meth:`_refusing_room`);
        ``None`` (one event predicted): its new keys are all counted, for the memo's test."""
        return self.index_.vectorize_masked(xs, learn, self._room if learn is None else self._refusing_room)

    def _refusing_room(self):
        """:meth:`_room`, with the learner's own check of new inputs to refuse them at the first past the bound."""
        room = self._room()
        if room is not None:
            room.refuse = self._check_new
        return room

    @one_blas_thread
    def prequential_batch(self, xs: Sequence[Mapping], ys: Sequence, sample_weight=None, tasks=None,
                          partition: Hashable = None) -> np.ndarray:
        """Predict, then learn, each event in order; ``ys[i] is None`` means predict only.

        Returns probabilities (b, n_classes) in ``classes_`` order, exactly those a loop of
        ``predict_proba_one`` then ``learn_one`` would give (a class not yet seen: 0).
        ``tasks[i]`` (optional) is the event's task, used by task-aware replay;
        ``partition`` the events' source partition. Until a partition has learned an event it
        is predicted as an unknown partition (``predict_proba_one``'s rule), and only a learned
        event gives it a part.
        """
        check_event_batch(xs)
        ys, labelled = checked_labels(ys, len(xs), sample_weight)
        check_tasks(tasks, len(ys))
        if not ys:
            return np.zeros((0, len(self.classes_)))
        memo, self._memo = self._memo, None  # any learning invalidates it
        P = self._unknown_until_learned(xs, labelled, partition, lambda first: self._learn_run(
            *_segment(slice(first, None), xs, ys, labelled, sample_weight, tasks), partition, None))
        if P is not None:
            return P
        return self._learn_run(xs, ys, labelled, sample_weight, tasks, partition, memo)

    def _learn_run(self, xs, ys, labelled, sample_weight, tasks, partition, memo) -> np.ndarray:
        """:meth:`prequential_batch` of events of a partition, in its part: in segments after which
        the forgetting heads of several partitions are re-summed (``_sum_cuts``)."""
        checked = partition not in self._parts
        if checked:  # a new partition's part is made by a learned event, never by a refused one
            self._check_rows(xs, labelled)
            if self.backbone_.may_refuse:
                self._preflight(xs, labelled, fresh=bool(self._parts))
        self._enter(partition)
        if memo is not None and memo.part != self._active:  # predicted with another partition's standardiser
            memo = None
        cuts = self._sum_cuts(labelled)
        if len(cuts) > 1 and not checked:  # every event is checked before the first segment is learned
            self._check_rows(xs, labelled)
            if self.backbone_.may_refuse:
                self._preflight(xs, labelled, fresh=False)
        out, start = [], 0
        for end in cuts:
            if start or end < len(ys):  # one of several segments
                xs_, ys_, lab, w, tasks_ = _segment(slice(start, end), xs, ys, labelled, sample_weight, tasks)
            else:
                xs_, ys_, lab, w, tasks_ = xs, ys, labelled, sample_weight, tasks
            if self._continual:
                out.append(self._prequential_continual(xs_, ys_, lab, w, tasks_))
            else:
                out.append(self._prequential(xs_, ys_, lab, w, memo))
            n = int(lab.sum())
            self._learned(n, n, [y for y, learned in zip(ys_, lab.tolist()) if learned])
            start = end
        return stacked(out)

    def _check_rows(self, xs, labelled) -> None:
        """Raise what learning ``xs`` would raise (a bad value, inputs past ``max_columns``), changing
        nothing: a run learned in several segments must not learn its first ones, then refuse a later
        one (the caller would retry its events one by one, and learn them twice)."""
        self._check_new(self._rows(xs, labelled)[2])

    def _preflight(self, xs, labelled, fresh: bool) -> None:
        """Raise what the backbone would raise on the rows of ``xs`` (``labelled``: those learned),
        changing nothing, before a step that changes what :class:`~stream_cl.refusal.Undo` does not
        put back: a new partition's part made, a run's earlier segments learned. The rows are
        standardised as the step will (``fresh``: by a new part's fresh standardiser, else by the
        active one), then everything is put back; the backbone runs twice on these steps alone."""
        X, M, new = self._rows(xs, labelled)
        scaler = OnlineStandardizer() if fresh else self.scaler_
        undo = Undo(scaler, self.index_, new)
        try:
            self._commit_inputs(new)
            self._designs(*scaler.prequential(X, M, labelled, self.index_.indicator_mask, known=True))
        finally:
            undo()

    def _prequential(self, xs, ys, labelled, sample_weight, memo) -> np.ndarray:
        """The plain composite: every event is one row of every member."""
        X, M, new = self._rows(xs, labelled)  # only learned events make columns
        with undo_on_refusal(self.backbone_, self.scaler_, self.index_, new):  # refused: the batch changes nothing
            self._commit_inputs(new)  # within max_columns, or a ValueError
            Z, K = self.scaler_.prequential(X, M, labelled, self.index_.indicator_mask, known=True)  # (b, d_in)
            designs = self._memo_designs(memo, xs, new)
            if designs is None:
                designs = self._designs(Z, K)
        probas, hits = self._learn_members(designs, ys, sample_weight)
        return self._mix(probas, hits, labelled)

    # -- prediction --------------------------------------------------------------------
    @one_blas_thread
    def predict_proba_batch(self, xs: Sequence[Mapping], partition: Hashable = None) -> np.ndarray:
        """Probabilities (b, n_classes) in ``classes_`` order, without learning."""
        self._enter(partition, learn=False)
        # each event as if predicted alone (one event: its new keys are kept, for the memo's test below)
        X, M, new = self._rows(xs, None if len(xs) == 1 else [False] * len(xs))
        d = self.index_.width
        Z, K = self.scaler_.transform(X[:, :d], M[:, :d], self.index_.indicator_mask, known=True)  # unseen keys: none
        designs = self._designs(Z, K)
        values = memo_values(xs[0]) if len(xs) == 1 and not new else None
        if values is not None:
            self._memo = RowMemo(tuple(xs[0]), values, X, M, designs, part=self._active)
        return self._predict_members(designs)


def _segment(seg: slice, xs, ys, labelled, sample_weight, tasks) -> tuple:
    """The events of ``seg`` with their labels, labelled mask, weights and tasks (``None`` stays ``None``)."""
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()[seg]  # (b,)
    return xs[seg], ys[seg], labelled[seg], w, None if tasks is None else tasks[seg]
