"""OpenBLAS's AVX-512 kernels on CPUs that have AVX-512 but that OpenBLAS does not recognise.

OpenBLAS picks its kernels once, when it is loaded (when numpy or scipy is first imported),
from the CPU it detects. Some CPUs with AVX-512 are not detected as such: on an AMD EPYC
(Zen 4) virtual machine, numpy's and scipy's OpenBLAS 0.3.30-0.3.31 both choose their
"Haswell" (AVX2) kernels. Told ``OPENBLAS_CORETYPE=SkylakeX``, the kernels OpenBLAS itself
uses on Intel CPUs with the same AVX-512 subsets, the same VM ran ``dgemm`` at 106 GFLOP/s
against 65 and ``dsyrk`` (the ridge heads' rank-k update) at 90 against 52; the default
learner's batches of 256 ran 7%-18% faster with the same predictions (RESULTS.md 9s).

:func:`prefer_avx512_kernels` sets that variable when all of these hold: it is not set
already (a user's choice is kept), ``STREAM_CL_BLAS_KERNELS`` is not ``"default"`` (the
opt-out), numpy is not loaded yet (OpenBLAS would not read it any more), and the CPU
reports every AVX-512 subset those kernels use (F, CD, BW, DQ, VL; read from
``/proc/cpuinfo``, so Linux only). The ``connectors`` package (the ``stream-cl`` command,
``python -m connectors.daemon``) calls it when imported, before anything loads numpy; the library does not (a program that has imported numpy keeps OpenBLAS's own
choice): a Python user exports ``OPENBLAS_CORETYPE=SkylakeX``, or calls this before numpy loads.

>>> prefer_avx512_kernels(environ={"OPENBLAS_CORETYPE": "Zen"}, flags={"avx512f"}, numpy_loaded=False)
False
>>> env = {}
>>> prefer_avx512_kernels(environ=env, flags=set(AVX512_SUBSETS), numpy_loaded=False), env
(True, {'OPENBLAS_CORETYPE': 'SkylakeX'})
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

__all__ = ["AVX512_SUBSETS", "cpu_flags", "prefer_avx512_kernels"]

AVX512_SUBSETS = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")  # what OpenBLAS's SkylakeX kernels need


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The first CPU's feature flags (empty where ``/proc/cpuinfo`` cannot be read)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def prefer_avx512_kernels(environ: MutableMapping[str, str] | None = None, flags: set[str] | None = None,
                          numpy_loaded: bool | None = None) -> bool:
    """Set ``OPENBLAS_CORETYPE=SkylakeX`` where it helps and is safe (module docstring); True if it did."""
    environ = os.environ if environ is None else environ
    if environ.get("OPENBLAS_CORETYPE") or environ.get("STREAM_CL_BLAS_KERNELS", "").lower() == "default":
        return False
    if "numpy" in sys.modules if numpy_loaded is None else numpy_loaded:
        return False
    flags = cpu_flags() if flags is None else flags
    if not all(f in flags for f in AVX512_SUBSETS):
        return False
    environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    return True
