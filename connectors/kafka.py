"""Kafka in: a consumer-group source, and the client settings every Kafka client of the daemon shares.

The source subscribes a consumer group to the event topics (a list or a pattern) and,
optionally, a labels topic. It only moves bytes: every value goes through
:meth:`stream_cl.decode.EventDecoder.decode_json` (events) or
:class:`stream_cl.pending.LabelDecoder` (labels), so a topic can hold anything and a
bad record becomes a dead letter with origin ``"topic/partition@offset"``.

Offsets are never committed by the consumer. The source tracks, per partition, the
offset after the last record it returned; the daemon commits those in its Kafka
transaction, with the outputs they produced (:mod:`connectors.commit`). Rebalances
call back into the owner (:class:`RebalanceHooks`): on revoke, the owner commits; on
assign, it says up to which offset its state covers each partition, and the source
resumes there. Records between that offset and the group's committed offset were
processed and committed before (a restart's restored state is older than the last
commit): they are returned again, marked *silent* (:attr:`PolledBatch.silent`), so the
owner re-learns them without publishing anything twice.

kafka-python runs rebalance callbacks on its IO thread while the caller's thread is
blocked inside ``poll()``: the owner's state is quiescent then, and the callbacks
(:mod:`connectors.kafka_assignment`) use the consumer's coroutine APIs (a blocking call
there would deadlock the IO loop); the owner's own work (a commit, a takeover) runs on a
worker thread meanwhile, so that the IO thread goes on sending heartbeats.

What the daemon writes (predictions, dead letters) is built in :mod:`connectors.sinks`
and sent by :mod:`connectors.transaction`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from importlib.util import find_spec

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CorruptRecordError, KafkaError, KafkaTimeoutError, RetriableError, UnsupportedCodecError
from kafka.coordinator.assignors.range import RangePartitionAssignor

from stream_cl.config import HEARTBEAT_INTERVAL_MS, JOIN_POLL_MS, Config, ConfigError, KafkaConfig, MappingConfig
from stream_cl.config.kafka_checks import bootstrap_entries
from stream_cl.decode import EventDecoder
from stream_cl.events import DeadLetter
from stream_cl.mapping_check import MappingChecks
from stream_cl.pending import LabelDecoder

from .kafka_assignment import (LOOKUP_TIMEOUT_MS, AssignmentListener, CommittedOffsetsUnreadable, RebalanceCallbacks,
                               RebalanceHooks, tp_key)
from .kafka_topics import check_subscribed_topics, refuse_own_outputs
from .logs import hide_secret, log_event, named
from .sinks import DeliveryError, parse_origin
from .unreadable_record import UnreadableRecords, step_over
from .writable import unwritable

__all__ = [
    "BootstrapStopped",
    "DeliveryError",
    "KafkaSource",
    "PolledBatch",
    "RebalanceHooks",
    "admin_once_reached",
    "bootstrap_hint",
    "check_kafka_config",
    "check_status_file",
    "check_tls_files",
    "client_options",
    "group_instance_id",
    "producer_options",
    "parse_origin",
    "tp_key",
    "transactional_id",
]

log = logging.getLogger("stream_cl.kafka")
BROKER_AWAY_SAY_S = 10.0  # a poll's broker errors: at most one line this often

# lag()'s end offsets: one ListOffsets round trip per leader, on the loop, at most this often
_LAG_LOOKUP_EVERY_S = 5.0
# and for at most this long. The request queues behind the consumer's own fetch, which the broker parks
# for up to fetch.max.wait.ms (500 ms) while nothing new arrives: measured on the dev broker, a lookup
# takes ~1 ms during a backlog and waits out the parked fetch when caught up. Past this the lag keeps
# the last fetch's high watermark (current then: nothing new came), and the loop is never held longer.
_LAG_LOOKUP_TIMEOUT_MS = 100
RECONNECT_BACKOFF_MAX_MS = 1_000  # the longest wait between two attempts to reach a broker (client_options)
# how often the daemon's first bootstrap looks at the stop flag (admin_once_reached): a SIGTERM meanwhile ends it
_BOOTSTRAP_CHECK_MS = 200
# a record with a null value: a delete marker of a compacted topic (or a CDC topic's), no event or label
TOMBSTONE = "a null value (a tombstone: a compacted topic's delete marker), not an event"


# -- client settings ----------------------------------------------------------------------
def _secret(cfg: KafkaConfig, name: str) -> str | None:
    """``kafka.<name>``, or the environment variable ``kafka.<name>_env`` names: the one place the
    ``*_env`` keys are read (when a client is made, so at start)."""
    value = getattr(cfg, name)
    env = getattr(cfg, f"{name}_env")
    if env:
        if env not in os.environ:
            raise ConfigError(f"kafka.{name}_env: environment variable {env!r} is not set; export it or set kafka.{name}")
        value = os.environ[env]
    return value or None


def _refuse_empty_variable(cfg: KafkaConfig, name: str, why: str, what: str) -> None:
    """The config error for ``kafka.<name>_env`` naming a variable that is set but empty (a Secret or
    an environment file mounted empty), where a value is needed (``why``): :func:`_secret` reads it as
    no value, and the error would otherwise say that none is set, naming keys that are set."""
    env = getattr(cfg, f"{name}_env")
    if env and os.environ.get(env) == "":
        raise ConfigError(f"kafka.{name}_env: environment variable {env!r} is empty, and {why}; put {what} in it") from None


def group_instance_id(cfg: KafkaConfig) -> str:
    """The static member id: ``kafka.group_instance_id``, or the value of the variable
    ``kafka.group_instance_id_env`` names ("" = dynamic membership).

    The variable gives each replica its own id from one shared config (a StatefulSet's
    pod name); set but missing or empty, it is an error, never a silent fall back to
    dynamic membership.
    """
    value = _secret(cfg, "group_instance_id") or ""
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
        password = _secret(cfg, "ssl_password")
        hide_secret(password)  # kept out of the log, whatever --kafka-log-level says
        # never None: for an encrypted key OpenSSL would then ask for it on the terminal, and a daemon
        # started on one would hang there; "" fails instead (check_tls_files has tried the key at start)
        opts["ssl_password"] = password or ""
        opts["ssl_check_hostname"] = cfg.ssl_check_hostname
    if cfg.security_protocol.startswith("SASL_"):
        opts["sasl_mechanism"] = cfg.sasl_mechanism
        user, password = _secret(cfg, "sasl_plain_username"), _secret(cfg, "sasl_plain_password")
        for name, value, what in (("sasl_plain_username", user, "username"), ("sasl_plain_password", password, "password")):
            if value is None:  # the key that lacks it is blamed, and an empty variable by name
                _refuse_empty_variable(cfg, name, f"{cfg.sasl_mechanism} needs a {what}", f"the {what}")
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
    require_topics(cfg)
    group_instance_id(cfg)  # group_instance_id_env set but missing or empty
    client_options(cfg)  # the other *_env variables, the PEM files, the SASL username and password
    check_tls_files(cfg)
    check_status_file(cfg)


class _NoPassword(Exception):
    """OpenSSL asked for the key's password and none is set."""


