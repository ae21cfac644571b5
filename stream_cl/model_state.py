"""A learner's state as a checkpoint holds it (``state_dict()``, a checkpoint's ``"model"``):
restored into a learner all or nothing, and read for each ridge head's sufficient statistics."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["load_all_or_nothing", "sufficient_statistics"]


# -- restoring a learner ----------------------------------------------------------------------
def load_all_or_nothing(learner, state: Mapping, load: Callable[[Any, Mapping], None]) -> None:
    """Restore ``learner`` from ``state`` entirely or not at all.

    ``load(learner, state)`` loads in place; should it raise, the learner's own state, taken just
    before (a deep copy of its ``state_dict()``, whose round trip is exact: checkpoints resume on
    it), is loaded back and the error goes on. Loading in place alone had left a learner whose
    state was refused part-way (a ``ValueError`` after the index and the heads were loaded) half
    overwritten, and a caller that caught the error went on with a corrupt model. (Loading into a
    ``clone()`` instead lost the settings of a subclass that passes them through ``**kwargs``.) A
    key the state lacks is a ``ValueError`` naming it, not a bare ``KeyError``.
    """
    before = copy.deepcopy(learner.state_dict())
    try:
        load(learner, state)
    except Exception as e:
        load(learner, before)
        if isinstance(e, KeyError):
            raise ValueError(
                f"checkpoint state has no {e.args[0]!r} entry, which {type(learner).__name__} needs: it was written "
                "by another learner kind, or is damaged; restore it into the kind of learner that wrote it"
            ) from e
        raise


# -- sufficient statistics --------------------------------------------------------------------
def sufficient_statistics(model_state: Mapping) -> list[dict]:
    """The additive statistics of each ridge head in a learner's ``state_dict()``.

    For each head: ``xtx`` (X'X, forgetting-weighted), ``xty`` (X'Y), ``counts`` and
    ``classes`` (the columns of X'Y, in order), ``features`` (the input feature names; with ``hash_width``, the
    bucket numbers ``0 .. hash_width - 1``, which are the inputs then, as in ``coef_``),
    ``layout`` (the design row: ``"bias+features"``, ``[1, features]``, for
    :class:`AnalyticClassifier` and the online learner's ``"inputs"`` heads, whose features are
    standardised; ``"bias+backbone+features"``, ``[1, backbone outputs, per input: its standardised
    value and its key units]``, for its ``"all"`` heads; ``"unknown"`` for a state written before
    the views were kept), ``n_rows``, ``gamma`` and ``forgetting``. Summing ``xtx``/``xty``/``counts`` over
    consumers that saw disjoint events (after aligning classes and features) and
    solving ``(xtx + gamma I) W = xty`` gives the group's exact ridge weights when
    ``forgetting == 1``. The arrays are views into the state, not copies.
    """
    heads, layouts = [], []
    if "head" in model_state:  # AnalyticClassifier
        heads, layouts = [model_state["head"]], ["bias+features"]
    elif "heads" in model_state:  # OnlineContinualLearner
        heads = list(model_state["heads"])
        views = model_state.get("views") or [None] * len(heads)
        layouts = [{"all": "bias+backbone+features", "inputs": "bias+features"}.get(v, "unknown") for v in views]
    index = model_state.get("index", {})
    width = index.get("hash_width")
    # hashed: the design's inputs are the buckets, not the keys met (the index keeps no names then)
    names = list(range(int(width))) if width is not None else list(index.get("names", []))
    out = []
    for h, layout in zip(heads, layouts):
        r = h["ridge"]
        out.append({"xtx": r["A"], "xty": r["B"], "counts": list(h["counts"]), "classes": list(h["classes"]),
                    "features": names, "layout": layout, "n_rows": r.get("n_rows"), "gamma": r.get("gamma"),
                    "forgetting": r.get("forgetting")})
    return out
