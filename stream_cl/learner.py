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

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .backbones import Backbone, KeyUnits, OnlineStandardizer, RandomFeatures, resolve_device, torch_device
from .base_learner import StreamingClassifier
from .batch_path import BatchPath
from .checks import MIN_FORGETTING, check_int, check_positive, check_seed, is_forgetting
from .column_bound import check_bound
from .continual_steps import ContinualSteps
from .encoding import DEFAULT_MAX_CATEGORIES
from .ensemble import VIEWS, AnalyticEnsemble
from .features import FeatureIndex
from .heads.class_head import RidgeClassHead
from .heads.sgd import SGDSoftmaxHead
from .learner_state import LearnerState
from .mixing import AccuracyMixer
from .one_event import OneEventPath, RowMemo
from .online_parts import OnlineParts
from .status import HeadStatus

if TYPE_CHECKING:  # continual-learning parts (issue 3): all optional
    from .drift import DriftMonitor
    from .homeostasis import Homeostasis
    from .imbalance import ImbalanceCompensator
    from .replay import ReplayBuffer

__all__ = ["OnlineContinualLearner", "DEFAULT_HEADS"]

# (forgetting factor, view): "all" = [1, backbone features, inputs], "inputs" = [1, inputs].
DEFAULT_HEADS = ((1.0, "all"), (0.995, "all"), (0.999, "inputs"), (1.0, "inputs"))
DEFAULT_WIDTH = 256


