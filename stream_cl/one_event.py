"""One event at a time: ``predict_proba_one`` then ``learn_one`` of the online learner on the CPU.

River's own loop (``progressive_val_score``) asks for each event twice, a prediction and
then its learning. Through the batch path one row pays for torch calls, array stacking
and a mixture the caller throws away; this path does the same arithmetic on one numpy
row (:meth:`~stream_cl.ensemble.AnalyticEnsemble._design_row`), so the model it learns is
bit-identical to the batch path's, and so are the probabilities up to the last bits of
the softmax (the C library's ``exp`` per class, in a compiled loop, :mod:`~stream_cl.mixture_row`,
instead of numpy's).

* the prediction remembers the event's row, mask and designs (:class:`RowMemo`); nothing
  is learned in between, so ``learn_one`` of the same event reuses them and only absorbs
  the row into the standardiser (:meth:`~stream_cl.backbones.OnlineStandardizer.learn_row`);
* learning needs no probabilities: each head learns the row by its rank-1 update and
  reports whether its prior prediction was right, and the mixer absorbs those hits.

With replay, drift, homeostasis or imbalance compensation (whose parts watch the mixture's
probabilities) or on a GPU, both methods take the batch path.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import NamedTuple

import numpy as np

from .base_learner import check_label, check_weight
from .encoding import memo_values
from .ensemble import row_hit
from .mixture_row import mix_row
from .refusal import undo_on_refusal
from .runtime import one_blas_thread

__all__ = ["OneEventPath", "RowMemo"]

LEARN_ONE = np.ones(1, dtype=bool)


class RowMemo(NamedTuple):
    """What the last prediction computed for its event (valid until anything is learned)."""

    keys: tuple
    values: tuple
    X: np.ndarray  # (1, d_in) raw row
    M: np.ndarray  # (1, d_in) values present
    designs: dict  # view -> (1, columns)
    scores: list | None = None  # each ridge head's scores (c,) of the row (None: not computed)
    part: Hashable = None  # the partition whose part (standardiser) made the row: valid for learning only there

    def matches(self, x: Mapping) -> bool:
        """Whether ``x`` is the event memoised (the same keys in the same order, and the same values)."""
        values = memo_values(x)
        return values is not None and self.keys == tuple(x) and self.values == values


class OneEventPath:
    """River's per-event methods of the online learner (module docstring)."""

    @property
    def _per_event(self) -> bool:
        return self.device_ == "cpu" and not self._continual

    @one_blas_thread
    def predict_proba_one(self, x: Mapping, partition: Hashable = None) -> dict:
        """``{class: probability}`` for ``x``, without learning (``{}`` before any label): the batched path's
        probabilities to rounding, computed for one row without its framework overhead."""
        classes = self.heads_[0].classes
        if not classes:  # nothing learned yet: the event is still judged as it would be later
            self.predict_proba_batch([x], partition=partition)
            return {}
        if self.device_ != "cpu":
            return super().predict_proba_one(x, partition=partition)
        self._enter(partition, learn=False)
        X, M, new = self.index_.vectorize_row(x, self._room)  # (1, d_in) each
        d = self.index_.width
        z, known = self.scaler_.transform_row(X[0, :d], M[0, :d], self.index_.indicator_mask)  # (d,) each
        designs = self._design_row(z, known)
        scores = []
        mixture = self._mixture_row(designs, scores)
        values = memo_values(x)
        if not new and values is not None:
            self._memo = RowMemo(tuple(x), values, X, M, designs, scores, self._active)
        return dict(zip(classes, mixture.tolist()))

    def _mixture_row(self, designs: dict, scores: list) -> np.ndarray:
        """The mixture's probabilities (c,) for one event, as :meth:`_predict_members` gives them
        (the scores as vector-matrix products: equal to the last bits or so). Appends each ridge
        head's scores to ``scores``: they are the prior scores its rank-1 update would compute."""
        sgd = self.sgd_
        n = len(self.heads_)
        c = len(self.heads_[0].classes)
        S = np.empty((n + (sgd is not None), c))  # (members, c): scores, or the SGD head's probabilities
        for i, (h, (_, v)) in enumerate(zip(self.heads_, self.heads)):
            W = h.ridge.weights()  # (d, c)
            z = designs[v][0]
            if z.shape[0] == W.shape[0]:
                scores.append(np.matmul(z, W, out=S[i]))  # (c,) a view of S's row: z @ W's bits
            else:
                scores.append(None)
                S[i] = h.scores(designs[v])[0]
        probabilities = False
        if sgd is not None:
            if sgd.classes and not self._multi and sgd.classes == self.heads_[0].classes:  # in the heads' order
                z = designs["inputs"][0]
                d = min(z.shape[0], sgd.W.shape[0])
                np.matmul(z[:d], sgd.W[:d], out=S[n])  # (c,)
            elif not sgd.classes:  # it knows no class: left out, not mixed in as zeros (the others sum to 1)
                return mix_row(S[:n], n, self.temperature, self.mixer_.accuracy[:n], self.mixer_.sharpness)
            else:
                probabilities = True
                S[n] = self._sgd_in_head_order(sgd.predict_proba(designs["inputs"]))[0]
        return mix_row(S, n, self.temperature, self.mixer_.accuracy, self.mixer_.sharpness, probabilities)

    @one_blas_thread
    def learn_one(self, x: Mapping, y: Hashable, w: float = 1.0, partition: Hashable = None):
        """Learn one labelled event (``w``: its weight) in ``partition``'s part; returns ``self``, ``x``
        untouched. The model after it is the batched path's to rounding (:meth:`prequential_batch` of the event)."""
        if not self._per_event:
            return super().learn_one(x, y, w, partition=partition)
        check_label(y)
        w = check_weight(w)
        memo, row = self._memo, None
        if memo is None or not memo.matches(x):
            memo = None
            # the index is the learner's, not a partition's: an event refused here changes nothing, a new
            # partition's part included (one made by a refused event had re-summed the heads from then on)
            row = self.index_.vectorize_row(x, self._room)  # (X, M, new): raises before any state changes
            self._check_new(row[2])  # within max_columns, or a ValueError
            if self.backbone_.may_refuse and partition not in self._parts:
                self._preflight([x], [True], fresh=bool(self._parts))  # its part would be made before the backbone could refuse it
        self._enter(partition)
        if self._memo is not memo:  # a change of partition dropped it: made with another standardiser
            memo = None
        self._memo = None  # learning invalidates it
        priors = [None] * len(self.heads_)
        if memo is not None:
            designs, priors = memo.designs, memo.scores or priors
            self.scaler_.learn_row(memo.X[0], memo.M[0])
        else:
            X, M, new = row if row is not None else self.index_.vectorize_row(x, self._room)
            with undo_on_refusal(self.backbone_, self.scaler_, self.index_, new):  # refused: the event changes nothing
                self._commit_inputs(new)
                Z, K = self.scaler_.prequential(X, M, LEARN_ONE, self.index_.indicator_mask, known=True)  # (1, d)
                designs = self._design_row(Z[0], K[0])
        hits = []
        for head, (_, view), scored in zip(self.heads_, self.heads, priors):
            prior = head.learn_row(designs[view][0], y, float(w), scored)  # (c,) scores before learning the row
            hits.append(row_hit(prior.tolist(), head.classes, y))
        if self.sgd_ is not None:
            p = self.sgd_.learn_row(designs["inputs"], y, w)  # (c_sgd,) before learning the row
            hits.append(row_hit([v if v > 0 else -math.inf for v in p], self.sgd_.classes, y))
        self.mixer_.absorb(hits)
        self._learned(1, 1, (y,))
        return self

