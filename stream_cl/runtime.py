"""Process-wide numeric settings, and the learners' default for their batched arithmetic.

One BLAS/torch thread per process is the default of the CLI and daemon: the engine's
matrix products are small to medium (a micro-batch against a few-hundred-wide head),
where a second thread costs more in wake-ups than it gives, and badly so when another
process (a broker, a second daemon) shares the cores. Scale out with more processes in
a consumer group instead.

A library user who never calls :func:`set_threads` gets the same default for the
learners' batched methods (:func:`one_blas_thread`): numpy and scipy each bring their own
OpenBLAS, both start a thread per core, and their spinning workers fight over the cores
between calls. On the 2-vCPU benchmark machine that made ``prequential_batch`` of the
default learner 7.6x-22x slower than with one thread (``benchmarks/threads.py``). One event
at a time nothing is confined: the level-2 BLAS of a single row gains a little from a
second thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import threadpoolctl

_limiter = None
_managed = False  # set_threads was called: the process chose its threads, the learners leave them
_libraries: list | None = None  # threadpoolctl's controllers of the loaded BLAS libraries


def set_threads(n: int) -> None:
    """Use ``n`` threads for torch and for every loaded BLAS (numpy's, scipy's).

    ``0`` leaves every library at its own thread count, and the learners' batched
    methods too (no :func:`one_blas_thread`)."""
    global _limiter, _managed
    if n < 0:
        raise ValueError(f"threads must be >= 0 (0: the libraries' own counts), got {n!r}")
    _managed = True
    if n == 0:
        return
    import torch  # here: the learners that only confine BLAS need not load it

    torch.set_num_threads(n)
    _limiter = threadpoolctl.threadpool_limits(limits=n, user_api="blas")


def one_blas_thread(method: Callable) -> Callable:
    """Run a learner's batched ``method(self, rows, ...)`` with one BLAS thread (module docstring),
    unless :func:`set_threads` chose the process's threads or ``rows`` is a single event.

    Each BLAS library's thread count comes back when the method returns. Confining costs a
    few ctypes calls (~2 µs; threadpoolctl's own ``limit`` took ~13 µs, a tenth of a small
    batch's time); the libraries are found once, at the first call."""

    @functools.wraps(method)
    def confined(self, rows, *args, **kwargs):
        if _managed or len(rows) < 2:
            return method(self, rows, *args, **kwargs)
        libs = _blas_libraries()
        counts = [lib.get_num_threads() for lib in libs]
        for lib, n in zip(libs, counts):
            if n != 1:
                lib.set_num_threads(1)
        try:
            return method(self, rows, *args, **kwargs)
        finally:
            for lib, n in zip(libs, counts):
                if n != 1:
                    lib.set_num_threads(n)

    return confined


def _blas_libraries() -> list:
    global _libraries
    if _libraries is None:  # scans the loaded libraries (~2 ms)
        _libraries = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    return _libraries
