"""The Kafka daemon's sections: [kafka], [checkpoint], [labels], [changelog] and [metrics].

Each is a frozen dataclass whose fields are the keys a user may write, as the learning run's sections
are (:mod:`stream_cl.config.schema`, whose field checks they use); Kafka's own rules for the names they
hold are :mod:`stream_cl.config.kafka_checks`. Also here: the longest idle loop turn, which
``metrics.stall_timeout_s`` must outlast.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from .kafka_checks import SASL_KEYS, TLS_KEYS, check_bootstrap_servers, check_topic
from .schema import ConfigError, check, finite_positive, nonnegative, positive, shown


MAX_SHUTDOWN_S = 86_400.0  # kafka.shutdown_timeout_s: a day (threading.Timer overflows past about 9e9 s)
HEARTBEAT_INTERVAL_MS = 3_000  # the consumer's heartbeat_interval_ms (kafka-python's default), given to it explicitly


@dataclass(frozen=True)
class KafkaConfig:
    """``[kafka]``: the consumer group, its topics, the producers and the client security.

    Every key, with its default, is documented in docs/daemon.md. Secrets may come from
    the environment instead: ``ssl_password_env`` / ``sasl_plain_password_env`` (and
    ``sasl_plain_username_env``) name a variable read when the daemon starts; so does
    ``group_instance_id_env``, for a member id per replica.
    """

    bootstrap_servers: str | list[str] = "localhost:9092"
    group_id: str = field(default="stream-cl", metadata=check(bool, "must not be empty", 'name the consumer group, e.g. "stream-cl"'))
    group_instance_id: str = ""  # static membership: a restart takes over without a rebalance
    # the environment variable holding it: one member id per replica from one shared config (a pod's name)
    group_instance_id_env: str = ""
    client_id: str = "stream-cl"
    topics: list[str] = field(default_factory=list)
    topic_pattern: str = ""  # a regex instead of topics (new matching topics join on metadata refresh)
    labels_topic: str = ""  # delayed labels {"id", "y"}, joined by id ("" = none)
    predictions_topic: str = ""  # one record per prediction, keyed by event id ("" = none)
    dead_letter_topic: str = ""  # invalid records, original bytes + headers ("" = counted and logged only)
    # how long each client (consumer, producer, admin) tries to reach a broker at start-up before the daemon gives up
    bootstrap_timeout_ms: int = field(default=30_000, metadata=positive("use a bound such as 30000 (ms)"))
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    # never learn from an aborted transaction (for topics written without transactions the two are the same)
    isolation_level: Literal["read_committed", "read_uncommitted"] = "read_committed"
    poll_timeout_ms: int = field(default=500, metadata=positive("use a poll timeout such as 500 (ms)"))
    max_poll_records: int = field(default=2000, metadata=positive("use a batch size such as 2000 records"))
    fetch_max_bytes: int = field(default=52_428_800, metadata=positive("use a byte limit such as 52428800"))
    max_partition_fetch_bytes: int = field(default=1_048_576, metadata=positive("use a byte limit such as 1048576"))
    max_message_bytes: int = field(default=1_048_576, metadata=positive("match the broker's message.max.bytes, e.g. 1048576"))
    # kafka-python's consumer heartbeats every 3000 ms and refuses a session no longer (a traceback at start,
    # exit 1 for ever); brokers refuse one below group.min.session.timeout.ms, 6000 by default (review r72 F1)
    session_timeout_ms: int = field(default=45_000, metadata=check(
        lambda v: v > HEARTBEAT_INTERVAL_MS, f"must be above the consumer's heartbeat interval ({HEARTBEAT_INTERVAL_MS} ms)",
        "use a timeout such as 45000 (ms), and at least the broker's group.min.session.timeout.ms (6000 by default)"))
    max_poll_interval_ms: int = field(default=300_000, metadata=positive("use a limit such as 300000 (ms)"))
    # how often the consumer refreshes the cluster's metadata: a partition added to a consumed topic (or a
    # topic a topic_pattern matches) is assigned at the next refresh; kafka-python's default, 300000, left
    # a grown topic's new partitions unread for five minutes (review r82)
    metadata_max_age_ms: int = field(default=30_000, metadata=positive("use an interval such as 30000 (ms)"))
    # transactions need every in-sync replica's acknowledgement: the key stays for old configs, "all" only
    acks: int | str = field(default="all", metadata=check(lambda v: v in ("all", -1), "must be \"all\" (the daemon's output is transactional)", 'use acks = "all", or leave the key out'))
    # one Kafka transaction per interval: its predictions, dead letters and offsets (latency vs overhead)
    commit_interval_ms: int = field(default=200, metadata=positive("use an interval such as 200 (ms)"))
    transactional_id: str = ""  # "" = derived: stable per daemon (see docs/daemon.md)
    transaction_timeout_ms: int = field(default=60_000, metadata=positive("use a timeout such as 60000 (ms)"))
    # a commit that takes longer is given up: the member drops what it did since its last commit and starts over
    commit_timeout_ms: int = field(default=60_000, metadata=positive("use a bound such as 60000 (ms)"))
    linger_ms: int = field(default=5, metadata=nonnegative("use a small delay such as 5 (ms)"))
    batch_size: int = field(default=262_144, metadata=positive("use a producer batch size such as 262144 (bytes)"))
    compression_type: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "none"
    publisher: Literal["process", "thread"] = "process"  # where the predictions producer runs
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_password: str = field(default="", repr=False)  # a secret: out of reprs and error messages (_SECRET_KEYS)
    ssl_password_env: str = ""
    ssl_check_hostname: bool = True
    sasl_mechanism: Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = ""
    sasl_plain_username: str = field(default="", repr=False)
    sasl_plain_username_env: str = ""
    sasl_plain_password: str = field(default="", repr=False)
    sasl_plain_password_env: str = ""
    stop_at_end: bool = False  # exit 0 once every assigned partition is consumed to its end (backfills, tests)
    # finite: the stop's watchdog is a timer (inf, or past about 9e9 s, killed its thread, and the stop went unwatched)
    shutdown_timeout_s: float = field(default=30.0, metadata=check(
        lambda v: 0 < v <= MAX_SHUTDOWN_S, f"must be a number in (0, {MAX_SHUTDOWN_S:_.0f}]",
        "use a bound such as 30 (seconds), at most a day"))
    status_file: str = ""  # JSON snapshot of the daemon's counters, rewritten about once a second

    def __post_init__(self):
        named = [("topics", t) for t in self.topics] + [
            (key, getattr(self, key)) for key in ("labels_topic", "predictions_topic", "dead_letter_topic")]
        for key, name in named:
            check_topic(f"kafka.{key}", name)
        if self.topics and self.topic_pattern:
            raise ConfigError("kafka.topic_pattern: set either kafka.topics or kafka.topic_pattern, not both; remove one")
        if self.topic_pattern:
            try:
                re.compile(self.topic_pattern)
            except re.error as e:
                raise ConfigError(f"kafka.topic_pattern: not a valid regular expression ({e}); fix the pattern") from None
        for name in ("ssl_password", "sasl_plain_username", "sasl_plain_password", "group_instance_id"):
            if getattr(self, name) and getattr(self, f"{name}_env"):
                why = "gives each replica its own id" if name == "group_instance_id" else "keeps secrets out of files"
                raise ConfigError(f"kafka.{name}_env: both kafka.{name} and kafka.{name}_env are set; keep one (the _env form {why})")
        self._check_security_keys()
        sasl = self.security_protocol.startswith("SASL_")
        if self.sasl_mechanism and not sasl:
            raise ConfigError(f"kafka.sasl_mechanism: set to {self.sasl_mechanism!r} but security_protocol is {self.security_protocol!r}; use SASL_SSL (or SASL_PLAINTEXT)")
        if sasl and not self.sasl_mechanism:
            raise ConfigError(f"kafka.sasl_mechanism: required with security_protocol = {self.security_protocol!r}; use \"PLAIN\", \"SCRAM-SHA-256\" or \"SCRAM-SHA-512\"")
        check_bootstrap_servers(self.bootstrap_servers)
        # a labels topic among the event topics: every record of it was decoded as a label, and the daemon
        # predicted and learned nothing, as healthy as ever (review r72 F2)
        if self.labels_topic and self.labels_topic in self.topics:
            raise ConfigError(f"kafka.labels_topic: {self.labels_topic!r} is also in kafka.topics, and each of its "
                              "records would be read as a label, none as an event; give the delayed labels a topic "
                              "of their own, or leave kafka.labels_topic empty for labels inside the events")
        # the broker aborts a transaction open longer than its timeout: every commit would fail and the
        # daemon would start over forever
        if self.commit_interval_ms >= self.transaction_timeout_ms:
            raise ConfigError(f"kafka.commit_interval_ms: must be below kafka.transaction_timeout_ms (got "
                              f"{self.commit_interval_ms} >= {self.transaction_timeout_ms}); lower "
                              "kafka.commit_interval_ms (e.g. 200) or raise kafka.transaction_timeout_ms")
        # a member taking over a departed one's partitions waits out its open transaction inside one poll: a
        # longer one outlasted the wait, and each member in turn exited 1 (review r98)
        need = self.transaction_timeout_ms + TXN_ABORT_MARGIN_MS
        if need > TAKEOVER_SHARE_OF_POLL * self.max_poll_interval_ms:
            raise ConfigError(f"kafka.max_poll_interval_ms: {self.max_poll_interval_ms} leaves a member taking over "
                              f"partitions {TAKEOVER_SHARE_OF_POLL:.0%} of it, {TAKEOVER_SHARE_OF_POLL * self.max_poll_interval_ms:.0f} ms, "
                              f"to wait out a departed member's open transaction, which may last "
                              f"kafka.transaction_timeout_ms ({self.transaction_timeout_ms}) + {TXN_ABORT_MARGIN_MS} ms; "
                              f"raise kafka.max_poll_interval_ms to at least {math.ceil(need / TAKEOVER_SHARE_OF_POLL)} "
                              "or lower kafka.transaction_timeout_ms")
        # a revocation waits for the commit under way, then makes its own, each up to commit_timeout_ms, and the
        # group waits for it up to max_poll_interval_ms (its rebalance timeout): past that the member was dropped
        # and its commit fenced at each revocation a slow broker held up (review r110)
        revoke = 2 * self.commit_timeout_ms
        if self.publisher == "process" and revoke > TAKEOVER_SHARE_OF_POLL * self.max_poll_interval_ms:
            raise ConfigError(f"kafka.commit_timeout_ms: a revocation may wait for two commits (the one under way and "
                              f"its own), 2 x {self.commit_timeout_ms} ms, and the group waits for a member's "
                              f"rebalance kafka.max_poll_interval_ms ({self.max_poll_interval_ms}); lower "
                              f"kafka.commit_timeout_ms to at most "
                              f"{math.floor(TAKEOVER_SHARE_OF_POLL * self.max_poll_interval_ms / 2)} or raise "
                              f"kafka.max_poll_interval_ms to at least {math.ceil(revoke / TAKEOVER_SHARE_OF_POLL)}")

    def _check_security_keys(self) -> None:
        """Refuse TLS or SASL settings the protocol does not use: the client connects without them,
        so a CA file or a password written under PLAINTEXT was ignored without a word (as
        sasl_mechanism was not). ssl_check_hostname counts only when turned off."""
        tls = self.security_protocol in ("SSL", "SASL_SSL")
        sasl = self.security_protocol.startswith("SASL_")
        for keys, used, fix in ((TLS_KEYS, tls, "SSL or SASL_SSL"),
                                (SASL_KEYS, sasl, "SASL_SSL (or SASL_PLAINTEXT)")):
            for name, unset in keys.items():
                value = getattr(self, name)
                if value != unset and not used:
                    raise ConfigError(f"kafka.{name}: set to {shown(f'kafka.{name}', value)} but security_protocol "
                                      f"is {self.security_protocol!r}, which does not use it; use {fix}, or remove "
                                      f"kafka.{name}")


@dataclass(frozen=True)
class CheckpointConfig:
    """``[checkpoint]``: where and how often the daemon saves model, labels store and offsets."""

    dir: str = field(default="checkpoints", metadata=check(bool, "must not be empty", 'name a directory, e.g. "checkpoints"'))
    every_events: int = field(default=10_000, metadata=positive("use a count such as 10000"))
    every_seconds: float = field(default=30.0, metadata=positive("use an interval such as 30"))  # inf: by events only
    keep: int = field(default=3, metadata=positive("keep at least 1 checkpoint, e.g. 3"))


@dataclass(frozen=True)
class LabelsConfig:
    """``[labels]``: predicted events waiting for a delayed label, and labels waiting for their event."""

    max_pending: int = field(default=100_000, metadata=positive("use a bound such as 100000 events"))
    max_age_s: float = field(default=86_400.0, metadata=positive("use an age such as 86400 (one day)"))  # inf: never
    # labels read before their event (an event backlog) wait for it, at most this many
    max_early: int = field(default=100_000, metadata=nonnegative("use a bound such as 100000 labels (0: never wait)"))


@dataclass(frozen=True)
class ChangelogConfig:
    """``[changelog]``: the compacted topic that holds every source partition's learned state (the Kafka daemon)."""

    enabled: bool = True  # false: no changelog (one daemon per group; state only in local checkpoints)
    topic: str = ""  # "" = "<kafka.group_id>.model"; a named one serves one group (another group's member stops)
    every_events: int = field(default=5_000, metadata=positive("use a count such as 5000 (events of a partition)"))
    # inf: parts are written by every_events alone (and at revocation and shutdown)
    every_seconds: float = field(default=10.0, metadata=positive("use an interval such as 10 (seconds)"))
    # finite: a member that never folds never serves what the other members learn
    fold_every_seconds: float = field(default=1.0, metadata=finite_positive("use an interval such as 1 (seconds)"))
    partitions: int = field(default=1, metadata=positive("use 1, or a few for a large group"))
    replication_factor: int = field(default=-1, metadata=check(lambda v: v == -1 or v > 0, "must be -1 or > 0",
                                                                 "use -1 (the broker's default) or e.g. 3"))
    max_message_bytes: int = field(default=33_554_432, metadata=positive("use a size that fits one partition's "
                                                                          "state, such as 33554432 (32 MB)"))

    def __post_init__(self):
        check_topic("changelog.topic", self.topic)


