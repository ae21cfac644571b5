"""A ridge regression head used as a class-incremental classifier.

Targets are one-hot rows in the order the classes were first seen; a new class adds
a zero column, so earlier predictions are unchanged. Scores become probabilities by
a softmax with a temperature (see :func:`scores_to_proba`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from ..state_checks import CORRUPT, saved_array
from .ridge import RecursiveRidge

__all__ = ["RidgeClassHead", "overflow_free", "scores_to_proba"]


def scores_to_proba(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise ``softmax(scores / temperature)``; ``-inf`` marks a class not yet known.

    One-hot ridge scores sit roughly in [0, 1] (a least-squares estimate of the class
    indicator), so a temperature of 0.1 turns a score gap of 0.1 into odds of e:1.
    A row with no known class is all zeros.

    >>> scores_to_proba(np.array([[0.9, 0.1], [-np.inf, -np.inf]]), 0.1).round(4).tolist()
    [[0.9997, 0.0003], [0.0, 0.0]]
    """
    scores = np.asarray(scores, dtype=np.float64)
    s = scores / temperature  # (b, c)
    if s.shape[1] == 0:
        return s
    if s.shape[0] == 1:  # one event (the per-event loop): the same arithmetic in fewer calls
        top = s.max()
        if top == np.inf:  # a score past temperature x 1.8e308 (temperature down to 1e-300 is taken)
            s = overflow_free(scores) / temperature
            top = s.max()
        if not np.isfinite(top):
            return np.zeros_like(s)
        e = np.exp(s - top)  # exp(-inf) is exactly 0: unknown classes get 0
        return e / e.sum(axis=1, keepdims=True)
    top = s.max(axis=1, keepdims=True)
    if (top == np.inf).any():  # as above, in some rows (it had shown them all zeros)
        s = np.where(top == np.inf, overflow_free(scores) / temperature, s)
        top = s.max(axis=1, keepdims=True)
    known = np.isfinite(top)
    e = np.exp(s - np.where(known, top, 0.0), where=np.isfinite(s), out=np.zeros_like(s))
    total = e.sum(axis=1, keepdims=True)
    return np.divide(e, total, where=total > 0, out=np.zeros_like(e))


def overflow_free(scores: np.ndarray) -> np.ndarray:
    """``scores`` (..., c) less each row's largest finite one, so that ``/ temperature`` cannot reach ``+inf``
    (the softmax is the same; ``-inf``, a class not yet known, stays). For scores that overflowed divided by a
    tiny temperature: ``inf - inf`` made a prediction's probabilities NaN, or all 0 (review r147).

    >>> overflow_free(np.array([[2e9, 1e9, -np.inf]])).tolist()
    [[0.0, -1000000000.0, -inf]]
    """
    top = np.max(np.where(np.isfinite(scores), scores, -np.inf), axis=-1, keepdims=True)
    return scores - np.where(np.isfinite(top), top, 0.0)


