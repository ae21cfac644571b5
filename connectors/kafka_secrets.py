"""The ``*_env`` keys of ``[kafka]``: a setting's value from the config, or from the environment
variable its ``_env`` key names (a Secret mounted as a variable), read when a client is made.

:func:`secret` reads one; :func:`refuse_empty_variable` is the config error for a variable that is
set but empty where a value is needed. The client options (:mod:`connectors.kafka_settings`) and the
TLS file checks (:mod:`connectors.kafka_tls`) read the secrets through them.
"""

from __future__ import annotations

import os

from stream_cl.config import ConfigError, KafkaConfig

__all__ = ["refuse_empty_variable", "secret"]


def secret(cfg: KafkaConfig, name: str) -> str | None:
    """``kafka.<name>``, or the environment variable ``kafka.<name>_env`` names: the one place the
    ``*_env`` keys are read (when a client is made, so at start)."""
    value = getattr(cfg, name)
    env = getattr(cfg, f"{name}_env")
    if env:
        if env not in os.environ:
            raise ConfigError(f"kafka.{name}_env: environment variable {env!r} is not set; export it or set kafka.{name}")
        value = os.environ[env]
    return value or None


def refuse_empty_variable(cfg: KafkaConfig, name: str, why: str, what: str) -> None:
    """The config error for ``kafka.<name>_env`` naming a variable that is set but empty (a Secret or
    an environment file mounted empty), where a value is needed (``why``): :func:`secret` reads it as
    no value, and the error would otherwise say that none is set, naming keys that are set."""
    env = getattr(cfg, f"{name}_env")
    if env and os.environ.get(env) == "":
        raise ConfigError(f"kafka.{name}_env: environment variable {env!r} is empty, and {why}; put {what} in it") from None
