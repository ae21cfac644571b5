"""numba for the engine's compiled loops: imported at the first use, machine code cached.

A loop that carries state from one row to the next (the SGD head's softmax steps, a narrow
ridge head's rank-1 updates), or a dozen numpy calls on one event's row, costs microseconds
in Python for a few dozen to a few thousand flops; compiled, it runs at a useful fraction of
the machine's rate. numba is imported only when a loop is first needed (~1 s), so a process
that never learns does not pay for it, and the machine code is cached on disk where a cache folder is
writable (the Dockerfile and the systemd unit set ``NUMBA_CACHE_DIR``).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["LazyJit", "jit"]


def jit(f: Callable, **options) -> Callable | None:
    """``f`` compiled by numba (``nopython``, with numba's ``options`` such as ``fastmath``), or
    ``None`` when numba cannot be imported (each caller keeps a way to work without it). The
    machine code is cached on disk; where no cache folder is writable (a read-only image
    without ``NUMBA_CACHE_DIR``) each process compiles anew (~2 s) instead of failing."""
    try:
        import numba
    except ImportError:  # pragma: no cover -- numba is a dependency; the callers work without it
        return None
    try:
        return numba.njit(cache=True, **options)(f)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(**options)(f)


class LazyJit:
    """``f`` compiled by :func:`jit` (with ``options``) at the first :meth:`get` (importing numba
    then, not at import).

    >>> def double(x):
    ...     return 2 * x
    >>> lazy = LazyJit(double)
    >>> lazy.get()(21)
    42
    """

    def __init__(self, f: Callable, **options):
        self.f = f
        self.options = options
        self._compiled: Callable | None = None
        self._tried = False

    def get(self) -> Callable | None:
        """The compiled function, or ``None`` without numba."""
        if not self._tried:
            self._compiled, self._tried = jit(self.f, **self.options), True
        return self._compiled
