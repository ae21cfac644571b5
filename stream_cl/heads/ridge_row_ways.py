"""The ridge head's ways of learning a chunk one row at a time (:class:`RowByRow`, a part of
:class:`~stream_cl.heads.ridge.RecursiveRidge`): the compiled loop of :mod:`~stream_cl.heads.ridge_rows`
from the inverse at the chunk's start (the CPU's narrow heads, and any CPU chunk whose factor failed),
or the same recursion in the backend's arrays (a torch device whose factor failed). Each starts
again from the exact statistics after a row past ``REBUILD_LEVERAGE``, as the per-event update does.
While ``A + g I`` has lost its digits (the head is equilibrated, ``RidgeStatistics``) no inverse is
updated: each row is scored by weights solved from the statistics (:meth:`RowByRow._rows_equilibrated`).

The head provides ``la`` (its backend), ``n_outputs``, ``_factor``, ``_R``, ``_eq``, ``_current_factor()``,
``_factorise()``, ``inverse()``, ``weights()``, ``drop_inverse()``, ``_noise(w)`` and
``_learn_statistics(X, Y, w)``.
"""

from __future__ import annotations

import numpy as np

from . import ridge_rows
from ._linalg import NumpyLinalg
from .ridge_stats import REBUILD_LEVERAGE

__all__ = ["RowByRow"]


