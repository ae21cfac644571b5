"""The client settings every Kafka client of the daemon shares: the consumer, the producers, the admin clients.

:func:`client_options` gives the options they all take (servers, id, security, with the secrets
the ``*_env`` keys name read from the environment), :func:`producer_options` a producer's on top of
them, :func:`group_instance_id` and :func:`transactional_id` the member and producer ids.
:func:`check_kafka_config` runs the ``[kafka]`` rules that need no broker before any client is
made: an unreachable broker must not hide a config error.
"""

from __future__ import annotations

import hashlib
import os
import socket

from stream_cl.config import Config, ConfigError, KafkaConfig
from stream_cl.config.kafka_checks import bootstrap_entries

from .kafka_secrets import refuse_empty_variable, secret
from .kafka_tls import check_tls_files
from .logs import hide_secret
from .writable import unwritable

__all__ = [
    "RECONNECT_BACKOFF_MAX_MS",
    "check_kafka_config",
    "check_status_file",
    "client_options",
    "group_instance_id",
    "producer_options",
    "require_topics",
    "transactional_id",
]

RECONNECT_BACKOFF_MAX_MS = 1_000  # the longest wait between two attempts to reach a broker (client_options)


def group_instance_id(cfg: KafkaConfig) -> str:
    """The static member id: ``kafka.group_instance_id``, or the value of the variable
    ``kafka.group_instance_id_env`` names ("" = dynamic membership).

    The variable gives each replica its own id from one shared config (a StatefulSet's
    pod name); set but missing or empty, it is an error, never a silent fall back to
    dynamic membership.
    """
    value = secret(cfg, "group_instance_id") or ""
    if cfg.group_instance_id_env and not value:
        raise ConfigError(f"kafka.group_instance_id_env: environment variable {cfg.group_instance_id_env!r} is empty; "
                          "set it to this daemon's own member id (e.g. the pod name), or remove kafka.group_instance_id_env")
    return value


