"""An online softmax-regression head learned by SGD, beside the analytic heads.

Squared loss (the ridge heads) and logistic loss disagree most on noisy, slowly rotating
linear concepts, where logistic SGD is the better tracker; the mixer weights this head in
when it is right more often. It is sequential by nature, so a batch is a loop over its
rows (cheap on the inputs view), and the result never depends on how events were batched.

>>> import numpy as np
>>> head = SGDSoftmaxHead(lr=0.5)
>>> Z = np.array([[1.0, 2.0], [1.0, -2.0]] * 20)
>>> p = head.prequential_proba(Z, ["a", "b"] * 20)
>>> p[-2:].round(2).tolist(), head.classes
([[0.99, 0.01], [0.0, 1.0]], ['a', 'b'])
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from ..checks import check_positive
from .sgd_rows import learn_rows


class SGDSoftmaxHead:
    """``name``: what the learner calls ``lr`` (``sgd_lr``), for the error that refuses it; an
    infinite rate would make the weights NaN at the first row."""

    def __init__(self, lr: float = 0.01, l2: float = 0.0, name: str = "lr"):
        check_positive(lr, name, 0.01)
        self.lr = lr
        self.l2 = l2
        self.classes: list[Hashable] = []
        self._pos: dict[Hashable, int] = {}
        self.W = np.zeros((0, 0))  # (d, c)
        self._one_label, self._one_lr = np.zeros(1, dtype=np.int64), np.zeros(1)  # learn_row's arguments

    def _grow(self, d: int, c: int) -> None:
        dd, dc = d - self.W.shape[0], c - self.W.shape[1]
        if dd > 0 or dc > 0:
            self.W = np.pad(self.W, ((0, max(dd, 0)), (0, max(dc, 0))))

    def _softmax(self, s: np.ndarray) -> np.ndarray:
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def predict_proba(self, Z) -> np.ndarray:
        """Probabilities (b, c) for design rows ``Z`` (b, d)."""
        Z = np.asarray(Z, dtype=np.float64)
        if not self.classes:
            return np.zeros((Z.shape[0], 0))
        d = min(Z.shape[1], self.W.shape[0])
        return self._softmax(Z[:, :d] @ self.W[:d])

    def prequential_proba(self, Z, ys: Sequence, weights=None) -> np.ndarray:
        """Predict then learn each row in order; 0 for classes not yet seen at that row.

        Row ``i`` is scored by ``W_i = W_0 - sum_{j<i} lr_j z_j g_j'``, the weights after the
        rows before it; the compiled loop (:func:`~stream_cl.heads.sgd_rows.learn_rows`) updates
        ``W`` in place row by row, ``4 d c`` flops a row.
        """
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        b = Z.shape[0]
        k = len(self.classes)  # classes known before the current row
        for y in ys:
            if y is not None and y not in self._pos:
                self._pos[y] = len(self.classes)
                self.classes.append(y)
        self._grow(Z.shape[1], len(self.classes))
        if self.l2:
            return self._loop(Z, ys, weights, k)
        labels = np.array([-1 if y is None else self._pos[y] for y in ys], dtype=np.int64)  # (b,)
        lrs = np.full(b, self.lr) if weights is None else self.lr * np.asarray(weights, dtype=np.float64)
        return learn_rows(Z, self.W[: Z.shape[1]], labels, lrs, k)  # (b, C); W's leading rows updated in place

    def learn_row(self, Z, y: Hashable, weight: float = 1.0) -> list:
        """:meth:`prequential_proba` of one labelled row ``Z`` (1, d), the same compiled loop (so
        the same weights, bit for bit), without the batch's bookkeeping; returns the row's
        probabilities (0 for classes not seen before it) as a list."""
        if self.l2:
            return self.prequential_proba(Z, [y], None if weight == 1.0 else [weight])[0].tolist()
        k = len(self.classes)
        if y not in self._pos:
            self._pos[y] = len(self.classes)
            self.classes.append(y)
        d = Z.shape[1]
        self._grow(d, len(self.classes))
        label, lr = self._one_label, self._one_lr  # (1,) each, reused: two fresh arrays cost ~2 µs
        label[0], lr[0] = self._pos[y], self.lr * weight
        return learn_rows(np.ascontiguousarray(Z, dtype=np.float64), self.W[:d], label, lr, k)[0].tolist()

    def _loop(self, Z, ys, weights, k) -> np.ndarray:
        """The plain per-row loop (used with L2 decay, which scales W at every row)."""
        out = np.zeros((Z.shape[0], len(self.classes)))
        W = self.W
        for i, y in enumerate(ys):
            z = Z[i]
            if k:
                out[i, :k] = self._softmax(z @ W[:, :k])
            if y is None:
                continue
            j = self._pos[y]
            if j >= k:
                k = j + 1
                p = self._softmax(z @ W[:, :k])
            else:
                p = out[i, :k].copy()
            p[j] -= 1.0
            lr = self.lr * (1.0 if weights is None else float(weights[i]))
            W[:, :k] -= lr * np.outer(z, p)
            W[:, :k] *= 1.0 - self.lr * self.l2
        return out

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The settings, the classes in column order and a copy of the weights ``W`` (d, c)."""
        return {"lr": self.lr, "l2": self.l2, "classes": list(self.classes), "W": self.W.copy()}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore the classes and weights of :meth:`state_dict`; this head's ``lr`` and ``l2`` stay."""
        self.classes, self._pos = [], {}
        for y in state["classes"]:
            self._pos[y] = len(self.classes)
            self.classes.append(y)
        self.W = np.asarray(state["W"], dtype=np.float64).copy()
