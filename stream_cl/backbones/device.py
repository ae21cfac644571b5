"""Device choice: CUDA when present, CPU always."""

from __future__ import annotations

import re

import torch

# From this many random features (a backbone whose forward is light), "auto" puts a learner on
# a visible GPU.
# Measured on an H200 beside its host's CPU (benchmarks/RESULTS.md section 3, the crossover
# rows): one event at a time the CPU is faster up to 2,048 random features (18x at 256, 7x at
# 1,024, 2.4x at 2,048) and CUDA from 4,096, since one event is ~690 torch calls (a fixed
# ~5 ms); in batches of 256 CUDA is faster from 256 (1.5x) and far faster from 1,024 (12x,
# 38x at 2,048). At 2,048 and above the batched gain dwarfs the per-event loss; below it the
# default model (256) would lose 14-33x one event at a time for at most 2.4x in batches.
AUTO_CUDA_MIN_FEATURES = 2048

# the devices a learner runs on, as the errors name them ("torch:cpu", the GPU code path on the
# CPU, is taken too: it is for tests and diagnostics)
ACCEPTED = "'auto', 'cpu', 'cuda' or 'cuda:N'"
_CUDA = re.compile(r"cuda(?::(\d+))?")


def resolve_device(device: str, features: int | None = None) -> str:
    """``"auto"`` -> ``"cuda"`` if a GPU is visible and the heads see at least
    ``AUTO_CUDA_MIN_FEATURES`` features (``features=None``: no width to go by), else ``"cpu"``;
    anything else is checked (:func:`check_device`).

    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("auto", features=256)  # the default model: faster on the CPU, GPU or not
    'cpu'
    """
    check_device(device)
    if device == "auto":
        wide = features is None or features >= AUTO_CUDA_MIN_FEATURES
        return "cuda" if wide and torch.cuda.is_available() else "cpu"
    return device if device in ("cpu", "torch:cpu") else str(torch.device(device))


def check_device(device) -> None:
    """A ``ValueError`` naming ``device`` unless a learner can run on it: ``"auto"``, ``"cpu"``,
    ``"torch:cpu"``, or ``"cuda"`` / ``"cuda:N"`` with a visible GPU ``N``. Any other string torch
    parses ("mps", "meta", "xla") failed only later, with a torch traceback from inside the learner.

    >>> check_device("mps")
    Traceback (most recent call last):
    ...
    ValueError: device 'mps' is not one a learner runs on; use 'auto', 'cpu', 'cuda' or 'cuda:N'
    """
    if not isinstance(device, str):  # torch.device(None) raises a TypeError that names nothing
        raise ValueError(f"device must be a string, got {device!r}; use {ACCEPTED}")
    if device in ("auto", "cpu", "torch:cpu"):
        return
    cuda = _CUDA.fullmatch(device)
    if cuda is None:
        raise ValueError(f"device {device!r} is not one a learner runs on; use {ACCEPTED}")
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA GPU is visible; use 'auto' or 'cpu'")
    n = torch.cuda.device_count()
    if cuda.group(1) is not None and int(cuda.group(1)) >= n:  # torch would fail only at the first tensor
        raise ValueError(f"device {device!r} asked for, but {n} CUDA GPU{'s are' if n != 1 else ' is'} visible "
                         f"(cuda:0 to cuda:{n - 1}); use one of those, 'cuda' or 'auto'")


def torch_device(device: str) -> str:
    """The torch device behind a resolved device string."""
    return "cpu" if device == "torch:cpu" else device