class OnlineContinualLearner(LearnerState, OnlineParts, ContinualSteps, OneEventPath, BatchPath, AnalyticEnsemble, StreamingClassifier):
    """Online continual classifier: frozen backbone + exact analytic heads, mixed by accuracy.

    A head with forgetting 1 is closed-form ridge on every design row it has learned. The rows
    come from inputs standardised by running statistics as of their event, so where the inputs'
    distribution moves between tasks an old task's rows no longer match how its inputs are
    scaled today, and it loses accuracy (22 points over ten permuted-digit tasks,
    ``benchmarks/RESULTS_continual.md``). Replay brings it back; for retention exactly, learn a
    fixed feature map with :class:`~stream_cl.AnalyticClassifier`.

    Parameters
    ----------
    backbone
        A :class:`~stream_cl.backbones.Backbone`; ``None`` uses
        ``RandomFeatures(width=DEFAULT_WIDTH, seed=seed)``.
    key_units
        Threshold units per input (:class:`~stream_cl.backbones.KeyUnits`), 0 for none.
    heads
        ``(forgetting, view)`` pairs, one ridge head each; view ``"all"`` learns on the
        backbone's features and the inputs, ``"inputs"`` on the standardised inputs only. In a River
        parameter grid give a list of pairs (``{"heads": [[(1.0, "all")], ...]}``): River reads a
        tuple there as ``(class, params)``.
    gamma
        Ridge regularisation of every head.
    temperature
        Softmax temperature from ridge scores to probabilities.
    mix_decay, mix_sharpness
        Memory of the heads' accuracy averages, in (0, 1), and how sharply the mixture follows
        them, a finite number >= 0 (0: equal weights).
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
        ``"auto"``: CUDA when a GPU is visible and, for random features (``Backbone.light_forward``),
        the backbone gives at least ``AUTO_CUDA_MIN_FEATURES`` (2,048) features: below that the
        CPU is faster one event at a time (RESULTS.md section 3). Else ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    seed
        Seed of the default backbone and of the threshold units (``key_units``); with a backbone of
        your own it seeds the units alone.
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
    max_columns
        The most design columns a ridge head may have (``None``: no bound). A head keeps
        a few matrices of ``8 * columns**2`` bytes, and a backbone head has ``1 + key_units``
        columns per numeric input: 8,192 columns (~880 numeric inputs with the defaults) take
        about 0.5 GB a matrix. An event whose new inputs would pass the bound is refused
        with a ``ValueError``, before anything is learned (the daemon's ``rejected_by_model``
        dead letter); a ``hash_width`` that passes it is refused here.

    The *adaptive* heads are those with forgetting below 1: an exact memory head (forgetting
    1) is then never made to forget. If no head has forgetting below 1, every head is adaptive,
    and the drift and homeostasis responses lower their factors too. With all four continual parts
    ``None`` the learner is exactly the plain composite.

    Monitoring attributes: ``alarms_`` (recent drift alarms, dicts with ``t``, ``n_labelled``
    (the same on the per-event and batched paths; ``t`` counts predict-only events only where they
    pass through ``prequential_batch``), ``detector``, ``signal``, ``response``), ``n_alarms_``, ``alarm_counts_``
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
        max_columns: int | None = 8192,
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
        _check_heads(heads)  # each forgetting factor's range: its ridge head's (RidgeStatistics)
        check_positive(temperature, "temperature", 0.1)
        check_seed(seed)  # the default backbone's and the key units' random streams take ints >= 0
        if backbone is not None and not isinstance(backbone, Backbone):
            raise TypeError(f"backbone must be a Backbone such as RandomFeatures(width=256), or None (that one); "
                            f"got {backbone!r}")
        backbone_ = backbone.clone() if backbone is not None else RandomFeatures(width=DEFAULT_WIDTH, seed=seed)
        self.device_ = resolve_device(device, features=backbone_.out_features if backbone_.light_forward else None)
        tdev = torch_device(self.device_)
        self.backbone_ = backbone_.to(tdev)
        check_int(key_units, "key_units", 0, 8)
        self.key_units_ = KeyUnits(key_units, seed, tdev)
        self.max_categories = max_categories
        self.missing_indicators = missing_indicators
        self.time_features = time_features
        self.max_columns = max_columns
        check_bound(max_columns)
        # before the index: a hashed one allocates its hash_width slots, which a width this refuses may not fit
        self._check_columns([], [])  # (a new index has no inputs)
        self.index_ = FeatureIndex(hash_width, max_categories, missing_indicators, time_features)
        self.scaler_ = OnlineStandardizer()
        self.heads_ = [RidgeClassHead(gamma, lam, self.device_) for lam, _ in heads]
        self.sgd_lr = sgd_lr
        # an SGD softmax head on the inputs: logistic loss tracks noisy, rotating linear concepts
        self.sgd_ = SGDSoftmaxHead(sgd_lr, name="sgd_lr") if sgd_lr else None
        self.mixer_ = AccuracyMixer(len(heads) + (self.sgd_ is not None), mix_decay, mix_sharpness)
        self.replay = replay
        self.drift = drift
        self.homeostasis = homeostasis
        self.imbalance = imbalance
        self.control_every = control_every
        self._init_continual()
        # predict_proba_one's design rows, reused by the learn_one of the same event
        self._memo: RowMemo | None = None
        self._init_parts()

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
        """The classes seen, in the order of the heads' columns and of ``predict_proba_batch``'s."""
        return list(self.heads_[0].classes)

    @property
    def head_weights_(self) -> np.ndarray:
        """Current mixture weight of each head."""
        return self.mixer_.weights()

    def set_forgetting(self, head: int, value: float) -> None:
        """Change one head's forgetting factor from now on (drift responses, homeostasis): until the next
        control point of a head that adapts (a drift response's window, homeostasis), which sets it again."""
        self.heads_[head].ridge.set_forgetting(value)
        self._forgetting_changed()

    def _head_status(self) -> list[HeadStatus]:
        weights = self.mixer_.weights().tolist()
        return [HeadStatus(forgetting=float(h.ridge.forgetting), base_forgetting=float(lam), view=str(view),
                           weight=weights[i]) for i, (h, (lam, view)) in enumerate(zip(self.heads_, self.heads))]

    def _sgd_weight(self) -> float | None:
        """The SGD head's weight: the mixture's last member (``/model`` listed the ridge heads' alone, whose weights
        then summed to less than 1: 0.62 in one run of review r139's)."""
        return float(self.mixer_.weights()[-1]) if self.sgd_ is not None else None

    # -- state -------------------------------------------------------------------------


def _check_heads(heads) -> None:
    """Refuse ``heads`` that are not a non-empty sequence of ``(forgetting, view)`` pairs, naming it: a
    single pair such as ``(1.0, "all")`` would otherwise fail with a bare ``len()`` error."""
    use = "use e.g. ((1.0, 'all'), (0.999, 'inputs'))"
    if isinstance(heads, str) or not isinstance(heads, Sequence) or not heads:
        raise ValueError(f"heads must be a non-empty tuple of (forgetting, view) pairs, got {heads!r}; {use}")
    for pair in heads:
        if (isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2 or not is_forgetting(pair[0])
                or pair[1] not in VIEWS):
            raise ValueError(f"heads must be (forgetting, view) pairs with a number in [{MIN_FORGETTING:g}, 1] and a "
                             f"view in {VIEWS}, got {pair!r} in heads={heads!r}; {use}")