def check_tls_files(cfg: KafkaConfig) -> None:
    """Load the PEM files as the clients will: the CA, the client certificate, its key and the key's password.

    A file that is not what its key says, a key that is not the certificate's, or a
    password that does not open the key is then a config error naming the key (exit 2),
    not a failed handshake after the bootstrap timeout (exit 1, restarted). An encrypted
    key without a password fails here too: OpenSSL's fallback would ask on the terminal,
    and a daemon started on one would hang. Run after :func:`client_options` (the files
    exist, the password's variable is set).
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
    password = _secret(cfg, "ssl_password")
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
        _refuse_empty_variable(cfg, "ssl_password", f"the key in {keyfile!r} is encrypted", "the key's password")
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


def mapping_checks(cfg: KafkaConfig, mapping: MappingConfig, time_features: bool) -> MappingChecks:
    """The mapping checks of a Kafka stream: with a labels topic, labels come apart from the events
    (joined by id), so an event's label field may be absent and its id field must not be."""
    return MappingChecks.for_stream(mapping, time_features, labels_apart=bool(cfg.labels_topic))


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


CODECS = ("snappy", "lz4", "zstd")  # gzip is in the standard library


def missing_codecs() -> list[str]:
    """The Kafka compression codecs kafka-python cannot (de)compress in this install."""
    from kafka import codec

    return [name for name in CODECS if not getattr(codec, f"has_{name}")()]


