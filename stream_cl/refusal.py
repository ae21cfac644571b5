"""An event the backbone refuses changes nothing.

A learning step changes the feature index (its new inputs' columns) and the standardiser (each
learned row's statistics) before the backbone runs on the standardised rows. A backbone that may
refuse rows (:attr:`~stream_cl.backbones.base.Backbone.may_refuse`: a torch module's non-finite
features, a module that fails) raises a ``ValueError`` there, and whoever learns relies on a
refusal changing nothing: the daemon retries a refused batch event by event to find the events
at fault, which would otherwise have absorbed the batch's rows in the standardiser twice; and a
refused row's extreme value had moved a feature's mean for good (review r93).

:class:`Undo` records that state before the step and puts it back: the standardiser's arrays by
reference (its learning replaces them), the index's state only where an event brings new inputs
(hashed buckets and category counts included). With replay, the fresh rows go through the
backbone before the buffer is offered them, and a replayed row it refuses is dropped from the
buffer, not a reason to refuse the batch (:mod:`~stream_cl.replayed_designs`). A step whose
designs are made in several segments, or in a new partition's part, is checked whole before it
changes anything (``BatchPath._preflight``).

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

import contextlib

__all__ = ["Undo", "undo_on_refusal"]


class Undo:
    """What a learning step changes before its backbone runs, recorded to be put back (module
    docstring). ``new``: the step's new inputs (the index's state is kept only when there are
    some: a new column, a hashed bucket's kind, a value counted past the category bound)."""

    __slots__ = ("_scaler", "_statistics", "_index", "_index_state")

    def __init__(self, scaler, index, new):
        self._scaler, self._statistics = scaler, scaler.statistics()
        # bool, not len: a NewColumns' length counts its columns alone (r96: a bucket's kind and a category
        # overflow count survived a refusal)
        self._index, self._index_state = index, (index.state_dict() if new else None)

    def __call__(self) -> None:
        self._scaler.restore(self._statistics)
        if self._index_state is not None:
            self._index.load_state_dict(self._index_state)

    def __enter__(self) -> "Undo":
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if kind is not None and issubclass(kind, ValueError):  # a refusal: put back, and let it go on
            self()
        return False


def undo_on_refusal(backbone, scaler, index, new):
    """A context in which a learning step changes ``scaler`` and ``index`` (its ``new`` inputs) before
    ``backbone`` runs: an :class:`Undo` that puts them back on a ``ValueError``, where the backbone
    may refuse rows; nothing to do where it may not (the seeded random features).

    >>> from stream_cl.backbones import RandomFeatures
    >>> type(undo_on_refusal(RandomFeatures(width=4), None, None, [])).__name__
    'nullcontext'
    """
    return Undo(scaler, index, new) if backbone.may_refuse else _NOTHING


_NOTHING = contextlib.nullcontext()  # (reusable: it holds no state)
