"""The SGD head's batch loop over its rows, compiled (numba) where it can be.

Softmax SGD is sequential: each labelled row's update changes the next row's scores. The
loop scores a row against the current weights (``d c`` products), shows its softmax, and
for a label subtracts ``z g'`` from the weights in place: ``4 d c`` flops a row, on the
inputs view's few columns. (Until RESULTS.md 9k it carried only (rows x classes) numbers
through the batch's Gram matrix instead, ``b^2 (d + c)`` flops a batch: ~7 µs per event in
a batch of 2,000, profiled.) In Python each row would cost
microseconds of interpreter and numpy call overhead for a few dozen flops; compiled, well
under one. Without numba (it failed to import), the same loop runs in Python with numpy.

Both run the same operations in the same order on each row (the softmax of Python's
``math.exp``, a running maximum and a left-to-right sum); they differ only in how a row's
scores ``z W`` are rounded (numpy's product against a plain loop), by ~1e-16 relative.

>>> import numpy as np
>>> W = np.zeros((1, 2))  # one input column (the bias), two classes
>>> P = learn_rows(np.ones((3, 1)), W, np.array([0, 1, 0]), np.full(3, 0.5), 0)
>>> P.round(3).tolist()  # the first class is first seen at row 0: nothing to show before it
[[0.0, 0.0], [1.0, 0.0], [0.378, 0.622]]
"""

from __future__ import annotations

import math
import threading

import numpy as np

from ..numba_jit import jit

__all__ = ["learn_rows", "compiled", "warm"]


def _learn_rows(Z, W, labels, lrs, k):
    """Predict then learn rows ``Z`` (b, d) in order, updating the weights ``W`` (d, C) in place.
    ``labels`` (b,) each row's class number (-1: no label; a class numbered ``k`` or more is
    first seen at that row), ``lrs`` (b,) the learning rates, ``k`` the classes known before
    the batch. Returns the probabilities (b, C) each row was shown (0 for classes not yet
    known). A row's step is ``lr`` times the cross-entropy's gradient, ``W -= lr z g'``."""
    b, d = Z.shape
    C = W.shape[1]
    P = np.zeros((b, C))
    s = np.empty(C)
    g = np.empty(C)
    for i in range(b):
        for c in range(C):
            acc = 0.0
            for t in range(d):
                acc += Z[i, t] * W[t, c]
            s[c] = acc
        if k:
            _softmax_into(s, k, P[i])
        y = labels[i]
        if y < 0:
            continue
        if y >= k:
            k = y + 1
            _softmax_into(s, k, g)
        else:
            for c in range(k):
                g[c] = P[i, c]
        lr = lrs[i]
        for c in range(k):
            g[c] = g[c] * lr
        g[y] -= lr
        for t in range(d):
            z = Z[i, t]
            for c in range(k):
                W[t, c] -= z * g[c]
    return P


def _softmax_into(s, k, out):
    """``out[:k] = softmax(s[:k])``: a running maximum, ``exp(v - max)``, a left-to-right sum."""
    m = s[0]
    for c in range(1, k):
        if s[c] > m:
            m = s[c]
    total = 0.0
    for c in range(k):
        out[c] = math.exp(s[c] - m)
        total += out[c]
    for c in range(k):
        out[c] = out[c] / total


def _learn_rows_numpy(Z, W, labels, lrs, k):
    """:func:`_learn_rows` without a compiler: each row's scores one numpy product, the rest in
    Python floats (a handful of classes: cheaper than numpy), the update one outer product."""
    P = np.zeros((Z.shape[0], W.shape[1]))
    for i, y in enumerate(labels.tolist()):
        shown, k, g = _row_step((Z[i] @ W).tolist(), k, None if y < 0 else y, float(lrs[i]))
        P[i, : len(shown)] = shown
        if g is not None:
            W[:, :k] -= np.outer(Z[i], g)
    return P


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


def learn_rows(Z, W, labels, lrs, k: int):
    """:func:`_learn_rows` compiled by numba (imported at the first call: it takes ~1 s, which a
    process that never learns a batch should not pay; the machine code is cached on disk where
    the package folder is writable), or :func:`_learn_rows_numpy` without numba. ``Z`` and
    ``W`` are float64 and C-ordered (``W`` a row slice of the head's weights is)."""
    return _loaded()(Z, W, labels, lrs, k)


_impl = None
_LOADING = threading.Lock()


def _loaded():
    """The loop :func:`learn_rows` runs, chosen (and numba imported) at the first call. Under a
    lock: :func:`_compiled_or_numpy` replaces the module's ``_softmax_into`` by its compiled
    version, and a second thread compiling it again met numba's "already jitted" TypeError."""
    global _impl
    if _impl is None:
        with _LOADING:
            if _impl is None:
                _impl = _compiled_or_numpy()
    return _impl


def _compiled_or_numpy():
    global _softmax_into
    softmax = jit(_softmax_into)
    if softmax is None:  # pragma: no cover -- numba is a dependency; this keeps the head working without it
        return _learn_rows_numpy
    # the loop calls the module's _softmax_into: compiled first, so the loop's compilation finds it
    _softmax_into = softmax
    return jit(_learn_rows)


def compiled() -> bool:
    """Whether :func:`learn_rows` runs compiled (numba imports)."""
    return _loaded() is not _learn_rows_numpy


def warm() -> None:
    """Import numba and load (or compile) the loop's machine code for the argument types the
    head passes (numba compiles at the first call with each set of types), on a 2-row batch."""
    learn_rows(np.eye(2), np.zeros((2, 2)), np.array([0, 1], dtype=np.int64), np.full(2, 0.01), 0)
