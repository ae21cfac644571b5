"""Review r105: a mixture's weights sum to 1 only within rounding, so a sure prediction's
p(true class) can read 1 + 2.2e-16; the loss fed to the monitors is clamped to [0, 1]
(Homeostasis, which refuses a loss outside it since r92, had stopped ``learn_one``)."""

import numpy as np

from stream_cl import OnlineContinualLearner
from stream_cl.homeostasis import Homeostasis
from stream_cl.mixture_row import mix_row


def test_a_mixture_of_sure_members_can_pass_one():
    S = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # (members, classes): each member sure of class 0
    p = mix_row(S, 0, 1.0, np.array([0.5, 0.61, 0.3]), 100.0, probabilities=True)
    assert p[0] > 1.0  # the rounding the loss must survive


def test_sure_heads_feed_homeostasis_a_loss_in_the_unit_interval():
    rng = np.random.default_rng(0)
    model = OnlineContinualLearner(device="cpu", homeostasis=Homeostasis(), sgd_lr=None, temperature=0.001)
    for _ in range(300):
        y = int(rng.integers(2))
        model.learn_one({"a": float(y + rng.normal() * 0.05), "b": float(rng.normal())}, y)  # raised at event 17
    assert model.homeostasis_.n_ == 300
    assert 0.0 <= model.homeostasis_.loss_recent_ <= 1.0
