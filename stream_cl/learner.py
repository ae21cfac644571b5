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

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from river import base

from .backbones import Backbone, KeyUnits, OnlineStandardizer, RandomFeatures, resolve_device, torch_device
from .encoding import DEFAULT_MAX_CATEGORIES, frame_rows
from .features import FeatureIndex
from .monitoring import ContinualMonitoring
from .heads.class_head import RidgeClassHead, scores_to_proba
from .heads.analytic import _check_label
from .heads.sgd import SGDSoftmaxHead
from .mixing import AccuracyMixer
from .online_parts import OnlineParts

if TYPE_CHECKING:  # continual-learning parts (issue 3): all optional
    from .drift import DriftMonitor
    from .homeostasis import Homeostasis
    from .imbalance import ImbalanceCompensator
    from .replay import ReplayBuffer

__all__ = ["OnlineContinualLearner", "DEFAULT_HEADS"]

# (forgetting factor, view): "all" = [1, backbone features, inputs], "inputs" = [1, inputs].
DEFAULT_HEADS = ((1.0, "all"), (0.995, "all"), (0.999, "inputs"), (1.0, "inputs"))
DEFAULT_WIDTH = 256
VIEWS = ("all", "inputs")


class OnlineContinualLearner(OnlineParts, ContinualMonitoring, base.MiniBatchClassifier):
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
    max_categories, missing_indicators, time_features
        How strings, nulls and datetimes become inputs (:class:`~stream_cl.features.FeatureIndex`):
        a string ``v`` of feature ``k`` is an indicator input ``"k=v"`` (read as 0 or
        ``INDICATOR_SCALE``, not standardised; no threshold units, and beyond the first
        ``KEYED_CATEGORIES`` of a feature only in the input heads and the random features),
        at most ``max_categories`` per feature before ``"k=<other>"``; a null is missing
        (the mean) and, with ``missing_indicators``, also sets ``"k=<missing>"``; a datetime
        gives hour-of-day and day-of-week sin/cos inputs with ``time_features`` (else it is
        refused).
    device
        ``"auto"`` (CUDA when present), ``"cpu"`` or a torch device.
    seed
        Seed of the default backbone.
    replay
        A :class:`~stream_cl.replay.ReplayBuffer` (``None``: no replay). Replayed rows
        are extra rows the heads learn right after the fresh row they were drawn at,
        standardised with the statistics of that moment; they are never scored.
    drift
        A :class:`~stream_cl.drift.DriftMonitor` watching the mixture's prequential
        error or loss; its alarms raise the homeostatic need, lower the adaptive
        heads' forgetting factor for a while, warm-restart them from shadow heads
        trained since the alarm (each head whose shadow predicted better than it since
        the alarm; "reset" covers the exact memory heads too), or reset the mixture's
        accuracy record ("remix").
    homeostasis
        A :class:`~stream_cl.homeostasis.Homeostasis` controller: its need scales the
        adaptive heads' forgetting factors down towards its floor.
    imbalance
        An :class:`~stream_cl.imbalance.ImbalanceCompensator`: pseudo-feature rows for
        rare classes and/or inverse-frequency row weights.
    control_every
        With ``drift`` or ``homeostasis``: forgetting factors and restarts change after
        every ``control_every`` labelled events (counted over the learner's life, so any
        batching of the stream gives the same model).
    sgd_lr
        Learning rate of an online softmax-regression head on the inputs, mixed in
        beside the ridge heads (``None`` or 0: no such head). Logistic loss tracks
        noisy, slowly rotating linear concepts better than squared loss.

    The *adaptive* heads are those with forgetting below 1 (all heads if none is):
    the exact memory head is never made to forget. With all four continual parts
    ``None`` the learner is exactly the plain composite.

    Monitoring attributes: ``alarms_`` (recent drift alarms, dicts with ``t``,
    ``detector``, ``signal``, ``response``), ``n_alarms_``, ``alarm_counts_``
    (``{detector: {response: n}}``), ``need_`` (homeostatic need or ``None``),
    ``forgetting_`` (current factor per head), ``replay_size_`` and ``replay_bytes_``,
    ``n_restarts_``, ``n_restarts_skipped_`` and ``n_remixes_``; :meth:`report` gathers them in a
    JSON-ready dict.

    Every River method takes ``partition=`` (default ``None``), the source partition of the
    events: each partition keeps its own standardiser, SGD head, mixer records and
    continual-learning state, the ridge heads serve the sum of the partitions' statistics
    (:mod:`stream_cl.parts`), and :meth:`contribution` / :meth:`merge` move a part.

    Examples
    --------
    >>> from river import datasets, evaluate, metrics
    >>> model = OnlineContinualLearner(device="cpu")
    >>> evaluate.progressive_val_score(datasets.ImageSegments(), model, metrics.Accuracy())
    Accuracy: 93.76%
    """

    def __init__(
        self,
        backbone: Backbone | None = None,
        key_units: int = 8,
        heads: tuple = DEFAULT_HEADS,
        gamma: float = 1.0,
        temperature: float = 0.1,
        mix_decay: float = 0.995,
        mix_sharpness: float = 100.0,
        hash_width: int | None = None,
        device: str = "auto",
        seed: int = 0,
        replay: "ReplayBuffer | None" = None,
        drift: "DriftMonitor | None" = None,
        homeostasis: "Homeostasis | None" = None,
        imbalance: "ImbalanceCompensator | None" = None,
        control_every: int = 32,
        sgd_lr: float | None = 0.01,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        missing_indicators: bool = False,
        time_features: bool = False,
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
        tdev = torch_device(self.device_)
        self.backbone_ = (backbone.clone() if backbone is not None else RandomFeatures(width=DEFAULT_WIDTH, seed=seed)).to(tdev)
        if not isinstance(key_units, int) or key_units < 0:
            raise ValueError(f"key_units must be an int >= 0, got {key_units!r}")
        self.key_units_ = KeyUnits(key_units, seed, tdev)
        self.max_categories = max_categories
        self.missing_indicators = missing_indicators
        self.time_features = time_features
        self.index_ = FeatureIndex(hash_width, max_categories, missing_indicators, time_features)
        self.scaler_ = OnlineStandardizer()
        self.heads_ = [RidgeClassHead(gamma, lam, self.device_) for lam, _ in heads]
        self.sgd_lr = sgd_lr
        # an SGD softmax head on the inputs: logistic loss tracks noisy, rotating linear concepts
        self.sgd_ = SGDSoftmaxHead(sgd_lr) if sgd_lr else None
        self.mixer_ = AccuracyMixer(len(heads) + (self.sgd_ is not None), mix_decay, mix_sharpness)
        self.replay = replay
        self.drift = drift
        self.homeostasis = homeostasis
        self.imbalance = imbalance
        self.control_every = control_every
        self._init_continual()
        # predict_proba_one's design rows, reused by the learn_one of the same event
        self._memo: tuple | None = None
        self._init_parts()

    @property
    def _multiclass(self):
        return True

    @classmethod
    def _unit_test_params(cls):
        yield {"device": "cpu"}
        yield {"backbone": RandomFeatures(width=32, kind="fourier"), "key_units": 0, "heads": ((0.99, "all"),), "device": "cpu"}
        from .drift import DriftMonitor
        from .homeostasis import Homeostasis
        from .imbalance import ImbalanceCompensator
        from .replay import PowerLawReplay

        # every continual part at once, small (the River checks run thousands of single events)
        yield {"backbone": RandomFeatures(width=8), "key_units": 0, "device": "cpu", "heads": ((0.99, "all"),),
               "replay": PowerLawReplay(max_samples=40, max_bytes=2000, ratio=0.5),
               "imbalance": ImbalanceCompensator(mode="reweight"), "homeostasis": Homeostasis(), "control_every": 4,
               "drift": DriftMonitor("ddm", response=("need", "forget", "restart"), restart_after=20)}

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
        """Design matrices per view from standardised inputs ``Z`` (b, d_in) and ``M``, the inputs
        present and learned from before (a loop's prediction has no column it never learned)."""
        dev = torch_device(self.device_)
        Zt = torch.as_tensor(Z, device=dev)
        Mt = torch.as_tensor(M, device=dev)
        ones = torch.ones(Z.shape[0], 1, dtype=torch.float64, device=dev)
        designs = {"inputs": torch.cat([ones, Zt], dim=1)}  # (b, 1 + d_in)
        if any(view == "all" for _, view in self.heads):
            keys = self.index_.names if self.hash_width is None else list(range(self.hash_width))
            H = self.backbone_.forward(Zt, keys, Mt)  # (b, width)
            raw = self.index_.indicator_mask if self.hash_width is None else None  # indicators: no units
            late = self.index_.unkeyed_mask if self.hash_width is None else None  # no block at all
            K = self.key_units_.forward(Zt, keys, Mt, raw, late) if self.key_units else Zt  # (b, d_in * (1 + m))
            # per-input blocks last: a new feature key appends columns, which the ridge grows exactly
            designs["all"] = torch.cat([ones, H, K], dim=1)  # (b, 1 + width + d_in * (1 + m))
        if self.device_ == "cpu":  # numpy heads
            return {k: v.numpy() for k, v in designs.items()}
        return designs

    @staticmethod
    def _memo_designs(memo, xs: Sequence[Mapping], new: list) -> dict | None:
        """The designs ``predict_proba_one`` computed for this very event, if it was the last
        call: nothing was learned since, so its standardised row equals the prequential one
        (the statistics before the row) and the frozen backbone gives the same designs."""
        if memo is None or len(xs) != 1 or new:
            return None
        x = xs[0]
        keys, values, designs = memo
        return designs if keys == tuple(x) and values == tuple(x.values()) else None

    def _rows(self, xs: Sequence[Mapping], learn=None):
        X, M, new = self.index_.vectorize_masked(xs, learn)  # raises before any state changes
        return X, M, new

    # -- learning ----------------------------------------------------------------------
    def prequential_batch(self, xs: Sequence[Mapping], ys: Sequence, sample_weight=None, tasks=None,
                          partition: Hashable = None) -> np.ndarray:
        """Predict, then learn, each event in order; ``ys[i] is None`` means predict only.

        Returns probabilities (b, n_classes) in ``classes_`` order, exactly those a loop of
        ``predict_proba_one`` then ``learn_one`` would give (a class not yet seen: 0).
        ``tasks[i]`` (optional) is the event's task, used by task-aware replay;
        ``partition`` the events' source partition.
        """
        self._enter(partition)
        P = self._prequential(xs, ys, sample_weight, tasks)
        self._learned(len(xs), len(xs))
        return P

    def _prequential(self, xs, ys, sample_weight, tasks) -> np.ndarray:
        memo, self._memo = self._memo, None  # any learning invalidates it
        if self._continual:
            return self._prequential_continual(xs, ys, sample_weight, tasks)
        ys = list(ys)
        for y in ys:
            if y is not None:
                _check_label(y)
        labelled = np.array([y is not None for y in ys], dtype=bool)
        X, M, new = self._rows(xs, labelled)  # only learned events make columns
        self.index_.commit(new)
        Z, K = self.scaler_.prequential(X, M, labelled, self.index_.indicator_mask, known=True)  # (b, d_in)
        designs = self._memo_designs(memo, xs, new)
        if designs is None:
            designs = self._designs(Z, K)
        probas, hits = [], []
        for head, (_, view) in zip(self.heads_, self.heads):
            scores = head.prequential(designs[view], ys, sample_weight)  # (b, c)
            probas.append(scores_to_proba(scores, self.temperature))
            hits.append(_hits(scores, head, ys))
        if self.sgd_ is not None:
            P = self.sgd_.prequential_proba(_numpy(designs["inputs"]), ys, sample_weight)  # (b, c)
            probas.append(self._sgd_in_head_order(P))
            hits.append(_proba_hits(P, self.sgd_.classes, ys))
        weights = self.mixer_.prequential(np.stack(hits, axis=1), labelled)  # (b, members)
        return np.einsum("bh,hbc->bc", weights, np.stack(probas))

    def learn_one(self, x: Mapping, y: Hashable, w: float = 1.0, partition: Hashable = None) -> "OnlineContinualLearner":
        _check_label(y)
        self.prequential_batch([x], [y], None if w == 1.0 else [w], partition=partition)
        return self

    def learn_many(self, X: pd.DataFrame, y: pd.Series, w=None, partition: Hashable = None) -> "OnlineContinualLearner":
        self.prequential_batch(_frame_rows(X), list(y), w, partition=partition)
        return self

    # -- prediction --------------------------------------------------------------------
    def predict_proba_batch(self, xs: Sequence[Mapping], partition: Hashable = None) -> np.ndarray:
        """Probabilities (b, n_classes) in ``classes_`` order, without learning."""
        self._enter(partition, learn=False)
        X, M, new = self._rows(xs)
        d = self.index_.width
        Z, K = self.scaler_.transform(X[:, :d], M[:, :d], self.index_.indicator_mask, known=True)  # unseen keys: none
        designs = self._designs(Z, K)
        if len(xs) == 1 and not new:
            self._memo = (tuple(xs[0]), tuple(xs[0].values()), designs)
        probas = [scores_to_proba(h.scores(designs[v]), self.temperature) for h, (_, v) in zip(self.heads_, self.heads)]
        if self.sgd_ is not None:
            probas.append(self._sgd_in_head_order(self.sgd_.predict_proba(_numpy(designs["inputs"]))))
        return np.einsum("h,hbc->bc", self.mixer_.weights(), np.stack(probas))

    def predict_proba_one(self, x: Mapping, partition: Hashable = None) -> dict:
        if not self.heads_[0].classes:
            return {}
        return dict(zip(self.heads_[0].classes, self.predict_proba_batch([x], partition)[0].tolist()))

    def predict_one(self, x: Mapping, partition: Hashable = None):
        proba = self.predict_proba_one(x, partition=partition)
        return max(proba, key=proba.get) if proba else None

    def predict_proba_many(self, X: pd.DataFrame, partition: Hashable = None) -> pd.DataFrame:
        return pd.DataFrame(self.predict_proba_batch(_frame_rows(X), partition), columns=self.classes_, index=X.index)

    def predict_many(self, X: pd.DataFrame, partition: Hashable = None) -> pd.Series:
        if not self.heads_[0].classes:
            return pd.Series([None] * len(X), index=X.index, dtype=object)
        return self.predict_proba_many(X, partition).idxmax(axis=1)

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "index": self.index_.state_dict(),
            "scaler": self.scaler_.state_dict(),
            "backbone": self.backbone_.state_dict(),
            "key_units": self.key_units_.state_dict(),
            "heads": self._summed_heads_state([h.state_dict() for h in self.heads_]),  # sums over partitions
            **({"sgd": self.sgd_.state_dict()} if self.sgd_ is not None else {}),
            "mixer": self.mixer_.state_dict(),
            **({"continual": self._continual_state()} if self._continual else {}),
            "parts": self._parts_state(),
        }

    def load_state_dict(self, state: Mapping) -> "OnlineContinualLearner":
        if len(state["heads"]) != len(self.heads_):
            raise ValueError(f"checkpoint has {len(state['heads'])} heads, this learner {len(self.heads_)}")
        self._memo = None
        self.index_.load_state_dict(state["index"])
        self.scaler_.load_state_dict(state["scaler"])
        self.backbone_.load_state_dict(state["backbone"])
        self.key_units_.load_state_dict(state["key_units"])
        for head, s in zip(self.heads_, state["heads"]):
            head.load_state_dict(s)
        if (self.sgd_ is not None) != ("sgd" in state):
            raise ValueError("checkpoint and learner disagree on the SGD head (sgd_lr): restore with the same settings")
        if self.sgd_ is not None:
            self.sgd_.load_state_dict(state["sgd"])
        self.mixer_.load_state_dict(state["mixer"])
        if self._continual:
            self._load_continual_state(state["continual"])
        self._load_parts_state(state.get("parts"))  # absent before partitions: one part, the first learned
        return self

    # -- continual learning: replay, drift responses, homeostasis, imbalance --------------
    # (issue 3; every part is optional, and with none the methods above run unchanged)
    @property
    def _continual(self) -> bool:
        return any(p is not None for p in (self.replay, self.drift, self.homeostasis, self.imbalance))

    def _init_continual(self) -> None:
        if not isinstance(self.control_every, int) or self.control_every < 1:
            raise ValueError(f"control_every must be an int >= 1, got {self.control_every!r}")
        if self.drift is not None and "need" in self.drift.response and self.homeostasis is None:
            raise ValueError("the drift response 'need' raises the homeostatic need: give homeostasis=Homeostasis() too")
        self.replay_ = self.replay.clone() if self.replay is not None else None
        self.drift_ = self.drift.clone() if self.drift is not None else None
        self.homeostasis_ = self.homeostasis.clone() if self.homeostasis is not None else None
        self.imbalance_ = self.imbalance.clone() if self.imbalance is not None else None
        base = [float(lam) for lam, _ in self.heads]
        self.adaptive_ = [i for i, lam in enumerate(base) if lam < 1.0] or list(range(len(base)))
        self.n_labelled_ = 0
        self.n_events_ = 0
        # "restart"/"reset": a shadow per covered head, trained since the last alarm, and the
        # prequential hits of [shadow, head] since then
        self.shadows_: dict[int, RidgeClassHead] = {}
        self.shadow_hits_: dict[int, list[int]] = {}
        self.shadow_start_ = -1  # the monitor's labelled count the shadows started from
        self.n_restarts_ = 0
        self.n_restarts_skipped_ = 0  # the shadow was no better than the head: kept the head
        self.n_remixes_ = 0  # mixture records reset by the "remix" response

    @property
    def forgetting_(self) -> list[float]:
        return [h.ridge.forgetting for h in self.heads_]

    def report(self) -> dict:
        """The continual-learning state as a JSON-ready dict (merged into run reports)."""
        out = {"forgetting": self.forgetting_, "head_weights": self.head_weights_.tolist()}
        if self.replay_ is not None:
            out["replay"] = self.replay_.report()
        if self.drift_ is not None:
            out["drift"] = {**self.drift_.report(), "restarts": self.n_restarts_, "remixes": self.n_remixes_,
                            "restarts_skipped": self.n_restarts_skipped_}
        if self.homeostasis_ is not None:
            out["homeostasis"] = self.homeostasis_.report()
        if self.imbalance_ is not None:
            out["imbalance"] = self.imbalance_.report()
        return out

    def _prequential_continual(self, xs, ys, sample_weight, tasks) -> np.ndarray:
        """:meth:`prequential_batch` with replay, imbalance compensation and drift/homeostatic control.

        Rows are ordered as the stream would have them: fresh row ``i``, then the rows
        replayed at ``i``, then the pseudo rows generated after ``i``. With drift or
        homeostasis the ordered rows are learned in segments that end after every
        ``control_every``-th labelled row, where forgetting factors and restarts change.
        """
        ys = list(ys)
        for y in ys:
            if y is not None:
                _check_label(y)
        X, M, new = self._rows(xs, [y is not None for y in ys])  # only learned events make columns
        b = len(ys)
        if tasks is not None and len(tasks) != b:
            raise ValueError(f"tasks has {len(tasks)} entries for {b} events")
        self.index_.commit(new)
        labelled = np.array([y is not None for y in ys], dtype=bool)
        w = np.ones(b) if sample_weight is None else np.array(sample_weight, dtype=np.float64).reshape(b)
        # 1. replay, drawn in stream order; raw rows standardised in that order
        keys = [np.arange(b), np.zeros(b, dtype=np.int64), np.arange(b)]  # (fresh row, kind, k) per row
        row_y, row_w = list(ys), list(w)
        if self.replay_ is not None:
            draw = self.replay_.interleave(X, M, ys, tasks, labelled)
            n_r = len(draw.y)
            if n_r:
                X, M = np.vstack([X, draw.X]), np.vstack([M, draw.M])
                keys = [np.concatenate([keys[0], draw.pos]), np.concatenate([keys[1], np.ones(n_r, dtype=np.int64)]),
                        np.concatenate([keys[2], np.arange(n_r)])]
                row_y += draw.y
                row_w += [1.0] * n_r
        order = np.lexsort((keys[2], keys[1], keys[0]))
        learn = np.zeros(len(row_y), dtype=bool)
        learn[:b] = labelled  # replayed rows were absorbed by the standardiser when they were fresh
        Z = np.empty_like(X)
        K = np.empty_like(M)
        Z[order], K[order] = self.scaler_.prequential(X[order], M[order], learn[order], self.index_.indicator_mask, known=True)
        views = [v for v in VIEWS if any(view == v for _, view in self.heads) or (v == "inputs" and self.sgd_ is not None)]
        designs = {v: D for v, D in self._designs(Z, K).items() if v in views}  # rows in concatenation order
        # 2. imbalance compensation on the fresh rows' designs
        if self.imbalance_ is not None:
            la = self.heads_[0].la
            comp = self.imbalance_.step([la.to_numpy(designs[v][:b]) for v in views], ys, labelled)
            for i in np.flatnonzero(labelled):
                row_w[i] *= comp.weights[i]
            n_p = len(comp.y)
            if n_p:
                for v, P in zip(views, comp.blocks):
                    designs[v] = _cat_rows(designs[v], P)
                keys = [np.concatenate([keys[0], comp.pos]), np.concatenate([keys[1], np.full(n_p, 2, dtype=np.int64)]),
                        np.concatenate([keys[2], np.arange(n_p)])]
                row_y += comp.y
                row_w += [1.0] * n_p
        order = np.lexsort((keys[2], keys[1], keys[0]))
        designs = {v: _take_rows(D, order) for v, D in designs.items()}
        row_y = [row_y[j] for j in order]
        row_w = np.asarray(row_w)[order]
        fresh_pos = np.flatnonzero(keys[1][order] == 0)  # fresh row i sits at fresh_pos[i]
        # 3. segments between control points
        ends = [len(row_y)]
        controlled = self.drift_ is not None or self.homeostasis_ is not None
        if controlled:
            count = self.n_labelled_ + np.cumsum(labelled)
            cut = np.flatnonzero(labelled & (count % self.control_every == 0))  # fresh rows ending a segment
            nxt = np.append(fresh_pos, len(row_y))  # a segment ends where the next fresh row starts
            ends = sorted(set(nxt[cut + 1].tolist()) | {len(row_y)})
        out_rows, start = [], 0
        for end in ends:
            if end == start:
                continue
            seg = slice(start, end)
            fresh = fresh_pos[(fresh_pos >= start) & (fresh_pos < end)]
            events = (keys[2][order][fresh]).astype(np.int64)  # event index of each fresh row
            probas = self._segment(designs, row_y, row_w, seg, fresh - start, events, ys, labelled)
            out_rows.append((events, probas))
            self.n_events_ += len(events)
            n_lab = int(labelled[events].sum())
            self.n_labelled_ += n_lab
            if controlled and n_lab and self.n_labelled_ % self.control_every == 0:
                self._control()  # the segment ended at a control point
            start = end
        out = np.zeros((b, len(self.heads_[0].classes)))
        for events, probas in out_rows:
            out[events, : probas.shape[1]] = probas
        return out

    def _segment(self, designs, row_y, row_w, seg, fresh, events, ys, labelled) -> np.ndarray:
        """Learn the ordered rows ``seg``; score the fresh ones (positions ``fresh`` inside it)."""
        seg_y = row_y[seg]
        seg_w = row_w[seg]
        weights = None if np.all(seg_w == 1.0) else seg_w
        fy = [ys[i] for i in events]
        lab = labelled[events]
        probas, hits = [], []
        for head, (_, view) in zip(self.heads_, self.heads):
            scores = head.prequential(designs[view][seg], seg_y, weights)[fresh]  # (fresh, c)
            probas.append(scores_to_proba(scores, self.temperature))
            hits.append(_hits(scores, head, fy))
        if self.sgd_ is not None:
            P = self.sgd_.prequential_proba(_numpy(designs["inputs"][seg]), seg_y, weights)[fresh]
            probas.append(self._sgd_in_head_order(P))
            hits.append(_proba_hits(P, self.sgd_.classes, fy))
        if self.shadows_ and lab.any():
            rows = fresh[lab]
            ly = [fy[j] for j in np.flatnonzero(lab)]
            rw = None if weights is None else weights[rows]
            for i, shadow in self.shadows_.items():
                s_scores = shadow.prequential(_take_rows(designs[self.heads[i][1]][seg], rows), ly, rw)
                self.shadow_hits_[i][0] += int(_hits(s_scores, shadow, ly).sum())
                self.shadow_hits_[i][1] += int(hits[i][lab].sum())
        mix = self.mixer_.prequential(np.stack(hits, axis=1), lab)  # (fresh, heads)
        width = max(p.shape[1] for p in probas)
        if any(p.shape[1] != width for p in probas):
            probas = [np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in probas]
        P = np.einsum("bh,hbc->bc", mix, np.stack(probas))
        if self.drift_ is not None or self.homeostasis_ is not None:
            self._watch(P, fy, lab, events)
        return P

    def _watch(self, P: np.ndarray, fy: list, lab: np.ndarray, events: np.ndarray) -> None:
        """Feed each labelled row's error and loss to the drift monitor and the homeostasis."""
        pos = {c: k for k, c in enumerate(self.heads_[0].classes)}
        need_on_alarm = self.drift_ is not None and "need" in self.drift_.response
        for j in np.flatnonzero(lab):
            k = pos.get(fy[j], -1)
            row = P[j]
            p_true = float(row[k]) if 0 <= k < row.shape[0] else 0.0
            error = float(not (row.size and row.max() > 0 and int(row.argmax()) == k))
            loss = 1.0 - p_true
            alarm = None
            if self.drift_ is not None:
                alarm = self.drift_.update(error, loss, t=self.n_events_ + int(j) + 1)  # events seen so far
                if alarm is not None and self.homeostasis_ is not None:
                    alarm["need"] = self.homeostasis_.need_
            if self.homeostasis_ is not None:
                self.homeostasis_.observe(error, loss, alarm=alarm is not None and need_on_alarm)

    def _control(self) -> None:
        """At a control point: set the adaptive heads' forgetting factors; start or apply restarts."""
        override = self.drift_.forgetting_override() if self.drift_ is not None else None
        for i in self.adaptive_:
            lam = float(self.heads[i][0])
            if self.homeostasis_ is not None:
                lam = self.homeostasis_.forgetting(lam)
            if override is not None:
                lam = min(lam, override)
            self.heads_[i].ridge.set_forgetting(lam)
        if self.drift_ is not None and self.drift_.take_remix():
            self.mixer_.reset()
            self.n_remixes_ += 1
        if self.drift_ is None or not self.drift_.trains_shadows:
            return
        if self.drift_.shadow_active and self.shadow_start_ != self.drift_.shadow_start_:
            # a new alarm: (re)start the shadows, with the heads' classes in their order
            covered = range(len(self.heads)) if "reset" in self.drift_.response else self.adaptive_
            self.shadows_, self.shadow_hits_ = {}, {}
            for i in covered:
                self.shadows_[i] = RidgeClassHead(self.gamma, float(self.heads[i][0]), self.device_)
                self.shadows_[i].add_classes(self.heads_[i].classes)
                self.shadow_hits_[i] = [0, 0]
            self.shadow_start_ = self.drift_.shadow_start_
        if self.shadows_ and self.drift_.restart_due():
            # warm-restart a head only if its shadow predicted better than it since the alarm
            replaced = 0
            for i, shadow in self.shadows_.items():
                if self.shadow_hits_[i][0] > self.shadow_hits_[i][1]:
                    lam = self.heads_[i].ridge.forgetting
                    self.heads_[i].load_state_dict(shadow.state_dict())
                    self.heads_[i].ridge.set_forgetting(lam)
                    replaced += 1
            if replaced:
                self.n_restarts_ += 1
            else:
                self.n_restarts_skipped_ += 1
            self.shadows_, self.shadow_hits_, self.shadow_start_ = {}, {}, -1
            self.drift_.restarted()

    def _continual_state(self) -> dict:
        return {
            "n_labelled": self.n_labelled_, "n_events": self.n_events_,
            "replay": self.replay_.state_dict() if self.replay_ is not None else None,
            "drift": self.drift_.state_dict() if self.drift_ is not None else None,
            "homeostasis": self.homeostasis_.state_dict() if self.homeostasis_ is not None else None,
            "imbalance": self.imbalance_.state_dict() if self.imbalance_ is not None else None,
            "shadows": [{"head": i, "state": sh.state_dict(), "hits": list(self.shadow_hits_[i])}
                        for i, sh in self.shadows_.items()],
            "shadow_start": self.shadow_start_,
            "restarts": [self.n_restarts_, self.n_restarts_skipped_],
            "remixes": self.n_remixes_,
        }

    def _load_continual_state(self, state: Mapping) -> None:
        self.n_labelled_, self.n_events_ = int(state["n_labelled"]), int(state["n_events"])
        for name in ("replay", "drift", "homeostasis", "imbalance"):
            part = getattr(self, name + "_")
            if (part is None) != (state[name] is None):
                raise ValueError(f"checkpoint and learner disagree on {name}: configure it the same way")
            if part is not None:
                part.load_state_dict(state[name])
        self.shadows_, self.shadow_hits_ = {}, {}
        for entry in state.get("shadows", []):  # a checkpoint before per-head shadows: none pending
            i = int(entry["head"])
            self.shadows_[i] = RidgeClassHead(self.gamma, float(self.heads[i][0]), self.device_)
            self.shadows_[i].load_state_dict(entry["state"])
            self.shadow_hits_[i] = [int(v) for v in entry["hits"]]
        self.shadow_start_ = int(state["shadow_start"]) if self.shadows_ else -1
        self.n_restarts_, self.n_restarts_skipped_ = (int(v) for v in state["restarts"])
        self.n_remixes_ = int(state.get("remixes", 0))  # absent in checkpoints before "remix"


