"""Device choice: CUDA when present, CPU always."""

from __future__ import annotations

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


def resolve_device(device: str, features: int | None = None) -> str:
    """``"auto"`` -> ``"cuda"`` if a GPU is visible and the heads see at least
    ``AUTO_CUDA_MIN_FEATURES`` features (``features=None``: no width to go by), else ``"cpu"``;
    anything else is checked.

    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("auto", features=256)  # the default model: faster on the CPU, GPU or not
    'cpu'
    """
    if not isinstance(device, str):  # torch.device(None) raises a TypeError that names nothing
        raise ValueError(f"device must be a string, got {device!r}; use 'auto', 'cpu' or 'cuda'")
    if device == "auto":
        wide = features is None or features >= AUTO_CUDA_MIN_FEATURES
        return "cuda" if wide and torch.cuda.is_available() else "cpu"
    if device == "torch:cpu":  # the GPU code path on the CPU (tests, diagnostics)
        return device
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device {device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA GPU is visible; use 'auto' or 'cpu'")
    return str(dev)


def torch_device(device: str) -> str:
    """The torch device behind a resolved device string."""
    return "cpu" if device == "torch:cpu" else device
