"""Review r93: an event the backbone refuses changes nothing, on every path (the per-event one, a
batch, a batch with replay, a new partition's first event, a run learned in several segments);
and a torch module's output is held to one width, to +-1e100, and cannot write into the
learner's rows."""

import copy

import numpy as np
import pytest
import torch

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import TorchBackbone
from stream_cl.replay import ReservoirReplay

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


class LogShift(torch.nn.Module):
    """Finite for standardised inputs above -10, -inf at the clip: an extreme value is refused."""

    def forward(self, z):
        return torch.log(z + 10.0)


GOOD = [{"a": float(i % 5), "b": float(i % 3)} for i in range(40)]
LABELS = [i % 2 for i in range(40)]
BAD = {"a": -1e6, "b": 0.0}  # standardised to the clip, -10: log(0)
PROBES = [{"a": float(a), "b": 1.0} for a in range(5)]


def _learner(**kw):
    return OnlineContinualLearner(backbone=TorchBackbone(LogShift(), input_dim=3), device="cpu", **kw)


def _same(model, twin):
    np.testing.assert_array_equal(model.scaler_.count, twin.scaler_.count)
    np.testing.assert_array_equal(model.scaler_.mean, twin.scaler_.mean)
    np.testing.assert_array_equal(model.scaler_.m2, twin.scaler_.m2)
    assert model.index_.names == twin.index_.names
    assert [model.predict_proba_one(x) for x in PROBES] == [twin.predict_proba_one(x) for x in PROBES]


@pytest.mark.parametrize("bad", [BAD, {**BAD, "c": 1.0}], ids=["known inputs", "a new input"])
def test_a_refused_learn_one_changes_nothing(bad):
    model = _learner()
    for x, y in zip(GOOD, LABELS):
        model.learn_one(x, y)
    twin = copy.deepcopy(model)
    with pytest.raises(ValueError, match="non-finite features"):
        model.learn_one(bad, 1)
    _same(model, twin)  # (the refused row had moved a's mean to -32,256 and made the feature dead)


def test_a_refused_batch_changes_nothing_and_its_retry_learns_each_event_once():
    model = _learner()
    model.prequential_batch(GOOD[:20], LABELS[:20])
    twin = copy.deepcopy(model)
    batch, ys = GOOD[20:30] + [BAD] + GOOD[30:], LABELS[20:30] + [1] + LABELS[30:]
    with pytest.raises(ValueError, match="non-finite features"):
        model.prequential_batch(batch, ys)
    _same(model, twin)
    for x, y in zip(batch, ys):  # the daemon's retry, event by event (stream_cl.prequential)
        try:
            model.prequential_batch([x], [y])
        except ValueError:
            pass
    for x, y in zip(GOOD[20:], LABELS[20:]):  # the good events alone, as the retry learns them
        twin.prequential_batch([x], [y])
    np.testing.assert_array_equal(model.scaler_.count, [40.0, 40.0])  # each good event absorbed once
    _same(model, twin)


def test_a_refused_batch_with_replay_leaves_the_buffer_as_it_was():
    model = _learner(replay=ReservoirReplay(max_samples=50, ratio=0.5, seed=0))
    model.prequential_batch(GOOD[:20], LABELS[:20])
    twin = copy.deepcopy(model)
    with pytest.raises(ValueError, match="non-finite features"):
        model.prequential_batch(GOOD[20:25] + [BAD], LABELS[20:25] + [1])
    assert (model.replay_.n_seen_, model.replay_.size_) == (twin.replay_.n_seen_, twin.replay_.size_) == (20, 20)
    _same(model, twin)
    np.testing.assert_array_equal(model.prequential_batch(GOOD[20:], LABELS[20:]),
                                  twin.prequential_batch(GOOD[20:], LABELS[20:]))  # the same draws after


class Switch(torch.nn.Module):
    """Tanh, or a failure once ``failing`` is set: a module that fails whatever its rows hold (a new
    partition's first row standardises to zeros)."""

    failing = False

    def forward(self, z):
        if self.failing:
            raise RuntimeError("out of order")
        return torch.tanh(z)


@pytest.mark.parametrize("how", ["learn_one", "prequential_batch", "a refused third row"])
def test_a_new_partitions_refused_first_event_makes_no_part(how, monkeypatch):
    model = OnlineContinualLearner(backbone=TorchBackbone(Switch(), input_dim=3), device="cpu")
    if how == "a refused third row":
        model = _learner()
    model.prequential_batch(GOOD, LABELS, partition="p0")
    twin = copy.deepcopy(model)
    monkeypatch.setattr(Switch, "failing", how != "a refused third row")
    with pytest.raises(ValueError, match="module failed|non-finite features"):
        if how == "learn_one":
            model.learn_one(GOOD[0], 1, partition="p1")
        else:
            model.prequential_batch([GOOD[0], GOOD[1], BAD], [0, 1, 1], partition="p1")
    monkeypatch.setattr(Switch, "failing", False)
    assert model.partitions_ == twin.partitions_ == ["p0"]
    _same(model, twin)


