"""The memory a learner's torch tensors hold, which River's memory count leaves out.

River's ``Estimator._raw_memory_usage`` (behind ``_memory_usage``, ``progressive_val_score(...,
show_memory=True)`` and ``check_bounded_memory_growth``) walks the object graph with
:func:`gc.get_referents` and adds a numpy array's data buffer, which the garbage collector does not
see; a torch tensor's storage is not seen either, and counted as its ~80-byte header. A
``TrainableLearner``'s weights and Adam moments, a ``TorchBackbone``'s module and the heads on a GPU
live in tensors: River reported kilobytes for a network of megabytes (review r87: 11 KiB for 26 MB),
and less as it learned. :func:`tensor_bytes` walks the same graph the same way and adds each
storage once (views share one), gradients included.

>>> import torch
>>> class Holder:
...     def __init__(self):
...         self.w = torch.zeros(1000, dtype=torch.float64)
...         self.view = self.w[:10]  # the same storage: counted once
>>> tensor_bytes(Holder())
8000
"""

from __future__ import annotations

import gc
import sys
import types

__all__ = ["tensor_bytes"]

# as River's walk: these would drag in the whole interpreter (a class its module, a function its globals)
_NOT_WALKED = (type, types.ModuleType, types.FunctionType)


def tensor_bytes(root) -> int:
    """Bytes of the torch tensor storages reachable from ``root``, each storage once; 0 where torch
    was never imported (a learner without torch holds no tensor)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    seen: set[int] = set()
    storages: set[tuple] = set()
    size = 0
    pending = [root]
    while pending:
        walk = []
        for obj in pending:
            if isinstance(obj, _NOT_WALKED) or id(obj) in seen:
                continue
            seen.add(id(obj))
            walk.append(obj)
            if isinstance(obj, torch.Tensor):
                for t in (obj, obj.grad):
                    if t is not None:
                        storage = t.untyped_storage()
                        key = (str(t.device), storage.data_ptr(), storage.nbytes())
                        if key not in storages:
                            storages.add(key)
                            size += storage.nbytes()
        pending = gc.get_referents(*walk)
    return size