def _hits(scores: np.ndarray, head: RidgeClassHead, ys: Sequence) -> np.ndarray:
    """Whether each row's prequential prediction was its label (unlabelled rows: False)."""
    return _margin_hits(scores, head.classes, ys)


def _proba_hits(P: np.ndarray, classes: list, ys: Sequence) -> np.ndarray:
    """Like :func:`_hits` for probabilities: a class with probability 0 was not known yet."""
    return _margin_hits(np.where(P > 0, P, -np.inf), classes, ys)


def _margin_hits(S: np.ndarray, classes: list, ys: Sequence) -> np.ndarray:
    """A hit is the label's score beating every other class's by a relative 1e-9.

    An exact tie (early rows, where heads still score classes alike) counts as a miss,
    so the per-event and the batched computations, which round differently, always
    agree on it and weight the mixture identically.
    """
    b, c = S.shape
    if c == 0:
        return np.zeros(b, dtype=bool)
    if b == 1:  # one event: the same test on Python floats, without the array machinery
        y = ys[0]
        k = classes.index(y) if y is not None and y in classes else -1
        if not 0 <= k < c:
            return np.zeros(1, dtype=bool)
        row = S[0].tolist()
        score = row[k]
        if not math.isfinite(score):
            return np.zeros(1, dtype=bool)
        best_other = max(row[:k] + row[k + 1:], default=-math.inf)
        return np.array([score > best_other + 1e-9 * (1.0 + abs(score))])
    pos = {y: k for k, y in enumerate(classes)}
    k = np.array([pos.get(y, -1) if y is not None else -1 for y in ys], dtype=np.int64)  # (b,)
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


def _numpy(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.detach().cpu().numpy()


def _cat_rows(a, rows: np.ndarray):
    """``a`` (numpy or torch) with numpy ``rows`` appended."""
    if isinstance(a, np.ndarray):
        return np.vstack([a, rows])
    return torch.cat([a, torch.as_tensor(rows, dtype=a.dtype, device=a.device)])


def _take_rows(a, idx: np.ndarray):
    if isinstance(a, np.ndarray):
        return a[idx]
    return a[torch.as_tensor(idx, device=a.device)]


def _frame_rows(X: pd.DataFrame) -> list[dict]:
    return frame_rows(X)
