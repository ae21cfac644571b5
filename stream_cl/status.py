"""What a learner reports about itself: one snapshot the exporter and ``/model`` read.

Every learner of the engine answers :meth:`status` with a :class:`LearnerStatus`, so the
Prometheus collector and the daemon's ``/model`` endpoint read named fields instead of
probing for attributes that only some learners have. A field a learner does not have is
``None`` (no drift monitor, no homeostasis, no per-layer learning rates).

>>> from stream_cl.heads import AnalyticClassifier
>>> model = AnalyticClassifier().learn_one({"x": 1.0}, "a")
>>> s = model.status()
>>> s.kind, s.classes, s.features, [h.forgetting for h in s.heads], s.drift is None
('AnalyticClassifier', ['a'], ['x'], [1.0], True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HeadStatus", "DriftStatus", "LearnerStatus"]


@dataclass(frozen=True)
class HeadStatus:
    """One ridge head: its current forgetting factor, and where known its configured one,
    the view it learns on and its weight in the mixture."""

    forgetting: float
    base_forgetting: float | None = None
    view: str | None = None
    weight: float | None = None


@dataclass(frozen=True)
class DriftStatus:
    """The drift monitor (one per partition): its configuration and the alarms raised, over every partition."""

    detector: str
    response: str
    alarms: int
    counts: dict  # {detector: {response: count}}
    recent: list  # the latest alarms, the last learned partition's last (dicts with t, detector, signal, response)


@dataclass(frozen=True)
class LearnerStatus:
    """A learner at one moment (read by the exporter at scrape time, and by ``/model``)."""

    kind: str
    classes: list
    features: list  # input names in column order
    category_overflow: int = 0  # category values folded into "<other>" so far
    heads: list = field(default_factory=list)  # HeadStatus per ridge head (forgetting: the last learned partition's)
    drift: DriftStatus | None = None
    need: float | None = None  # homeostatic need of the last learned partition (each partition has its own)
    replay_samples: int | None = None  # over every partition's buffer
    replay_bytes: int | None = None
    learning_rates: list | None = None  # per layer (trainable learner)
    sgd_weight: float | None = None  # the SGD head's mixture weight (the heads' and this sum to 1); None without one
    partitions: list = field(default_factory=list)  # partitions the learner holds a part of
