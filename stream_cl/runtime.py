"""Process-wide numeric settings, and the learners' default threads when none are set.

One BLAS/torch thread per process is the default of the CLI and daemon: the engine's
matrix products are small to medium (a micro-batch against a few-hundred-wide head),
where a second thread costs more in wake-ups than it gives, and badly so when another
process (a broker, a second daemon) shares the cores. Scale out with more processes in
a consumer group instead.

A library user who never calls :func:`set_threads` gets the same default inside the
learners (:func:`one_blas_thread` on their batched and per-event methods): numpy and
scipy each bring their own OpenBLAS, both start a thread per core, and their spinning
workers fight over the cores between calls. On the 2-vCPU benchmark machine that made
``prequential_batch`` of the default learner 7x-19x slower than with one thread, a learner
with replay 9x-17x slower one event at a time, and the default learner's per-event path
1.7x-1.9x slower on its wider heads (``benchmarks/threads.py``, RESULTS.md 9e).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import threadpoolctl

from .checks import check_int

_limiter = None
_managed = False  # set_threads was called: the process chose its threads, the learners leave them
_libraries: list | None = None  # threadpoolctl's controllers of the loaded BLAS libraries
_torch_default: int | None = None  # torch's own thread count, before set_threads first changed it


def set_threads(n: int) -> None:
    """Use ``n`` threads for torch and for every loaded BLAS (numpy's, scipy's).

    ``0`` leaves every library at its own thread count, inside the learners too (no
    :func:`one_blas_thread`); after an earlier call, it gives them their own counts back."""
    global _limiter, _managed, _torch_default
    # checked before anything changes: a refused call must leave the learners' one-thread default on
    check_int(n, "set_threads(n): n", 0, "1 (0: the libraries' own counts)")
    if _limiter is not None:  # an earlier call's limits go first: 0 then means the libraries' own counts
        _limiter.restore_original_limits()
        _limiter = None
    if n:
        import scipy.linalg  # noqa: F401 -- the ridge heads' BLAS: limited only if loaded (the learners load lazily)
        import torch  # here: the learners that only confine BLAS need not load it

        if _torch_default is None:
            _torch_default = torch.get_num_threads()
        torch.set_num_threads(int(n))
        _limiter = threadpoolctl.threadpool_limits(limits=int(n), user_api="blas")
    elif _torch_default is not None:  # torch was set by an earlier call: its own count again
        import torch

        torch.set_num_threads(_torch_default)
    _managed = True


def threads_chosen() -> bool:
    """Whether :func:`set_threads` chose the process's threads (then the learners leave every library's
    count as it is; else they run their BLAS calls with one thread, :func:`one_blas_thread`)."""
    return _managed


def warm_up() -> None:
    """Load now what the learners would otherwise load at their first batch or event: numba and
    its compiled loops (the SGD head's, the narrow ridge heads', one row's ridge update, the ridge
    factor's pivot check, one event's standardised row, design row and mixture; ~0.5 s from the disk
    cache, seconds on a cold one). A service calls this at start, so the first events' latency does
    not pay for it."""
    from . import mixture_row
    from .backbones import design_row, standardize_row
    from .heads import linalg, ridge_one, ridge_rows, sgd_rows

    sgd_rows.warm()
    ridge_rows.warm()
    ridge_one.warm()
    linalg.warm()  # the first chunk's Cholesky factor checks its pivots with it
    design_row.warm()
    standardize_row.warm()
    mixture_row.warm()


def one_blas_thread(method: Callable) -> Callable:
    """Run a learner's method with one thread in every BLAS library (module docstring), torch's
    intra-op pool included, unless :func:`set_threads` chose the process's threads. Each library's
    count comes back when the method returns. Confining costs a few ctypes calls (~1 µs a library;
    threadpoolctl's ``limit`` took ~13 µs; torch's count ~0.2 µs); the libraries are found once, at
    the first call.

    torch's pool is not one of threadpoolctl's BLAS libraries, but it runs torch's MKL products: the
    trainable learner's network, a torch-module backbone, the random features of a batch. Left at a
    thread per core, a ``TrainableLearner`` ran 5x-100x slower on two busy cores (review r138).
    torch is confined only where it is loaded: a learner that does not use it does not load it."""

    @functools.wraps(method)
    def confined(self, *args, **kwargs):
        libs = () if _managed else _blas_libraries()
        counts = [lib.get_num_threads() for lib in libs]
        for lib, n in zip(libs, counts):
            if n != 1:
                lib.set_num_threads(1)
        torch = None if _managed else sys.modules.get("torch")
        torch_count = torch.get_num_threads() if torch is not None else 1
        if torch_count != 1:
            torch.set_num_threads(1)
        try:
            return method(self, *args, **kwargs)
        finally:
            for lib, n in zip(libs, counts):
                if n != 1:
                    lib.set_num_threads(n)
            if torch_count != 1:
                torch.set_num_threads(torch_count)

    return confined


def _blas_libraries() -> list:
    """threadpoolctl's controllers of the loaded BLAS libraries (scanned once, ~2 ms)."""
    global _libraries
    if _libraries is None:
        _libraries = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    return _libraries
