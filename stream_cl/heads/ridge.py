"""Streaming ridge regression that keeps only sufficient statistics.

State for ``d`` inputs and ``c`` outputs:

* ``A`` (d, d): the weighted Gram matrix  sum_i l^(t-i) w_i x_i x_i'   (additive)
* ``B`` (d, c): the weighted moment       sum_i l^(t-i) w_i x_i y_i'   (additive)
* ``R`` (d, d): ``(A + g I)^-1``, kept up to date by rank-1 updates one row at a time (a batch
  may instead work from the factor of ``A + g I`` and leave ``R`` to be rebuilt when needed)

and the weights are ``W = R B``. With ``forgetting == 1`` this is exactly closed-form
ridge ``(X'X + gamma I)^-1 X'Y`` on every row seen, whatever the batch sizes.

With ``forgetting = l < 1`` the rows are exponentially down-weighted. Scaling ``R^-1``
by ``l`` also decays the ridge term, so ``g`` drifts below ``gamma``; whenever it
would fall below ``ANCHOR_DECAY * gamma`` (and every 65,536 rows in any case, to shed
rounding drift), ``R`` is re-anchored to ``(A + gamma I)^-1`` from the exact statistics. The
anchor points depend only on the sequence of rows, never on how they were batched,
so any split of the same stream gives the same model.

Each update also returns the *prequential* scores: for every row, what the model
predicted for it after learning the rows before it in the same batch. They come from
the Cholesky factor of the batch's innovation covariance ``X R X' + noise`` at almost no
extra cost, so a batch update gives exactly what a predict-then-learn loop over its rows gives.

A batch of ``b`` rows at width ``d`` is learned one of three ways:

* **from the factor of A**: ``A + g I = L L'`` (d^3 / 3), ``V = L^-1 X'`` and ``X R X' = V'V``,
  ``W = R B`` by two triangular solves; ``R`` itself is not kept (it is computed from ``A``
  when the per-event path needs it). 2 d^2 b + d b^2 + d^3 / 3 flops for the d-wide terms.
* **by updating R** (Woodbury): ``R X'``, ``X R X'``, ``R -= K'K``. 4 d^2 b + 3 d b^2.
* **row by row** (:mod:`~stream_cl.heads.ridge_rows`, compiled): each row is scored and
  its rank-1 update applied to a copy of the chunk-start ``R`` (4 d^2 b + 4 d b c), and ``A``
  and ``B`` are added as the other ways add them. It skips the (b x b) terms, b^3 / 3 for the
  factor alone, which are nearly all of a narrow head's cost: a CPU head takes it when that
  is faster (:func:`rows_are_cheaper`; at 256-row chunks, up to ~45 inputs with a few classes).

Of the first two (:func:`factor_is_cheaper`), the factor has less arithmetic unless the batch
is short for its width: ``d^3 / 3 < 2 d^2 b + 2 d b^2``, so at the CPU's 256-row chunks for
``d`` up to ~1,760, and once ``R`` has to be rebuilt (d^3) it always has. All give the same
model up to rounding, and the same statistics ``A`` and ``B`` bit for bit.

One row (:meth:`RecursiveRidge.update_one`, the per-event path) is the Kalman form on ``R``,
one compiled call (:mod:`~stream_cl.heads.ridge_one`) that leaves ``R``'s downdate pending
until the next row's product with ``R``, or by BLAS calls where numba is missing.

A row at a magnitude the head has not met (an amount in cents beside inputs near 1) has a
leverage ``w x'Rx / l`` far above 1, and its downdate of ``R`` cancels about ``log10`` of it in
digits. Past ``REBUILD_LEVERAGE`` (1e6) every way rebuilds from the exact statistics after
such a row: one event at a time ``R`` is rebuilt, the row loop starts over from it, and a
chunk learned from a factor ends after the row (whose leverage against the chunk's start,
at hand in ``X R X'``, bounds it from above), the rest starting from a new factor. With
standardised inputs it does not happen (the default learner's heads stay below ~4e3).

Raw inputs of 1e5 and more that are collinear (an epoch time in seconds and in milliseconds,
one field under two names) make ``A + g I`` singular to working precision: its Cholesky factor
keeps no digit in the collinear direction (:func:`~stream_cl.heads.conditioning.lost_digits`, tested
after every factorisation, O(d)), nor does ``R`` updated row by row: a row whose ``x'Rx`` cancels
to its rounding (below ``LOST_DIGITS d sum_p x_p^2 R_pp``, tested in the one-row update and the
Woodbury chunk) has ``R`` rebuilt after it as a row of high leverage does. Where the rebuild finds
the factor lost, the head is *equilibrated* (:class:`~stream_cl.heads.ridge_stats.RidgeStatistics`):
each row, one event at a time or in a batch alike, is scored by ``W`` solved from the statistics
(the equilibrated eigendecomposition of ``A + g I``, :func:`~stream_cl.heads.conditioning.equilibrate`)
and learned into ``A`` and ``B``, about 10 d^3 a row instead of 4 d^2, until ``A + g I`` factors
again. That is closed-form ridge as far as ``A`` itself holds it: a direction whose spread in the
rows is below the rounding of ``A``'s entries (two epoch-millisecond times a few ms apart) is
dropped, where closed form in exact arithmetic would still fit it.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from . import ridge_one, ridge_rows
from ._linalg import NumpyLinalg
from .conditioning import LOST_DIGITS
from .ridge_factor import FactorChunks
from .ridge_row_ways import RowByRow
from .ridge_stats import ANCHOR_DECAY, REBUILD_LEVERAGE, REFRESH_ROWS, RidgeStatistics
from .ridge_woodbury import WoodburyChunks

_dger = blas.dger

__all__ = ["ANCHOR_DECAY", "REFRESH_ROWS", "RecursiveRidge", "factor_is_cheaper", "rows_are_cheaper", "update_flops"]

# The compiled row-by-row loop against the batched terms it replaces (rows_are_cheaper), as
# measured on the benchmark VM at chunks of 32 and 256 rows, d = 11-64, c = 5-200: its R
# terms (4 d^2 a row) ran at about a quarter of BLAS-3's rate, its class terms (4 d c a row)
# at two thirds, and a chunk costs ~15 µs more (R from the factor, the call), ~5e5 flops.
LOOP_R_COST, LOOP_CLASS_COST, LOOP_CALL_FLOPS = 4.0, 1.5, 5e5


def factor_is_cheaper(b: int, d: int) -> bool:
    """Whether a chunk of ``b`` rows at width ``d`` takes fewer flops from the factor of ``A``
    (``d^3 / 3`` more) than by updating a materialised ``R`` (``2 d^2 b + 2 d b^2`` more).

    >>> factor_is_cheaper(256, 338), factor_is_cheaper(16, 338), factor_is_cheaper(256, 2049)
    (True, False, False)
    """
    return d * d * d / 3.0 < 2.0 * d * d * b + 2.0 * d * b * b


def rows_are_cheaper(b: int, d: int, c: int) -> bool:
    """Whether a CPU chunk of ``b`` rows at width ``d`` with ``c`` outputs is learned faster row
    by row (module docstring) than through the chunk's (b x b) factor, counting the loop's flops
    at the cost measured for them (``LOOP_*``); and numba at hand (imported at the first call).

    >>> rows_are_cheaper(256, 11, 5), rows_are_cheaper(256, 338, 5), rows_are_cheaper(32, 11, 5)
    (True, False, False)
    """
    if b == 0 or d == 0:
        return False
    loop = LOOP_R_COST * 4.0 * b * d * d + LOOP_CLASS_COST * 4.0 * b * d * c + LOOP_CALL_FLOPS
    batched = b**3 / 3 + b * b * c + d * b * b + d * d * b  # X R X', its factor, the solves, L^-1 X'
    return loop < batched and ridge_rows.compiled()


def update_flops(b: int, d: int, c: int, way: str | None = None) -> float:
    """Floating-point operations of one rank-``b`` update with ``d`` inputs and ``c`` outputs,
    learned ``way``: ``"factor"``, ``"inverse"`` (updating R) or ``"rows"`` (default: the way a
    CPU head takes a steady stream of such chunks).

    Counts a matrix product as ``2 m n k``, a symmetric rank-k update as ``n^2 k``, a
    Cholesky factorisation as ``n^3 / 3``, an inverse from it as ``2 n^3 / 3`` and a triangular
    solve as ``n^2 k``. Every way: the statistics A and B (d^2 b + 2 d b c). The batched ways:
    Cholesky of ``X R X'`` (b^3 / 3), the whitened residuals (b^2 c) and the prior residuals
    (2 d b c); from the factor: ``A + g I = LL'`` (d^3 / 3), ``L^-1 X'`` (d^2 b), ``X R X'``
    (d b^2); by updating R: R X' (2 d^2 b), X R X' (2 d b^2), the solve for K (d b^2),
    R -= K'K (d^2 b). Row by row: ``R`` from the factor (d^3), then per row ``R x`` and
    ``R -= u u' / s`` (4 d^2) and the prior and the weights' update (4 d c).
    """
    if way is None:
        way = "rows" if rows_are_cheaper(b, d, c) else "factor" if factor_is_cheaper(b, d) else "inverse"
    stats = d * d * b + 2.0 * d * b * c
    if way == "rows":
        return stats + d**3 + b * (4.0 * d * d + 4.0 * d * c)
    common = stats + b**3 / 3 + b * b * c + 2.0 * d * b * c
    if way == "factor":
        return common + d**3 / 3 + d * d * b + d * b * b
    if way == "inverse":
        return common + 3.0 * d * d * b + 3.0 * d * b * b
    raise ValueError(f"way must be 'factor', 'inverse' or 'rows', got {way!r}")


class RecursiveRidge(RowByRow, FactorChunks, WoodburyChunks, RidgeStatistics):
    """Exact recursive ridge regression (see the module docstring); the statistics it keeps,
    their growth and their state are :class:`~stream_cl.heads.ridge_stats.RidgeStatistics`, its
    three ways of learning a chunk :class:`~stream_cl.heads.ridge_row_ways.RowByRow`,
    :class:`~stream_cl.heads.ridge_factor.FactorChunks` and
    :class:`~stream_cl.heads.ridge_woodbury.WoodburyChunks`.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(50, 4)), rng.normal(size=(50, 2))
    >>> ridge = RecursiveRidge(gamma=0.5)
    >>> ridge.grow(4, 2)
    >>> _ = ridge.update(X[:7], Y[:7]); _ = ridge.update(X[7:], Y[7:])
    >>> closed = np.linalg.solve(X.T @ X + 0.5 * np.eye(4), X.T @ Y)
    >>> bool(np.allclose(ridge.weights(), closed, rtol=1e-10))
    True
    """

    # -- prediction --------------------------------------------------------------------
    def weights(self):
        """``W = R B``, shape (d, c) (by two triangular solves when ``R`` is not materialised; from the
        equilibrated factor where the factor of ``A + g I`` lost its digits: ``RidgeStatistics``)."""
        if self._W is None:
            if self._eq is not None:
                self._W = self.la.equilibrated_solve(self._eq, self.B)
            elif self.has_inverse or not self.n_features:
                self._W = self.la.own(self.R @ self.B)
            else:
                try:
                    F, self._W = self._current_factor()
                except np.linalg.LinAlgError:  # A + g I does not factor in float64 (lost its digits)
                    self._W = self.la.equilibrated_solve(self._eq_factor(), self.B)
                else:
                    self._factor = (self._W, F)  # the next chunk starts from this factor
        return self._W

    def predict(self, X):
        """Scores ``X W`` for rows ``X`` (b, d) -> (b, c)."""
        return X @ self.weights()

    # -- learning ----------------------------------------------------------------------
    def update(self, X, Y, sample_weight=None, X_query=None, query_pos=None):
        """Learn rows ``X`` (b, d) with targets ``Y`` (b, c), in order.

        Returns ``(prior, query)``: ``prior`` (b, c) holds each row's scores before it was
        learned (after the rows before it). ``X_query`` (u, d) are rows to score without
        learning; ``query_pos[k]`` says how many of the learned rows precede query ``k``
        (it is scored by the model at that moment). ``query`` is (u, c) or None.
        """
        la = self.la
        b = X.shape[0]
        w = np.ones(b) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if X_query is not None:
            query_pos = np.asarray(query_pos, dtype=np.int64)
        priors, queries = [], []
        start = 0
        while start < b or (X_query is not None and start == b == 0):
            stop = start + self._rows_until_anchor(b - start)
            # a re-anchor right after the chunk replaces R: its rank-n update would be thrown away
            anchor = stop > start and self._anchor_due(stop - start)
            if X_query is not None:
                # a query sitting exactly at a re-anchor belongs to the next chunk (after the last
                # chunk: scored below, by the re-anchored model)
                last = stop == b and not anchor
                sel = (query_pos >= start) & ((query_pos <= stop) if last else (query_pos < stop))
                Xq, qp = X_query[sel], query_pos[sel] - start
            else:
                sel, Xq, qp = None, None, None
            prior, q, done = self._chunk(X[start:stop], Y[start:stop], w[start:stop], Xq, qp, keep_R=not anchor)
            priors.append(prior)
            if sel is not None:
                idx = np.flatnonzero(sel)
                if done < stop - start:  # cut short (_cut): the queries after its last row come with the rest
                    scored = np.flatnonzero(qp < done)
                    idx, q = idx[scored], q[la.index(scored)]
                queries.append((idx, q))
            start += done
            if self._anchor_due():
                self.refresh()
            if b == 0:
                break
        if X_query is not None and b > 0 and anchor:  # queries after the last row, which a re-anchor followed
            sel = query_pos == b
            queries.append((np.flatnonzero(sel), X_query[sel] @ self.weights()))
        if not priors:  # no rows and no queries
            return la.zeros(0, self.n_outputs), None
        prior = priors[0] if len(priors) == 1 else _concat(la, priors)
        query = None
        if X_query is not None:
            query = la.zeros(X_query.shape[0], self.n_outputs)
            for idx, q in queries:
                if len(idx):
                    query[la.index(idx)] = q
        return prior, query

    def _chunk(self, X, Y, w, Xq, qpos, keep_R: bool = True):
        """Learn one chunk of rows the cheapest way (:func:`rows_are_cheaper`, :meth:`_use_factor`):
        ``(prior, query, done)``, the first ``done`` rows learned (all but after a row :meth:`_cut` stops at,
        or where the head became or stopped being equilibrated: ``RowByRow``)."""
        b = X.shape[0]
        rows = isinstance(self.la, NumpyLinalg) and ridge_rows.compiled()
        if self._eq is not None:  # A + g I lost its digits (RidgeStatistics): each row solved from the statistics
            learn = self._rows_equilibrated
        elif rows and b > 1 and rows_are_cheaper(b, self.n_features, self.n_outputs):
            learn = self._chunk_row_by_row
        elif self._use_factor(b):
            learn = self._chunk_from_factor
        else:
            learn = self._chunk_updating_R
        try:
            return learn(X, Y, w, Xq, qpos, keep_R)
        except np.linalg.LinAlgError:
            # A factor lost definiteness to rounding: the chunk's (b x b) innovations X R X' + noise,
            # or A + g I itself, or its pivots are rounding noise (LostDigits: collinear raw inputs of
            # 1e5 and more, entries up to ~1e27 where the noise and g are ~1). Nothing was learned yet
            # (each fails before the statistics change): the rows one at a time, as the per-event path
            # learns them (their 1 x 1 innovations stay positive), from R materialised, or where A + g I
            # lost its digits each solved from the statistics (RowByRow._rows_equilibrated).
            return self._rows_from_statistics(X, Y, w, Xq, qpos)

    def _use_factor(self, b: int) -> bool:
        """Learn the next ``b`` rows from the factor of ``A``? Yes when it has fewer flops; when
        ``R`` is not materialised, it is rebuilt (d^3) only for a head that is wide for its
        backend's chunks, where updating it pays off over the chunks that follow."""
        d = self.n_features
        if b == 0 or d == 0:
            return False
        if not self.has_inverse:
            return factor_is_cheaper(self.la.max_chunk, d)
        return factor_is_cheaper(b, d)

    def _cut(self, lev) -> int:
        """How many of a chunk's rows to learn from its start, given each row's ``1 + w x'R0x / l^(i+1)``
        against the chunk's start ``lev`` (b,) (an upper bound of its leverage when learned): up to the
        first row but the last past ``REBUILD_LEVERAGE``, whose downdate cancels digits in every later
        row's prior (as in :meth:`update_one`), so the rows after it start from the exact statistics."""
        past = np.flatnonzero(np.asarray(lev[:-1]) > REBUILD_LEVERAGE)
        return int(past[0]) + 1 if len(past) else len(lev)

    def _prefix(self, learn, X, Y, w, Xq, qpos, cut: int):
        """``learn`` (a chunk method) of the first ``cut`` rows, then ``R`` dropped (rebuilt from the exact
        statistics when next read): ``(prior, query, cut)``, the queries after row ``cut`` left at 0."""
        mine = None if Xq is None else np.flatnonzero(qpos < cut)
        prior, q, _ = learn(X[:cut], Y[:cut], w[:cut], None if Xq is None else Xq[mine],
                            None if Xq is None else qpos[mine], keep_R=False)
        self.drop_inverse()
        query = None
        if Xq is not None:
            query = self.la.zeros(Xq.shape[0], self.n_outputs)
            if len(mine):
                query[self.la.index(mine)] = q
        return prior, query, cut

    def _noise(self, w):
        """Each row's observation noise ``l^(i+1) / w_i`` (b,) for weights ``w`` (b,): the forgetting
        of the rows after it, relative to the unscaled inverse of the chunk's start (every way)."""
        return self.la.powers(self.forgetting, len(w)) / self.la.asarray(w)

    def _queried(self, base, T, Q, qpos):
        """Query scores ``base + T' Q`` (u, c), query ``k`` seeing only the rows before ``qpos[k]``:
        forward substitution makes the leading block of the solve exactly the smaller problem's."""
        b = T.shape[0]
        mask = np.arange(b)[:, None] < np.asarray(qpos)[None, :]  # (b, u)
        return base + (T * self.la.asarray(mask)).T @ Q

    def _learn_statistics(self, X, Y, w) -> None:
        """``A = l^b A + X' diag(dw) X``, ``B = l^b B + X' diag(dw) Y`` and the schedule's counters."""
        la, lam = self.la, self.forgetting
        b = X.shape[0]
        wt = la.asarray(w)
        scale = lam**b
        if scale == 1.0 and bool((wt == 1.0).all()):  # dw = 1: X itself, not a scaled copy (the same sums)
            half, dY = X.T, Y  # (d, b), (b, c)
        else:
            dw = wt * (scale / la.powers(lam, b))  # (b,): w_i l^(b-1-i) > 0
            # Y scaled, not X: (b, c) against (d, b), and for one-hot Y the same bits (dw * 1 = dw)
            half, dY = X.T * dw**0.5, dw[:, None] * Y  # (d, b), (b, c)
        self._A.rank_k(la, half, 1.0, scale)  # (read only to re-anchor, to factor, to merge)
        if scale != 1.0:
            self.B *= scale
        self.B += X.T @ dY
        if self._eq is not None:  # the factor of the statistics before: R (if read) and W come from the new ones
            self.drop_inverse()
        self.decay = self._decayed(b)  # row by row, as one event at a time (not scale: the anchors follow it)
        self.rows_since_anchor += b
        self.n_rows += b
        self._W = None

    def update_one(self, x, y, weight: float = 1.0, k: int | None = None, prior=None):
        """Rank-1 :meth:`update` for one row ``x`` (d,) and target ``y`` (c,); returns prior scores (c,).
        ``k``: ``y`` is the one-hot target of output ``k``. ``prior``: ``x W`` if the caller
        computed it since the last update (it is returned, and may be changed by the caller)."""
        if not isinstance(self.la, NumpyLinalg):
            prior, _ = self.update(x[None, :], y[None, :], [weight])  # (d,) -> (1, d), (c,) -> (1, c)
            return prior[0]
        R, A = self._R, self._A
        if R is None or self._eq is not None:
            if self._eq is None:
                self._factorise()  # R (dropping a cached W), or where A + g I lost its digits its equilibrated factor
            if self._eq is not None:  # no R to update (RidgeStatistics): the statistics, solved again when next read
                return self._learn_row(x, y, weight, prior)
            R = self._R
        lam = self.forgetting
        W = self._W if self._W is not None else self.weights()
        if prior is None:
            prior = x @ W  # (c,)
        if ridge_one.compiled():  # R, B and W in one compiled call; R's downdate is left pending
            M, scale, u, a = R.with_pending()
            s = ridge_one.update_one(M, scale, u, a, x, weight, lam, self.B, -1 if k is None else k, y, W, prior,
                                     np.empty_like(x), LOST_DIGITS)
        else:
            s = _blas_row(R, self.B, W, x, y, weight, lam, k, prior)
        if lam != 1.0:
            R.rescale(1.0 / lam)
            A.rescale(lam)
        A.defer_outer(weight, x)  # A += w x x', with the next rows (A is read only to re-anchor)
        self.decay *= lam
        self.rows_since_anchor += 1
        self.n_rows += 1
        if self._anchor_due():
            self.refresh()
            self._factorise()  # the per-event path works with R: rebuilt now, before the next prediction's W
        elif s * weight / lam > REBUILD_LEVERAGE:  # (s = l / w + x'Rx) the downdate cancelled digits (inf: R
            # could not resolve the row, ridge_one.update_one)
            self.drop_inverse()
            self._factorise()
        return prior

    def _learn_row(self, x, y, weight: float, prior):
        """:meth:`update_one` of an equilibrated head: ``A`` and ``B`` learn the row and the next solve is
        from them, as a batch's rows are learned (:meth:`_rows_equilibrated`); returns the prior scores."""
        if prior is None:
            prior = x @ self.weights()  # (c,)
        self._learn_statistics(x[None, :], y[None, :], np.array([weight]))  # (drops the factor)
        if self._anchor_due():
            self.refresh()
        return prior


