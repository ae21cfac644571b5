"""The public names of the heads' linear algebra, for code outside :mod:`stream_cl.heads`.

The implementation is :mod:`stream_cl.heads._linalg`, private to the heads, which import it
directly. What other code may rely on is named here: :func:`warm` (``runtime.warm_up`` loads
the ridge factor's pivot check with it), and the CPU calls and chunk length that the
benchmarks time and vary (``benchmarks/head_speed.py``, ``batch_size.py``,
``one_event_breakdown.py``). These are the same objects, not copies: setting
``NumpyLinalg.max_chunk`` here sets it for every ridge head.

>>> NumpyLinalg.max_chunk == CPU_CHUNK, NumpyLinalg().name
(True, 'cpu')
"""

from ._linalg import CPU_CHUNK, GPU_CHUNK, NumpyLinalg, ScaledTriangle, warm

__all__ = ["CPU_CHUNK", "GPU_CHUNK", "NumpyLinalg", "ScaledTriangle", "warm"]
