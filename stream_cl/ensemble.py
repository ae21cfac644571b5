"""The analytic ensemble of :class:`~stream_cl.learner.OnlineContinualLearner`: design rows, heads, mixer.

From standardised inputs ``Z`` the ensemble builds one design matrix per *view*:
``"inputs"`` is ``[1, Z]``, ``"all"`` is ``[1, backbone(Z), key units(Z)]``. Each ridge head
learns on its view; the optional SGD softmax head on ``"inputs"``; the
:class:`~stream_cl.mixing.AccuracyMixer` weights every member by how often its prequential
prediction was right lately. A *hit* is the label's score beating every other class's by a
relative 1e-9 (:func:`margin_hits`): a tie is a miss, so per-event and batched runs, which
round differently, weight the mixture identically.

The host learner provides ``heads`` (``(forgetting, view)`` pairs), ``heads_``, ``sgd_``,
``mixer_``, ``backbone_``, ``key_units_``, ``key_units``, ``index_``, ``hash_width``,
``temperature``, ``device_`` and ``_sgd_in_head_order``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .backbones import torch_device
from .backbones.design_row import relu_units_row, relu_units_rows
from .heads.class_head import RidgeClassHead, scores_to_proba

__all__ = ["AnalyticEnsemble", "VIEWS", "margin_hits", "label_columns", "row_hit", "with_bias", "proba_hits", "head_hits", "as_numpy", "cat_rows", "take_rows"]

VIEWS = ("all", "inputs")  # "all" = [1, backbone features, inputs]; "inputs" = [1, inputs]


class AnalyticEnsemble:
    """Designs, members and mixture of the online learner (module docstring)."""

    def _designs(self, Z: np.ndarray, M: np.ndarray) -> dict:
        """Design matrices per view from standardised inputs ``Z`` (b, d_in) and ``M``, the inputs
        present and learned from before (a loop's prediction has no column it never learned)."""
        if self.device_ == "cpu":
            designs = self._design_row(Z[0], M[0]) if Z.shape[0] == 1 else self._compiled_designs(Z, M)
            if designs is not None:
                return designs
        dev = torch_device(self.device_)
        Zt = torch.as_tensor(Z, device=dev)
        Mt = torch.as_tensor(M, device=dev)
        ones = torch.ones(Z.shape[0], 1, dtype=torch.float64, device=dev)
        designs = {"inputs": torch.cat([ones, Zt], dim=1)}  # (b, 1 + d_in)
        if any(view == "all" for _, view in self.heads):
            keys = self.index_.names if self.hash_width is None else list(range(self.hash_width))
            H = self.backbone_.forward(Zt, keys, Mt)  # (b, width)
            raw, late = self._unit_masks()
            K = self.key_units_.forward(Zt, keys, Mt, raw, late) if self.key_units else Zt  # (b, d_in * (1 + m))
            # per-input blocks last: a new feature key appends columns, which the ridge grows exactly
            designs["all"] = torch.cat([ones, H, K], dim=1)  # (b, 1 + width + d_in * (1 + m))
        if self.device_ == "cpu":  # numpy heads
            return {k: v.numpy() for k, v in designs.items()}
        return designs

    def _unit_masks(self) -> tuple:
        """``(raw, late)`` over the inputs, for the key units: indicator columns keep ``[z_j]`` and
        get no units (``raw``), those of a feature's categories beyond its first keyed ones get no
        block at all (``late``); ``(None, None)`` for hashed inputs."""
        if self.hash_width is not None:
            return None, None
        return self.index_.indicator_mask, self.index_.unkeyed_mask

    def _compiled_designs(self, Z: np.ndarray, M: np.ndarray) -> dict | None:
        """:meth:`_designs` of a CPU batch by the compiled loop of one event's row
        (:func:`~stream_cl.backbones.design_row.relu_units_rows`): each row the same bits as the
        per-event path's, in a fraction of torch's time; ``None`` where torch builds them (another
        backbone, no key units, or new keys, for which the layers grow)."""
        designs = {"inputs": with_bias(Z)}  # (b, 1 + d_in)
        if any(view == "all" for _, view in self.heads):
            if not self.key_units:
                return None
            raw, late = self._unit_masks()
            rows = relu_units_rows(self.backbone_, self.key_units_, Z, M, raw, late)  # (b, 1 + width + blocks)
            if rows is None:
                return None
            designs["all"] = rows
        return designs

    def _design_row(self, z: np.ndarray, m: np.ndarray) -> dict:
        """:meth:`_designs` of one row on the CPU, in numpy: per event, torch's call overhead costs
        more than the arithmetic. Values as (1, columns) arrays, like the batch path's."""
        designs = {"inputs": with_bias(z[None, :])}  # (1, 1 + d_in)
        if any(view == "all" for _, view in self.heads):
            raw, late = self._unit_masks()
            row = relu_units_row(self.backbone_, self.key_units_, z, m, raw, late) if self.key_units else None
            if row is None:  # another backbone, no key units, or new keys (the layers grow): numpy
                keys = self.index_.names if self.hash_width is None else list(range(self.hash_width))
                h = self.backbone_.forward_row(z, keys, m)  # (width,)
                k = self.key_units_.forward_row(z, keys, m, raw, late) if self.key_units else z  # (d_in * (1 + m),)
                row = np.concatenate(([1.0], h, k))  # (1 + width + d_in * (1 + m),)
            designs["all"] = row[None, :]  # (1, columns)
        return designs

    @staticmethod
    def _memo_designs(memo, xs: Sequence[Mapping], new: list) -> dict | None:
        """The designs ``predict_proba_one`` computed for this very event, if it was the last
        call (a :class:`~stream_cl.one_event.RowMemo`): nothing was learned since, so its
        standardised row equals the prequential one (the statistics before the row) and the
        frozen backbone gives the same designs."""
        if memo is None or len(xs) != 1 or new:
            return None
        return memo.designs if memo.matches(xs[0]) else None

    def _learn_members(self, designs: dict, ys: list, weights, scored=None, scored_ys=None) -> tuple[list, list]:
        """Every member predicts then learns the ordered rows ``designs`` (labels ``ys``; ``None``
        learns nothing). Returns the probabilities (rows, c) and hits (rows,) of each member on
        the rows ``scored`` (all rows when ``None``), whose labels are ``scored_ys``."""
        scored_ys = ys if scored is None else scored_ys
        probas, hits = [], []
        columns = _LabelColumns(scored_ys)  # members list their classes alike: look labels up once
        for head, (_, view) in zip(self.heads_, self.heads):
            scores = head.prequential(designs[view], ys, weights)  # (rows, c)
            if scored is not None:
                scores = scores[scored]
            probas.append(scores_to_proba(scores, self.temperature))
            hits.append(head_hits(scores, head, scored_ys, columns.of(head.classes)))
        if self.sgd_ is not None:
            P = self.sgd_.prequential_proba(as_numpy(designs["inputs"]), ys, weights)  # (rows, c_sgd)
            if scored is not None:
                P = P[scored]
            probas.append(self._sgd_in_head_order(P))
            hits.append(proba_hits(P, self.sgd_.classes, scored_ys, columns.of(self.sgd_.classes)))
        return probas, hits

    def _mix(self, probas: list, hits: list, labelled: np.ndarray) -> np.ndarray:
        """The mixture (rows, c) of the members' probabilities, each row weighted by the accuracy
        records before it; the labelled rows' hits then update the records. On a row where the SGD
        head knew no class (its probabilities all 0) it is left out: the others' weights sum to 1."""
        weights = self.mixer_.prequential(np.stack(hits, axis=1), labelled)  # (rows, members)
        if self.sgd_ is not None:  # rows where the SGD head knew no class yet: the others, renormalised
            blind = probas[-1].sum(axis=1) == 0.0  # (rows,)
            if blind.any():
                weights[blind, -1] = 0.0
                weights[blind] /= weights[blind].sum(axis=1, keepdims=True)
        width = max(p.shape[1] for p in probas)
        if any(p.shape[1] != width for p in probas):
            probas = [np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in probas]
        return np.einsum("bh,hbc->bc", weights, np.stack(probas))

    def _predict_members(self, designs: dict) -> np.ndarray:
        """The mixture's probabilities (b, c) with the current weights, learning nothing."""
        probas = [scores_to_proba(h.scores(designs[v]), self.temperature) for h, (_, v) in zip(self.heads_, self.heads)]
        weights = self.mixer_.weights()
        if self.sgd_ is not None:
            if self.sgd_.classes:
                probas.append(self._sgd_in_head_order(self.sgd_.predict_proba(as_numpy(designs["inputs"]))))
            else:  # an SGD head that knows no class is left out (as in the per-event path), not mixed in as zeros
                weights = self.mixer_.weights(self.mixer_.accuracy[:-1])
        return np.einsum("h,hbc->bc", weights, np.stack(probas))


# -- hits ------------------------------------------------------------------------------------
class _LabelColumns:
    """:func:`label_columns` of one batch's labels, computed once per distinct class list."""

    def __init__(self, ys: Sequence):
        self.ys = ys
        self._last: tuple | None = None  # (classes as a tuple, their columns)

    def of(self, classes: list) -> np.ndarray | None:
        if len(self.ys) == 1:  # margin_hits tests one row on Python floats
            return None
        if self._last is None or self._last[0] != tuple(classes):
            self._last = (tuple(classes), label_columns(classes, self.ys))
        return self._last[1]


def head_hits(scores: np.ndarray, head: RidgeClassHead, ys: Sequence, k: np.ndarray | None = None) -> np.ndarray:
    """Whether each row's prequential prediction was its label (unlabelled rows: False)."""
    return margin_hits(scores, head.classes, ys, k)


def proba_hits(P: np.ndarray, classes: list, ys: Sequence, k: np.ndarray | None = None) -> np.ndarray:
    """Like :func:`head_hits` for probabilities: a class with probability 0 was not known yet."""
    return margin_hits(np.where(P > 0, P, -np.inf), classes, ys, k)


def margin_hits(S: np.ndarray, classes: list, ys: Sequence, k: np.ndarray | None = None) -> np.ndarray:
    """A hit is the label's score beating every other class's by a relative 1e-9.

    An exact tie (early rows, where heads still score classes alike) counts as a miss,
    so the per-event and the batched computations, which round differently, always
    agree on it and weight the mixture identically. ``k``: :func:`label_columns` of
    ``classes`` and ``ys``, when the caller has them (members that share their classes).

    >>> margin_hits(np.array([[1.0, 0.0], [0.5, 0.5]]), ["a", "b"], ["a", "a"]).tolist()
    [True, False]
    """
    b, c = S.shape
    if c == 0:
        return np.zeros(b, dtype=bool)
    if b == 1:  # one event: the same test on Python floats, without the array machinery
        return np.array([row_hit(S[0].tolist(), classes, ys[0])])
    if k is None:
        k = label_columns(classes, ys)
    k = np.where(k < c, k, -1)  # a class beyond the scored ones was not known yet
    rows = np.flatnonzero(k >= 0)
    score = np.full(b, -np.inf)
    score[rows] = S[rows, k[rows]]
    others = S.copy()  # (b, c)
    others[rows, k[rows]] = -np.inf
    best_other = others.max(axis=1) if c > 1 else np.full(b, -np.inf)
    known = np.isfinite(score)
    tol = 1e-9 * (1.0 + np.abs(np.where(known, score, 0.0)))
    return known & (score > best_other + tol)


def label_columns(classes: list, ys: Sequence) -> np.ndarray:
    """Each row's label as its column in ``classes`` (b,); -1 for no label or an unknown one."""
    pos = {y: k for k, y in enumerate(classes)}
    return np.array([pos.get(y, -1) if y is not None else -1 for y in ys], dtype=np.int64)


def row_hit(row: list, classes: list, y) -> bool:
    """:func:`margin_hits` of one row of scores, in Python floats."""
    if y is None:
        return False
    try:
        k = classes.index(y)
    except ValueError:  # not there, or a class before it compares with it as an array (a numpy int and a tuple)
        k = {c: i for i, c in enumerate(classes)}.get(y, -1)  # (by hash, as the heads place their classes)
    if not 0 <= k < len(row):
        return False
    score = row[k]
    if not math.isfinite(score):
        return False
    best_other = max(row[:k] + row[k + 1:], default=-math.inf)
    return score > best_other + 1e-9 * (1.0 + abs(score))


def with_bias(Z: np.ndarray) -> np.ndarray:
    """``[1, Z]``: the ``"inputs"`` view (b, 1 + d_in) of standardised rows ``Z`` (b, d_in), in numpy
    (the batch and the per-event paths build it alike, so their rows are the same bits).

    >>> with_bias(np.array([[2.0, 3.0]])).tolist()
    [[1.0, 2.0, 3.0]]
    """
    inputs = np.empty((Z.shape[0], 1 + Z.shape[1]))  # (b, 1 + d_in)
    inputs[:, 0] = 1.0
    inputs[:, 1:] = Z
    return inputs


# -- rows of numpy arrays or torch tensors ---------------------------------------------------
def as_numpy(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.detach().cpu().numpy()


def cat_rows(a, rows: np.ndarray):
    """``a`` (numpy or torch) with numpy ``rows`` appended."""
    if isinstance(a, np.ndarray):
        return np.vstack([a, rows])
    return torch.cat([a, torch.as_tensor(rows, dtype=a.dtype, device=a.device)])


def take_rows(a, idx):
    """Rows ``idx`` (an index array or a slice) of ``a`` (numpy or torch)."""
    if isinstance(a, np.ndarray) or isinstance(idx, slice):
        return a[idx]
    return a[torch.as_tensor(idx, device=a.device)]
