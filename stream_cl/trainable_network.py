"""The trainable learner's network side (:class:`TrainableNetwork`, a part of
:class:`~stream_cl.trainable.TrainableLearner`): its inputs grown as the feature index grows, its
classes, and the Adam steps of a micro-batch with replay (:mod:`stream_cl.mlp` holds the network).

The learner provides ``index_``, ``net_``, ``scaler_``, ``replay_``, ``hash_width``, ``max_columns``,
``steps``, ``weight_decay``, ``learning_rates_``, ``n_updates_``, ``_classes``, ``_pos``
and ``_pending``.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import torch

from .column_bound import ColumnRoom, single_design_room

__all__ = ["TrainableNetwork"]


class TrainableNetwork:
    """The network's inputs, classes and training steps (module docstring)."""

    @property
    def n_layers(self) -> int:
        """Layers with weights: the hidden ones and the output."""
        return self.net_.n_layers

    @property
    def params_(self) -> list:
        """The network's parameters: W0, b0, W1, b1, ..., W_out, b_out."""
        return self.net_.params

    def _room(self) -> ColumnRoom | None:
        """The inputs the first layer may still take (a category whose own would not fit goes to ``k=<other>``)."""
        return single_design_room(self.max_columns if self.hash_width is None else None, lambda: self.index_.width)

    def _keys(self) -> list:
        return list(self.index_.names) if self.hash_width is None else list(range(self.hash_width))

    def _add_class(self, y: Hashable) -> None:
        self._pos[y] = len(self._classes)
        self._classes.append(y)
        self.net_.add_class()

    def _grow(self, keys: list, widths: np.ndarray) -> None:
        """Input columns for a segment's rows (``widths``: inputs after each), as the per-event
        loop would have grown them: the network does not train within a segment, and a column
        reads 0 in the rows before its key's first learned row, so growing to the segment's
        last width at its start changes no prediction. Growing to the whole batch's width
        would not do: a column that exists before a micro-batch trains is decayed with it, and
        the first inputs fix the first layer's scale (those of the first row that brings any)."""
        if widths[-1] <= self.net_.n_inputs:
            return
        if not self.net_.fan_in:
            self.net_.grow_inputs(keys[: widths[widths > 0][0]])
        self.net_.grow_inputs(keys[: widths[-1]])

    def _train(self) -> None:
        """Adam steps on the pending fresh rows plus replayed ones; clears the pending rows."""
        rows = self._pending
        self._pending = []
        if not rows:
            return
        d = self.index_.width
        X = np.zeros((len(rows), d))
        Mk = np.zeros((len(rows), d), dtype=bool)
        for i, (x, m, _, _) in enumerate(rows):
            X[i, : x.shape[0]], Mk[i, : m.shape[0]] = x, m
        ys = [r[2] for r in rows]
        if self.replay_ is not None:
            draw = self.replay_.interleave(X, Mk, ys, [r[3] for r in rows])
            if len(draw.y):
                X, Mk = np.vstack([X, draw.X]), np.vstack([Mk, draw.M])
                ys = ys + draw.y
        Z = self.scaler_.transform(X, Mk, self.index_.indicator_mask)
        target = torch.as_tensor([self._pos[y] for y in ys], dtype=torch.long, device=self.net_.device)
        self.net_.train(Z, target, self.learning_rates_, self.steps, self.weight_decay)
        self.n_updates_ += 1
