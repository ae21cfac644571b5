"""The ridge head's way of learning a chunk by a rank-b Woodbury update of its inverse
(:class:`WoodburyChunks`, a part of :class:`~stream_cl.heads.ridge.RecursiveRidge`): the head's
wide chunks on a torch device, and its chunks whenever ``R`` is kept (the module docstring of
:mod:`~stream_cl.heads.ridge`). A chunk ends after a row past ``REBUILD_LEVERAGE``
(``_cut``/``_prefix``), whose downdate would cancel digits, or after a row ``R`` cannot resolve (its
``x'Rx`` cancelled to its rounding), and ``R`` is rebuilt from the exact statistics after it. A head
whose ``A + g I`` lost its digits (equilibrated) keeps no ``R`` to update: its chunks are learned
from the statistics (``RecursiveRidge._chunk``).

The head provides ``la``, ``forgetting``, ``n_outputs``, ``R``, ``_R``, ``_eq``, ``weights()``,
``drop_inverse()``, ``_factorise()``, ``_noise(w)``, ``_cut(lev)``, ``_prefix(...)``, ``_queried(...)``
and ``_learn_statistics(X, Y, w)``.
"""

from __future__ import annotations

import numpy as np

from .conditioning import LOST_DIGITS, LostDigits
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
        if self._R is None:
            self._factorise()  # R from A, or the equilibrated factor where A + g I lost its digits
        if self._eq is not None:  # no R to update: RecursiveRidge._chunk learns the rows from the statistics
            raise LostDigits("A + g I lost its digits: the head is equilibrated")
        R = self.R  # (d, d)
        W0 = self.weights()  # (d, c)
        noise = self._noise(w)  # (b,)
        RXt = R @ X.T  # (d, b)
        S = X @ RXt  # (b, b) innovation covariance
        quad = la.to_numpy(la.diag(S)).copy()  # (b,) x'Rx against the chunk's start
        spread = la.to_numpy((X * X) @ la.diag(R))  # (b,) sum_p x_p^2 R_pp: the same without cancellation
        la.add_to_diag(S, noise)
        lev = la.to_numpy(la.diag(S) / noise)  # (b,) 1 + leverages against the chunk's start
        # a row R cannot resolve (x'Rx cancelled to its rounding, as in ridge_one.update_one): R rebuilt after it
        lev = np.where(quad < LOST_DIGITS * X.shape[1] * spread, np.inf, lev)
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
            self._factorise()
            if self._eq is not None:  # nothing learned yet: the rows from the statistics (RecursiveRidge._chunk)
                raise LostDigits("A + g I lost its digits: the head is equilibrated")
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
