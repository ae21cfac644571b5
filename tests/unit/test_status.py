"""Every learner answers status() with the snapshot the exporter and /model read."""

import pytest

from stream_cl.drift import DriftMonitor
from stream_cl.heads import AnalyticClassifier
from stream_cl.homeostasis import Homeostasis
from stream_cl.learner import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.replay import ReservoirReplay
from stream_cl.trainable import TrainableLearner

EVENTS = [({"u": float(i % 5), "c": f"c{i % 3}"}, str(i % 2)) for i in range(80)]


def _learn(model, partition=None):
    for x, y in EVENTS:
        model.learn_one(x, y, **({} if partition is None else {"partition": partition}))
    return model


def test_online_learner_status_names_its_heads_drift_need_and_replay():
    model = _learn(OnlineContinualLearner(backbone=RandomFeatures(width=8), key_units=0, device="cpu",
                                          replay=ReservoirReplay(max_samples=30), homeostasis=Homeostasis(),
                                          drift=DriftMonitor("adwin", response=("need", "forget"))))
    s = model.status()
    assert s.kind == "OnlineContinualLearner" and s.classes == ["0", "1"] and s.features == ["u", "c=c0", "c=c1", "c=c2"]
    assert [(h.base_forgetting, h.view) for h in s.heads] == [(lam, v) for lam, v in model.heads]
    assert [h.forgetting for h in s.heads] == model.forgetting_
    assert sum(h.weight for h in s.heads) < 1.0  # the SGD head holds the rest of the mixture
    assert s.drift.detector == "adwin" and s.drift.response == "need+forget" and s.drift.alarms == model.n_alarms_
    assert s.need == model.need_ and s.replay_samples == 30 and s.replay_bytes > 0
    assert s.learning_rates is None and s.partitions == [None]


def test_analytic_and_trainable_status():
    a = _learn(AnalyticClassifier(forgetting=0.99), partition="p0")
    s = a.status()
    assert s.kind == "AnalyticClassifier" and [(h.forgetting, h.base_forgetting) for h in s.heads] == [(0.99, None)]
    assert s.drift is None and s.need is None and s.replay_samples is None and s.partitions == ["p0"]
    t = _learn(TrainableLearner(hidden=(4,), micro_batch=8, device="cpu", homeostasis=Homeostasis()))
    s = t.status()
    assert s.kind == "TrainableLearner" and s.heads == [] and s.learning_rates == t.learning_rates_
    assert len(s.learning_rates) == 2 and s.need is not None and s.partitions == []


def test_trainable_learner_refuses_partitions_by_name():
    with pytest.raises(ValueError, match="keeps no partitions"):
        TrainableLearner(device="cpu").learn_one({"u": 1.0}, "a", partition=3)