class RidgeClassHead:
    """Classes, their counts and a :class:`RecursiveRidge` over design rows (bias first)."""

    def __init__(self, gamma: float, forgetting: float, device: str = "cpu"):
        self.ridge = RecursiveRidge(gamma, forgetting, device)
        self.classes: list[Hashable] = []
        self.counts: list[float] = []
        self._pos: dict[Hashable, int] = {}
        # one reused target row (c,): 0 but for the learned class while learn_row runs. Not np.eye(c), whose rows
        # it had read: rebuilt at every new class, it made a head of 10,000 classes (the daemon's bound) hold
        # 800 MB and learning them one by one O(c^3) (6,000 classes: 288 MB and 66 s; review r147)
        self._onehot = np.zeros(0)
        # the statistics of the partition being learned (stream_cl.parts), when the learner
        # serves several: every learned row also goes there, on that partition's own clock,
        # while the served statistics decay by served_forgetting (the learning partition's share)
        self.part = None
        self.served_forgetting: float | None = None
        # rows were learned with served_forgetting: the served statistics differ from the parts' exact
        # sum until the next re-sum, whatever the factor of the partition learning now
        self.approximate = False

    @property
    def la(self):
        """The ridge's linear-algebra path (:func:`~stream_cl.heads._linalg.make_linalg`: numpy or torch)."""
        return self.ridge.la

    def add_classes(self, labels: Sequence[Hashable]) -> None:
        """Append the ``labels`` not known yet to ``classes`` in order, each with count 0; the ridge's target
        columns grow only when the caller grows it (``ridge.grow``)."""
        for y in labels:
            if y not in self._pos:
                self._pos[y] = len(self.classes)
                self.classes.append(y)
                self.counts.append(0.0)

    def scores(self, Z) -> np.ndarray:
        """Scores (b, c) for design rows ``Z`` (b, d); ``d`` may be short of the head's width."""
        if self.la.name != "cpu":  # numpy rows (the analytic classifier's) onto the head's torch device
            Z = self.la.asarray(Z)
        if Z.shape[1] != self.ridge.n_features:
            Z = self._fit_width(Z)
        return self._to_numpy(self.ridge.predict(Z))

    def scores_one(self, z: np.ndarray) -> np.ndarray:
        """Scores (c,) for one design row ``z`` (at most the head's width)."""
        W = self.ridge.weights()
        if self.la.name != "cpu":
            return self.scores(z[None, :])[0]  # (d,) -> (1, d) -> (1, c) -> (c,)
        return z @ W[: z.shape[0]]

    def _fit_width(self, Z):
        d = self.ridge.n_features
        if Z.shape[1] < d:
            pad = self.la.zeros(Z.shape[0], d - Z.shape[1])
            Z = np.hstack([Z, pad]) if isinstance(Z, np.ndarray) else self.la.torch.hstack([Z, pad])
        return Z[:, :d]

    def _to_numpy(self, a) -> np.ndarray:
        return self.la.to_numpy(a)

    def prequential(self, Z, ys: Sequence, weights: np.ndarray | None = None) -> np.ndarray:
        """Predict then learn every row of ``Z`` (b, d) in order; ``ys[i] is None`` = predict only.

        Returns scores (b, c) exactly as a per-row predict-then-learn loop would have
        produced them, with ``-inf`` for classes first seen at or after that row.
        """
        self._check_width(Z.shape[1])
        if len(ys) == 1 and ys[0] is not None and self.la.name == "cpu":
            # one event: the in-place rank-1 path is several times cheaper
            w = 1.0 if weights is None else float(np.asarray(weights)[0])
            return self.learn_row(np.asarray(Z[0], dtype=np.float64), ys[0], w)[None, :]  # (c,) -> (1, c)
        labelled = np.array([y is not None for y in ys], dtype=bool)
        first_seen = {}
        labels = set(ys)
        labels.discard(None)
        if not labels.issubset(self._pos):  # a class new to this head: the row where each first appears
            for i, y in enumerate(ys):
                if y is not None and y not in self._pos and y not in first_seen:
                    first_seen[y] = i
        n_known = len(self.classes)
        self.add_classes(list(first_seen))
        self.ridge.grow(Z.shape[1], len(self.classes))
        la = self.la
        Zd = la.asarray(Z) if not isinstance(Z, np.ndarray) or la.name != "cpu" else Z
        L = np.flatnonzero(labelled)
        U = np.flatnonzero(~labelled)
        pos = self._pos
        cols = np.array([pos[ys[i]] for i in L.tolist()], dtype=np.int64)
        Y = np.zeros((len(L), len(self.classes)))  # (labelled, classes) one-hot
        Y[np.arange(len(L)), cols] = 1.0
        w = None if weights is None else np.asarray(weights, dtype=np.float64)[L]
        idx_l, idx_u = la.index(L), la.index(U)
        Yd = la.asarray(Y)
        Xl = Zd if len(U) == 0 else Zd[idx_l]  # (labelled, d): every row, as a rule, without a copy
        lam = self._serve_clock()
        try:
            prior, query = self.ridge.update(
                Xl, Yd, w,
                Zd[idx_u] if len(U) else None,
                np.cumsum(labelled)[U] if len(U) else None,
            )
        finally:
            self.ridge.forgetting = lam
        if self.part is not None and len(L):
            self.part.absorb(Xl, Yd, w, lam)
            self.approximate = self.approximate or self._served_decay(lam) < 1.0
        scores = np.empty((len(ys), len(self.classes)))  # (b, c)
        scores[L] = self._to_numpy(prior)
        if len(U):
            scores[U] = self._to_numpy(query)
        for k, y in enumerate(self.classes[n_known:], start=n_known):
            scores[: first_seen[y] + 1, k] = -np.inf
        if w is None:  # whole numbers: the sums per class are exact in any order
            for k, n in enumerate(np.bincount(cols, minlength=len(self.classes)).tolist()):
                self.counts[k] += n
        else:  # in row order, as the per-event path adds them
            for k, wk in zip(cols.tolist(), w.tolist()):
                self.counts[k] += wk
        return scores

    def learn_row(self, z: np.ndarray, y: Hashable, weight: float = 1.0, prior: np.ndarray | None = None) -> np.ndarray:
        """Rank-1 path of :meth:`prequential` for one labelled row; returns its prior scores.
        ``prior``: the row's scores ``z W``, when the caller has them (a prediction just made)."""
        if self.la.name != "cpu":
            w = None if weight == 1.0 else np.array([weight])
            return self.prequential(self.la.asarray(z)[None, :], [y], w)[0]  # (d,) -> (1, d) -> (1, c) -> (c,)
        k = self._pos.get(y)
        is_new = k is None
        if is_new or z.shape[0] != self.ridge.n_features:
            self._check_width(z.shape[0])  # here, off the common path: a row of the head's width passes
            self.add_classes((y,))
            self.ridge.grow(z.shape[0], len(self.classes))
            k = self._pos[y]
            prior = None  # scores of the model before it grew
        c = len(self.classes)
        if self._onehot.shape != (c,):  # (a head pickled before r147 holds the (c, c) identity)
            self._onehot = np.zeros(c)
        y_row = self._onehot  # the one-hot target of class k, for the calls below (which keep no reference)
        y_row[k] = 1.0
        lam = self._serve_clock()
        try:
            prior = self.ridge.update_one(z, y_row, weight, k, prior)
            if self.part is not None:
                # (d,) -> (1, d), (c,) -> (1, c)
                self.part.absorb(z[None, :], y_row[None, :], None if weight == 1.0 else np.array([weight]), lam)
        finally:
            self.ridge.forgetting = lam
            y_row[k] = 0.0
        self.counts[k] += weight
        if self.part is not None:
            self.approximate = self.approximate or self._served_decay(lam) < 1.0
        if is_new:
            prior[k] = -np.inf
        return prior

    def _check_width(self, d: int) -> None:
        """Refuse design rows narrower than the head, before a new class is added: the update
        would fail after it, and a class that was never learned would get probability > 0."""
        if d < self.ridge.n_features:
            raise ValueError(f"design rows have {d} columns, fewer than the head's {self.ridge.n_features}")

    def _served_decay(self, lam: float) -> float:
        """The factor the served statistics decayed by per row just learned (``lam``: the head's own):
        below 1, they are no longer the parts' exact sum (the parts decay on their own clocks)."""
        return self.served_forgetting if self.served_forgetting is not None else lam

    def _serve_clock(self) -> float:
        """The forgetting factor of the learning partition; while it learns, the served statistics
        decay by its share only (``served_forgetting``, when the learner serves several parts)."""
        lam = self.ridge.forgetting
        if self.part is not None and self.served_forgetting is not None:
            self.ridge.forgetting = self.served_forgetting
        return lam

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The ridge's state, the classes in column order and their counts."""
        return {"ridge": self.ridge.state_dict(), "classes": list(self.classes), "counts": list(self.counts)}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict`: the ridge's (which refuses a state it cannot take), then the classes. Class
        counts that are not one finite weight >= 0 per class, or fewer classes than the ridge's target columns,
        are a ``ValueError`` before anything changes (learning the next event failed on them, or gave a
        target column no class)."""
        counts = saved_array(state["counts"], "head counts", 0.0).reshape(-1)  # (c,)
        classes = list(state["classes"])
        targets = np.shape(state["ridge"]["B"])  # (d, c)
        if counts.shape[0] != len(classes) or (len(targets) == 2 and targets[1] > len(classes)):
            raise ValueError(f"inconsistent head state: {len(classes)} classes, {counts.shape[0]} counts, ridge "
                             f"targets B {targets} {CORRUPT}")
        self.ridge.load_state_dict(state["ridge"])
        self.classes, self._pos, self.counts = [], {}, []
        self.add_classes(classes)
        self.counts = counts.tolist()
