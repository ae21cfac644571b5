"""The public names of the heads' linear algebra, for code outside :mod:`stream_cl.heads`.

The implementations are :mod:`stream_cl.heads._linalg` (the numpy path, the chunk lengths and
:func:`warm`; private to the heads, which import it directly) and
:mod:`stream_cl.heads.scaled_triangle`. What other code may rely on is named here: :func:`warm`
(``runtime.warm_up`` loads the ridge factor's pivot check with it), and the CPU calls and chunk
length that the benchmarks time and vary (``benchmarks/head_speed.py``, ``batch_size.py``,
``one_event_breakdown.py``). These are the same objects, not copies: setting
``NumpyLinalg.max_chunk`` here sets it for every ridge head.

>>> NumpyLinalg.max_chunk == CPU_CHUNK, NumpyLinalg().name
(True, 'cpu')
"""

from ._linalg import CPU_CHUNK, GPU_CHUNK, NumpyLinalg, warm
from .scaled_triangle import ScaledTriangle

__all__ = ["CPU_CHUNK", "GPU_CHUNK", "NumpyLinalg", "ScaledTriangle", "warm"]
