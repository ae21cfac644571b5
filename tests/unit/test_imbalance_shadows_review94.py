"""Review r94: with imbalance compensation, a shadow is judged class by class (a false alarm no
longer replaces a compensated head by a majority-class one); a restart due in the control period
of a new alarm is judged, not dropped; pseudo rows are learned at the sample weight of the event
they follow; a compensator state refused leaves the compensator as it was."""

import numpy as np
import pytest

from stream_cl.backbones import RandomFeatures
from stream_cl.drift import DriftMonitor
from stream_cl.heads import RidgeClassHead
from stream_cl.imbalance import ImbalanceCompensator
from stream_cl.learner import OnlineContinualLearner
from stream_cl.shadows import ShadowRestarter


def _restarter(balanced: bool) -> tuple:
    heads = [RidgeClassHead(1.0, 0.99, "cpu")]
    r = ShadowRestarter(covered=[0], restart_after=2, make_head=lambda i: RidgeClassHead(1.0, 0.99, "cpu"),
                        balanced=balanced)
    r.alarm(watched=10)
    r.control(heads, watched=10)  # the shadows start
    return r, heads


@pytest.mark.parametrize("balanced, replaced", [(False, [0]), (True, [])])
def test_a_shadow_right_on_the_majority_alone_does_not_replace_a_compensated_head(balanced, replaced):
    r, heads = _restarter(balanced)
    ys = ["a"] * 18 + ["b"] * 2
    shadow_hits = np.array([True] * 18 + [False] * 2)  # the majority class every time: 18 of 20
    head_hits = np.array([True] * 15 + [False] * 3 + [True] * 2)  # 17 of 20, every rare row right
    r.learn(lambda i: np.ones((20, 1)), ys, None, [head_hits], lambda scores, head, ys: shadow_hits)
    assert r.control(heads, watched=12) == replaced
    assert (r.n_restarts_, r.n_restarts_skipped_) == ((1, 0) if replaced else (0, 1))


def test_a_restart_due_in_the_period_of_a_new_alarm_is_judged_then_new_shadows_start():
    r, heads = _restarter(False)
    r.learn(lambda i: np.ones((4, 1)), ["a"] * 4, None, [np.zeros(4, dtype=bool)],
            lambda scores, head, ys: np.ones(4, dtype=bool))  # the shadow right every time, its head never
    r.alarm(watched=11)  # a new alarm before the control point where the shadows are due
    assert r.control(heads, watched=12) == [0] and r.n_restarts_ == 1  # was dropped, neither counted
    assert list(r.shadows_) == [0] and r.started_at_ == 12  # the new alarm's shadows


def _stationary(seed: int, n: int = 3000, d: int = 6):
    rng = np.random.default_rng(seed)
    mus = rng.normal(size=(3, d))
    ys = rng.choice(3, n, p=[0.9, 0.05, 0.05])
    X = rng.normal(size=(n, d)) * 1.5 + mus[ys]
    return [{f"x{j}": float(v) for j, v in enumerate(r)} for r in X], [int(y) for y in ys]


def _balanced_accuracy(P, classes, ys) -> float:
    pred, ys = np.array([classes[i] for i in P.argmax(1)]), np.array(ys)
    return float(np.mean([(pred[ys == c] == c).mean() for c in np.unique(ys)]))


def test_false_alarms_on_a_stationary_imbalanced_stream_leave_the_compensation_in_place():
    xs, ys = _stationary(1)

    def learner(drift):
        return OnlineContinualLearner(backbone=RandomFeatures(width=32, seed=0), device="cpu", control_every=8,
                                      heads=((1.0, "all"), (0.99, "all")), drift=drift,
                                      imbalance=ImbalanceCompensator(mode="reweight", min_count=3))

    alarms = DriftMonitor("page_hinkley", params={"threshold": 3.0, "min_instances": 30}, response=("reset",),
                          restart_after=60, direction="both")
    quiet, reset = learner(None), learner(alarms)
    plain = _balanced_accuracy(quiet.prequential_batch(xs, ys), quiet.classes_, ys)
    with_reset = _balanced_accuracy(reset.prequential_batch(xs, ys), reset.classes_, ys)
    assert reset.n_alarms_ >= 10 and reset.n_restarts_ <= reset.n_alarms_ // 4
    assert with_reset > plain - 0.005


@pytest.mark.parametrize("scale", [10.0, 0.1])
def test_pseudo_rows_follow_the_sample_weights_units(scale):
    rng = np.random.default_rng(0)
    ys = (rng.random(600) < 0.1).astype(int)
    X = rng.normal(size=(600, 3)) + ys[:, None]
    xs = [{f"x{j}": float(v) for j, v in enumerate(r)} for r in X]

    def run(w: float) -> np.ndarray:  # (no regularisation to speak of, no SGD head: only the units differ)
        m = OnlineContinualLearner(backbone=RandomFeatures(width=16), key_units=0, device="cpu", gamma=1e-6, sgd_lr=0,
                                   imbalance=ImbalanceCompensator(mode="pseudo", min_count=3))
        return m.prequential_batch(xs, ys.tolist(), sample_weight=[w] * 600)

    assert np.abs(run(1.0) - run(scale)).max() < 0.01  # pseudo rows at weight 1: 0.95 apart


def test_a_refused_compensator_state_leaves_it_as_it_was():
    comp = ImbalanceCompensator(mode="pseudo", min_count=2)
    rows = np.random.default_rng(0).normal(size=(30, 3))
    comp.step([rows], ["a"] * 25 + ["b"] * 5, np.ones(30, dtype=bool))
    before = comp.state_dict()
    bad = {**before, "counts": before["counts"] * 2, "columns": [[0, 1]]}  # two columns for a block of three
    with pytest.raises(ValueError, match="column orders"):
        comp.load_state_dict(bad)
    after = comp.state_dict()
    assert after["classes"] == before["classes"] and np.array_equal(after["counts"], before["counts"])
    assert all(np.array_equal(a, b) for a, b in zip(after["mean"], before["mean"]))
