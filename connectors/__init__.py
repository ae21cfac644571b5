"""The edges of stream-cl: Kafka and file sources and sinks, the Prometheus exporter, the daemon's loop.

Importing the package asks OpenBLAS for its AVX-512 kernels where the CPU has them and nothing
has loaded numpy yet (:func:`stream_cl.blas_kernels.prefer_avx512_kernels`): the entry points
(``stream-cl``, ``python -m connectors.daemon``) import it first, and OpenBLAS picks its
kernels once, when numpy loads it.
"""

from stream_cl.blas_kernels import prefer_avx512_kernels

prefer_avx512_kernels()
