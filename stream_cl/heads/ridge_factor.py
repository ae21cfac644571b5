"""The ridge head's way of learning a chunk from the Cholesky factor of ``A + g I``
(:class:`FactorChunks`, a part of :class:`~stream_cl.heads.ridge.RecursiveRidge`): ``R`` is not
kept, each row's prior comes from the factor of the chunk's innovation covariance ``V'V + noise``
with ``V = L^-1 X'``, and the factor is reused by the weights read right before or after (the
module docstring of :mod:`~stream_cl.heads.ridge`). A chunk ends after a row past
``REBUILD_LEVERAGE`` (``_cut``/``_prefix``), the rest starting from a new factor.

The head provides ``la``, ``gamma``, ``decay``, ``n_outputs``, ``B``, ``_A``, ``_W``, ``_factor``,
``drop_inverse()``, ``_noise(w)``, ``_cut(lev)``, ``_prefix(...)``, ``_queried(...)`` and
``_learn_statistics(X, Y, w)``.
"""

from __future__ import annotations

__all__ = ["FactorChunks"]


class FactorChunks:
    """A chunk learned from the factor of ``A + g I`` (module docstring)."""

    def _current_factor(self, solve: bool = True):
        """The factor of ``A + g I`` and ``W`` solved with it: the one :meth:`weights` kept if the
        statistics have not changed since (every change drops the cached ``W``), else new ones.
        ``solve=False``: a new factor comes with ``W`` None (the caller solves what it needs)."""
        if self._factor is not None and self._factor[0] is self._W and self._W is not None:
            return self._factor[1], self._W
        spent = self._factor[1] if self._factor is not None else None  # its memory is reused
        self._factor = None
        M, scale = self._A.current()
        F = self.la.spd_factor(M, scale, self.gamma * self.decay, reuse=spent)  # A + g I = L L'
        return F, (self.la.factor_solve(F, self.B) if solve else None)

    def _chunk_from_factor(self, X, Y, w, Xq, qpos, keep_R: bool = True):
        """Learn rows ``X`` (b, d) from the Cholesky factor of ``A + g I`` (module docstring);
        ``R`` is not kept. Returns ``(prior, query)`` as :meth:`update` does."""
        la = self.la
        F, W0 = self._current_factor(solve=False)  # A + g I = L L'; W0 (d, c) the chunk-start weights, if at hand
        V = la.whiten(F, X.T)  # (d, b) L^-1 X', so that X R X' = V'V
        noise = self._noise(w)  # (b,)
        S = la.gram_plus_diag(V, noise)  # (b, b) innovation covariance X R X' + noise
        cut = self._cut(la.to_numpy(la.diag(S) / noise))
        if cut < X.shape[0]:
            self._factor = (None, F)  # spent: the prefix factors A + g I again, in its memory
            return self._prefix(self._chunk_from_factor, X, Y, w, Xq, qpos, cut)
        C = la.cholesky_lower(S)
        # X W0 = V' (L^-1 B): one triangular solve where W0 takes two (and W0 dies with the chunk).
        # Always this way, cached W0 or not: a prediction before a batch changes none of its bits.
        Z = la.whiten(F, self.B)  # (d, c)
        resid = Y - V.T @ Z  # (b, c) residuals against the chunk-start weights
        if Xq is not None and W0 is None:
            W0 = la.unwhiten(F, Z)  # (d, c) L'^-1 Z: what factor_solve gives, bit for bit
        Q = la.solve_lower(C, resid)  # (b, c) whitened innovations
        prior = Y - la.diag(C)[:, None] * Q  # (b, c) scores before each row was learned
        query = None
        if Xq is not None:
            query = la.zeros(0, self.n_outputs)
            if Xq.shape[0]:
                T = la.solve_lower(C, V.T @ la.whiten(F, Xq.T))  # (b, u): C^-1 X R Xq'
                query = self._queried(Xq @ W0, T, Q, qpos)
        self.drop_inverse()
        self._factor = (None, F)  # spent: the next factor is written over it
        self._learn_statistics(X, Y, w)
        return prior, query, X.shape[0]
