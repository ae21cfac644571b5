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

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np


class SGDSoftmaxHead:
    def __init__(self, lr: float = 0.01, l2: float = 0.0):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        self.lr = lr
        self.l2 = l2
        self.classes: list[Hashable] = []
        self._pos: dict[Hashable, int] = {}
        self.W = np.zeros((0, 0))  # (d, c)

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

        Row ``i`` sees ``W_i = W_0 - sum_{j<i} lr_j z_j g_j'``, so its scores are
        ``z_i W_0 - sum_{j<i} (z_i . z_j) lr_j g_j``: with the batch's Gram matrix the loop
        carries only the (rows x classes) gradients, and ``W`` is updated once at the end.
        """
        Z = np.asarray(Z, dtype=np.float64)
        b = Z.shape[0]
        k = len(self.classes)  # classes known before the current row
        for y in ys:
            if y is not None and y not in self._pos:
                self._pos[y] = len(self.classes)
                self.classes.append(y)
        C = len(self.classes)
        self._grow(Z.shape[1], C)
        W0 = self.W[: Z.shape[1]]
        if self.l2:
            return self._loop(Z, ys, weights, k)
        base = Z @ W0  # (b, C) scores under the batch-start weights
        gram = Z @ Z.T  # (b, b)
        steps = np.zeros((b, C))  # lr_j * gradient_j, the updates rows make
        rows = []
        lrs = [self.lr] * b if weights is None else [self.lr * float(w) for w in weights]
        # Per row, a handful of classes: plain floats beat numpy's per-call overhead
        # several times over; only the sum over earlier rows stays a numpy product.
        for i, y in enumerate(ys):
            scores = (base[i] - gram[i, :i] @ steps[:i] if i else base[i]).tolist()  # (C,)
            shown, k, g = _row_step(scores, k, None if y is None else self._pos[y], lrs[i])
            rows.append(shown + [0.0] * (C - len(shown)))
            if g is not None:
                steps[i, :k] = g
        self.W[: Z.shape[1]] -= Z.T @ steps
        return np.array(rows).reshape(b, C)  # (b, C)

    def learn_row(self, Z, y: Hashable, weight: float = 1.0) -> list:
        """:meth:`prequential_proba` of one labelled row ``Z`` (1, d), with the same arithmetic (so
        the same weights, bit for bit), without the batch's bookkeeping; returns the row's
        probabilities (0 for classes not seen before it) as a list."""
        if self.l2:
            return self.prequential_proba(Z, [y], None if weight == 1.0 else [weight])[0].tolist()
        k = len(self.classes)
        if y not in self._pos:
            self._pos[y] = len(self.classes)
            self.classes.append(y)
        C = len(self.classes)
        d = Z.shape[1]
        self._grow(d, C)
        scores = (Z @ self.W[:d])[0].tolist()  # (C,) as the batch path's base row
        shown, k, g = _row_step(scores, k, self._pos[y], self.lr * weight)
        # the batch path's Z' steps with one row: every entry a single product, as np.outer's
        self.W[:d, :k] -= np.outer(Z[0], g)
        return shown + [0.0] * (C - len(shown))

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
        return {"lr": self.lr, "l2": self.l2, "classes": list(self.classes), "W": self.W.copy()}

    def load_state_dict(self, state: Mapping) -> None:
        self.classes, self._pos = [], {}
        for y in state["classes"]:
            self._pos[y] = len(self.classes)
            self.classes.append(y)
        self.W = np.asarray(state["W"], dtype=np.float64).copy()


def _row_step(scores: list, k: int, j: int | None, lr: float) -> tuple[list, int, list | None]:
    """One row of the SGD loop, in Python floats (a handful of classes: cheaper than numpy).

    Returns the row's probabilities over the ``k`` classes known before it (``[]`` if none),
    the classes known after it (a label ``j == k`` is a first sighting, numbered next) and,
    for a label, ``lr`` times the cross-entropy's gradient with respect to the scores."""
    shown = p = _softmax_list(scores[:k], math.exp) if k else []
    if j is None:
        return shown, k, None
    if j >= k:
        k = j + 1
        p = _softmax_list(scores[:k], math.exp)
    g = [v * lr for v in p]
    g[j] -= lr
    return shown, k, g


def _softmax_list(s: list, exp) -> list:
    m = max(s)
    e = [exp(v - m) for v in s]
    total = sum(e)
    return [v / total for v in e]