def client_options(cfg: KafkaConfig) -> dict:
    """Options every client (consumer, producer, admin) shares: servers, id, security.

    Secrets named by ``*_env`` keys are read from the environment here.
    """
    servers = bootstrap_entries(cfg.bootstrap_servers)
    # reconnect_backoff_max_ms: the Java client's 1 s; kafka-python's admin takes 30 s, and its bootstrap backs
    # off 4x per refused attempt (0, 0.1, 0.5, 2.2, 9.5 s, then past a 30 s bootstrap_timeout_ms): a broker up
    # 10 s after the daemon began to wait was never tried again, and the start failed with exit 1 (r32 F2)
    opts: dict = {"bootstrap_servers": servers, "client_id": cfg.client_id,
                  "security_protocol": cfg.security_protocol, "bootstrap_timeout_ms": cfg.bootstrap_timeout_ms,
                  "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS}
    if cfg.security_protocol in ("SSL", "SASL_SSL"):
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(cfg, key)
            if path:
                if os.path.isdir(path):  # a CA directory, as some clients take: kafka-python takes one PEM file
                    raise ConfigError(f"kafka.{key}: {path!r} is a directory, not a PEM file; give the path of "
                                      "the PEM file (certificates concatenated into one file)")
                if not os.path.isfile(path):
                    raise ConfigError(f"kafka.{key}: no such file {path!r}; give the path of the PEM file")
                opts[key] = path
        password = secret(cfg, "ssl_password")
        hide_secret(password)  # kept out of the log, whatever --kafka-log-level says
        # never None: for an encrypted key OpenSSL would then ask for it on the terminal, and a daemon
        # started on one would hang there; "" fails instead (check_tls_files has tried the key at start)
        opts["ssl_password"] = password or ""
        opts["ssl_check_hostname"] = cfg.ssl_check_hostname
    if cfg.security_protocol.startswith("SASL_"):
        opts["sasl_mechanism"] = cfg.sasl_mechanism
        user, password = secret(cfg, "sasl_plain_username"), secret(cfg, "sasl_plain_password")
        for name, value, what in (("sasl_plain_username", user, "username"), ("sasl_plain_password", password, "password")):
            if value is None:  # the key that lacks it is blamed, and an empty variable by name
                refuse_empty_variable(cfg, name, f"{cfg.sasl_mechanism} needs a {what}", f"the {what}")
                raise ConfigError(f"kafka.{name}: {cfg.sasl_mechanism} needs a username and a password, and no {what} "
                                  f"is set; set kafka.{name} (or kafka.{name}_env to the name of the variable that "
                                  "holds it)")
        hide_secret(password)  # kafka-python at DEBUG logs the SASL PLAIN request; logs.Redact drops it
        opts["sasl_plain_username"], opts["sasl_plain_password"] = user, password
    return opts


def require_topics(cfg: KafkaConfig) -> None:
    """Refuse a consumer with nothing to subscribe to."""
    if not cfg.topics and not cfg.topic_pattern:
        raise ConfigError("kafka.topics: no topics to consume; set kafka.topics = [\"events\"] or kafka.topic_pattern")


def check_kafka_config(cfg: KafkaConfig) -> None:
    """The ``[kafka]`` rules that need no broker, run before any client is made: a client bootstraps
    first, so an unreachable broker would hide them (exit 1, restarted) behind a connection error
    instead of exit 2. Each rule stays in its own function, which the clients call too."""
    from .kafka_topics import refuse_own_outputs  # (kafka-python's consumer: imported where a daemon starts)

    require_topics(cfg)
    # an output topic also consumed: without a changelog (changelog.enabled = false, model.kind = "trainable") the
    # source was the first to refuse it, after a broker answered, and a broker down hid it (exit 1, restarted)
    refuse_own_outputs(cfg, "")  # (the changelog's topic: changelog_table, before its first client)
    group_instance_id(cfg)  # group_instance_id_env set but missing or empty
    client_options(cfg)  # the other *_env variables, the PEM files, the SASL username and password
    check_tls_files(cfg)
    check_status_file(cfg)


def check_status_file(cfg: KafkaConfig) -> None:
    """``kafka.status_file`` can be written, as the file run checks its outputs: found at the first
    write, a bad path would be warned of once a second for ever."""
    path = cfg.status_file
    if not path:
        return
    # rewritten as "<path>.tmp" renamed over it: both must be writable, and the folder
    for target, what in ((path, ""), (f"{path}.tmp", f": its temporary file {path + '.tmp'!r} cannot be written")):
        problem = unwritable(target)
        if problem:
            raise ConfigError(f"kafka.status_file: cannot write {path!r}{what} ({problem}); choose a writable file "
                              "path, or \"\" for no status file")


def transactional_id(config: Config) -> str:
    """The daemon's ``transactional.id``: ``kafka.transactional_id``, or one that is stable across
    restarts of the same daemon and distinct between daemons of a group.

    A restart with the same id fences its predecessor and aborts the transaction it left
    open at once (read_committed readers are not held up until ``transaction_timeout_ms``).
    By default: the group, the static member id if set (:func:`group_instance_id`), else
    the host name and the checkpoint directory (one per daemon).
    """
    kcfg = config.kafka
    if kcfg.transactional_id:
        return kcfg.transactional_id
    if member := group_instance_id(kcfg):
        return f"stream-cl.{kcfg.group_id}.{member}"
    where = hashlib.sha1(os.path.abspath(config.checkpoint.dir).encode()).hexdigest()[:10]
    return f"stream-cl.{kcfg.group_id}.{socket.gethostname()}.{where}"


def producer_options(cfg: KafkaConfig, transactional: str = "", max_request_size: int = 0) -> dict:
    """:class:`KafkaProducer` keyword arguments: idempotent, acks from all replicas, and
    transactional with ``transactional`` as its id (what the daemon's publisher uses);
    ``max_request_size`` when records larger than ``kafka.max_message_bytes`` go out (the changelog)."""
    return {
        **client_options(cfg),
        "acks": -1,
        "enable_idempotence": True,
        **({"transactional_id": transactional, "transaction_timeout_ms": cfg.transaction_timeout_ms}
           if transactional else {}),
        "linger_ms": cfg.linger_ms,
        "batch_size": cfg.batch_size,
        "compression_type": None if cfg.compression_type == "none" else cfg.compression_type,
        "max_request_size": max(cfg.max_message_bytes, max_request_size),
    }
