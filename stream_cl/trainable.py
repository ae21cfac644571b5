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
feature *key*, so the order of keys in events does not matter (except where ``max_columns`` leaves room
for only some of one event's new categories: the keys earlier in the event get their own columns, the
others ``k=<other>``). ``device="auto"`` runs it on
the CPU unless a GPU is visible and a layer is at least
:data:`~stream_cl.backbones.device.AUTO_CUDA_MIN_FEATURES` wide.

>>> from river import datasets, evaluate, metrics
>>> model = TrainableLearner(hidden=(32,), device="cpu")
>>> evaluate.progressive_val_score(datasets.Phishing(), model, metrics.Accuracy())
Accuracy: 87.91%
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch

from .backbones import OnlineStandardizer, resolve_device, torch_device
from .base_learner import StreamingClassifier, check_event_batch, check_tasks, checked_labels, control_ends
from .checks import check_dtype, check_int, check_nonnegative, check_positive, check_seed
from .column_bound import check_bound, check_held_back, check_network_inputs
from .continual_steps import check_parts
from .encoding import DEFAULT_MAX_CATEGORIES
from .features import FeatureIndex
from .mlp import OnlineMLP
from .runtime import one_blas_thread
from .trainable_network import TrainableNetwork
from .trainable_state import TrainableState

__all__ = ["DRIFT_RESPONSES", "TrainableLearner", "check_decay", "check_rate", "unsupported_responses"]

# the drift responses this learner acts on: the others act on ridge heads ("forget", "restart",
# "reset") or the mixer ("remix"), which a network has none of
DRIFT_RESPONSES = ("record", "need")


def unsupported_responses(responses) -> list:
    """Those of a drift monitor's ``responses`` this learner does not act on (:data:`DRIFT_RESPONSES`)."""
    return [r for r in responses if r not in DRIFT_RESPONSES]


# the largest learning rate (times homeostasis.lr_high): Adam's steps are about the rate in size
MAX_LR = 10.0


def check_rate(lr: float, lr_high: float | None = None, prefix: str = "") -> None:
    """Refuse ``lr * lr_high > MAX_LR`` (``lr_high``: the homeostatic controller's largest
    learning-rate scale, ``None`` without one; ``prefix`` names the keys as a config does): an Adam
    step moves each weight by about the rate, whatever the gradient.

    >>> check_rate(0.01, 4.0)
    >>> check_rate(1e20, prefix="trainable.")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: trainable.lr = 1e+20 must be at most 10: ...
    """
    scale = 1.0 if lr_high is None else lr_high
    if lr * scale > MAX_LR:
        names = f"{prefix}lr" if lr_high is None else f"{prefix}lr * homeostasis.lr_high"
        raise ValueError(f"{names} = {lr * scale:.3g} must be at most {MAX_LR:g}: an Adam step moves each weight "
                         f"by about the rate, and at 1e20 the first step left weights whose logits overflow; use "
                         f"{prefix}lr = 0.01 or so")


def check_decay(lr: float, weight_decay: float, lr_high: float | None = None, prefix: str = "") -> None:
    """Refuse ``lr * weight_decay * lr_high >= 1`` (``lr_high`` and ``prefix`` as :func:`check_rate`'s).

    Each Adam step multiplies every weight by one minus that product (decoupled weight decay):
    at 1 the decay zeroes the weights, past it flips their signs at every step, and from 2 on
    they grow at every step until they are NaN (``lr=0.01, weight_decay=300`` did, silently).

    >>> check_decay(0.01, 1e-4)
    >>> check_decay(0.5, 5.0, prefix="trainable.")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: trainable.lr * trainable.weight_decay = 0.5 * 5.0 = 2.5 must be < 1: ... use trainable.weight_decay < 2 ...
    """
    scale = 1.0 if lr_high is None else lr_high
    if not weight_decay or lr * weight_decay * scale < 1:
        return
    names, values = f"{prefix}lr * {prefix}weight_decay", f"{lr!r} * {weight_decay!r}"
    if lr_high is not None:
        names, values = f"{names} * homeostasis.lr_high", f"{values} * {lr_high!r}"
    bound = 1 / (lr * scale)
    fix = f"{prefix}weight_decay < {bound:.3g} (a small decay such as 1e-4)" if bound > 0 else f"{prefix}weight_decay = 0"
    raise ValueError(f"{names} = {values} = {lr * weight_decay * scale:.3g} must be < 1: each Adam step multiplies "
                     f"every weight by 1 minus it, and from 2 on the weights grow until they are NaN; use {fix}, "
                     f"or a smaller {prefix}lr")


