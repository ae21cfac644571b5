"""``TrainableLearner``: a small torch MLP trained online in micro-batches mixed with replay.

For streams where a frozen backbone is not enough. The pipeline:

1. :class:`~stream_cl.features.FeatureIndex` turns dicts into rows;
2. :class:`~stream_cl.backbones.OnlineStandardizer` standardises them (statistics before
   each row for predictions, current statistics for training);
3. an MLP (ReLU hidden layers, a softmax output that grows a row per new class) predicts;
4. every ``micro_batch`` labelled events, the pending fresh rows and
   ``ratio * micro_batch`` rows replayed from a :mod:`~stream_cl.replay` buffer make one
   micro-batch for ``steps`` Adam steps on the cross-entropy;
5. a :class:`~stream_cl.homeostasis.Homeostasis` controller scales each layer's learning
   rate by its need; a :class:`~stream_cl.drift.DriftMonitor`'s alarms can raise the need.

Micro-batches are aligned to the count of labelled events over the learner's life, and
every event is predicted by the network as it was when the event arrived, so any batching
of the stream gives the same model. The weights of an input column are seeded by its
feature *key*, so the order of keys in events does not matter. Runs on CUDA when present
(``device="auto"``), on the CPU otherwise.

>>> from river import datasets, evaluate, metrics
>>> model = TrainableLearner(hidden=(32,), device="cpu")
>>> evaluate.progressive_val_score(datasets.Phishing(), model, metrics.Accuracy())
Accuracy: 87.91%
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch

from .backbones import OnlineStandardizer, resolve_device
from .backbones.random_features import key_seed
from .base_learner import StreamingClassifier, checked_labels, control_ends
from .encoding import DEFAULT_MAX_CATEGORIES
from .features import FeatureIndex

__all__ = ["TrainableLearner"]

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


class TrainableLearner(StreamingClassifier):
    """Online MLP classifier with replay and homeostatic per-layer learning rates.

    Parameters
    ----------
    hidden
        Widths of the hidden layers (``None``: no hidden layer, softmax regression).
    lr
        Base learning rate of Adam.
    micro_batch
        Fresh labelled events per training micro-batch.
    steps
        Adam steps per micro-batch.
    weight_decay
        Decoupled weight decay (AdamW).
    replay
        A :class:`~stream_cl.replay.ReplayBuffer`; its ``ratio`` sets replayed rows per
        fresh row in each micro-batch.
    drift
        A :class:`~stream_cl.drift.DriftMonitor` (responses ``"record"`` and ``"need"``).
    homeostasis
        A :class:`~stream_cl.homeostasis.Homeostasis` scaling the layers' learning rates.
    hash_width
        ``None`` grows an input per feature key; an int hashes keys into that many.
    device
        ``"auto"`` (CUDA when present), ``"cpu"`` or a torch device.
    dtype
        ``"float64"`` (default: results do not depend on the order of feature keys to
        rounding) or ``"float32"`` (faster, especially on GPUs).
    seed
        Seed of the initial weights.
    max_categories, missing_indicators, time_features
        How strings, nulls and datetimes become inputs, as on
        :class:`~stream_cl.learner.OnlineContinualLearner` (indicators are not standardised).

    Attributes (monitoring)
    -----------------------
    learning_rates_
        Current learning rate of each layer.
    need_, alarms_, n_alarms_, alarm_counts_, replay_size_, replay_bytes_
        As on :class:`~stream_cl.learner.OnlineContinualLearner`.
    """

    def __init__(self, hidden: tuple | None = (256,), lr: float = 0.01, micro_batch: int = 16, steps: int = 1,
                 weight_decay: float = 0.0, replay=None, drift=None, homeostasis=None, hash_width: int | None = None,
                 device: str = "auto", dtype: str = "float64", seed: int = 0,
                 max_categories: int = DEFAULT_MAX_CATEGORIES, missing_indicators: bool = False,
                 time_features: bool = False):
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        if hidden is not None and (not isinstance(hidden, tuple) or not hidden
                                   or any(not isinstance(h, int) or h < 1 for h in hidden)):
            raise ValueError(f"hidden must be a non-empty tuple of positive ints, or None for no hidden layer; got {hidden!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not isinstance(micro_batch, int) or micro_batch < 1 or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"micro_batch and steps must be ints >= 1, got {micro_batch!r}, {steps!r}")
        if drift is not None:
            bad = [r for r in drift.response if r not in ("record", "need")]
            if bad:
                raise ValueError(f"the trainable learner supports the drift responses 'record' and 'need', not {bad}")
            if "need" in drift.response and homeostasis is None:
                raise ValueError("the drift response 'need' raises the homeostatic need: give homeostasis=Homeostasis() too")
        self.hidden = hidden
        self.widths_ = tuple(hidden or ())
        self.lr = lr
        self.micro_batch = micro_batch
        self.steps = steps
        self.weight_decay = weight_decay
        self.replay = replay
        self.drift = drift
        self.homeostasis = homeostasis
        self.hash_width = hash_width
        self.device = device
        self.dtype = dtype
        self.seed = seed
        self.dtype_ = getattr(torch, dtype)
        self.device_ = resolve_device(device)
        self.max_categories = max_categories
        self.missing_indicators = missing_indicators
        self.time_features = time_features
        self.index_ = FeatureIndex(hash_width, max_categories, missing_indicators, time_features)
        self.scaler_ = OnlineStandardizer()
        self.replay_ = replay.clone() if replay is not None else None
        self.drift_ = drift.clone() if drift is not None else None
        self.homeostasis_ = homeostasis.clone() if homeostasis is not None else None
        self._classes: list = []
        self._pos: dict = {}
        self.params_: list[torch.Tensor] = []  # W0, b0, W1, b1, ..., W_out, b_out
        self.m_: list[torch.Tensor] = []
        self.v_: list[torch.Tensor] = []
        self.t_ = 0  # Adam steps taken
        self.fan_in_ = 0  # inputs when the first layer was built (its weight scale)
        self.n_labelled_ = 0
        self.n_events_ = 0
        self.n_updates_ = 0
        self._pending: list[tuple] = []  # (x row, present mask, label, task) awaiting their micro-batch

    @classmethod
    def _unit_test_params(cls):
        from .drift import DriftMonitor
        from .homeostasis import Homeostasis
        from .replay import ReservoirReplay

        yield {"hidden": (4,), "micro_batch": 8, "steps": 2, "replay": ReservoirReplay(max_samples=20),
               "drift": DriftMonitor("adwin", response=("need",)), "homeostasis": Homeostasis(), "device": "cpu"}

    # -- fitted attributes -------------------------------------------------------------
    @property
    def classes_(self) -> list:
        return list(self._classes)

    @property
    def n_layers(self) -> int:
        return len(self.widths_) + 1

    @property
    def learning_rates_(self) -> list[float]:
        scales = self.homeostasis_.learning_rate_scales(self.n_layers) if self.homeostasis_ is not None else [1.0] * self.n_layers
        return [self.lr * s for s in scales]

    def _learning_rates(self) -> list:
        return self.learning_rates_

    def report(self) -> dict:
        out = {"learning_rates": self.learning_rates_, "updates": self.n_updates_}
        if self.replay_ is not None:
            out["replay"] = self.replay_.report()
        if self.drift_ is not None:
            out["drift"] = self.drift_.report()
        if self.homeostasis_ is not None:
            out["homeostasis"] = self.homeostasis_.report()
        return out

    # -- the network -------------------------------------------------------------------
    def _keys(self) -> list:
        return list(self.index_.names) if self.hash_width is None else list(range(self.hash_width))

    def _input_columns(self, keys: Sequence[Hashable], rows: int) -> torch.Tensor:
        """First-layer weights of new inputs (rows, len(keys)), seeded by each key."""
        scale = 1.0 / math.sqrt(max(self.fan_in_, 1))
        cols = [np.random.default_rng([self.seed, 1, key_seed(k)]).standard_normal(rows) * scale for k in keys]
        W = np.stack(cols, axis=1) if cols else np.zeros((rows, 0))
        return torch.as_tensor(W, dtype=self.dtype_, device=self.device_)

    def _build(self, d: int) -> None:
        self.fan_in_ = max(d, 1)
        widths = list(self.widths_)
        params = []
        first = widths[0] if widths else 0
        if widths:
            params += [self._input_columns(self._keys()[:d], first), torch.zeros(first, dtype=self.dtype_, device=self.device_)]
            gen = torch.Generator().manual_seed(int(self.seed) * 7919 + 17)
            for i in range(1, len(widths)):
                fan = widths[i - 1]
                W = (torch.rand(widths[i], fan, generator=gen, dtype=torch.float64) * 2 - 1) * math.sqrt(6.0 / fan)
                b = torch.zeros(widths[i], dtype=torch.float64)
                params += [W.to(self.device_, self.dtype_), b.to(self.device_, self.dtype_)]
            params += [self._zeros(0, widths[-1]), self._zeros(0)]
        else:  # softmax regression: the output layer sees the inputs
            params += [self._zeros(0, d), self._zeros(0)]
        self.params_ = params
        self.m_ = [torch.zeros_like(p) for p in params]
        self.v_ = [torch.zeros_like(p) for p in params]

    def _grow_inputs(self, d: int) -> None:
        if not self.params_:
            self._build(d)
            return
        W = self.params_[0]
        extra = d - W.shape[1]
        if extra <= 0:
            return
        if self.widths_:
            new = self._input_columns(self._keys()[W.shape[1]:d], W.shape[0])
        else:  # output rows start at zero
            new = self._zeros(W.shape[0], extra)
        self.params_[0] = torch.cat([W, new], dim=1)
        self.m_[0] = torch.cat([self.m_[0], torch.zeros_like(new)], dim=1)
        self.v_[0] = torch.cat([self.v_[0], torch.zeros_like(new)], dim=1)

    def _add_class(self, y: Hashable) -> None:
        self._pos[y] = len(self._classes)
        self._classes.append(y)
        for i in (-2, -1):  # a zero row: the new class's logit is 0 until it is trained
            p = self.params_[i]
            shape = (1, *p.shape[1:])
            z = self._zeros(*shape)
            self.params_[i] = torch.cat([p, z], dim=0)
            self.m_[i] = torch.cat([self.m_[i], z], dim=0)
            self.v_[i] = torch.cat([self.v_[i], z.clone()], dim=0)

    def _zeros(self, *shape) -> torch.Tensor:
        return torch.zeros(shape, dtype=self.dtype_, device=self.device_)

    def _logits(self, Z: np.ndarray, params=None) -> torch.Tensor:
        params = self.params_ if params is None else params
        h = torch.as_tensor(Z, dtype=self.dtype_, device=self.device_)
        d = params[0].shape[1]
        if h.shape[1] < d:
            h = torch.nn.functional.pad(h, (0, d - h.shape[1]))
        h = h[:, :d]
        n = len(params) // 2
        for i in range(n):
            h = h @ params[2 * i].T + params[2 * i + 1]
            if i < n - 1:
                h = torch.relu(h)
        return h  # (b, classes)

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
        target = torch.as_tensor([self._pos[y] for y in ys], dtype=torch.long, device=self.device_)
        lrs = self.learning_rates_
        for _ in range(self.steps):
            params = [p.detach().requires_grad_(True) for p in self.params_]
            loss = torch.nn.functional.cross_entropy(self._logits(Z, params), target)
            grads = torch.autograd.grad(loss, params)
            self.t_ += 1
            c1, c2 = 1 - BETA1**self.t_, 1 - BETA2**self.t_
            with torch.no_grad():
                for i, (p, g) in enumerate(zip(params, grads)):
                    lr = lrs[i // 2]
                    self.m_[i].mul_(BETA1).add_(g, alpha=1 - BETA1)
                    self.v_[i].mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
                    step = (self.m_[i] / c1) / ((self.v_[i] / c2).sqrt() + EPS)
                    new = p.detach() - lr * step
                    if self.weight_decay:
                        new -= lr * self.weight_decay * p.detach()
                    self.params_[i] = new
        self.n_updates_ += 1

    # -- learning ----------------------------------------------------------------------
    def prequential_batch(self, xs: Sequence[Mapping], ys: Sequence, sample_weight=None, tasks=None,
                          partition: Hashable = None) -> np.ndarray:
        """Predict, then learn, each event in order; ``ys[i] is None`` means predict only.

        Returns probabilities (b, n_classes) in ``classes_`` order. ``sample_weight`` is
        not supported (rows weigh the same in the cross-entropy), nor partitions.
        """
        if sample_weight is not None and not np.all(np.asarray(sample_weight) == 1.0):
            raise ValueError("TrainableLearner does not take sample weights")
        _one_partition(partition)
        ys, labelled = checked_labels(ys)
        b = len(ys)
        tasks = [None] * b if tasks is None else list(tasks)
        if len(tasks) != b:
            raise ValueError(f"tasks has {len(tasks)} entries for {b} events")
        X, M, new = self.index_.vectorize_masked(xs, labelled)  # learned events make columns
        self.index_.commit(new)
        self._grow_inputs(X.shape[1])
        ends = control_ends(labelled, self.n_labelled_, self.micro_batch, np.arange(b), b)  # train after micro-batches
        out_parts, start = [], 0
        for end in ends:
            if end == start:
                continue
            seg = slice(start, end)
            n_known = len(self._classes)
            first = {}
            for i in range(start, end):
                if ys[i] is not None and ys[i] not in self._pos and ys[i] not in first:
                    first[ys[i]] = i
            for y in first:
                self._add_class(y)
            Z = self.scaler_.prequential(X[seg], M[seg], labelled[seg], self.index_.indicator_mask)
            with torch.no_grad():
                logits = self._logits(Z).double().cpu().numpy()  # (seg, classes)
            for k, y in enumerate(self._classes[n_known:], start=n_known):
                logits[: first[y] - start + 1, k] = -np.inf  # unknown until after its first row
            P = _softmax(logits)
            out_parts.append((start, P))
            for i in range(start, end):
                if labelled[i]:
                    self._pending.append((X[i].copy(), M[i].copy(), ys[i], tasks[i]))
            self._watch(P, self._classes, ys[seg], labelled[seg])
            self.n_events_ += end - start
            n_lab = int(labelled[seg].sum())
            self.n_labelled_ += n_lab
            if n_lab and self.n_labelled_ % self.micro_batch == 0:
                self._train()
            start = end
        out = np.zeros((b, len(self._classes)))
        for s, P in out_parts:
            out[s : s + P.shape[0], : P.shape[1]] = P
        return out

    # -- prediction --------------------------------------------------------------------
    def predict_proba_batch(self, xs: Sequence[Mapping], partition: Hashable = None) -> np.ndarray:
        _one_partition(partition)
        X, M, _ = self.index_.vectorize_masked(xs)
        d = self.index_.width
        if not self._classes:
            return np.zeros((len(xs), 0))
        Z = self.scaler_.transform(X[:, :d], M[:, :d], self.index_.indicator_mask)
        with torch.no_grad():
            logits = self._logits(Z).double().cpu().numpy()
        return _softmax(logits)

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        np32 = lambda ts: [t.detach().cpu().numpy().copy() for t in ts]  # noqa: E731
        return {
            "index": self.index_.state_dict(), "scaler": self.scaler_.state_dict(), "classes": list(self._classes),
            "params": np32(self.params_), "m": np32(self.m_), "v": np32(self.v_), "t": self.t_, "fan_in": self.fan_in_,
            "n_labelled": self.n_labelled_, "n_events": self.n_events_, "n_updates": self.n_updates_,
            "pending": {"X": [r[0] for r in self._pending], "M": [r[1] for r in self._pending],
                        "y": [r[2] for r in self._pending], "task": [r[3] for r in self._pending]},
            "replay": self.replay_.state_dict() if self.replay_ is not None else None,
            "drift": self.drift_.state_dict() if self.drift_ is not None else None,
            "homeostasis": self.homeostasis_.state_dict() if self.homeostasis_ is not None else None,
        }

    def load_state_dict(self, state: Mapping) -> "TrainableLearner":
        self.index_.load_state_dict(state["index"])
        self.scaler_.load_state_dict(state["scaler"])
        self._classes = list(state["classes"])
        self._pos = {y: k for k, y in enumerate(self._classes)}
        dev = self.device_
        tens = lambda arrs: [torch.as_tensor(np.asarray(a).copy(), dtype=self.dtype_, device=dev) for a in arrs]  # noqa: E731
        self.params_, self.m_, self.v_ = tens(state["params"]), tens(state["m"]), tens(state["v"])
        self.t_, self.fan_in_ = int(state["t"]), int(state["fan_in"])
        self.n_labelled_, self.n_events_ = int(state["n_labelled"]), int(state["n_events"])
        self.n_updates_ = int(state["n_updates"])
        p = state["pending"]
        self._pending = [(np.asarray(x, dtype=np.float64).copy(), np.asarray(m, dtype=bool).copy(), y, t)
                         for x, m, y, t in zip(p["X"], p["M"], p["y"], p["task"])]
        self._load_part_states(state, ("replay", "drift", "homeostasis"))
        return self

    def __getstate__(self):
        state = dict(self.__dict__)
        for k in ("params_", "m_", "v_"):
            state[k] = [t.detach().cpu() for t in state[k]]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        for k in ("params_", "m_", "v_"):
            self.__dict__[k] = [t.to(self.device_) for t in self.__dict__[k]]


def _softmax(logits: np.ndarray) -> np.ndarray:
    if logits.shape[1] == 0:
        return logits
    top = logits.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(logits - top)
    total = e.sum(axis=1, keepdims=True)
    return np.divide(e, total, where=total > 0, out=np.zeros_like(e))


def _one_partition(partition: Hashable) -> None:
    if partition is not None:
        raise ValueError(f"TrainableLearner keeps no partitions (got partition={partition!r}); "
                         "use OnlineContinualLearner or AnalyticClassifier for a partitioned source")
