"""Any ``torch.nn.Module`` (or a TorchScript file on disk) as a frozen backbone."""

from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from pathlib import Path

import torch

from .base import Backbone

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
        missing feature reads as its mean); more raise ``ValueError``.
    dtype
        ``"float32"`` or ``"float64"``: the dtype the module runs in.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh())
    >>> TorchBackbone(net, input_dim=3).forward(torch.zeros(2, 3, dtype=torch.float64)).shape
    torch.Size([2, 5])
    """

    def __init__(self, module: torch.nn.Module | str, input_dim: int, dtype: str = "float32"):
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.module = module
        self.input_dim = input_dim
        self.dtype = dtype
        self.device_ = "cpu"
        self.net_ = self._load(module)
        self.out_ = None

    @staticmethod
    def _load(module):
        if isinstance(module, (str, Path)):
            path = Path(module)
            if not path.is_file():
                raise ValueError(f"backbone file {str(path)!r} not found; give the path of a torch.jit.save'd module")
            net = torch.jit.load(str(path), map_location="cpu")
        elif isinstance(module, torch.nn.Module):
            net = module
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
            if self.module is self.net_:
                state["module"] = None  # the same module (a ScriptModule was given): set back from net_
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
        if self.out_ is None:
            # probe where the module's weights are: a module may come already on a GPU, before
            # anything has moved it (device_ is still the CPU then)
            weight = next(iter(self.net_.parameters()), None)
            device = weight.device if weight is not None else self.device_
            with torch.no_grad():
                self.out_ = int(self.forward(torch.zeros(1, self.input_dim, dtype=torch.float64, device=device)).shape[1])
        return self.out_

    def identity(self) -> str:
        """The module's class, settings and a SHA-256 of its parameters and buffers."""
        h = hashlib.sha256()
        for name, t in list(self.net_.named_parameters()) + list(self.net_.named_buffers()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return f"TorchBackbone({type(self.net_).__name__}, input_dim={self.input_dim}, dtype={self.dtype}, sha256={h.hexdigest()[:16]})"

    def to(self, device: str) -> "TorchBackbone":
        self.device_ = device
        self.net_ = self.net_.to(device)
        return self

    def forward(self, Z: torch.Tensor, keys: list | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        # Inputs are positional (first-seen key order): a torch module has fixed input slots.
        d = Z.shape[1]
        if d > self.input_dim:
            raise ValueError(f"the stream has {d} features but the backbone takes input_dim={self.input_dim}; "
                             "raise input_dim or drop features in the mapping")
        if d < self.input_dim:
            Z = torch.nn.functional.pad(Z, (0, self.input_dim - d))
        with torch.no_grad():
            out = self.net_(Z.to(getattr(torch, self.dtype)))  # (b, out_features)
        return out.reshape(out.shape[0], -1).to(torch.float64)  # flatten any trailing dims


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