class RowByRow:
    """A chunk's rows learned one at a time (module docstring); each method returns ``(prior, query, done)``:
    the first ``done`` rows learned and their prior scores (fewer than all where the head became or stopped
    being equilibrated: the rest are learned as ``RecursiveRidge._chunk`` then chooses)."""

    def _chunk_row_by_row(self, X, Y, w, Xq, qpos, keep_R: bool = True):
        """Learn rows ``X`` (b, d) one at a time from the inverse of ``A + g I`` at the chunk's
        start, compiled (:mod:`~stream_cl.heads.ridge_rows`); ``R`` is not kept. Returns
        ``(prior, query, done)`` as ``RecursiveRidge._chunk`` does."""
        F, W0 = self._current_factor()  # A + g I = L L'; W0 (d, c) the weights at the chunk's start
        out = self._rows_from(self.la.factor_inverse(F), W0, X, Y, w, Xq, qpos)
        self._factor = (None, F)  # spent: the next factor is written over it
        return out

    def _rows_from_statistics(self, X, Y, w, Xq, qpos):
        """:meth:`_chunk_row_by_row` from ``R`` materialised from the statistics instead of the factor of
        ``A`` (where a factor failed): the compiled loop, or without it (a torch device)
        :meth:`_rows_updating_R`; where ``A + g I`` lost its digits, :meth:`_rows_equilibrated`."""
        if self._R is None and self._eq is None:
            self._factorise()
        if self._eq is not None:
            return self._rows_equilibrated(X, Y, w, Xq, qpos)
        if not (isinstance(self.la, NumpyLinalg) and ridge_rows.compiled()):
            return self._rows_updating_R(X, Y, w, Xq, qpos)
        return self._rows_from(self.inverse().full(), self.weights(), X, Y, w, Xq, qpos)

    def _rows_updating_R(self, X, Y, w, Xq, qpos):
        """:meth:`_rows_from_statistics` without the compiled loop (a torch device): the same
        recursion row by row in the backend's arrays (a 1 x 1 innovation, no factor to fail), from
        ``R`` materialised from the statistics."""
        la, b = self.la, X.shape[0]
        prior = la.zeros(b, self.n_outputs)
        query = None if Xq is None else la.zeros(Xq.shape[0], self.n_outputs)
        start = 0  # the rows from here on start from R, W (learned into A, B up to here)
        R, W = self.inverse().full() * 1.0, self.weights() * 1.0  # (d, d), (d, c): copies, as the loop's
        noise = la.to_numpy(self._noise(w))  # (b,), relative to ``start``
        for i in range(b + 1):
            if Xq is not None:
                at = np.flatnonzero(qpos == i)  # the model after the rows before i
                if len(at):
                    query[la.index(at)] = Xq[la.index(at)] @ W
            if i == b:
                break
            x = X[i]  # (d,)
            u = R @ x  # (d,) R x
            s = float(noise[i - start] + x @ u)
            prior[i] = x @ W
            W += u[:, None] * ((Y[i] - prior[i]) / s)[None, :]  # W += R x (y - x'W)' / s: (d, 1) * (1, c)
            R -= u[:, None] * (u / s)[None, :]  # R -= R x x' R / s: (d, 1) * (1, d)
            if s > REBUILD_LEVERAGE * noise[i - start] and i + 1 < b:  # its downdate cancelled digits
                self._learn_statistics(X[start : i + 1], Y[start : i + 1], w[start : i + 1])
                self.drop_inverse()
                start = i + 1
                self._factorise()
                if self._eq is not None:  # A + g I lost its digits: the rest as _rows_equilibrated learns them
                    return prior[:start], query, start
                R, W = self.inverse().full() * 1.0, self.weights() * 1.0
                noise = la.to_numpy(self._noise(w[start:]))
        self.drop_inverse()
        self._factor = None
        self._learn_statistics(X[start:], Y[start:], w[start:])
        return prior, query, b

    def _rows_from(self, R0, W0, X, Y, w, Xq, qpos):
        """Learn rows ``X`` (b, d) one at a time from the chunk-start inverse ``R0`` and weights ``W0``
        (copied by the compiled loop); ``R`` is not kept. After a row past ``REBUILD_LEVERAGE`` the
        rest start from ``R`` rebuilt, as ``update_one`` does (or, where the rebuild finds ``A + g I``
        lost its digits, are left to :meth:`_rows_equilibrated`)."""
        b = X.shape[0]
        prior = np.zeros((b, self.n_outputs))
        query = None if Xq is None else np.zeros((Xq.shape[0], self.n_outputs))
        start = 0
        while True:
            later = None if Xq is None else np.flatnonzero(qpos >= start)  # queries not scored yet
            p, q, done = ridge_rows.learn_rows_until(
                R0, W0, X[start:], Y[start:], self._noise(w[start:]), None if Xq is None else Xq[later],
                None if Xq is None else qpos[later] - start, REBUILD_LEVERAGE)
            prior[start : start + done] = p[:done]
            if Xq is not None:  # (stopped early: the queries after the last row learned come next)
                scored = qpos[later] - start < done if start + done < b else np.ones(len(later), dtype=bool)
                query[later[scored]] = q[scored]
            self.drop_inverse()
            self._factor = None
            self._learn_statistics(X[start : start + done], Y[start : start + done], w[start : start + done])
            start += done
            if start == b:
                return prior, query, b
            self._factorise()  # rebuilt from the exact statistics
            if self._eq is not None:  # ... where A + g I lost its digits: the rest as _rows_equilibrated learns them
                return prior[:start], query, start
            R0, W0 = self.inverse().full(), self.weights()

    def _rows_equilibrated(self, X, Y, w, Xq, qpos, keep_R: bool = True):
        """Learn rows ``X`` (b, d) one at a time while the head is equilibrated (``A + g I`` lost its digits,
        ``RidgeStatistics``): each scored by the weights solved from the statistics of the rows before it,
        as :meth:`update_one` scores them, and learned into the statistics. Once ``A + g I`` factors
        again, the rows from there on are left to the usual ways (``done`` < b)."""
        la, b = self.la, X.shape[0]
        prior = la.zeros(b, self.n_outputs)
        query = None if Xq is None else la.zeros(Xq.shape[0], self.n_outputs)
        for i in range(b + 1):
            W = self.weights()  # (d, c) solved from the statistics: equilibrated, or by a factor again
            if 0 < i < b and self._eq is None:
                return prior[:i], query, i
            if Xq is not None:
                at = np.flatnonzero(qpos == i)  # the model after the rows before i
                if len(at):
                    query[la.index(at)] = Xq[la.index(at)] @ W
            if i == b:
                return prior, query, b
            prior[i] = X[i] @ W
            self._learn_statistics(X[i : i + 1], Y[i : i + 1], w[i : i + 1])  # (drops the factor)