@dataclass(frozen=True)
class MetricsConfig:
    """``[metrics]``: the daemon's HTTP endpoints ``/metrics``, ``/healthz``, ``/readyz`` and ``/model``."""

    enabled: bool = True
    host: str = field(default="127.0.0.1", metadata=check(bool, "must not be empty", 'use "127.0.0.1", or "0.0.0.0" in a container'))
    port: int = field(default=9464, metadata=check(lambda v: 0 <= v <= 65535, "must be in [0, 65535]",
                                                   "use a free port such as 9464, or 0 for any free port (logged)"))
    # finite: /healthz answers it in JSON, which has no infinity
    stall_timeout_s: float = field(default=120.0, metadata=check(
        lambda v: 0 < v < math.inf, "must be > 0 and finite", "use a bound such as 120 (seconds without a loop turn)"))


# Past kafka.transaction_timeout_ms, how long a departed member's open transaction may still hold committed
# offsets: the broker looks for timed-out transactions every 10 s by default
# (transaction.abort.timed.out.transaction.cleanup.interval.ms), then writes the abort. A member taking such
# partitions over waits that long, within 90% of kafka.max_poll_interval_ms (connectors/kafka_assignment.py).
TXN_ABORT_MARGIN_MS = 20_000
TAKEOVER_SHARE_OF_POLL = 0.9

# A member without partitions (one beyond the partition count, one rejoining) polls at least this long, so that a
# join's round trip finishes inside one poll (connectors/kafka.py, KafkaSource.poll)
JOIN_POLL_MS = 3_000
# what a loop turn may take beyond its idle poll (a status write, an expiry sweep) before /healthz calls it stalled
STALL_MARGIN_S = 2.0


def longest_idle_turn_s(kafka: KafkaConfig) -> float:
    """Seconds an idle loop turn may last: one poll that returns nothing, ``kafka.poll_timeout_ms``, or
    :data:`JOIN_POLL_MS` for a member without partitions if that is longer.

    >>> longest_idle_turn_s(KafkaConfig()), longest_idle_turn_s(KafkaConfig(poll_timeout_ms=300_000))
    (3.0, 300.0)
    """
    return max(kafka.poll_timeout_ms, JOIN_POLL_MS) / 1000
