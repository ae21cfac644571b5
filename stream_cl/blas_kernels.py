"""Which CPU kernels the learners' dense linear algebra runs on: OpenBLAS's AVX-512 kernels on
CPUs that OpenBLAS does not recognise, and MKL's triangular solves and Cholesky factors on Intel.

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

On an Intel Xeon with AVX-512 (RESULTS.md 9zi) OpenBLAS's triangular solve ``dtrsm`` ran at a
fifth of its own ``dgemm``'s rate and its ``dpotrf`` at a quarter, while the MKL that torch's
x86 wheels carry solved a wide head's chunk (473 x 256) 1.6x faster and factored its Gram matrix
(473 x 473) 1.6x faster, one thread each. :func:`mkl_solves_preferred` says whether the ridge
heads take those two calls from torch's MKL (:mod:`stream_cl.heads.mkl_solves`): on Intel CPUs
(``vendor_id`` ``GenuineIntel``) when torch was built with MKL, unless ``STREAM_CL_BLAS_KERNELS``
is ``"default"``; ``"mkl"`` asks for them on any CPU (on an AMD EPYC, Zen 4, it was no faster: RESULTS.md 9zk).
The choice is made once per process, so a process's numbers do not depend on timings.

>>> prefer_avx512_kernels(environ={"OPENBLAS_CORETYPE": "Zen"}, flags={"avx512f"}, numpy_loaded=False)
False
>>> env = {}
>>> prefer_avx512_kernels(environ=env, flags=set(AVX512_SUBSETS), numpy_loaded=False), env
(True, {'OPENBLAS_CORETYPE': 'SkylakeX'})
>>> mkl_solves_preferred("auto", vendor="GenuineIntel", has_mkl=True)
True
>>> mkl_solves_preferred("auto", vendor="AuthenticAMD", has_mkl=True)
False
>>> mkl_solves_preferred("mkl", vendor="AuthenticAMD", has_mkl=True)
True
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

__all__ = ["AVX512_SUBSETS", "SETTINGS", "cpu_flags", "cpu_vendor", "kernels_setting", "mkl_solves_preferred",
           "prefer_avx512_kernels"]

AVX512_SUBSETS = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")  # what OpenBLAS's SkylakeX kernels need
SETTINGS = ("auto", "default", "mkl")  # the values of STREAM_CL_BLAS_KERNELS ("" is "auto")


def _cpuinfo_field(name: str, path: str) -> str | None:
    """The first CPU's ``name`` line in ``/proc/cpuinfo`` (None where it cannot be read)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return None


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The first CPU's feature flags (empty where ``/proc/cpuinfo`` cannot be read)."""
    return set((_cpuinfo_field("flags", path) or "").split())


def cpu_vendor(path: str = "/proc/cpuinfo") -> str:
    """The first CPU's ``vendor_id`` (``"GenuineIntel"``, ``"AuthenticAMD"``; empty where unknown)."""
    return _cpuinfo_field("vendor_id", path) or ""


def kernels_setting(environ: MutableMapping[str, str] | None = None) -> str:
    """``STREAM_CL_BLAS_KERNELS`` as one of :data:`SETTINGS` (unset or empty: ``"auto"``); an error
    naming the variable and its values for anything else.

    >>> kernels_setting({"STREAM_CL_BLAS_KERNELS": "Default"})
    'default'
    >>> kernels_setting({"STREAM_CL_BLAS_KERNELS": "openblas"})
    Traceback (most recent call last):
    ...
    ValueError: STREAM_CL_BLAS_KERNELS='openblas' is not one of auto, default, mkl: unset it (auto: this CPU's fastest measured kernels), or set default (the libraries' own choices) or mkl (MKL's solves on any CPU)
    """
    environ = os.environ if environ is None else environ
    value = environ.get("STREAM_CL_BLAS_KERNELS", "").strip().lower() or "auto"
    if value not in SETTINGS:
        raise ValueError(f"STREAM_CL_BLAS_KERNELS={environ['STREAM_CL_BLAS_KERNELS']!r} is not one of "
                         f"{', '.join(SETTINGS)}: unset it (auto: this CPU's fastest measured kernels), or set "
                         "default (the libraries' own choices) or mkl (MKL's solves on any CPU)")
    return value


def mkl_solves_preferred(setting: str | None = None, vendor: str | None = None, has_mkl: bool | None = None) -> bool:
    """Whether the ridge heads take their triangular solves and Cholesky factors from torch's MKL
    (module docstring): ``setting`` (one of :data:`SETTINGS`; None: :func:`kernels_setting`'s, from the
    environment) ``"mkl"``, or ``"auto"`` on an Intel CPU, and torch built with MKL (its x86 wheels are)."""
    setting = kernels_setting() if setting is None else setting
    if setting == "default" or (setting == "auto" and (cpu_vendor() if vendor is None else vendor) != "GenuineIntel"):
        return False
    if has_mkl is None:
        import torch

        has_mkl = bool(torch.backends.mkl.is_available())
    return has_mkl


def prefer_avx512_kernels(environ: MutableMapping[str, str] | None = None, flags: set[str] | None = None,
                          numpy_loaded: bool | None = None) -> bool:
    """Set ``OPENBLAS_CORETYPE=SkylakeX`` where it helps and is safe (module docstring); True if it did."""
    environ = os.environ if environ is None else environ
    if environ.get("OPENBLAS_CORETYPE") or kernels_setting(environ) == "default":
        return False
    if "numpy" in sys.modules if numpy_loaded is None else numpy_loaded:
        return False
    flags = cpu_flags() if flags is None else flags
    if not all(f in flags for f in AVX512_SUBSETS):
        return False
    environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    return True
