"""Kafka's own rules for what the config names: legal topic names, bootstrap servers as
``host[:port]``, and the keys only TLS or only SASL reads. A value the clients would refuse, or
ignore, is a :class:`~stream_cl.config.ConfigError` naming the key as the file is read, not a
traceback from kafka-python once the daemon starts.
"""

from __future__ import annotations

import re
import socket

from .schema import ConfigError


TOPIC_RULE = "letters, digits, '.', '_' and '-', at most 249 characters, not '.' or '..'"  # legal_topic's, in words


def legal_topic(name: str) -> bool:
    """Kafka's own rule for topic names (what the broker and kafka-python refuse otherwise)."""
    return isinstance(name, str) and len(name) <= 249 and name not in (".", "..") and bool(
        re.fullmatch(r"[a-zA-Z0-9._-]+", name))


def check_topic(key: str, name: str) -> None:
    """``name`` (set) is a legal topic name, or a ConfigError naming ``key`` with Kafka's rule."""
    if name and not legal_topic(name):
        raise ConfigError(f"{key}: {name!r} is not a legal Kafka topic name; use {TOPIC_RULE}")


def bootstrap_entries(value: str | list[str]) -> list[str]:
    """``kafka.bootstrap_servers`` as the clients read it: a string or a list of strings, each split on
    commas, the entries stripped, empty ones left out.

    >>> bootstrap_entries("a:9092, b:9092"), bootstrap_entries(["a:9092", "b:9092,c:9092"])
    (['a:9092', 'b:9092'], ['a:9092', 'b:9092', 'c:9092'])
    """
    items = [value] if isinstance(value, str) else value
    return [s.strip() for item in items for s in item.split(",") if s.strip()]


def check_bootstrap_servers(value: str | list[str]) -> None:
    """Refuse what is not a list of ``host[:port]``, split on commas as the clients split it: a port
    that is not a number (a template left unfilled, "kafka:${PORT}") or nothing between commas
    failed inside kafka-python as a traceback, exit 1 (and a restart loop) instead of exit 2."""
    items = [value] if isinstance(value, str) else value
    entries = bootstrap_entries(value)
    example = 'give host:port entries, e.g. "localhost:9092", "kafka-1:9092,kafka-2:9092" or "[::1]:9092"'
    if not entries or not all(item.strip() for item in items):  # an empty list item: a value left unfilled
        raise ConfigError(f"kafka.bootstrap_servers: empty (got {value!r}); {example}")
    for entry in entries:
        if not _host_port(entry):
            raise ConfigError(f"kafka.bootstrap_servers: {entry!r} is not host[:port] (a host name or address, an "
                              f"IPv6 address in brackets, and a port in 1..65535); {example}")


def _host_port(entry: str) -> bool:
    """Whether ``entry`` is ``host``, ``host:port``, ``[ipv6]``, ``[ipv6]:port`` or a bare IPv6
    address (no port: kafka-python reads one as such), after an optional ``PROTOCOL://`` (the Java
    client's listener form, which kafka-python drops too).

    >>> [_host_port(e) for e in ("kafka:9092", "10.0.0.1", "[::1]:9092", "SSL://b:9093", "::1", "[fe80::1%eth0]:9092")]
    [True, True, True, True, True, True]
    >>> [_host_port(e) for e in ("b:", "b:0", "b:x", "::1:x", "[b]:9092")]
    [False, False, False, False, False]
    """
    bare = re.sub(r"^[A-Za-z_]+://", "", entry)
    try:
        socket.inet_pton(socket.AF_INET6, bare)
        return True
    except (OSError, ValueError):
        pass
    m = re.fullmatch(r"(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([A-Za-z0-9._-]+))(?::([0-9]{1,5}))?", bare)
    if not m or (m[1] is not None and ":" not in m[1]):
        return False
    return m[3] is None or 1 <= int(m[3]) <= 65535


# The keys only TLS, or only SASL, reads, each with its value when unset (connectors.kafka_settings.client_options)
TLS_KEYS = {"ssl_cafile": "", "ssl_certfile": "", "ssl_keyfile": "", "ssl_password": "", "ssl_password_env": "",
             "ssl_check_hostname": True}
SASL_KEYS = {"sasl_plain_username": "", "sasl_plain_username_env": "", "sasl_plain_password": "",
              "sasl_plain_password_env": ""}
