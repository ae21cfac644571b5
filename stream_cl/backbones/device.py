"""Device choice: CUDA when present, CPU always."""

from __future__ import annotations

import torch


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` if a GPU is visible, else ``"cpu"``; anything else is checked.

    >>> resolve_device("cpu")
    'cpu'
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
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
