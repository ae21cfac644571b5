"""Process-wide numeric settings.

One BLAS/torch thread per process is the default of the CLI and daemon: the engine's
matrix products are small to medium (a micro-batch against a few-hundred-wide head),
where a second thread costs more in wake-ups than it gives, and badly so when another
process (a broker, a second daemon) shares the cores. Scale out with more processes in
a consumer group instead.
"""

from __future__ import annotations

import threadpoolctl
import torch

_limiter = None


def set_threads(n: int) -> None:
    """Use ``n`` threads for torch and for every loaded BLAS (numpy's, scipy's)."""
    global _limiter
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n!r}")
    torch.set_num_threads(n)
    _limiter = threadpoolctl.threadpool_limits(limits=n, user_api="blas")
