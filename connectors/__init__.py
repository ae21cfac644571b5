"""The edges of stream-cl: Kafka and file sources and sinks, the Prometheus exporter, the daemon's loop.

Importing the package asks OpenBLAS for its AVX-512 kernels where the CPU has them and nothing
has loaded numpy yet (:func:`stream_cl.blas_kernels.prefer_avx512_kernels`): the entry points
(``stream-cl``, ``python -m connectors.daemon``) import it first, and OpenBLAS picks its
kernels once, when numpy loads it. A ``STREAM_CL_BLAS_KERNELS`` it does not take changes nothing
here; the entry points refuse it as a config error (:func:`check_environment`).
"""

from stream_cl.blas_kernels import prefer_avx512_kernels

try:
    prefer_avx512_kernels()
except ValueError:  # an unknown STREAM_CL_BLAS_KERNELS: check_environment() says so, exit 2
    pass


def check_environment() -> None:
    """A :class:`~stream_cl.config.ConfigError` naming ``STREAM_CL_BLAS_KERNELS`` and its values where
    the variable holds one the learners do not take (:func:`stream_cl.blas_kernels.kernels_setting`)."""
    from stream_cl.blas_kernels import kernels_setting
    from stream_cl.config import ConfigError

    try:
        kernels_setting()
    except ValueError as e:
        raise ConfigError(str(e)) from None
