"""``OnlineContinualLearner``: standardise, expand with a frozen backbone, learn analytic heads.

The pipeline for a batch of events (every stage is exact under any batching):

1. :class:`~stream_cl.features.FeatureIndex` turns dicts into rows (keys may come and go);
2. :class:`~stream_cl.backbones.OnlineStandardizer` standardises each row with the
   statistics before it;
3. the backbone (default :class:`~stream_cl.backbones.RandomFeatures`) expands them,
   on the GPU when there is one, beside per-input threshold units
   (:class:`~stream_cl.backbones.KeyUnits`);
4. several :class:`~stream_cl.heads.RidgeClassHead` learn on ``[1, features, inputs]``
   (or ``[1, inputs]``), each with its own forgetting factor;
5. :class:`~stream_cl.mixing.AccuracyMixer` weights the heads by recent accuracy.

Slow forgetting (1.0) keeps everything exactly; fast forgetting tracks drift; the
mixer follows whichever is right lately, so one default serves stationary and drifting
streams alike.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from river import base

from .backbones import Backbone, KeyUnits, OnlineStandardizer, RandomFeatures, resolve_device
from .features import FeatureIndex
from .heads.class_head import RidgeClassHead, scores_to_proba
from .mixing import AccuracyMixer

__all__ = ["OnlineContinualLearner", "DEFAULT_HEADS"]

# (forgetting factor, view): "all" = [1, backbone features, inputs], "inputs" = [1, inputs].
DEFAULT_HEADS = ((1.0, "all"), (0.995, "all"), (0.999, "inputs"))
DEFAULT_WIDTH = 256
VIEWS = ("all", "inputs")


class OnlineContinualLearner(base.MiniBatchClassifier):
    """Online continual classifier: frozen backbone + exact analytic heads, mixed by accuracy.

    Parameters
    ----------
    backbone
        A :class:`~stream_cl.backbones.Backbone`; ``None`` uses
        ``RandomFeatures(width=DEFAULT_WIDTH, seed=seed)``.
    key_units
        Threshold units per input (:class:`~stream_cl.backbones.KeyUnits`), 0 for none.
    heads
        ``(forgetting, view)`` pairs, one ridge head each; view ``"all"`` learns on the
        backbone's features and the inputs, ``"inputs"`` on the standardised inputs only.
    gamma
        Ridge regularisation of every head.
    temperature
        Softmax temperature from ridge scores to probabilities.
    mix_decay, mix_sharpness
        Memory of the heads' accuracy averages and how sharply the mixture follows them.
    hash_width
        ``None`` grows one input per feature key; an int hashes keys into that many inputs.
    device
        ``"auto"`` (CUDA when present), ``"cpu"`` or a torch device.
    seed
        Seed of the default backbone.

    Examples
    --------
    >>> from river import datasets, evaluate, metrics
    >>> model = OnlineContinualLearner(device="cpu")
    >>> evaluate.progressive_val_score(datasets.ImageSegments(), model, metrics.Accuracy())
    Accuracy: 93.42%
    """

    def __init__(
        self,
        backbone: Backbone | None = None,
        key_units: int = 8,
        heads: tuple = DEFAULT_HEADS,
        gamma: float = 1.0,
        temperature: float = 0.1,
        mix_decay: float = 0.99,
        mix_sharpness: float = 100.0,
        hash_width: int | None = None,
        device: str = "auto",
        seed: int = 0,
    ):
        self.backbone = backbone
        self.key_units = key_units
        self.heads = heads
        self.gamma = gamma
        self.temperature = temperature
        self.mix_decay = mix_decay
        self.mix_sharpness = mix_sharpness
        self.hash_width = hash_width
        self.device = device
        self.seed = seed
        if not heads:
            raise ValueError("heads must name at least one (forgetting, view) pair, e.g. ((1.0, 'all'),)")
        for pair in heads:
            if len(pair) != 2 or pair[1] not in VIEWS:
                raise ValueError(f"each head is (forgetting, view) with view in {VIEWS}; got {pair!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.device_ = resolve_device(device)
        self.backbone_ = (backbone.clone() if backbone is not None else RandomFeatures(width=DEFAULT_WIDTH, seed=seed)).to(self.device_)
        if not isinstance(key_units, int) or key_units < 0:
            raise ValueError(f"key_units must be an int >= 0, got {key_units!r}")
        self.key_units_ = KeyUnits(key_units, seed, self.device_)
        self.index_ = FeatureIndex(hash_width)
        self.scaler_ = OnlineStandardizer()
        self.heads_ = [RidgeClassHead(gamma, lam, self.device_) for lam, _ in heads]
        self.mixer_ = AccuracyMixer(len(heads), mix_decay, mix_sharpness)

    @property
    def _multiclass(self):
        return True

    @classmethod
    def _unit_test_params(cls):
        yield {"device": "cpu"}
        yield {"backbone": RandomFeatures(width=32, kind="fourier"), "key_units": 0, "heads": ((0.99, "all"),), "device": "cpu"}

    # -- fitted attributes -------------------------------------------------------------
    @property
    def classes_(self) -> list:
        return list(self.heads_[0].classes)

    @property
    def feature_names_in_(self) -> list:
        return list(self.index_.names)

    @property
    def head_weights_(self) -> np.ndarray:
        """Current mixture weight of each head."""
        return self.mixer_.weights()

    def set_forgetting(self, head: int, value: float) -> None:
        """Change one head's forgetting factor from now on (drift responses, homeostasis)."""
        self.heads_[head].ridge.set_forgetting(value)

    # -- features ----------------------------------------------------------------------
    def _designs(self, Z: np.ndarray, M: np.ndarray) -> dict:
        """Design matrices per view from standardised inputs ``Z`` (b, d_in), present ``M``."""
        dev = self.device_
        Zt = torch.from_numpy(Z) if dev == "cpu" else torch.as_tensor(Z, device=dev)
        Mt = torch.from_numpy(M) if dev == "cpu" else torch.as_tensor(M, device=dev)
        ones = torch.ones(Z.shape[0], 1, dtype=torch.float64, device=dev)
        designs = {"inputs": torch.cat([ones, Zt], dim=1)}  # (b, 1 + d_in)
        if any(view == "all" for _, view in self.heads):
            keys = self.index_.names if self.hash_width is None else list(range(self.hash_width))
            H = self.backbone_.forward(Zt, keys, Mt)  # (b, width)
            K = self.key_units_.forward(Zt, keys, Mt) if self.key_units else Zt  # (b, d_in * (1 + m))
            # per-input blocks last: a new feature key appends columns, which the ridge grows exactly
            designs["all"] = torch.cat([ones, H, K], dim=1)  # (b, 1 + width + d_in * (1 + m))
        if dev == "cpu":
            return {k: v.numpy() for k, v in designs.items()}
        return designs

    def _rows(self, xs: Sequence[Mapping]):
        X, M, new = self.index_.vectorize_masked(xs)  # raises before any state changes
        return X, M, new

    # -- learning ----------------------------------------------------------------------
    def prequential_batch(self, xs: Sequence[Mapping], ys: Sequence, sample_weight=None) -> np.ndarray:
        """Predict, then learn, each event in order; ``ys[i] is None`` means predict only.

        Returns probabilities (b, n_classes) in ``classes_`` order, exactly those a loop of
        ``predict_proba_one`` then ``learn_one`` would give (a class not yet seen: 0).
        """
        ys = list(ys)
        for y in ys:
            if y is not None:
                _check_label(y)
        X, M, new = self._rows(xs)
        self.index_.commit(new)
        labelled = np.array([y is not None for y in ys], dtype=bool)
        Z = self.scaler_.prequential(X, M, labelled)  # (b, d_in)
        designs = self._designs(Z, M)
        probas, hits = [], []
        for head, (_, view) in zip(self.heads_, self.heads):
            scores = head.prequential(designs[view], ys, sample_weight)  # (b, c)
            probas.append(scores_to_proba(scores, self.temperature))
            hits.append(_hits(scores, head, ys))
        weights = self.mixer_.prequential(np.stack(hits, axis=1), labelled)  # (b, heads)
        return np.einsum("bh,hbc->bc", weights, np.stack(probas))

    def learn_one(self, x: Mapping, y: Hashable, w: float = 1.0) -> "OnlineContinualLearner":
        _check_label(y)
        self.prequential_batch([x], [y], None if w == 1.0 else [w])
        return self

    def learn_many(self, X: pd.DataFrame, y: pd.Series, w=None) -> "OnlineContinualLearner":
        self.prequential_batch(_frame_rows(X), list(y), w)
        return self

    # -- prediction --------------------------------------------------------------------
    def predict_proba_batch(self, xs: Sequence[Mapping]) -> np.ndarray:
        """Probabilities (b, n_classes) in ``classes_`` order, without learning."""
        X, M, _ = self._rows(xs)
        d = self.index_.width
        Z = self.scaler_.transform(X[:, :d], M[:, :d])  # unseen keys: no weights yet
        designs = self._designs(Z, M[:, :d])
        probas = [scores_to_proba(h.scores(designs[v]), self.temperature) for h, (_, v) in zip(self.heads_, self.heads)]
        return np.einsum("h,hbc->bc", self.mixer_.weights(), np.stack(probas))

    def predict_proba_one(self, x: Mapping) -> dict:
        if not self.heads_[0].classes:
            return {}
        return dict(zip(self.heads_[0].classes, self.predict_proba_batch([x])[0].tolist()))

    def predict_proba_many(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.predict_proba_batch(_frame_rows(X)), columns=self.classes_, index=X.index)

    def predict_many(self, X: pd.DataFrame) -> pd.Series:
        if not self.heads_[0].classes:
            return pd.Series([None] * len(X), index=X.index, dtype=object)
        return self.predict_proba_many(X).idxmax(axis=1)

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "index": self.index_.state_dict(),
            "scaler": self.scaler_.state_dict(),
            "backbone": self.backbone_.state_dict(),
            "key_units": self.key_units_.state_dict(),
            "heads": [h.state_dict() for h in self.heads_],
            "mixer": self.mixer_.state_dict(),
        }

    def load_state_dict(self, state: Mapping) -> "OnlineContinualLearner":
        if len(state["heads"]) != len(self.heads_):
            raise ValueError(f"checkpoint has {len(state['heads'])} heads, this learner {len(self.heads_)}")
        self.index_ = FeatureIndex.from_state(state["index"])
        self.scaler_.load_state_dict(state["scaler"])
        self.backbone_.load_state_dict(state["backbone"])
        self.key_units_.load_state_dict(state["key_units"])
        for head, s in zip(self.heads_, state["heads"]):
            head.load_state_dict(s)
        self.mixer_.load_state_dict(state["mixer"])
        return self


def _hits(scores: np.ndarray, head: RidgeClassHead, ys: Sequence) -> np.ndarray:
    """Whether each row's prequential argmax was its label (unlabelled rows: False)."""
    hit = np.zeros(len(ys), dtype=bool)
    if scores.shape[1] == 0:
        return hit
    top = scores.argmax(axis=1)
    known = np.isfinite(scores.max(axis=1))
    for i, y in enumerate(ys):
        if y is not None and known[i]:
            hit[i] = head.classes[top[i]] == y
    return hit


def _check_label(y) -> None:
    from .heads.analytic import _check_label as check

    check(y)


def _frame_rows(X: pd.DataFrame) -> list[dict]:
    from .heads.analytic import _frame_values

    values = _frame_values(X)
    return [dict(zip(X.columns, row)) for row in values.tolist()]