def _blas_row(R, B, W, x, y, weight: float, lam: float, k, prior) -> float:
    """:func:`~stream_cl.heads.ridge_one.update_one` by BLAS calls, for a process without numba:
    ``R -= Rx Rx' / s`` on ``R``'s triangle, ``B = lam B + w x y'``, ``W += Rx (y - prior)' / s``;
    returns ``s = lam / w + x'Rx``, or ``inf`` where ``R`` cannot resolve the row (as ``update_one``)."""
    Rx = R.symv(x)  # (d,) R x
    quad = float(x @ Rx)
    s = lam / weight + quad
    if quad < LOST_DIGITS * x.shape[0] * R.scale * float(np.square(x) @ np.diagonal(R.M)):
        s_out = np.inf  # its terms cancelled to their rounding: R rebuilt from the statistics after the row
    else:
        s_out = s
    R.add_outer(-1.0 / s, Rx)  # R -= Rx Rx' / s
    if lam != 1.0:
        B *= lam
    if k is not None and weight == 1.0:
        B[:, k] += x  # B += x y' for a one-hot y: one column, the same sums (x * 1.0 is exact)
    else:
        _dger(weight, y, x, a=B.T, overwrite_a=1)  # B += w x y'
    # W = R B changes by (R_new x w)(y - prior)' and R_new x w = Rx / s; updating W
    # in place avoids recomputing R B (d^2 c) on every event.
    _dger(1.0 / s, y - prior, Rx, a=W.T, overwrite_a=1)
    return s_out


def _concat(la, parts):
    if isinstance(la, NumpyLinalg):
        return np.concatenate(parts, axis=0)
    return la.torch.cat(parts, dim=0)
