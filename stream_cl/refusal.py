"""An event the backbone refuses changes nothing.

A learning step changes the feature index (its new inputs' columns), the standardiser (each
learned row's statistics) and, with replay, the buffer before the backbone runs on the
standardised rows. A backbone that may refuse rows (:attr:`~stream_cl.backbones.base.Backbone.may_refuse`:
a torch module's non-finite features, a module that fails) raises a ``ValueError`` there, and
whoever learns relies on a refusal changing nothing: the daemon retries a refused batch event
by event to find the events at fault, which would otherwise have absorbed the batch's rows in
the standardiser twice; and a refused row's extreme value had moved a feature's mean for good
(review r93).

:class:`Undo` records that state before the step and puts it back: the standardiser's arrays by
reference (its learning replaces them), the index's and the buffer's states only where they
may change (an event with new inputs; a backbone that may refuse). A step whose designs are
made in several segments, or in a new partition's part, is checked whole before it changes
anything (``BatchPath._preflight``).

>>> import numpy as np
>>> from stream_cl.backbones.standardize import OnlineStandardizer
>>> from stream_cl.features import FeatureIndex
>>> scaler, index = OnlineStandardizer(), FeatureIndex()
>>> X, M, new = index.vectorize_masked([{"a": 1e6}], [True])
>>> undo = Undo(scaler, index, new)
>>> index.commit(new); _ = scaler.prequential(X, M)
>>> undo(); index.width, scaler.n_features
(0, 0)
"""

from __future__ import annotations

__all__ = ["Undo"]


class Undo:
    """What a learning step changes before its backbone runs, recorded to be put back (module
    docstring). ``new``: the step's new inputs (the index's state is kept only when there are
    some); ``replay``: a buffer the step offers its rows to, or ``None``."""

    __slots__ = ("_scaler", "_statistics", "_index", "_index_state", "_replay", "_replay_state")

    def __init__(self, scaler, index, new, replay=None):
        self._scaler, self._statistics = scaler, scaler.statistics()
        self._index, self._index_state = index, (index.state_dict() if len(new) else None)
        self._replay, self._replay_state = replay, (replay.state_dict() if replay is not None else None)

    def __call__(self) -> None:
        self._scaler.restore(self._statistics)
        if self._index_state is not None:
            self._index.load_state_dict(self._index_state)
        if self._replay is not None:
            self._replay.load_state_dict(self._replay_state)