class TrainableLearner(TrainableNetwork, TrainableState, StreamingClassifier):
    """Online MLP classifier with replay and homeostatic per-layer learning rates.

    Parameters
    ----------
    hidden
        Widths of the hidden layers, a tuple or list (``None``: no hidden layer, softmax regression). In a
        River parameter grid give lists (``{"hidden": [[16], [64, 64]]}``): River reads a tuple there as
        ``(class, params)``.
    lr
        Base learning rate of Adam.
    micro_batch
        Fresh labelled events per training micro-batch.
    steps
        Adam steps per micro-batch.
    weight_decay
        Decoupled weight decay (AdamW): each step multiplies every weight by
        ``1 - lr * weight_decay`` (times the homeostatic scale), so ``lr * weight_decay``
        (times ``homeostasis.lr_high``) must be below 1.
    replay
        A :class:`~stream_cl.replay.ReplayBuffer`; its ``ratio`` sets replayed rows per
        fresh row in each micro-batch.
    drift
        A :class:`~stream_cl.drift.DriftMonitor` (responses ``"record"`` and ``"need"``).
    homeostasis
        A :class:`~stream_cl.homeostasis.Homeostasis` scaling the layers' learning rates.
    hash_width
        ``None`` grows an input per feature key; an int hashes keys into that many.
    max_columns
        The most inputs the network's first layer grows to (``None``: no bound; with ``hash_width``
        the inputs are fixed). An event whose new inputs would pass it is refused with a
        ``ValueError`` before anything changes.
    device
        ``"auto"`` (CUDA when a GPU is visible and a hidden layer is at least
        ``AUTO_CUDA_MIN_FEATURES`` wide, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    dtype
        ``"float64"`` (default: results do not depend on the order of feature keys to
        rounding) or ``"float32"`` (faster, especially on GPUs). With float32 the first layer
        sums its inputs in key order, so shuffling an event's keys moves probabilities by
        about 1e-6 relative: it does not pass River's ``check_estimator`` (whose key-shuffle
        check allows 1e-6); use float64 where River's checks matter.
    seed
        Seed of the initial weights.
    max_categories, missing_indicators, time_features
        How strings, nulls and datetimes become inputs, as on
        :class:`~stream_cl.learner.OnlineContinualLearner` (indicators are not standardised).

    Attributes (monitoring)
    -----------------------
    learning_rates_
        Current learning rate of each layer.
    net_.skipped_steps
        Adam steps not taken because their new weights or moments were not all finite (also
        ``report()["skipped_steps"]``): the network keeps its last finite weights.
    need_, alarms_, n_alarms_, alarm_counts_, replay_size_, replay_bytes_
        As on :class:`~stream_cl.learner.OnlineContinualLearner`.
    """

    def __init__(self, hidden: tuple | None = (256,), lr: float = 0.01, micro_batch: int = 16, steps: int = 1,
                 weight_decay: float = 0.0, replay=None, drift=None, homeostasis=None, hash_width: int | None = None,
                 device: str = "auto", dtype: str = "float64", seed: int = 0,
                 max_categories: int = DEFAULT_MAX_CATEGORIES, missing_indicators: bool = False,
                 time_features: bool = False, max_columns: int | None = None):
        _check_settings(hidden, lr, micro_batch, steps, weight_decay, replay, drift, homeostasis, hash_width,
                        dtype, seed, max_columns)
        self.hidden = hidden
        self.widths_ = tuple(int(h) for h in hidden or ())
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
        # the default MLP (256 hidden, float64) ran at 0.5-0.6x its CPU speed on an H200, one event
        # at a time and in batches of 256 (RESULTS.md section 3): "auto" goes by the widest layer
        self.device_ = resolve_device(device, features=max(self.widths_, default=0))
        self.max_categories = max_categories
        self.missing_indicators = missing_indicators
        self.time_features = time_features
        self.max_columns = max_columns
        self.index_ = FeatureIndex(hash_width, max_categories, missing_indicators, time_features)
        self.scaler_ = OnlineStandardizer()
        self.replay_ = replay.clone() if replay is not None else None
        self.drift_ = drift.clone() if drift is not None else None
        self.homeostasis_ = homeostasis.clone() if homeostasis is not None else None
        self._classes: list = []
        self._pos: dict = {}
        # ("torch:cpu", which check_device takes, is the CPU to torch: the string itself failed at the first event)
        self.net_ = OnlineMLP(self.widths_, seed, self.dtype_, torch_device(self.device_))
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
        """The classes seen, in the order of the output layer's units and of ``predict_proba_batch``'s."""
        return list(self._classes)

    @property
    def learning_rates_(self) -> list[float]:
        """Each layer's learning rate now: ``lr`` scaled by homeostasis, where it is on."""
        scales = self.homeostasis_.learning_rate_scales(self.n_layers) if self.homeostasis_ is not None else [1.0] * self.n_layers
        return [self.lr * s for s in scales]

    def _learning_rates(self) -> list:
        return self.learning_rates_

    def report(self) -> dict:
        """The learning rates, Adam updates and skipped steps, and the continual parts' state, JSON-ready."""
        # Adam steps not taken because they overflowed (OnlineMLP.train): above 0, lr is too large
        out = {"learning_rates": self.learning_rates_, "updates": self.n_updates_, "skipped_steps": self.net_.skipped_steps}
        if self.replay_ is not None:
            out["replay"] = self.replay_.report()
        if self.drift_ is not None:
            out["drift"] = self.drift_.report()
        if self.homeostasis_ is not None:
            out["homeostasis"] = self.homeostasis_.report()
        return out

    # -- learning ----------------------------------------------------------------------
    @one_blas_thread
    def prequential_batch(self, xs: Sequence[Mapping], ys: Sequence, sample_weight=None, tasks=None,
                          partition: Hashable = None) -> np.ndarray:
        """Predict, then learn, each event in order; ``ys[i] is None`` means predict only.

        Returns probabilities (b, n_classes) in ``classes_`` order. ``sample_weight`` is
        not supported (rows weigh the same in the cross-entropy), nor partitions.
        """
        if sample_weight is not None and not np.all(np.asarray(sample_weight) == 1.0):
            raise ValueError("TrainableLearner does not take sample weights")
        _one_partition(partition)
        check_event_batch(xs)
        ys, labelled = checked_labels(ys, len(xs))
        b = len(ys)
        if not b:
            return np.zeros((0, len(self._classes)))
        tasks = [None] * b if tasks is None else list(tasks)
        check_tasks(tasks, b)  # before anything is learned: replay would refuse a bad task at the next micro-batch
        X, M, new = self.index_.vectorize_masked(xs, labelled, self._room)  # learned events make columns
        n = self.index_.width + len(new)  # the first layer's inputs are its memory: one event with a
        if new and self.max_columns is not None and n > self.max_columns:  # thousand new keys must not take it
            raise ValueError(f"{len(new)} new inputs would give the network's first layer {n:,} inputs, over "
                             f"max_columns ({self.max_columns:,}); use hash_width, fewer features, or a larger max_columns")
        check_held_back(new, self.max_columns)
        self.index_.commit(new)
        keys = self._keys()[: X.shape[1]]
        n_old = X.shape[1] - len(new)  # columns indexed before this batch (hashing: all of them)
        self.net_.grow_inputs(keys[:n_old])
        widths = _row_widths(M[:, n_old:], labelled, n_old)  # (b,) inputs once each row is indexed
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
            self._grow(keys, widths[start:end])
            Z = self.scaler_.prequential(X[seg], M[seg], labelled[seg], self.index_.indicator_mask)
            with torch.no_grad():
                logits = self.net_.logits(Z).double().cpu().numpy()  # (seg, classes)
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
    @one_blas_thread
    def predict_proba_batch(self, xs: Sequence[Mapping], partition: Hashable = None) -> np.ndarray:
        """Probabilities (b, n_classes) in ``classes_`` order, without learning."""
        _one_partition(partition)
        X, M, _ = self.index_.vectorize_masked(xs, [False] * len(xs), self._room)  # each as if alone
        d = self.index_.width
        if not self._classes:
            return np.zeros((len(xs), 0))
        Z = self.scaler_.transform(X[:, :d], M[:, :d], self.index_.indicator_mask)
        with torch.no_grad():
            logits = self.net_.logits(Z).double().cpu().numpy()
        return _softmax(logits)