def test_a_run_in_several_segments_is_refused_before_its_first_segment_is_learned():
    model = _learner(heads=((0.99, "all"), (1.0, "inputs")))
    rng = np.random.default_rng(0)
    xs = [{"a": float(v), "b": float(w)} for v, w in rng.normal(size=(700, 2))]
    ys = [int(x["a"] > x["b"]) for x in xs]
    model.prequential_batch(xs[:100], ys[:100], partition=0)
    model.prequential_batch(xs[100:200], ys[100:200], partition=1)  # two parts, forgetting: segments of 256
    twin = copy.deepcopy(model)
    with pytest.raises(ValueError, match="non-finite features"):
        model.prequential_batch(xs[200:700] + [BAD], ys[200:700] + [1], partition=0)  # the last segment refused
    for p in (0, 1):
        assert ([model.predict_proba_one(x, partition=p) for x in PROBES]
                == [twin.predict_proba_one(x, partition=p) for x in PROBES])
    assert model.n_events_ == twin.n_events_


def test_a_module_whose_width_changes_is_refused():
    class Wide(torch.nn.Module):  # one feature per input for one row, two for a batch
        def forward(self, z):
            return z if z.shape[0] == 1 else torch.cat([z, z], dim=1)

    model = OnlineContinualLearner(backbone=TorchBackbone(Wide(), input_dim=3, dtype="float64"), device="cpu")
    model.learn_one(GOOD[0], 0)
    twin = copy.deepcopy(model)
    with pytest.raises(ValueError, match="returned 6 features per row, not the 3"):
        model.prequential_batch(GOOD[1:5], LABELS[1:5])
    _same(model, twin)


def test_huge_finite_features_are_refused():
    class Huge(torch.nn.Module):
        def forward(self, z):
            return z * 1e200

    model = OnlineContinualLearner(backbone=TorchBackbone(Huge(), input_dim=3, dtype="float64"), device="cpu")
    with pytest.raises(ValueError, match=r"beyond \+-1e\+100"):
        model.prequential_batch(GOOD, LABELS)
    assert not model.classes_


def test_a_module_writing_into_its_input_changes_nothing_else():
    torch.manual_seed(0)
    linear = torch.nn.Linear(3, 4).double()

    def learner(inplace):
        net = torch.nn.Sequential(torch.nn.ReLU(inplace=inplace), copy.deepcopy(linear))
        return OnlineContinualLearner(backbone=TorchBackbone(net, input_dim=3, dtype="float64"), device="cpu")

    rng = np.random.default_rng(1)
    xs = [{k: float(v) for k, v in zip("abc", row)} for row in rng.normal(size=(60, 3))]
    ys = [int(x["a"] + x["c"] > 0) for x in xs]
    np.testing.assert_array_equal(learner(True).prequential_batch(xs, ys), learner(False).prequential_batch(xs, ys))


def test_states_that_do_not_fit_the_backbone_are_refused():
    from stream_cl.backbones import RandomFeatures
    from stream_cl.backbones.key_units import KeyUnits
    from stream_cl.backbones.standardize import OnlineStandardizer

    rf = RandomFeatures(width=4)
    rf.forward(torch.zeros(1, 2, dtype=torch.float64))
    good = rf.state_dict()
    for bad in ({**good, "bias": good["bias"][:2]}, {**good, "weight": good["weight"] * np.nan}):
        with pytest.raises(ValueError, match="not a state of this backbone"):
            RandomFeatures(width=4).load_state_dict(bad)
    units = KeyUnits(per_key=2)
    with pytest.raises(ValueError, match="per_key=2"):
        units.load_state_dict({"thresholds": np.zeros((3, 2)), "signs": np.zeros((3, 1))})
    scaler = OnlineStandardizer()
    ok = {"clip": 10.0, "count": np.ones(2), "mean": np.zeros(2), "m2": np.ones(2)}
    scaler.load_state_dict(ok)
    for bad in ({**ok, "mean": np.array([0.0, np.nan])}, {**ok, "m2": -np.ones(2)}, {**ok, "count": np.ones(3)}):
        with pytest.raises(ValueError, match="standardiser's state"):
            OnlineStandardizer().load_state_dict(bad)


def test_a_torch_save_pickle_and_a_bad_input_dim_are_named(tmp_path):
    from stream_cl.backbones import RandomFeatures

    path = tmp_path / "pickled.pt"
    torch.save(torch.nn.Linear(2, 2), str(path))
    with pytest.raises(ValueError, match=r"not a TorchScript module.*torch.jit.save"):
        TorchBackbone(str(path), input_dim=2)
    for input_dim in (0, 3.5, None, True):
        with pytest.raises(ValueError, match="input_dim must be an int >= 1"):
            TorchBackbone(torch.nn.Linear(2, 2), input_dim=input_dim)
    fourier = RandomFeatures(width=0, kind="fourier")  # documented: no random features
    assert fourier.forward(torch.zeros(2, 3, dtype=torch.float64)).shape == (2, 0)
    assert fourier.forward_row(np.zeros(3), None, np.ones(3, bool)).shape == (0,)
