"""The TLS files of ``[kafka]``, loaded at start as the clients will load them.

:func:`check_tls_files` loads the CA, the client certificate, its key and the key's password, so
that a file that is not what its key says, or a password that does not open the key, is a config
error naming the key (exit 2) before any client is made, not a failed handshake after the
bootstrap timeout (exit 1, restarted).
"""

from __future__ import annotations

import ssl

from stream_cl.config import ConfigError, KafkaConfig

from .kafka_secrets import refuse_empty_variable, secret

__all__ = ["check_tls_files"]


class _NoPassword(Exception):
    """OpenSSL asked for the key's password and none is set."""


def check_tls_files(cfg: KafkaConfig) -> None:
    """Load the PEM files as the clients will: the CA, the client certificate, its key and the key's password.

    A file that is not what its key says, a key that is not the certificate's, or a
    password that does not open the key is then a config error naming the key (exit 2),
    not a failed handshake after the bootstrap timeout (exit 1, restarted). An encrypted
    key without a password fails here too: OpenSSL's fallback would ask on the terminal,
    and a daemon started on one would hang. Run after
    :func:`~connectors.kafka_settings.client_options` (the files exist, the password's variable is set).
    """
    if cfg.security_protocol not in ("SSL", "SASL_SSL"):
        return
    if cfg.ssl_cafile:
        _load_certificates("ssl_cafile", cfg.ssl_cafile,
                           "the PEM certificate of the CA that signed the broker's certificate")
    if not cfg.ssl_certfile:
        if cfg.ssl_keyfile:  # kafka-python would ignore it: no client certificate would be sent
            raise ConfigError("kafka.ssl_keyfile: set without kafka.ssl_certfile, so no client certificate would be "
                              "sent; set kafka.ssl_certfile to the PEM certificate the key belongs to, or remove "
                              "kafka.ssl_keyfile")
        return
    _load_certificates("ssl_certfile", cfg.ssl_certfile, "the client's PEM certificate")
    _load_key(cfg)


def _load_certificates(key: str, path: str, what: str) -> None:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(f"kafka.{key}: {path!r} holds no usable PEM certificate ({e}); give {what} "
                          "(a file starting -----BEGIN CERTIFICATE-----)") from None


def _load_key(cfg: KafkaConfig) -> None:
    """The certificate with its key, and the key's password only if OpenSSL asks for one."""
    password = secret(cfg, "ssl_password")
    asked = []

    def give() -> str:
        asked.append(True)
        if password is None:
            raise _NoPassword
        return password

    keyfile = cfg.ssl_keyfile or cfg.ssl_certfile
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_cert_chain(cfg.ssl_certfile, cfg.ssl_keyfile or None, password=give)
    except _NoPassword:
        refuse_empty_variable(cfg, "ssl_password", f"the key in {keyfile!r} is encrypted", "the key's password")
        raise ConfigError(f"kafka.ssl_password: the key in {keyfile!r} is encrypted and no password is set; set "
                          "kafka.ssl_password_env to the name of the variable that holds it (or kafka.ssl_password)"
                          ) from None
    except (ssl.SSLError, OSError, ValueError) as e:
        raise ConfigError(_key_problem(cfg, e, bool(asked))) from None


def _key_problem(cfg: KafkaConfig, error: Exception, asked: bool) -> str:
    """Which key to blame when the certificate and its key do not load."""
    keyfile = cfg.ssl_keyfile or cfg.ssl_certfile
    if getattr(error, "reason", None) == "KEY_VALUES_MISMATCH":
        return (f"kafka.ssl_keyfile: the key in {keyfile!r} is not the key of the certificate in kafka.ssl_certfile "
                f"{cfg.ssl_certfile!r}; give the key the certificate was made for")
    if asked:  # the key is encrypted and the password given did not open it
        where = (f"kafka.ssl_password_env: the password in the variable {cfg.ssl_password_env!r}"
                 if cfg.ssl_password_env else "kafka.ssl_password: the password")
        return f"{where} does not open the key in {keyfile!r} ({error}); give the key's password"
    if not cfg.ssl_keyfile:
        return (f"kafka.ssl_certfile: {cfg.ssl_certfile!r} holds no usable private key and kafka.ssl_keyfile is not "
                f"set ({error}); set kafka.ssl_keyfile to the certificate's PEM private key")
    return (f"kafka.ssl_keyfile: {keyfile!r} holds no usable PEM private key ({error}); give the certificate's private "
            "key (a file starting -----BEGIN PRIVATE KEY----- or -----BEGIN ENCRYPTED PRIVATE KEY-----)")
