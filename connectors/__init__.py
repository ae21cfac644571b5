"""The edges of stream-cl: Kafka and file sources and sinks, the Prometheus exporter, the daemon's loop.

Importing the package asks OpenBLAS for its AVX-512 kernels where the CPU has them and nothing
has loaded numpy yet (:func:`stream_cl.blas_kernels.prefer_avx512_kernels`): the entry points
(``stream-cl``, ``python -m connectors.daemon``) import it first, and OpenBLAS picks its
kernels once, when numpy loads it. A ``STREAM_CL_BLAS_KERNELS`` it does not take changes nothing
here; the entry points refuse it as a config error (:func:`check_environment`).

Where things are (each module's docstring says more; ``tests/unit/test_code_map.py`` holds this
list to the package's modules):

* entry points: ``cli`` (``stream-cl``), ``daemon_cli`` (``python -m connectors.daemon``),
  ``early_signals`` (signals kept during the imports), ``report`` (``stream-cl report``)
* the file run: ``run`` (its loop), ``files`` (the source), ``followed_file``, ``bounded_lines``,
  ``csv_records``, ``file_sinks``, ``progress``, ``report_file``, ``writable``
* the Kafka daemon's loop: ``daemon`` (``Daemon``), ``router`` (one poll through the model),
  ``commit`` and ``transaction`` (outputs, offsets and state together), ``publisher``, ``sinks``,
  ``state`` (checkpoints and where each partition resumes), ``new_work``
* the daemon's run: ``daemon_build`` (its parts, in order), ``daemon_run`` (build, run, build again),
  ``daemon_signals``, ``daemon_exits`` (exit codes, ``failed`` lines), ``daemon_config``
* Kafka clients: ``kafka`` (the consumer-group source), ``kafka_assignment`` (rebalances),
  ``kafka_topics``, ``kafka_settings``, ``kafka_tls``, ``kafka_secrets``, ``kafka_bootstrap``,
  ``kafka_python_install``, ``authorisation``, ``unreadable_record``
* a consumer group's one model: ``partitions`` (a member's state by partition), ``changelog`` and
  ``changelog_parts`` (the compacted model changelog)
* observability: ``metric_names`` (the one list), ``prometheus``, ``http``, ``status``, ``logs``
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