def _check_settings(hidden, lr, micro_batch, steps, weight_decay, replay, drift, homeostasis, hash_width, dtype,
                    seed, max_columns) -> None:
    """Refuse :class:`TrainableLearner`'s settings that could not train, each by name, before anything is built."""
    check_dtype(dtype)
    if hidden is not None and (not isinstance(hidden, (tuple, list)) or not hidden):
        raise ValueError(f"hidden must be a non-empty tuple (or list) of positive ints, or None for no hidden layer; "
                         f"got {hidden!r}")
    for i, h in enumerate(hidden or ()):
        check_int(h, f"hidden[{i}]", 1, 256)  # True (an int to Python) failed at the first event; numpy ints are taken
    # finite: an infinite rate or decay would make every step non-finite (each one skipped);
    # check_decay bounds their product, which diverges while each is finite
    check_positive(lr, "lr", 0.01)
    check_nonnegative(weight_decay, "weight_decay", 0.0)
    check_int(micro_batch, "micro_batch", 1, 16)
    check_int(steps, "steps", 1, 1)
    check_seed(seed)  # a negative, float or None seed failed at the first event, after its columns were indexed
    check_bound(max_columns)
    check_network_inputs(hash_width, max_columns)  # before the feature index keeps a slot per hashed input
    check_parts(replay=replay, drift=drift, homeostasis=homeostasis)  # before drift.response is read
    lr_high = homeostasis.lr_high if homeostasis is not None else None
    check_rate(lr, lr_high)
    check_decay(lr, weight_decay, lr_high)
    if drift is not None:
        bad = unsupported_responses(drift.response)
        if bad:
            raise ValueError(f"the trainable learner supports the drift responses 'record' and 'need', not {bad}; "
                             "give DriftMonitor(..., response=('record',))")


def _row_widths(M_new: np.ndarray, labelled: np.ndarray, n_old: int) -> np.ndarray:
    """Columns indexed once each row of a batch is: ``n_old`` plus the new columns whose first
    learned value (the row that created them; ``M_new`` (b, new columns)) is at or before it.

    >>> M_new = np.array([[False, False], [True, False], [True, True]])
    >>> _row_widths(M_new, np.array([True, False, True]), 3).tolist()  # the first new column's row 1 is not learned
    [3, 3, 5]
    """
    born = np.sort((M_new & labelled[:, None]).argmax(axis=0))  # (new columns,) the row creating each
    return n_old + np.searchsorted(born, np.arange(M_new.shape[0]), side="right")


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