def install_warnings() -> list[str]:
    """What this install of kafka-python lacks, each with its cost and its fix ([] when complete).

    kafka-python verifies the CRC-32C of every record batch it fetches and computes it for
    every batch it builds. Without the C package ``crc32c`` it falls back to pure Python:
    measured on the benchmark machine, ~41 µs per 222-byte event instead of ~0.02 µs, and
    the bare consumer 4x slower (13,013 instead of 51,528 events/s). A topic written with
    snappy, lz4 or zstd compression (a producer's or the topic's ``compression.type``)
    cannot be read at all without that codec's package. stream-cl depends on
    ``kafka-python[crc32c,lz4,snappy,zstd]``; this catches installs that lost one.

    >>> install_warnings()  # everything is installed with stream-cl
    []
    """
    from kafka.record import util

    out = []
    if util.crc32c_c is None:
        out.append("kafka-python is checking record CRCs in pure Python (the C package crc32c is not importable): "
                   "fetching and publishing will be several times slower; install it: "
                   "pip install 'kafka-python[crc32c]'")
    if missing := missing_codecs():
        out.append(f"kafka-python cannot decompress {', '.join(missing)} here: a topic compressed with "
                   f"{'it' if len(missing) == 1 else 'them'} will stop the daemon; install: "
                   f"pip install 'kafka-python[{','.join(missing)}]'")
    return out


class UnreadableBatch(RuntimeError):
    """A fetched record batch this install cannot decompress: nothing of it is returned or committed."""


def _unreadable(error: Exception) -> UnreadableBatch:
    match = re.search(r"for (\w+) compression", str(error))
    extra = match.group(1) if match else ",".join(CODECS)
    return UnreadableBatch(f"a fetched record batch is compressed with a codec kafka-python cannot decompress here "
                           f"({error}); install it: pip install 'kafka-python[{extra}]' and restart: the daemon "
                           "resumes from its last checkpoint, nothing after it was committed")


# -- the source -----------------------------------------------------------------------------
@dataclass
class PolledBatch:
    """One poll's records, decoded, in consumer order."""

    items: list  # Event | DeadLetter | stream_cl.pending.LabelUpdate
    raw: dict  # origin -> (key, value, headers) of every record, for dead letters
    # origins of records below the group's committed offset: processed and committed before the
    # state was restored, so re-learned now without publishing anything (empty almost always)
    silent: frozenset = field(default_factory=frozenset)


