"""The SGD head's batch loop over its rows, compiled (numba) where it can be.

Softmax SGD is sequential: each labelled row's update changes the next row's scores. With
the batch's Gram matrix the loop carries only (rows x classes) numbers
(:meth:`~stream_cl.heads.sgd.SGDSoftmaxHead.prequential_proba`), but in Python each row still
cost ~5 µs of interpreter and numpy call overhead for a few dozen flops: a fifth of the
default learner's batch time (RESULTS.md 9g). Compiled, the same loop takes well under a
microsecond a row. Without numba (it failed to import), the same loop runs in Python.

Both run the same operations in the same order on each row (the softmax of Python's
``math.exp``, a running maximum and a left-to-right sum); they differ only in how the
sum over earlier rows is rounded, by ~1e-16 relative.

>>> import numpy as np
>>> base = np.zeros((3, 2)); gram = np.ones((3, 3))
>>> P, steps = loop_rows(base, gram, np.array([0, 1, 0]), np.full(3, 0.5), 0)
>>> P.round(3).tolist()  # the first class is first seen at row 0: nothing to show before it
[[0.0, 0.0], [1.0, 0.0], [0.378, 0.622]]
"""

from __future__ import annotations

import math

import numpy as np

from ..numba_jit import jit

__all__ = ["loop_rows", "compiled", "row_step", "warm"]


def _loop_rows(base, gram, labels, lrs, k):
    """Predict then learn rows in order. ``base`` (b, C) the rows' scores under the batch-start
    weights, ``gram`` (b, b) the rows' Gram matrix (only below the diagonal is read),
    ``labels`` (b,) each row's class number (-1: no label; a class numbered ``k`` or more is
    first seen at that row), ``lrs`` (b,) the learning rates, ``k`` the classes known before
    the batch. Returns the probabilities (b, C) each row was shown (0 for classes not yet
    known) and the steps (b, C), ``lr`` times the cross-entropy gradient each row applied."""
    b, C = base.shape
    P = np.zeros((b, C))
    steps = np.zeros((b, C))
    s = np.empty(C)
    for i in range(b):
        for c in range(C):
            acc = 0.0
            for j in range(i):
                acc += gram[i, j] * steps[j, c]
            s[c] = base[i, c] - acc
        if k:
            _softmax_into(s, k, P[i])
        y = labels[i]
        if y < 0:
            continue
        if y >= k:
            k = y + 1
            _softmax_into(s, k, steps[i])
        else:
            steps[i, :k] = P[i, :k]
        lr = lrs[i]
        for c in range(k):
            steps[i, c] = steps[i, c] * lr
        steps[i, y] -= lr
    return P, steps


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


def _loop_rows_numpy(base, gram, labels, lrs, k):
    """:func:`_loop_rows` without a compiler (the loop before numba): the sum over earlier rows
    as one numpy product, the rest in Python floats (a handful of classes: cheaper than numpy)."""
    b, C = base.shape
    P = np.zeros((b, C))
    steps = np.zeros((b, C))
    for i, y in enumerate(labels.tolist()):
        scores = (base[i] - gram[i, :i] @ steps[:i] if i else base[i]).tolist()  # (C,)
        shown, k, g = row_step(scores, k, None if y < 0 else y, float(lrs[i]))
        P[i, : len(shown)] = shown
        if g is not None:
            steps[i, :k] = g
    return P, steps


def row_step(scores: list, k: int, j: int | None, lr: float) -> tuple[list, int, list | None]:
    """One row of the SGD loop, in Python floats (a handful of classes: cheaper than numpy).

    Returns the row's probabilities over the ``k`` classes known before it (``[]`` if none),
    the classes known after it (a label ``j == k`` is a first sighting, numbered next) and,
    for a label, ``lr`` times the cross-entropy's gradient with respect to the scores."""
    shown = p = softmax_list(scores[:k], math.exp) if k else []
    if j is None:
        return shown, k, None
    if j >= k:
        k = j + 1
        p = softmax_list(scores[:k], math.exp)
    g = [v * lr for v in p]
    g[j] -= lr
    return shown, k, g


def softmax_list(s: list, exp) -> list:
    m = max(s)
    e = [exp(v - m) for v in s]
    total = sum(e)
    return [v / total for v in e]


def loop_rows(base, gram, labels, lrs, k: int):
    """:func:`_loop_rows` compiled by numba (imported at the first call: it takes ~1 s, which a
    process that never learns a batch should not pay; the machine code is cached on disk where
    the package folder is writable), or :func:`_loop_rows_numpy` without numba."""
    return _loaded()(base, gram, labels, lrs, k)


_impl = None


def _loaded():
    """The loop :func:`loop_rows` runs, chosen (and numba imported) at the first call."""
    global _impl
    if _impl is None:
        _impl = _compiled_or_numpy()
    return _impl


def _compiled_or_numpy():
    global _softmax_into
    softmax = jit(_softmax_into)
    if softmax is None:  # pragma: no cover -- numba is a dependency; this keeps the head working without it
        return _loop_rows_numpy
    # the loop calls the module's _softmax_into: compiled first, so the loop's compilation finds it
    _softmax_into = softmax
    return jit(_loop_rows)


def compiled() -> bool:
    """Whether :func:`loop_rows` runs compiled (numba imports)."""
    return _loaded() is not _loop_rows_numpy


def warm() -> None:
    """Import numba and load (or compile) the loop's machine code for the argument types the
    head passes (numba compiles at the first call with each set of types), on a 2-row batch."""
    loop_rows(np.zeros((2, 2)), np.eye(2), np.array([0, 1], dtype=np.int64), np.full(2, 0.01), 0)
