"""Review r138: a TorchScript file that torch cannot read, or a module of another input width, is a
``ValueError`` that names the file or the backbone, and says what went wrong and the fix; and the
torch modules' shapes and devices are held as documented.

* A corrupt archive raised what torch raised when it was not a ``RuntimeError``: an ``IndexError``
  ("Argument passed to at() was not in the map.", for a name the module's pickle lacks) or a
  ``UnicodeDecodeError``, neither naming the file nor saying it is the backbone's. Flipping each
  byte of a small module's file in turn: 3 flips in 300 gave the IndexError, 21 the decode error.
* A TorchScript module that fails on the learner's rows (one saved for 5 inputs, ``input_dim=3``) was
  named with the first 200 characters of torch's message, which are its interpreter's traceback
  header: the cause ("mat1 and mat2 shapes cannot be multiplied (1x3 and 5x2)") was cut off.
* A module whose output width changed between batches was refused only where the learner had asked
  the backbone its width (``max_columns`` set): with ``max_columns=None`` the heads learned it.
* ``TrainableLearner(device="torch:cpu")``, a device the device check takes, failed at its first event.
"""

import copy
import io
import zipfile

import pytest
import torch

from stream_cl import OnlineContinualLearner
from stream_cl.backbones import TorchBackbone

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # torch deprecates TorchScript


def _saved(tmp_path, module: torch.nn.Module, name: str = "good.pt"):
    path = tmp_path / name
    torch.jit.save(torch.jit.script(module), str(path))
    return path


def _with_pickle(path, change) -> bytes:
    """The archive at ``path`` with its module pickle (``data.pkl``) changed by ``change``."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info.filename, change(data) if info.filename.endswith("/data.pkl") else data)
    return out.getvalue()


@pytest.mark.parametrize("change", [
    lambda d: d.replace(b"_is_full_backward_hook", b"_is_full_backward_hooX", 1),  # torch: IndexError
    # (not "container\nSequential": a process that scripted another Sequential before names this one
    # "container.___torch_mangle_N", and the file was then left whole: the full suite failed on it)
    lambda d: d.replace(b"nn.modules.container", b"nn.modules.containe\xff", 1),  # torch: UnicodeDecodeError
], ids=["a name the module lacks", "bytes that are not UTF-8"])
def test_a_corrupt_torchscript_file_is_named_with_the_fix(tmp_path, change):
    torch.manual_seed(0)
    good = _saved(tmp_path, torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh()))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(_with_pickle(good, change))
    with zipfile.ZipFile(good) as whole, zipfile.ZipFile(bad) as cut:  # the module's pickle itself changed
        assert [n for n in whole.namelist() if whole.read(n) != cut.read(n)] == [n for n in whole.namelist()
                                                                                 if n.endswith("/data.pkl")]
    with pytest.raises(ValueError, match=r"backbone file '.*bad\.pt' is not a TorchScript module \(.+\); save it "
                                         r"with torch\.jit\.save"):
        TorchBackbone(str(bad), input_dim=3)
    TorchBackbone(str(good), input_dim=3)  # (the archive as written loads)


def test_a_torchscript_module_of_another_input_width_says_why_it_failed(tmp_path):
    torch.manual_seed(0)
    path = _saved(tmp_path, torch.nn.Linear(5, 2), "five.pt")
    with pytest.raises(ValueError) as caught:
        OnlineContinualLearner(backbone=TorchBackbone(str(path), input_dim=3), key_units=0, device="cpu")
    said = str(caught.value)
    assert "shapes cannot be multiplied (1x3 and 5x2)" in said and "check input_dim against the module" in said
    assert "Traceback" not in said and "\n" not in said


class _Wide(torch.nn.Module):
    """One feature per input for one row, two for a batch: a module whose width is not fixed."""

    def forward(self, z):
        return z if z.shape[0] == 1 else torch.cat([z, z], dim=1)


def test_a_module_whose_width_changes_is_refused_without_max_columns_too():
    """Found by review r138: the width a module must keep was set only where something asked the
    backbone its ``out_features``; a learner with ``max_columns=None`` never did, so a batch whose
    features were twice as wide was learned: every backbone head grew by 3 columns that meant
    nothing, and from then on every single event's learning failed in the heads ("design rows have
    6 columns, fewer than the head's 9")."""
    model = OnlineContinualLearner(backbone=TorchBackbone(_Wide(), input_dim=3, dtype="float64"), key_units=0,
                                   device="cpu", max_columns=None)
    model.learn_one({"a": 1.0, "b": 2.0}, 0)
    twin = copy.deepcopy(model)
    with pytest.raises(ValueError, match="returned 6 features per row, not the 3"):
        model.prequential_batch([{"a": 2.0, "b": 1.0}, {"a": 3.0, "b": 0.0}], [1, 0])
    assert [h.ridge.n_features for h in model.heads_] == [h.ridge.n_features for h in twin.heads_]
    probe = {"a": 0.5, "b": 1.0}
    assert model.predict_proba_one(probe) == twin.predict_proba_one(probe)
    model.learn_one(probe, 1)  # and it goes on learning


def test_the_trainable_learner_runs_on_torch_cpu_which_the_device_check_takes():
    """Found by review r138: ``check_device`` takes ``"torch:cpu"`` (so ``model.device`` does), but the
    trainable learner gave the string itself to torch: the first event raised torch's raw
    ``RuntimeError: Invalid device string: 'torch:cpu'`` (``stream-cl run`` ended in a traceback)."""
    from stream_cl.trainable import TrainableLearner

    xs = [{"a": float(i % 5), "b": float(i % 3)} for i in range(24)]
    ys = [i % 2 for i in range(24)]
    models = [TrainableLearner(hidden=(4,), micro_batch=4, device=device) for device in ("torch:cpu", "cpu")]
    for model in models:
        model.prequential_batch(xs[:12], ys[:12])
        for x, y in zip(xs[12:], ys[12:]):
            model.learn_one(x, y)
    assert models[0].predict_proba_batch(xs).tolist() == models[1].predict_proba_batch(xs).tolist()
