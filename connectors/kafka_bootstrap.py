"""The daemon's first contact with the brokers, which a stop can end, and what to check when none answers.

:func:`admin_once_reached` waits for a broker of ``kafka.bootstrap_servers`` in polls between
which the stop flag is read (kafka-python's own clients wait out the whole bootstrap timeout in
their constructors); :class:`BootstrapStopped` ends the wait. :func:`bootstrap_hint` names the
settings to check when a client could not reach the brokers.
"""

from __future__ import annotations

from importlib.util import find_spec

from stream_cl.config import KafkaConfig

from .kafka_settings import client_options

__all__ = ["BootstrapStopped", "admin_once_reached", "bootstrap_hint"]

# how often the daemon's first bootstrap looks at the stop flag (admin_once_reached): a SIGTERM meanwhile ends it
_BOOTSTRAP_CHECK_MS = 200


def bootstrap_hint(error: BaseException, cfg: KafkaConfig) -> str | None:
    """What to check when a client could not reach the brokers (``None`` for other errors).

    kafka-python reports "Unable to bootstrap" for a refused connection, rejected SASL
    credentials and a failed TLS handshake alike (the broker often just closes the
    connection), so the hint names the settings that matter for ``cfg``.
    """
    if "Unable to bootstrap" not in str(error) and "NoBrokersAvailable" not in type(error).__name__:
        return None
    hint = f"no broker of kafka.bootstrap_servers = {cfg.bootstrap_servers!r} completed a connection"
    if cfg.security_protocol.startswith("SASL_"):
        hint += (f"; with security_protocol = {cfg.security_protocol!r} a broker closes connections whose SASL "
                 "credentials or mechanism it rejects: check kafka.sasl_mechanism, kafka.sasl_plain_username and "
                 "the password (kafka.sasl_plain_password or the variable kafka.sasl_plain_password_env names)")
    if cfg.security_protocol in ("SSL", "SASL_SSL"):
        hint += ("; a failed TLS handshake looks the same: check kafka.ssl_cafile (the CA that signed the broker's "
                 "certificate) and kafka.ssl_check_hostname, and where the broker requires a client certificate, "
                 "kafka.ssl_certfile, kafka.ssl_keyfile and kafka.ssl_password (or the variable "
                 "kafka.ssl_password_env names)")
    if cfg.security_protocol == "PLAINTEXT":
        hint += "; check the address and that the listener there is PLAINTEXT (not SSL or SASL)"
    return hint


class BootstrapStopped(Exception):
    """A stop was asked for while the daemon waited for a broker (:func:`admin_once_reached`)."""


def admin_once_reached(cfg: KafkaConfig, stop):
    """A ``KafkaAdminClient``, made once a broker of ``kafka.bootstrap_servers`` answered: within
    ``kafka.bootstrap_timeout_ms``, or its error ("Unable to bootstrap", :func:`bootstrap_hint`), or
    :class:`BootstrapStopped` within 0.2 s of ``stop`` (a :class:`threading.Event`) being set.

    kafka-python's clients bootstrap inside their constructors, for the whole bootstrap timeout
    (30 s), and nothing stops them: a SIGTERM or Ctrl-C while the broker was down waited that long
    and ended in exit 1 (a constructor that fails also leaves its IO thread running). This one's
    first bootstrap runs here instead, on this thread, in polls between which ``stop`` is read
    (its ``kafka_client`` option, :func:`_reached_network`); the rest of it is kafka-python's own.
    Made where the daemon's other admin clients are made (``kafka.admin``, which tests fake),
    before any other client: those find a broker at once.
    """
    from kafka.admin import KafkaAdminClient

    # kafka-python's network layer of 3.0 (not its top-level API): with another release the client bootstraps
    # as it does, and a stop meanwhile is still a clean one once that ends (connectors.daemon)
    if any(find_spec(name) is None for name in ("kafka.net.compat", "kafka.net.manager", "kafka.net.selector")):
        return KafkaAdminClient(**client_options(cfg))

    def network(**configs):
        return _reached_network(stop, **configs)

    return KafkaAdminClient(**client_options(cfg), kafka_client=network)


def _reached_network(stop, **configs):
    """kafka-python's network client (what ``kafka_client`` makes) with its bootstrap done: on this
    thread, before its IO thread starts, so that a stop can end it; closed again if it is not done."""
    from kafka.net.compat import KafkaNetClient
    from kafka.net.manager import KafkaConnectionManager
    from kafka.net.selector import NetworkSelector

    net = NetworkSelector(**configs)
    manager = KafkaConnectionManager(net, **configs)
    try:
        bootstrap = manager.bootstrap_async(configs["bootstrap_timeout_ms"])
        while not bootstrap.is_done:
            if stop.is_set():
                raise BootstrapStopped("a stop was asked for while the daemon waited for a broker")
            net.poll(timeout_ms=_BOOTSTRAP_CHECK_MS, future=bootstrap)
        if bootstrap.failed():
            raise bootstrap.exception
    except BaseException:
        manager.close()  # its sockets; the bootstrap in progress ends with it
        net.close()
        raise
    return KafkaNetClient(net=net, manager=manager, **configs)
