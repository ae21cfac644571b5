"""Any ``torch.nn.Module`` (or a TorchScript file on disk) as a frozen backbone."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import warnings
from pathlib import Path

import torch

from ..checks import check_dtype, check_int
from ..encoding import MAX_ABS_VALUE
from .base import Backbone

# The largest feature a module may return, as the largest input (encoding.MAX_ABS_VALUE): the heads'
# sums of squares of larger ones overflow (a module returning z * 1e200 made X'X inf for good, r93).
MAX_FEATURE = MAX_ABS_VALUE

__all__ = ["TorchBackbone"]


class TorchBackbone(Backbone):
    """Wrap a module mapping (b, input_dim) float tensors to (b, out_features).

    Parameters
    ----------
    module
        A ``torch.nn.Module``, or the path of a TorchScript file (``torch.jit.save``),
        loaded with ``torch.jit.load`` (no pickle is executed).
    input_dim
        Inputs the module expects. Fewer standardised inputs are zero-padded (a
        missing feature reads as its mean); an event that would bring more is refused
        with a ``ValueError`` before the learner changes anything (``max_inputs``).
    dtype
        ``"float32"`` or ``"float64"``: the dtype the module runs in (a copy of it is cast).

    The module given is not changed: a frozen copy runs (in eval mode, without gradients). Its
    output must be one row per input row, of as many features for every batch, each finite and
    within +-1e100: anything else is a ``ValueError`` naming the backbone, and the learner undoes
    what the event had changed before the module ran (its standardiser's statistics, its new
    inputs' columns), so a refused event changes nothing (non-finite features would make the
    heads' statistics NaN for good). The module runs on a copy of the learner's rows: one that
    writes into its input changes nothing else.

    The module's inputs are positional: input ``j`` is the ``j``-th key the learner met, in the
    order in which the events first brought their keys. Unlike ``RandomFeatures`` (whose weights
    follow each key), the model then depends on the key order of the event that first brings
    some keys, and River's ``check_estimator`` fails its key-shuffle check. Give every event's
    dict its keys in one order (a ``mapping.features`` list in the daemon), or set the learner's
    ``hash_width`` (each key hashed to fixed inputs; ``input_dim`` at least that).

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh())
    >>> TorchBackbone(net, input_dim=3).forward(torch.zeros(2, 3, dtype=torch.float64)).shape
    torch.Size([2, 5])
    """

    def __init__(self, module: torch.nn.Module | str, input_dim: int, dtype: str = "float32"):
        check_dtype(dtype)
        check_int(input_dim, "input_dim", 1, "8 (the inputs the module takes)")
        self.module = module
        self.input_dim = input_dim
        self.dtype = dtype
        self.device_ = "cpu"
        self.net_ = self._load(module).to(getattr(torch, dtype))
        self.out_ = None

    @property
    def max_inputs(self) -> int:
        """``input_dim``: an event whose inputs would pass it is refused before the learner changes."""
        return self.input_dim

    @staticmethod
    def _load(module):
        if isinstance(module, (str, Path)):
            path = Path(module)
            if not path.is_file():
                raise ValueError(f"backbone file {str(path)!r} not found; give the path of a torch.jit.save'd module")
            try:
                net = torch.jit.load(str(path), map_location="cpu")
            except Exception as e:  # noqa: BLE001 -- torch.save's pickle, no module at all, or a corrupt one:
                # torch's own words name neither the file nor the fix, and a corrupt archive raises more than a
                # RuntimeError (an IndexError for a name the module lacks, a UnicodeDecodeError; review r138)
                said = (str(e).splitlines() or [type(e).__name__])[0][:120]
                raise ValueError(f"backbone file {str(path)!r} is not a TorchScript module ({said}); "
                                 "save it with torch.jit.save(torch.jit.script(module), path): a torch.save'd "
                                 "pickle is not loaded, as it could run any code") from None
        elif isinstance(module, torch.jit.ScriptModule):  # copied as torch.jit.save writes it (deepcopy breaks it)
            buffer = io.BytesIO()
            with _no_jit_deprecation():
                torch.jit.save(module, buffer)
                buffer.seek(0)
                net = torch.jit.load(buffer)
        elif isinstance(module, torch.nn.Module):
            net = copy.deepcopy(module)  # frozen and cast here: the caller's module stays as it was
        else:
            raise TypeError(f"module must be a torch.nn.Module or a TorchScript path, got {type(module).__name__}")
        return _frozen(net)

    def __getstate__(self) -> dict:
        """A TorchScript module refuses pickle: it travels as the bytes ``torch.jit.save`` writes
        (its tensors keep their devices). ``copy.deepcopy`` takes this way too."""
        state = self.__dict__.copy()
        if isinstance(self.net_, torch.jit.ScriptModule):
            buffer = io.BytesIO()
            with _no_jit_deprecation():
                torch.jit.save(self.net_, buffer)
            state["net_"] = buffer.getvalue()
        if isinstance(self.module, torch.jit.ScriptModule):
            state["module"] = None  # (it refuses pickle) the frozen copy stands for it: set back from net_
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if isinstance(self.net_, bytes):
            with _no_jit_deprecation():
                self.net_ = _frozen(torch.jit.load(io.BytesIO(self.net_)))
            if self.module is None:
                self.module = self.net_

    @property
    def out_features(self) -> int:
        """Features the module returns per row, found by running it once on a zero row (then kept)."""
        if self.out_ is None:
            # probe where the module's weights are: a module may come already on a GPU, before
            # anything has moved it (device_ is still the CPU then)
            weight = next(iter(self.net_.parameters()), None)
            device = weight.device if weight is not None else self.device_
            with torch.no_grad():
                self.out_ = int(self.forward(torch.zeros(1, self.input_dim, dtype=torch.float64, device=device)).shape[1])
        return self.out_

    def state_dict(self) -> dict:
        """The module's identity (:meth:`identity`): a checkpoint restores only into the same module."""
        return {"identity": self.identity()}

    def load_state_dict(self, state) -> None:
        """Check that a :meth:`state_dict` is this module's (``ValueError`` if not; one without an identity,
        written before it was kept, passes). Nothing is loaded: the weights are the module's own."""
        saved = state.get("identity") if state else None  # absent in checkpoints from before it was kept
        if saved is not None and saved != self.identity():
            raise ValueError(f"the checkpoint's backbone is {saved}, this learner's {self.identity()}: restore it "
                             "with the module (and input_dim, dtype) it was written with")

    def identity(self) -> str:
        """The module's class, settings and a SHA-256 of its parameters and buffers (computed once:
        the module is frozen, and every checkpoint carries it). Not its code: two modules of one class
        name with the same weights whose layers without weights differ (a ``Tanh`` for a ``ReLU``; a
        TorchScript module is always ``RecursiveScriptModule``) read alike, and a checkpoint of one
        restores into the other. Keep the module's file beside the checkpoints it wrote."""
        if getattr(self, "identity_", None) is None:
            h = hashlib.sha256()
            for name, t in list(self.net_.named_parameters()) + list(self.net_.named_buffers()):
                h.update(name.encode())
                h.update(t.detach().cpu().contiguous().numpy().tobytes())
            self.identity_ = (f"TorchBackbone({type(self.net_).__name__}, input_dim={self.input_dim}, "
                              f"dtype={self.dtype}, sha256={h.hexdigest()[:16]})")
        return self.identity_

    def to(self, device: str) -> "TorchBackbone":
        """Move the frozen module to the torch ``device``; returns ``self``."""
        self.device_ = device
        self.net_ = self.net_.to(device)
        return self

    def forward(self, Z: torch.Tensor, keys: list | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`Backbone.forward`: the module's float64 features (b, out_features) of ``Z`` (b, d_in) zero-padded
        to ``input_dim`` (``keys`` and ``mask`` unused); a ``ValueError`` for more inputs, a module that fails,
        output of another shape or width, or features non-finite or past +-1e100."""
        # Inputs are positional (first-seen key order): a torch module has fixed input slots.
        d = Z.shape[1]
        if d > self.input_dim:
            raise ValueError(f"the stream has {d} features but the backbone takes input_dim={self.input_dim}; "
                             "raise input_dim or drop features in the mapping")
        if d < self.input_dim:
            Z = torch.nn.functional.pad(Z, (0, self.input_dim - d))
        with torch.no_grad():
            try:
                # a copy: a module that writes into its input (ReLU(inplace=True)) must not change the
                # learner's standardised rows, which the key units and the "inputs" view read after it
                out = self.net_(Z.to(getattr(torch, self.dtype), copy=True))  # (b, out_features)
            except Exception as e:  # noqa: BLE001 -- a module that does not take these rows, whatever it raises
                # (an AssertionError or IndexError had passed the learner's undo, which takes a ValueError; r96)
                raise ValueError(f"{self.identity()}: the module failed on a ({Z.shape[0]}, {self.input_dim}) "
                                 f"{self.dtype} batch ({_cause(e)[:200]}); check input_dim against the module") from None
        if not isinstance(out, torch.Tensor) or out.dim() < 1 or out.shape[0] != Z.shape[0]:
            what = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"{self.identity()}: the module returned {what} for {Z.shape[0]} rows; a backbone "
                             "module must return one feature row per input row, as one tensor")
        out = out.reshape(out.shape[0], -1)  # (b, out_features): flatten any trailing dims
        if self.out_ is not None and out.shape[1] != self.out_:  # the heads' columns are the first rows' features
            raise ValueError(f"{self.identity()}: the module returned {out.shape[1]} features per row, not the "
                             f"{self.out_} it returned before; a backbone module must return as many for every batch")
        if self.out_ is None:  # the first rows fix the width (a learner without max_columns never asks out_features)
            self.out_ = int(out.shape[1])
        out = out.to(torch.float64)  # (compared in float32, the bound would read as inf)
        if out.device.type != "meta" and not bool((out.abs() <= MAX_FEATURE).all()):  # (meta: shapes only, no values)
            raise ValueError(f"{self.identity()}: the module returned non-finite features (NaN or inf) or features "
                             f"beyond +-{MAX_FEATURE:g} for these inputs; refused before the heads learn them")
        return out


def _cause(error: Exception) -> str:
    """``str(error)``, but for a TorchScript module's error, which is its interpreter's traceback, the
    last line, which says what went wrong (``RuntimeError: mat1 and mat2 shapes cannot be multiplied
    (1x3 and 5x2)``): the first 200 characters held only the traceback's header (review r138).

    >>> _cause(RuntimeError("The following operation failed in the TorchScript interpreter.\\n  ...\\n"
    ...                     "RuntimeError: shapes cannot be multiplied\\n"))
    'RuntimeError: shapes cannot be multiplied'
    >>> _cause(IndexError("Argument passed to at() was not in the map."))
    'Argument passed to at() was not in the map.'
    """
    text = str(error)
    if "TorchScript interpreter" in text.partition("\n")[0]:
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[-1].strip()
    return text


def _frozen(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` in inference mode, its parameters without gradients: a frozen backbone."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@contextlib.contextmanager
def _no_jit_deprecation():
    """Silence torch's FutureWarning on ``torch.jit.save``/``load`` while pickling: the user chose a
    TorchScript backbone (and was warned when it loaded), not this serialisation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield
