"""``/model`` names the SGD head's mixture weight (review r139's left-out item).

The default learner mixes its ridge heads with an SGD head (``model.sgd_lr``, on by default). ``/model``
listed the ridge heads' weights alone: they summed to less than 1 (0.62 in one of r139's runs), and an
operator could not see where the rest went. ``sgd_weight`` now carries it, in ``LearnerStatus`` and
``/model``; a learner without an SGD head shows none.
"""

from types import SimpleNamespace

import pytest
from river import datasets

from connectors.daemon import DaemonMetrics
from connectors.http import describe_model
from stream_cl import OnlineContinualLearner


def _model(learner) -> dict:
    for x, y in datasets.Phishing().take(300):
        learner.predict_proba_one(x)
        learner.learn_one(x, y)
    return describe_model(SimpleNamespace(metrics=DaemonMetrics(), learner=learner,
                                          source=SimpleNamespace(assigned=set())))


def test_the_heads_and_the_sgd_head_weigh_one_in_all():
    body = _model(OnlineContinualLearner(seed=1))
    assert 0.0 < body["sgd_weight"] < 1.0
    assert sum(h["weight"] for h in body["heads"]) + body["sgd_weight"] == pytest.approx(1.0, abs=1e-12)


def test_a_learner_without_an_sgd_head_shows_none():
    body = _model(OnlineContinualLearner(seed=1, sgd_lr=None))
    assert "sgd_weight" not in body
    assert sum(h["weight"] for h in body["heads"]) == pytest.approx(1.0, abs=1e-12)
