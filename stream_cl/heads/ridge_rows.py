"""A narrow ridge head's chunk learned row by row, compiled (numba).

A batched ridge update works on the chunk's (rows x rows) innovation covariance: its
Cholesky factor alone is b^3 / 3 flops, ~5.6 MFLOP at b = 256, and with the calls around it
about 0.3 ms a chunk whatever the head's width. For a head a few dozen inputs wide (the
default learner's heads on the raw inputs) that is almost all of its cost. Row by row, each
row costs ~4 d^2 flops instead: the same recursion as the per-event path
(:meth:`~stream_cl.heads.ridge.RecursiveRidge.update_one`), with the inverse ``R`` of the
chunk's start. Compiled, a chunk of 256 rows at d = 11 takes ~25 µs (RESULTS.md 9h).

The recursion is the Kalman form of the batched update: row ``i`` (0-based) carries the
observation noise ``l^(i+1) / w_i`` of the unscaled inverse, exactly as the batched factor
does, so the two give the same prior scores up to rounding (~1e-16 relative). Nothing learned
comes from here: the head's statistics ``A`` and ``B`` are added as for any chunk, so the model
after the chunk is the same bit for bit; only the prequential scores are computed this way.

>>> import numpy as np
>>> X = np.array([[1.0, 0.0], [1.0, 0.0]]); Y = np.array([[1.0], [1.0]])
>>> prior, _ = learn_rows(np.eye(2), np.zeros((2, 1)), X, Y, np.ones(2))
>>> prior.tolist()  # ridge (gamma 1) on the first row predicts 1 / (1 + 1) for the second
[[0.0], [0.5]]
"""

from __future__ import annotations

import numpy as np

from ..numba_jit import LazyJit

__all__ = ["learn_rows", "learn_rows_until", "compiled", "warm"]


def _learn_rows(R, W, X, Y, noise, Xq, qpos, limit):
    """Score then learn rows ``X`` (b, d) with targets ``Y`` (b, c), in order, from the inverse
    ``R`` (d, d) and weights ``W`` (d, c) of the chunk's start; both are updated in place (the
    caller's copies). ``noise`` (b,) each row's observation noise. ``Xq`` (u, d) rows to score
    without learning, ``qpos`` (u,) ascending: query ``k`` is scored after ``qpos[k]`` rows.
    Stops after the first row but the last whose innovation variance is above ``limit`` times its
    noise (its downdate of ``R`` cancelled digits), before scoring the queries after it.
    Returns the prior scores (b, c), the query scores (u, c) and how many rows were learned."""
    b, d = X.shape
    c = W.shape[1]
    u_rows = Xq.shape[0]
    prior = np.zeros((b, c))
    query = np.zeros((u_rows, c))
    u = np.empty(d)
    g = np.empty(c)
    q = 0
    for i in range(b + 1):
        while q < u_rows and qpos[q] <= i:  # the model after the rows before i
            for p in range(d):  # rows of W in order: each score sums over p ascending
                for k in range(c):
                    query[q, k] += Xq[q, p] * W[p, k]
            q += 1
        if i == b:
            break
        s = noise[i]  # innovation variance: noise + x' R x
        for p in range(d):
            acc = 0.0
            for r in range(d):
                acc += R[p, r] * X[i, r]
            u[p] = acc  # R x
            s += X[i, p] * acc
        inv_s = 1.0 / s
        for p in range(d):
            for k in range(c):
                prior[i, k] += X[i, p] * W[p, k]  # x' W, before learning the row
        for k in range(c):
            g[k] = (Y[i, k] - prior[i, k]) * inv_s
        for p in range(d):
            for k in range(c):
                W[p, k] += u[p] * g[k]  # W += R x (y - x'W)' / s
        for p in range(d):
            for r in range(d):
                R[p, r] -= (u[p] * u[r]) * inv_s  # R -= R x x' R / s, exactly symmetric
        if s > limit * noise[i] and i + 1 < b:  # (after the last row the caller starts anew anyway)
            return prior, query, i + 1
    return prior, query, b


def learn_rows(R0, W0, X, Y, noise, Xq=None, qpos=None):
    """Prior scores (b, c) of rows ``X`` (b, d) learned in order from the inverse ``R0`` (d, d)
    and weights ``W0`` (d, c) of the chunk's start (neither is changed), and the scores (u, c)
    of queries ``Xq`` (u, d), query ``k`` by the model after ``qpos[k]`` rows (None without
    queries). Arrays are passed to the compiled loop C-ordered float64, so that it is compiled
    for one set of types (:func:`warm`)."""
    prior, query, _ = learn_rows_until(R0, W0, X, Y, noise, Xq, qpos, np.inf)
    return prior, query


def learn_rows_until(R0, W0, X, Y, noise, Xq, qpos, limit: float):
    """:func:`learn_rows`, stopping after the first row whose innovation variance passes ``limit``
    times its noise: returns ``(prior, query, done)``, the first ``done`` rows' priors and the
    queries after at most ``done`` rows scored (the others' rows left 0)."""
    loop = _loop.get()
    if loop is None:  # pragma: no cover -- the ridge head does not choose this way without numba
        raise RuntimeError("the row-by-row ridge loop needs numba")
    R = np.array(R0, dtype=np.float64, order="C")  # (d, d) a copy, updated row by row
    W = np.array(W0, dtype=np.float64, order="C")  # (d, c) a copy
    X = np.ascontiguousarray(X, dtype=np.float64)
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    noise = np.ascontiguousarray(noise, dtype=np.float64)
    limit = float(limit)
    if Xq is None:
        prior, _, done = loop(R, W, X, Y, noise, np.empty((0, X.shape[1])), np.empty(0, dtype=np.int64), limit)
        return prior, None, done
    qpos = np.asarray(qpos, dtype=np.int64)
    order = np.argsort(qpos, kind="stable")  # (u,) the queries by position
    Xq_sorted = np.ascontiguousarray(np.asarray(Xq, dtype=np.float64)[order])  # (u, d)
    prior, q_sorted, done = loop(R, W, X, Y, noise, Xq_sorted, np.ascontiguousarray(qpos[order]), limit)
    query = np.empty_like(q_sorted)
    query[order] = q_sorted  # back in the caller's order
    return prior, query, done


_loop = LazyJit(_learn_rows)  # compiled at the first call


def compiled() -> bool:
    """Whether the compiled loop is available (numba imports)."""
    return _loop.get() is not None


def warm() -> None:
    """Import numba and load (or compile) the loop's machine code for the argument types
    :func:`learn_rows` passes (numba compiles at the first call with each set of types)."""
    if compiled():
        learn_rows(np.eye(2), np.zeros((2, 1)), np.ones((2, 2)), np.ones((2, 1)), np.ones(2), np.ones((1, 2)), [1])