class KafkaSource(RebalanceCallbacks):
    """Decoded records from a consumer group (see the module docstring)."""

    exhausted = False  # a topic never ends; see at_end() for stop_at_end

    def __init__(self, cfg: KafkaConfig, mapping: MappingConfig, label_policy: str = "optional",
                 hooks: RebalanceHooks | None = None, consumer: KafkaConsumer | None = None, changelog_topic: str = "",
                 time_features: bool = False, checks: MappingChecks | None = None):
        """``changelog_topic``: the model changelog the daemon writes ("" = none), never to be consumed;
        ``time_features``: ``model.time_features``, whose event times the first events are checked for;
        ``checks``: the run's mapping checks (the daemon's carry over its resets), else this source's own."""
        require_topics(cfg)
        refuse_own_outputs(cfg, changelog_topic)
        self.cfg = cfg
        self.hooks = hooks
        # without a labels topic an event's label must be in the event: check that its field appears; and no
        # event time, or times in milliseconds: each said once
        self.checks = checks or mapping_checks(cfg, mapping, time_features)
        self.decoder = EventDecoder(mapping, label_policy, census=self.checks.fields)
        self.labels = LabelDecoder(mapping)
        self.labels_topic = cfg.labels_topic
        self.positions: dict[TopicPartition, int] = {}  # next offset after the records returned
        self.assigned: set[TopicPartition] = set()
        self.committed: dict[TopicPartition, int] = {}  # last offsets committed (by the owner's transactions)
        self.replay_until: dict[TopicPartition, int] = {}  # records below these offsets come back silent
        self._group: tuple = (cfg.group_id, -1, "", None)  # the group metadata as of the last poll
        self.skipped = 0  # records returned again below a known position (not processed twice)
        self.rebalances = 0
        self.commit_failures = 0
        self._ends: dict[TopicPartition, int] = {}  # end offsets as of the last lookup for lag()
        self._ends_at: float | None = None  # time.monotonic() of that lookup (None: none yet)
        # the last poll returned as many records as it asked for: more may wait, and the fetches' high watermarks
        # may be old (lag() looks the ends up only then: caught up, the lookup waits behind the parked fetch)
        self.behind = False
        self._away_said = -float("inf")  # when a poll's broker error was last said (at most one line a BROKER_AWAY_SAY_S)
        self._closed = False
        reading = dict(isolation_level=cfg.isolation_level, fetch_max_bytes=cfg.fetch_max_bytes,
                       max_partition_fetch_bytes=cfg.max_partition_fetch_bytes,
                       # never below a record the broker may hold: oversized records are decoded into dead letters
                       receive_message_max_bytes=max(100_000_000, 2 * cfg.fetch_max_bytes))
        options = client_options(cfg)  # (secrets read, TLS files checked: once, for both consumers)
        self.consumer = consumer if consumer is not None else KafkaConsumer(
            **options,
            **reading,
            group_id=cfg.group_id,
            group_instance_id=group_instance_id(cfg) or None,
            enable_auto_commit=False,
            auto_offset_reset=cfg.auto_offset_reset,
            max_poll_records=cfg.max_poll_records,
            session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,  # below every session timeout the config accepts
            max_poll_interval_ms=cfg.max_poll_interval_ms,
            metadata_max_age_ms=cfg.metadata_max_age_ms,  # partitions added while the group runs: assigned within it
            # partition i of every subscribed topic goes to the same member: an event and its label (co-partitioned)
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        # records kafka-python cannot parse: found by a probe of the same connection and reading settings
        self.unreadable = UnreadableRecords(options, **reading)
        listener = AssignmentListener(self)
        if cfg.topic_pattern:
            pattern = cfg.topic_pattern
            if cfg.labels_topic:
                pattern = f"(?:{pattern})|{re.escape(cfg.labels_topic)}$"
            self.consumer.subscribe(pattern=pattern, listener=listener)
        else:
            topics = list(dict.fromkeys([*cfg.topics, *([cfg.labels_topic] if cfg.labels_topic else [])]))
            self.consumer.subscribe(topics=topics, listener=listener)
            check_subscribed_topics(self.consumer, cfg, topics)

    # -- polling ---------------------------------------------------------------------------
    def poll(self, max_records: int) -> PolledBatch:
        """Up to ``max_records`` decoded records; positions advance past every one returned."""
        # Without partitions the group is (re)joining: give the join round trip time to finish
        # inside one poll (kafka-python restarts a join that completes between two polls).
        timeout = self.cfg.poll_timeout_ms if self.assigned else max(self.cfg.poll_timeout_ms, JOIN_POLL_MS)
        try:
            batches = self.consumer.poll(timeout_ms=timeout, max_records=max_records)
        except UnsupportedCodecError as e:
            raise _unreadable(e) from e
        except CorruptRecordError as e:  # one record kafka-python cannot parse: stepped over, a dead letter
            return self._step_over_unreadable(e, max_records)
        except RetriableError as e:  # a broker away while the group (re)joins: kafka-python retries at the next poll
            return self._broker_away(e, timeout)
        except KafkaError as e:  # kafka-python wraps a rebalance callback's error ("User rebalance callback throws ...")
            if isinstance(e.__cause__, CommittedOffsetsUnreadable):
                raise e.__cause__ from None  # the daemon's failed line says its text (it names the remedy)
            raise
        self._group = tuple(self.consumer.group_metadata())[:4]  # this poll's generation (commits in callbacks use it)
        items: list = []
        raw: dict = {}
        silent: set = set()
        replay = self.replay_until
        append = items.append
        decode_event, decode_label = self.decoder.decode_json, self.labels.decode
        positions, assigned, checks = self.positions, self.assigned, self.checks
        skipped_before = self.skipped
        for tp, records in batches.items():
            if tp not in assigned:  # defensive: a record of a partition this consumer gave up
                continue
            expected = positions.get(tp, -1)
            decode = decode_label if tp.topic == self.labels_topic else decode_event
            prefix = f"{tp_key(tp)}@"  # origins "topic/partition@offset"
            again = checks.counted_below(tp)  # read again after a reset: counted by the checks already
            for r in records:
                offset = r.offset
                if offset < expected:  # seen and processed already
                    self.skipped += 1
                    continue
                value = r.value
                origin = prefix + str(offset)
                raw[origin] = (r.key, value, r.headers)
                if value is None:  # no event, and no JSON to parse: said as what it is
                    append(DeadLetter(None, "malformed", TOMBSTONE, origin))
                else:
                    append(decode(value, origin) if offset >= again else checks.uncounted(decode, value, origin))
                expected = offset + 1
                if replay and offset < replay.get(tp, -1):
                    silent.add(origin)
            if expected >= 0:
                positions[tp] = expected
                checks.count_to(tp, expected)
                if replay and expected >= replay.get(tp, 1 << 62):
                    del replay[tp]  # caught up with what was committed
        self.behind = len(items) + self.skipped - skipped_before >= max_records
        checks.observe_times(items)  # nothing to do once the sample is complete
        return PolledBatch(items, raw, frozenset(silent) if silent else frozenset())

    def _broker_away(self, error: RetriableError, timeout_ms: int) -> PolledBatch:
        """A poll's retriable error (a refused connection while the member looks up its group coordinator,
        during a broker restart): nothing read, said at most once per :data:`BROKER_AWAY_SAY_S`, after the
        poll's own wait. It escaped ``poll()`` and the daemon exited 1 (review r115 F3)."""
        now = time.monotonic()
        if now - self._away_said >= BROKER_AWAY_SAY_S:
            self._away_said = now
            log_event(log, "broker_unreachable", level=logging.WARNING, error=named(error),
                      detail="a poll met a broker that is away; polling on (kafka-python retries at each poll)")
        time.sleep(timeout_ms / 1000)  # the wait the poll would have had: no busy loop while the broker is away
        return PolledBatch([], {}, frozenset())

    def _step_over_unreadable(self, error: CorruptRecordError, max_records: int) -> PolledBatch:
        """A poll's ``CorruptRecordError``: the dead letters of the offsets stepped over
        (:func:`~connectors.unreadable_record.step_over`), the positions moved past them; or the error stands."""
        self._group = tuple(self.consumer.group_metadata())[:4]
        tp, first, letters = step_over(self.consumer, self.assigned, self.unreadable, error, max_records)
        self.positions[tp] = first + len(letters)
        self.checks.count_to(tp, first + len(letters))
        replay = self.replay_until.get(tp, -1)
        return PolledBatch(letters, {d.origin: (None, None, []) for d in letters},
                           frozenset(d.origin for o, d in enumerate(letters, start=first) if o < replay))

    def group_metadata(self) -> tuple:
        """``(group_id, generation_id, member_id, group_instance_id)`` as of the last poll: what a
        transaction's offsets commit needs (KIP-447), safe to read in rebalance callbacks."""
        return self._group

    def take_warnings(self, final: bool = False) -> list[str]:
        """Named fields none of the first events had (:class:`FieldCensus`), and event times that time
        features cannot use (:class:`TimeCensus`), each once: when the first ``SAMPLE`` events are read,
        or (``final``: the daemon stops) judged by the fewer events read. Not at an empty poll: a live topic
        slower than the poll timeout would be judged by its first event, a backlog by a fetch that came late."""
        return self.checks.take(final=final)

    def fill_positions(self) -> None:
        """Bring every assigned partition's position up to the consumer's (blocking; main thread only).

        A partition without a returned record starts at the consumer's position. One with
        records also moves past what the consumer skipped after the last of them: transaction
        markers (every commit or abort writes one), aborted records under ``read_committed``,
        and offsets removed by compaction. Without this a transactional topic would always
        look one record behind its end. poll() has returned every record below the consumer's
        position, and the owner has processed them all when it calls this, so the position
        never runs ahead of the model.
        """
        for tp in list(self.assigned):
            try:
                position = self.consumer.position(tp, timeout_ms=LOOKUP_TIMEOUT_MS)
            except Exception as e:  # not resolvable yet (no leader): try at the next checkpoint
                log.debug("position of %s not known yet: %s", tp_key(tp), e)
                continue
            if position is not None and position > self.positions.get(tp, -1):
                self.positions[tp] = position

    def at_end(self) -> bool:
        """True when partitions are assigned and every one is consumed to its end offset (blocking)."""
        if not self.assigned:
            return False
        self.fill_positions()
        parts = list(self.assigned)
        try:
            ends = self.consumer.end_offsets(parts, timeout_ms=LOOKUP_TIMEOUT_MS)
        except KafkaTimeoutError:  # a busy broker: ask again after the next poll
            return False
        return all(tp in self.positions and self.positions[tp] >= ends.get(tp, 0) for tp in parts)

    def lag(self, now: float | None = None) -> dict[TopicPartition, int | None]:
        """Records behind each assigned partition's end (None: not known yet); the loop's thread only.

        The end is the later of the partition's high watermark as of its last fetch and its end
        offset as of the last lookup (:meth:`_look_up_ends`). The high watermark alone reads far
        too low when a backlog starts: kafka-python updates it only when it parses a partition's
        fetch, and fetches no partition whose records are still buffered, so records produced
        since then were not counted. Neither is past the partition's current high watermark.
        ``now``: ``time.monotonic()`` by default.
        """
        parts = list(self.assigned)  # a snapshot: rebalance callbacks change the set
        self._look_up_ends(parts, time.monotonic() if now is None else now)
        out = {}
        for tp in parts:
            ends = [e for e in (self.consumer.highwater(tp), self._ends.get(tp)) if e is not None]
            pos = self.positions.get(tp)
            out[tp] = None if not ends or pos is None else max(max(ends) - pos, 0)
        return out

    def _look_up_ends(self, parts: list[TopicPartition], now: float) -> None:
        """Refresh the end offsets of ``parts`` for :meth:`lag`: blocking, so at most every
        ``_LAG_LOOKUP_EVERY_S``, for at most ``_LAG_LOOKUP_TIMEOUT_MS``, and only while the polls come
        back full (:attr:`behind`): caught up, the fetches' high watermarks are current, and the
        lookup would wait behind the consumer's parked fetch, holding the loop (and the events that
        arrive meanwhile) for the whole timeout. A lookup that fails leaves the last ends (still
        lower bounds: offsets only grow) until the next try."""
        if (not parts or self._closed or not self.behind
                or (self._ends_at is not None and now - self._ends_at < _LAG_LOOKUP_EVERY_S)):
            return
        self._ends_at = now
        try:
            self._ends = self.consumer.end_offsets(parts, timeout_ms=_LAG_LOOKUP_TIMEOUT_MS)
        except KafkaError as e:  # the consumer's fetch parked on the broker, or a slow broker: a metric can wait
            log.debug("end offsets for the lag not looked up: %s", e)

    def highwater(self, tp: TopicPartition) -> int | None:
        """The end offset of ``tp`` the last fetch saw (None before one)."""
        return self.consumer.highwater(tp)

    def close(self) -> None:
        """Leave the group (a last revoke callback runs first) and close the consumer."""
        self._closed = True  # lag() after this (the last status) looks nothing up: a closed consumer raises
        try:
            self.consumer.close(autocommit=False)
        finally:
            self.unreadable.close()

    def abort(self) -> None:
        """After a failure: close the consumer, committing nothing (the daemon's transactions hold the offsets)."""
        self.close()
