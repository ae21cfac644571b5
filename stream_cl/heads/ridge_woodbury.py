"""The ridge head's way of learning a chunk by a rank-b Woodbury update of its inverse
(:class:`WoodburyChunks`, a part of :class:`~stream_cl.heads.ridge.RecursiveRidge`): the head's
wide chunks on a torch device, and its chunks whenever ``R`` is kept (the module docstring of
:mod:`~stream_cl.heads.ridge`). A chunk ends after a row past ``REBUILD_LEVERAGE``
(``_cut``/``_prefix``), whose downdate would cancel digits, and ``R`` is rebuilt from the exact
statistics after it.

The head provides ``la``, ``forgetting``, ``n_outputs``, ``R``, ``weights()``, ``drop_inverse()``,
``_noise(w)``, ``_cut(lev)``, ``_prefix(...)``, ``_queried(...)`` and ``_learn_statistics(X, Y, w)``.
"""

from __future__ import annotations

import numpy as np

from .ridge_stats import REBUILD_LEVERAGE

__all__ = ["WoodburyChunks"]


class WoodburyChunks:
    """A chunk learned by a rank-b update of ``R`` (module docstring)."""

    def _chunk_updating_R(self, X, Y, w, Xq, qpos, keep_R: bool = True):
        """Learn rows ``X`` (b, d) by a rank-b Woodbury update of ``R`` (module docstring); with
        ``keep_R`` false (a re-anchor follows, which replaces ``R``) it skips updating ``R``."""
        la, lam = self.la, self.forgetting
        b = X.shape[0]
        if b == 0:
            W0 = self.weights()  # (d, c)
            return la.zeros(0, self.n_outputs), (Xq @ W0 if Xq is not None else None), 0
        R = self.R  # (d, d), materialised from A if it was not
        W0 = self.weights()  # (d, c)
        noise = self._noise(w)  # (b,)
        RXt = R @ X.T  # (d, b)
        S = X @ RXt  # (b, b) innovation covariance
        la.add_to_diag(S, noise)
        lev = la.to_numpy(la.diag(S) / noise)  # (b,) 1 + leverages against the chunk's start
        cut = self._cut(lev)
        if cut < b:
            return self._prefix(self._chunk_updating_R, X, Y, w, Xq, qpos, cut)
        rebuild = keep_R and float(lev.max()) > REBUILD_LEVERAGE  # (the last row's: R rebuilt after it)
        try:
            C = la.cholesky_lower(S)
        except np.linalg.LinAlgError:
            # R lost definiteness to rounding: rebuilt from the exact statistics with the same ridge term
            # (not re-anchored: where the anchors fall must not depend on the batching)
            self.drop_inverse()
            R = self.R  # (d, d) rebuilt
            W0 = self.weights()  # (d, c) from it
            RXt = R @ X.T
            S = X @ RXt
            la.add_to_diag(S, noise)
            C = la.cholesky_lower(S)
        resid = Y - X @ W0  # (b, c) residuals against the batch-start weights
        Q = la.solve_lower(C, resid)  # (b, c) whitened innovations
        prior = Y - la.diag(C)[:, None] * Q  # (b, c) scores before each row was learned
        query = None
        if Xq is not None and Xq.shape[0]:
            T = la.solve_lower(C, RXt.T @ Xq.T)  # (b, u)
            query = self._queried(Xq @ W0, T, Q, qpos)
        elif Xq is not None:
            query = la.zeros(0, self.n_outputs)
        if keep_R:
            scale = lam**b
            K = la.solve_lower(C, RXt.T)  # (b, d)
            la.syrk_(R, K.T, -1.0 / scale, 1.0 / scale)  # R = (R - K'K) / l^b, exactly symmetric
        else:
            self.drop_inverse()
        self._learn_statistics(X, Y, w)
        if rebuild:  # a row's downdate cancelled digits (update_one): R from the exact statistics when next read
            self.drop_inverse()
        return prior, query, b
