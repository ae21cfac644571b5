"""One typed configuration, loaded from TOML, validated, and passed down.

Every section is a frozen dataclass; its fields are the keys a user may write. An
error names the key (``section.key``), what was wrong, and how to fix it:

>>> load_config_dict({"model": {"gama": 1.0}})
Traceback (most recent call last):
...
stream_cl.config.ConfigError: model.gama: unknown key; did you mean 'gamma'?
>>> load_config_dict({"model": {"gamma": -1}})
Traceback (most recent call last):
...
stream_cl.config.ConfigError: model.gamma: must be a finite number > 0 (got -1.0); set a positive regularisation such as 1.0
>>> load_config_dict({"run": {"batch_size": 64}}).run.batch_size
64
"""

from __future__ import annotations

import dataclasses
import difflib
import errno
import json
import math
import os
import re
import select
import socket
import stat
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# The bounds the engine also checks are the engine's, imported, so that the config and the library take the
# same values (each message here names the key and the fix)
from .checks import MIN_FORGETTING, is_forgetting, is_nonnegative, is_open_unit, is_positive
from .homeostasis import is_lr_high, is_lr_low
from .imbalance import MAX_IMBALANCE_WEIGHT, MIN_COUNT, is_max_weight
from .replay.buffers import MAX_REPLAY_RATIO, is_ratio

__all__ = ["UNREAD_MODEL_KEYS", "UNREAD_SECTION_KEYS", "Config", "ConfigError", "check_path", "load_config", "load_config_dict",
           "read_toml", "to_toml", "unread_keys"]


class ConfigError(ValueError):
    """A configuration problem, naming the key and the fix."""


# Keys whose value is a secret: an error names the key, never the value (a config error is logged,
# and an unquoted password is still the password)
_SECRET_KEYS = frozenset({"kafka.ssl_password", "kafka.sasl_plain_username", "kafka.sasl_plain_password"})


def _shown(key: str, value: Any) -> str:
    """``value`` as an error quotes it: ``<redacted>`` for a secret key's, and a description where Python
    cannot write it (an integer past 4,300 digits, a long hex number in TOML, inside a list: the error
    itself was a ValueError traceback).

    >>> _shown("run.report", [16 ** 4000])
    'a value too large to show (Exceeds the limit (4300 digits) for integer string conversion)'
    """
    if key in _SECRET_KEYS:
        return "<redacted>"
    try:
        return repr(value)
    except ValueError as e:
        return f"a value too large to show ({str(e).split(';')[0]})"


def _check(cond: bool, key: str, what: str, value: Any, fix: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {what} (got {_shown(key, value)}); {fix}")


# Validators are attached to fields as metadata: field(default=..., metadata=check(...)).
def check(fn: Callable[[Any], bool], what: str, fix: str) -> dict:
    return {"check": (fn, what, fix)}


def positive(fix: str) -> dict:
    return check(lambda v: v > 0, "must be > 0", fix)


MAX_WIDTH = 1_000_000  # model.width, trainable.hidden: a layer's width (a traceback from the allocation above it)
MAX_THREADS = 256  # run.threads: far more than a numeric thread pool helps (thousands fail to start)
# Every integer key is at most MAX_COUNT unless its field says otherwise (at_most): Kafka's own settings
# are 32-bit, and a larger count reached numpy or C as "Maximum allowed dimension exceeded" or an
# OverflowError instead of an error naming the key
MAX_COUNT = 2**31 - 1
MAX_SEED = 2**32 - 1  # a 32-bit seed: the trainable model derives torch seeds from it by arithmetic
MAX_TOTAL = 2**53  # run.max_events, replay.max_bytes: totals that may pass MAX_COUNT (exact as a JSON number)
MAX_KEY_UNITS = 1_000  # model.key_units: threshold units per input feature (the default is 8)
MAX_SHUTDOWN_S = 86_400.0  # kafka.shutdown_timeout_s: a day (threading.Timer overflows past about 9e9 s)


def at_most(most: int, meta: dict) -> dict:
    """A field's ``meta`` with an integer ceiling other than :data:`MAX_COUNT` (``_build`` checks it)."""
    return {**meta, "max": most}


def _seed() -> dict:
    return at_most(MAX_SEED, check(lambda v: v >= 0, "must be >= 0", "use a seed such as 0"))


def _nonnegative(fix: str) -> dict:
    return check(lambda v: v >= 0, "must be >= 0", fix)


def _finite_nonnegative(fix: str) -> dict:
    return check(is_nonnegative, "must be a finite number >= 0", fix)


def _finite_positive(fix: str) -> dict:
    return check(is_positive, "must be a finite number > 0", fix)


def _forgetting(fix: str) -> dict:
    # the heads' rule (stream_cl.checks.is_forgetting): NaN fails it too
    return check(lambda v: all(is_forgetting(lam) for lam in v), f"each factor must be in [{MIN_FORGETTING}, 1.0]", fix)


def _number(x: float) -> str:
    """``x`` as a short number for an error: ``1e6``, not ``1e+06``.

    >>> _number(1e6), _number(100.0), _number(2.5e-05)
    ('1e6', '100', '2.5e-5')
    """
    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", f"{x:g}")


# mapping.timestamp_unit: how many of the unit make a second (a numeric time is divided by it)
PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


@dataclass(frozen=True)
class MappingConfig:
    """Where each part of an event lives in a JSON object or CSV row."""

    features: str | list[str] = "x"  # a field holding a dict/list, or a list of top-level fields/columns
    label: str = "y"
    id: str = "id"
    task: str = "task"
    timestamp: str = "ts"
    # what a numeric time counts since the epoch: Kafka, Java and JavaScript producers send milliseconds
    timestamp_unit: Literal["s", "ms", "us", "ns"] = "s"
    unknown_fields: Literal["ignore", "reject"] = "ignore"
    max_features: int = field(default=100_000, metadata=positive("use a positive feature-count limit"))
    max_event_bytes: int = field(default=1_048_576, metadata=positive("use a positive byte limit such as 1048576"))
    # NaN in a feature: "reject" makes a non_finite dead letter, "missing" reads it as null
    nan_policy: Literal["reject", "missing"] = "reject"
    # objects/arrays nested in the features: levels flattened into dotted keys; deeper is a too_deep dead letter
    max_depth: int = field(default=4, metadata=check(lambda v: v >= 0, "must be >= 0", "use a depth such as 4 (0: no nesting)"))

    @property
    def feature_fields(self) -> list[str]:
        """The fields ``features`` names: one (a field holding them all, or a CSV's columns), or a list."""
        return [self.features] if isinstance(self.features, str) else list(self.features)

    def __post_init__(self):
        named = self.feature_fields
        if "" in named:  # no field has an empty name: every event would be read, and none learned
            raise ConfigError(f"mapping.features: an empty field name (got {self.features!r}); name the fields or "
                              'columns to learn from, or a field holding them all (features = "x")')
        if self.label == "":
            raise ConfigError("mapping.label: empty (got ''); name the label field or column, e.g. label = \"y\"")
        if not named:
            raise ConfigError("mapping.features: an empty list names no feature; name the fields or columns to learn "
                              'from, or a field holding them all (features = "x")')
        for key in ("label", "id"):  # a label learned as a feature leaks it; an id is a new category every event
            if getattr(self, key) in named:
                raise ConfigError(f"mapping.features: names {getattr(self, key)!r}, the {key} field (mapping.{key}); "
                                  f"remove it from mapping.features")
        # one field read as two parts: a label read as the timestamp becomes time features (it leaks into the
        # model), an id or task read as the label is learned as one; "" names no field, so it never clashes
        parts = {"label": "the label field", "id": "the event id field", "task": "the task field",
                 "timestamp": "the event-time field"}
        for i, key in enumerate(parts):
            for other in list(parts)[:i]:
                if getattr(self, key) and getattr(self, key) == getattr(self, other):
                    raise ConfigError(f"mapping.{key}: names {getattr(self, key)!r}, {parts[other]} (mapping.{other}); "
                                      f'name {parts[key]}, a field of its own (or {key} = "" if events have none)')


@dataclass(frozen=True)
class SourceConfig:
    kind: Literal["demo", "file", "kafka"] = "demo"
    path: str = ""  # for kind = "file": .jsonl, .csv, optionally .gz
    format: Literal["auto", "jsonl", "csv"] = "auto"
    follow: bool = False  # keep reading a growing file
    follow_idle_timeout_s: float = field(default=0.0, metadata=check(lambda v: v >= 0, "must be >= 0", "use 0 to follow forever"))
    label_policy: Literal["optional", "required"] = "optional"  # "required": an event without a label is a dead letter

    def __post_init__(self):
        if self.kind == "file":
            return
        # only a file source reads these: the demo would run, or the daemon read [kafka], and the key be ignored
        for key, unset in (("path", ""), ("format", "auto"), ("follow", False), ("follow_idle_timeout_s", 0.0)):
            if getattr(self, key) != unset:
                fix = (f'the bundled stream; set kind = "file" to read the file (or remove {key})' if self.kind == "demo"
                       else f"the [kafka] topics; remove {key} (only a file source reads it)")
                raise ConfigError(f'source.kind: {key} is set (got {getattr(self, key)!r}) but kind is "{self.kind}", '
                                  f"which reads {fix}")


# The [model] keys the online learner reads and another kind does not (stream_cl.factory.build_learner
# passes them to the online learner alone): they change nothing in that kind's model, so a checkpoint
# does not compare them (connectors/state.py), and a config that sets one is told so (unread_keys).
_ONLINE_ONLY = frozenset({"width", "key_units", "sgd_lr", "mix_decay", "input_forgetting"})
UNREAD_MODEL_KEYS = {"online": frozenset(), "analytic": _ONLINE_ONLY | {"seed"},
                     "trainable": _ONLINE_ONLY | {"forgetting", "gamma", "temperature"}}
# The same for the other sections' keys, as (section, key): control_every paces the online learner's
# homeostasis and drift responses; the analytic model takes neither, the trainable one paces them by
# [trainable] micro_batch (stream_cl.factory); connectors/state.py does not compare them either
UNREAD_SECTION_KEYS = {"online": frozenset(), "analytic": frozenset({("homeostasis", "control_every")}),
                       "trainable": frozenset({("homeostasis", "control_every")})}
# The continual-learning sections, each with the setting that turns it off and its value then: a section
# that is off builds nothing, so its other keys are read by nothing (unread_keys says so; a checkpoint
# compares only the switch, connectors/state.py). control_every is left out: it paces [drift]'s
# responses too, with [homeostasis] off.
SECTION_SWITCHES = {"replay": ("policy", "none"), "drift": ("detector", "none"),
                    "homeostasis": ("enabled", False), "imbalance": ("mode", "none")}
_READ_WHEN_OFF = frozenset({("homeostasis", "control_every")})
# [replay] keys that one policy alone reads (stream_cl.replay.make_replay passes them to it alone, so they
# change nothing in another policy's buffer): warned of as unread, and not compared at a resume
POLICY_ONLY_KEYS = {("replay", "policy"): {"power_law": frozenset({"alpha", "group", "exclude_current"})}}
_TURN_ON = {"replay": 'set replay.policy (e.g. "reservoir")', "drift": 'set drift.detector (e.g. "adwin")',
            "homeostasis": "set homeostasis.enabled = true", "imbalance": 'set imbalance.mode (e.g. "reweight")'}


@dataclass(frozen=True)
class ModelConfig:
    kind: Literal["online", "analytic", "trainable"] = "online"  # trainable: see [trainable]
    gamma: float = field(default=1.0, metadata=_finite_positive("set a positive regularisation such as 1.0"))
    # heads on features + inputs; unset: [1.0] for kind = "analytic" (one head), else [1.0, 0.995] (__post_init__)
    forgetting: list[float] | None = field(default=None, metadata=_forgetting("1.0 keeps everything, 0.99 forgets fast"))
    input_forgetting: list[float] = field(default_factory=lambda: [0.999, 1.0], metadata=_forgetting(
        "1.0 keeps everything, 0.99 forgets fast"))  # heads on the inputs only (kind = "online")
    sgd_lr: float = field(default=0.01, metadata=_finite_nonnegative("use 0 for no SGD softmax head"))
    mix_decay: float = field(default=0.995, metadata=check(is_open_unit, "must be in (0, 1)", "use e.g. 0.995 (a memory of about 200 events)"))
    width: int = field(default=256, metadata=check(
        lambda v: 0 <= v <= MAX_WIDTH, f"must be in [0, {MAX_WIDTH:_}]",
        "use e.g. 256 (0: no random features); memory grows with the width, a very wide model does not fit"))
    key_units: int = field(default=8, metadata=check(
        lambda v: 0 <= v <= MAX_KEY_UNITS, f"must be in [0, {MAX_KEY_UNITS:_}]",
        "use e.g. 8 (0: no threshold units); each input feature gets this many design columns"))
    hash_width: int | None = field(default=None, metadata=check(
        lambda v: v >= 1, "must be >= 1",
        # with the other defaults 512 gives the online model's backbone head 1 + width + 9 x 512 = 4,865 columns,
        # within max_columns (8,192; the largest that fits is 881); the analytic model's head takes 1 + hash_width
        "use e.g. 512 (the online model's 'all' head gets 1 + width + (1 + key_units) x hash_width design "
        "columns, which must fit in model.max_columns), or leave it out (no hashing)"))
    # design columns a ridge head may grow to (8 * columns^2 bytes a matrix); 0: no bound
    max_columns: int = field(default=8192, metadata=check(
        lambda v: v >= 0, "must be >= 0", "use e.g. 8192 (0: no bound; memory grows with its square)"))
    # classes each source partition may bring (each adds a column to every head); an event whose label would be
    # one more of its partition's is a dead letter "rejected_by_model" (a label new on every event would grow the
    # model without end); 0: no bound
    max_classes: int = field(default=10_000, metadata=check(
        lambda v: v >= 0, "must be >= 0", "use e.g. 10000 (0: no bound; memory grows with the classes)"))
    # indicator columns per string-valued feature; later categories share "k=<other>"
    max_categories: int = field(default=1000, metadata=positive("use a bound such as 1000 categories per feature"))
    missing_indicators: bool = False  # a null value also sets the indicator "k=<missing>"
    time_features: bool = False  # the event time (mapping.timestamp) as hour-of-day and day-of-week sin/cos
    temperature: float = field(default=0.1, metadata=_finite_positive("use a positive temperature such as 0.1"))
    device: str = "auto"
    seed: int = field(default=0, metadata=_seed())

    def __post_init__(self):
        # the kind's default forgetting, resolved here only: a file, a CLI flag and the daemon get the same model, and
        # a checkpoint keeps the resolved list (what connectors/state.py compares on resume)
        if self.forgetting is None:
            object.__setattr__(self, "forgetting", [1.0] if self.kind == "analytic" else [1.0, 0.995])
        if self.kind == "analytic" and len(self.forgetting) != 1:
            raise ConfigError(f"model.forgetting: the analytic model has one head, got {self.forgetting!r}; give one "
                              "value such as [1.0], or leave it out")
        if self.kind == "online" and not self.forgetting and not self.input_forgetting:
            raise ConfigError("model.forgetting: no heads at all (forgetting and input_forgetting are empty); give at "
                              "least one factor, e.g. forgetting = [1.0, 0.995]")


@dataclass(frozen=True)
class RunConfig:
    batch_size: int = field(default=1024, metadata=positive("use a positive micro-batch size such as 1024"))
    max_events: int | None = field(default=None, metadata=at_most(MAX_TOTAL, positive(
        "use a positive count, or leave it out (no limit)")))
    report: str = ""  # JSON report path
    predictions: str = ""  # predictions JSONL path ("" = none)
    dead_letters: str = "runs/dead-letters.jsonl"  # "" = do not write
    append: bool = False  # false: a run starts its predictions and dead-letter files anew; true: appends to them
    # labelled events per windowed-accuracy point; unset: chosen as the run goes (50 to 100 points)
    window: int | None = field(default=None, metadata=positive("use a positive window such as 1000, or leave it out (automatic)"))
    progress: bool = True
    threads: int = field(default=1, metadata=check(lambda v: 1 <= v <= MAX_THREADS, f"must be in [1, {MAX_THREADS}]",
                                                     "use 1 (recommended) or a few numeric threads"))


_SECURITY = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _legal_topic(name: str) -> bool:
    """Kafka's own rule for topic names (what the broker and kafka-python refuse otherwise)."""
    return isinstance(name, str) and len(name) <= 249 and name not in (".", "..") and bool(
        re.fullmatch(r"[a-zA-Z0-9._-]+", name))


def _check_topic(key: str, name: str) -> None:
    """``name`` (set) is a legal topic name, or a ConfigError naming ``key`` with Kafka's rule."""
    if name and not _legal_topic(name):
        raise ConfigError(f"{key}: {name!r} is not a legal Kafka topic name; use letters, digits, '.', '_' and '-' "
                          "(at most 249 characters, not '.' or '..')")


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
    session_timeout_ms: int = field(default=45_000, metadata=positive("use a timeout such as 45000 (ms)"))
    max_poll_interval_ms: int = field(default=300_000, metadata=positive("use a limit such as 300000 (ms)"))
    # transactions need every in-sync replica's acknowledgement: the key stays for old configs, "all" only
    acks: int | str = field(default="all", metadata=check(lambda v: v in ("all", -1), "must be \"all\" (the daemon's output is transactional)", 'use acks = "all", or leave the key out'))
    # one Kafka transaction per interval: its predictions, dead letters and offsets (latency vs overhead)
    commit_interval_ms: int = field(default=200, metadata=positive("use an interval such as 200 (ms)"))
    transactional_id: str = ""  # "" = derived: stable per daemon (see docs/daemon.md)
    transaction_timeout_ms: int = field(default=60_000, metadata=positive("use a timeout such as 60000 (ms)"))
    # a commit that takes longer is given up: the member drops what it did since its last commit and starts over
    commit_timeout_ms: int = field(default=60_000, metadata=positive("use a bound such as 60000 (ms)"))
    linger_ms: int = field(default=5, metadata=_nonnegative("use a small delay such as 5 (ms)"))
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
            _check_topic(f"kafka.{key}", name)
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
        _check_bootstrap_servers(self.bootstrap_servers)
        # the broker aborts a transaction open longer than its timeout: every commit would fail and the
        # daemon would start over forever
        if self.commit_interval_ms >= self.transaction_timeout_ms:
            raise ConfigError(f"kafka.commit_interval_ms: must be below kafka.transaction_timeout_ms (got "
                              f"{self.commit_interval_ms} >= {self.transaction_timeout_ms}); lower "
                              "kafka.commit_interval_ms (e.g. 200) or raise kafka.transaction_timeout_ms")

    def _check_security_keys(self) -> None:
        """Refuse TLS or SASL settings the protocol does not use: the client connects without them,
        so a CA file or a password written under PLAINTEXT was ignored without a word (as
        sasl_mechanism was not). ssl_check_hostname counts only when turned off."""
        tls = self.security_protocol in ("SSL", "SASL_SSL")
        sasl = self.security_protocol.startswith("SASL_")
        for keys, used, fix in ((_TLS_KEYS, tls, "SSL or SASL_SSL"),
                                (_SASL_KEYS, sasl, "SASL_SSL (or SASL_PLAINTEXT)")):
            for name, unset in keys.items():
                value = getattr(self, name)
                if value != unset and not used:
                    raise ConfigError(f"kafka.{name}: set to {_shown(f'kafka.{name}', value)} but security_protocol "
                                      f"is {self.security_protocol!r}, which does not use it; use {fix}, or remove "
                                      f"kafka.{name}")


def _check_bootstrap_servers(value: str | list[str]) -> None:
    """Refuse what is not a list of ``host[:port]``, split on commas as the clients split it: a port
    that is not a number (a template left unfilled, "kafka:${PORT}") or nothing between commas
    failed inside kafka-python as a traceback, exit 1 (and a restart loop) instead of exit 2."""
    items = [value] if isinstance(value, str) else value
    entries = [s.strip() for item in items for s in item.split(",") if s.strip()]
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


# The keys only TLS, or only SASL, reads, each with its value when unset (connectors.kafka.client_options)
_TLS_KEYS = {"ssl_cafile": "", "ssl_certfile": "", "ssl_keyfile": "", "ssl_password": "", "ssl_password_env": "",
             "ssl_check_hostname": True}
_SASL_KEYS = {"sasl_plain_username": "", "sasl_plain_username_env": "", "sasl_plain_password": "",
              "sasl_plain_password_env": ""}


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
    max_early: int = field(default=100_000, metadata=_nonnegative("use a bound such as 100000 labels (0: never wait)"))


# -- continual learning (issue 3): [replay], [drift], [homeostasis], [imbalance], [trainable] --
@dataclass(frozen=True)
class ReplayConfig:
    """``[replay]``: a replay buffer (stream_cl.replay) whose rows every head learns (the exact ones
    too: README), or the trainable model's."""

    policy: Literal["none", "reservoir", "class_balanced", "power_law"] = "none"
    max_samples: int = field(default=2000, metadata=positive("use a positive sample budget such as 2000"))
    max_bytes: int | None = field(default=None, metadata=at_most(MAX_TOTAL, positive(
        "use a positive byte budget, or leave it out for none")))
    ratio: float = field(default=1.0, metadata=check(
        is_ratio, f"must be a number in [0, {MAX_REPLAY_RATIO:g}]", "use replayed rows per fresh row such as 1.0"))
    alpha: float = field(default=0.5, metadata=_finite_nonnegative("use a power-law exponent such as 0.5 (0 = uniform)"))
    group: Literal["label", "sample"] = "sample"  # power_law: grouping of rows without a task
    exclude_current: bool = True  # power_law: do not replay the latest row's task (or class with group = "label"; PowerLawReplay)
    seed: int = field(default=0, metadata=_seed())


@dataclass(frozen=True)
class DriftConfig:
    """``[drift]``: a River drift detector on the prequential error/loss, and the responses to its alarms."""

    detector: Literal["none", "adwin", "kswin", "page_hinkley", "ddm", "eddm", "hddm_a", "hddm_w", "fhddm"] = "none"
    signal: Literal["auto", "error", "loss"] = "auto"
    response: list[Literal["record", "need", "forget", "restart", "reset", "remix"]] = field(
        default_factory=lambda: ["restart"],
        metadata=check(bool, "must name at least one response", 'use e.g. response = ["need", "restart"]'))
    direction: Literal["up", "both"] = "up"
    forget_value: float = field(default=0.98, metadata=check(is_forgetting, f"must be in [{MIN_FORGETTING:g}, 1]",
                                                             "use a factor such as 0.98"))
    forget_events: int = field(default=300, metadata=positive("use a positive number of labelled events such as 300"))
    restart_after: int = field(default=100, metadata=positive("use a positive number of labelled events such as 100"))
    max_alarms: int = field(default=1000, metadata=positive("use a positive number such as 1000"))
    seed: int = field(default=0, metadata=_seed())


@dataclass(frozen=True)
class HomeostasisConfig:
    """``[homeostasis]``: the need that scales forgetting factors and learning rates (stream_cl.homeostasis)."""

    enabled: bool = False
    recent_rate: float = field(default=0.02, metadata=check(is_open_unit, "must be in (0, 1)", "use a rate such as 0.02"))
    set_point_rate: float = field(default=0.002, metadata=check(is_open_unit, "must be in (0, 1)", "use a rate such as 0.002"))
    tolerance: float = field(default=0.01, metadata=_finite_nonnegative("use a small tolerance such as 0.01"))
    z: float = field(default=2.0, metadata=_finite_nonnegative("use a band of about 2 standard deviations"))
    loss_gain: float = field(default=1.0, metadata=_finite_nonnegative("use a gain such as 1.0"))
    error_gain: float = field(default=0.5, metadata=_finite_nonnegative("use a gain such as 0.5"))
    alarm_gain: float = field(default=1.0, metadata=_finite_nonnegative("use a gain such as 1.0"))
    need_decay: float = field(default=0.99, metadata=check(is_open_unit, "must be in (0, 1)", "use a decay such as 0.99"))
    max_need: float = field(default=4.0, metadata=_finite_positive("use a ceiling such as 4.0"))
    half_need: float = field(default=1.0, metadata=_finite_positive("use a value such as 1.0"))
    min_forgetting: float = field(default=0.98, metadata=check(is_forgetting, f"must be in [{MIN_FORGETTING:g}, 1]",
                                                               "use a floor such as 0.98"))
    lr_sensitivity: list[float] = field(default_factory=lambda: [0.25, 0.5], metadata=check(
        lambda v: len(v) > 0 and all(math.isfinite(s) for s in v), "must be finite numbers",
        "use per-layer sensitivities such as [0.25, 0.5]"))
    lr_low: float = field(default=0.5, metadata=check(is_lr_low, "must be in (0, 1]", "use a bound such as 0.5"))
    lr_high: float = field(default=4.0, metadata=check(is_lr_high, "must be >= 1", "use a bound such as 4.0"))
    control_every: int = field(default=32, metadata=positive("use a positive number of labelled events such as 32"))


@dataclass(frozen=True)
class ImbalanceConfig:
    """``[imbalance]``: pseudo-feature rows and/or inverse-frequency weights for rare classes (stream_cl.imbalance)."""

    mode: Literal["none", "pseudo", "reweight", "both"] = "none"
    max_pseudo: int = field(default=2, metadata=_nonnegative("use a small number such as 2"))
    # ImbalanceCompensator's rules (imported), refused at load with the key named
    power: float = field(default=1.0, metadata=_finite_nonnegative("use an exponent such as 1.0"))
    max_weight: float = field(default=10.0, metadata=check(
        is_max_weight, f"must be in [1, {_number(MAX_IMBALANCE_WEIGHT)}]", "use a bound such as 10.0"))
    min_count: int = field(default=5, metadata=check(lambda v: v >= MIN_COUNT, f"must be >= {MIN_COUNT}",
                                                     "use a count such as 5"))
    seed: int = field(default=0, metadata=_seed())


@dataclass(frozen=True)
class TrainableConfig:
    """``[trainable]``: the MLP of ``model.kind = "trainable"`` (stream_cl.trainable)."""

    hidden: list[int] = field(default_factory=lambda: [256],
                              metadata=check(lambda v: all(0 < h <= MAX_WIDTH for h in v), f"widths must be in [1, {MAX_WIDTH:_}]",
                                             "use e.g. hidden = [256], or [] for none; a very wide layer does not fit in memory"))
    lr: float = field(default=0.01, metadata=_finite_positive("use a learning rate such as 0.01"))
    micro_batch: int = field(default=16, metadata=positive("use a micro-batch such as 16"))
    steps: int = field(default=1, metadata=positive("use 1 or a few steps per micro-batch"))
    weight_decay: float = field(default=0.0, metadata=_finite_nonnegative("use 0 or a small decay such as 1e-4"))
    dtype: Literal["float32", "float64"] = "float64"


@dataclass(frozen=True)
class ChangelogConfig:
    """``[changelog]``: the compacted topic that holds every source partition's learned state (the Kafka daemon)."""

    enabled: bool = True  # false: no changelog (one daemon per group; state only in local checkpoints)
    topic: str = ""  # "" = "<kafka.group_id>.model"; a named one serves one group (another group's member stops)
    every_events: int = field(default=5_000, metadata=positive("use a count such as 5000 (events of a partition)"))
    # inf: parts are written by every_events alone (and at revocation and shutdown)
    every_seconds: float = field(default=10.0, metadata=positive("use an interval such as 10 (seconds)"))
    # finite: a member that never folds never serves what the other members learn
    fold_every_seconds: float = field(default=1.0, metadata=_finite_positive("use an interval such as 1 (seconds)"))
    partitions: int = field(default=1, metadata=positive("use 1, or a few for a large group"))
    replication_factor: int = field(default=-1, metadata=check(lambda v: v == -1 or v > 0, "must be -1 or > 0",
                                                                 "use -1 (the broker's default) or e.g. 3"))
    max_message_bytes: int = field(default=33_554_432, metadata=positive("use a size that fits one partition's "
                                                                          "state, such as 33554432 (32 MB)"))

    def __post_init__(self):
        _check_topic("changelog.topic", self.topic)


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


def _check_stall_timeout(config: Config) -> None:
    """Refuse a ``metrics.stall_timeout_s`` that a healthy idle loop outlasts: ``/healthz`` would answer 503
    "stalled" during an idle poll, and a liveness probe would restart the daemon again and again. Checked
    whenever ``[metrics]`` is on, whatever ``source.kind``, as a section's own values are: a config a file run
    accepts is one the daemon accepts.

    >>> try:
    ...     load_config_dict({"kafka": {"poll_timeout_ms": 300_000}})
    ... except ConfigError as e:
    ...     print(e)  # doctest: +NORMALIZE_WHITESPACE
    metrics.stall_timeout_s: must be at least 2 s above the longest idle loop turn, max(kafka.poll_timeout_ms,
    3000 ms) = 300 s (got 120.0); raise metrics.stall_timeout_s to 302 or more, or lower kafka.poll_timeout_ms
    (e.g. 500)
    """
    if not config.metrics.enabled:  # no /healthz: the key is read by nothing
        return
    idle = longest_idle_turn_s(config.kafka)
    least = idle + STALL_MARGIN_S
    if config.metrics.stall_timeout_s < least:
        # below JOIN_POLL_MS a lower poll timeout shortens no idle turn: only the stall timeout can move
        other = (", or lower kafka.poll_timeout_ms (e.g. 500)" if config.kafka.poll_timeout_ms > JOIN_POLL_MS else
                 f" (a member without partitions polls {JOIN_POLL_MS} ms, whatever kafka.poll_timeout_ms)")
        raise ConfigError(f"metrics.stall_timeout_s: must be at least {STALL_MARGIN_S:g} s above the longest idle loop "
                          f"turn, max(kafka.poll_timeout_ms, {JOIN_POLL_MS} ms) = {idle:g} s (got "
                          f"{config.metrics.stall_timeout_s!r}); raise metrics.stall_timeout_s to {least:g} or more{other}")


def _check_across_sections(config: Config) -> None:
    """The rules that tie keys of two sections (a section's own rules are its ``__post_init__``'s)."""
    _check_stall_timeout(config)


@dataclass(frozen=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    run: RunConfig = field(default_factory=RunConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    homeostasis: HomeostasisConfig = field(default_factory=HomeostasisConfig)
    imbalance: ImbalanceConfig = field(default_factory=ImbalanceConfig)
    trainable: TrainableConfig = field(default_factory=TrainableConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    changelog: ChangelogConfig = field(default_factory=ChangelogConfig)

    def __post_init__(self):
        _check_across_sections(self)  # also for replace(): a section changed alone may break a rule with another

    def replace(self, section: str, **changes) -> "Config":
        """A copy with ``changes`` applied to one section (validated like a file). Defaults already
        resolved are kept: ``replace("model", kind="analytic")`` keeps the online model's two
        ``forgetting`` factors (refused); pass ``forgetting`` too, or build from the file's keys."""
        merged = {**dataclasses.asdict(getattr(self, section)), **changes}
        return dataclasses.replace(self, **{section: _build(type(getattr(self, section)), merged, section)})


def to_toml(sections: Mapping) -> str:
    """A TOML document from ``{section: {key: value}}`` (str, int, float, bool, lists of those):
    what :func:`load_config` reads, for tools and tests that write configs.

    >>> print(to_toml({"model": {"kind": "analytic", "forgetting": [1.0, 0.99]}, "run": {"threads": 1}}))
    [model]
    kind = "analytic"
    forgetting = [1.0, 0.99]
    <BLANKLINE>
    [run]
    threads = 1
    <BLANKLINE>
    """

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            # a JSON string is a valid TOML basic string, but not its \ud83d surrogate escapes: TOML is UTF-8
            return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")  # DEL: escaped in TOML too
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {v!r} as TOML")

    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {value(v)}" for k, v in keys.items())
        lines.append("")
    return "\n".join(lines)


def unread_keys(config: Config, written: Mapping) -> list[str]:
    """A warning for each key that ``written`` (the config's tables as given, :func:`read_toml`)
    sets and ``config.model.kind`` does not read: a ``[model]`` key of
    :data:`UNREAD_MODEL_KEYS`, another section's of :data:`UNREAD_SECTION_KEYS`, or a
    ``[trainable]`` key with another kind. The model is built
    without them, so a value tuned there changes nothing; the file run and the daemon say so
    (not an error: the run is right, only the key is idle). A key set to its default value
    counts: the user wrote it, and may mean to tune it.

    >>> tables = {"model": {"kind": "trainable", "gamma": 1.0}, "trainable": {"lr": 0.1}}
    >>> unread_keys(load_config_dict(tables), tables)
    ['model.gamma: set, but model.kind = "trainable" does not read it (kinds "online" and "analytic" do): remove it, or choose a kind that reads it']
    >>> unread_keys(load_config_dict({"trainable": {"lr": 0.1}}), {"trainable": {"lr": 0.1}})
    ['trainable.lr: set, but model.kind = "online" does not read [trainable] (kind "trainable" does): remove it, or choose a kind that reads it']
    """
    kind = config.model.kind
    named = [("model", key, [k for k, unread in UNREAD_MODEL_KEYS.items() if key not in unread], "it")
             for key in _keys(written, "model") if key in UNREAD_MODEL_KEYS.get(kind, ())]
    named += [(section, key, [k for k, unread in UNREAD_SECTION_KEYS.items() if (section, key) not in unread], "it")
              for section, key in sorted(UNREAD_SECTION_KEYS.get(kind, ())) if key in _keys(written, section)]
    if kind != "trainable":
        named += [("trainable", key, ["trainable"], "[trainable]") for key in _keys(written, "trainable")]
    out = []
    for section, key, readers, what in named:
        who = " and ".join(f'"{k}"' for k in readers)
        out.append(f'{section}.{key}: set, but model.kind = "{kind}" does not read {what} '
                   f"({'kinds' if len(readers) > 1 else 'kind'} {who} do{'es' if len(readers) == 1 else ''}): "
                   "remove it, or choose a kind that reads it")
    return (out + _keys_of_sections_off(config, written) + _keys_of_other_policies(config, written)
            + _idle_keys(config, written) + _time_field_as_feature(config))


def policy_unread(section: str, values: Mapping) -> frozenset:
    """The keys of ``section`` (its settings ``values``) that its chosen policy does not read
    (:data:`POLICY_ONLY_KEYS`).

    >>> sorted(policy_unread("replay", {"policy": "reservoir"})), sorted(policy_unread("replay", {"policy": "power_law"}))
    (['alpha', 'exclude_current', 'group'], [])
    """
    out: set = set()
    for (name, switch), only in POLICY_ONLY_KEYS.items():
        if name == section:
            for policy, keys in only.items():
                if values.get(switch) != policy:
                    out |= keys
    return frozenset(out)


def _keys_of_other_policies(config: Config, written: Mapping) -> list[str]:
    """A warning for each key ``written`` sets that only another policy of its section reads."""
    out = []
    for (section, switch), only in POLICY_ONLY_KEYS.items():
        values = dataclasses.asdict(getattr(config, section))
        if values[switch] == SECTION_SWITCHES[section][1]:
            continue  # the section is off: _keys_of_sections_off names its keys
        unread = policy_unread(section, values)
        for key in _keys(written, section):
            if key in unread:
                readers = " and ".join(f'"{p}"' for p, keys in only.items() if key in keys)
                out.append(f'{section}.{key}: set, but {section}.{switch} = "{values[switch]}" does not read it '
                           f"({switch} {readers} does): remove it, or set {section}.{switch} = {readers}")
    return out


# Keys of a section that is on which its other settings leave unread: (section, keys, idle when, why, fix).
# Warned of only: unlike POLICY_ONLY_KEYS they are compared at a resume, as the learner's part built from
# the section (Homeostasis, DriftMonitor, ImbalanceCompensator) keeps them, and records written with them
# must still read as the same model
_IDLE_KEYS = (
    ("homeostasis", ("lr_sensitivity", "lr_low", "lr_high"), lambda c: c.model.kind == "online",
     'model.kind = "online" does not read it (the learning-rate scales are the trainable MLP\'s)',
     'set model.kind = "trainable"'),
    ("homeostasis", ("min_forgetting", "half_need"), lambda c: c.model.kind == "trainable",
     'model.kind = "trainable" does not read it (the forgetting factors are the ridge heads\')',
     'set model.kind = "online"'),
    ("drift", ("forget_value", "forget_events", "restart_after"), lambda c: c.model.kind == "trainable",
     'model.kind = "trainable" takes no "forget", "restart" or "reset" response', 'set model.kind = "online"'),
    ("drift", ("forget_value", "forget_events"), lambda c: c.model.kind == "online" and "forget" not in c.drift.response,
     'drift.response has no "forget"', 'add "forget" to drift.response'),
    ("drift", ("restart_after",),
     lambda c: c.model.kind == "online" and not {"restart", "reset"} & set(c.drift.response),
     'drift.response has neither "restart" nor "reset"', 'add "restart" to drift.response'),
    ("imbalance", ("max_pseudo", "min_count", "seed"), lambda c: c.imbalance.mode == "reweight",
     'imbalance.mode = "reweight" makes no pseudo-feature rows', 'set imbalance.mode = "both"'),
    ("imbalance", ("power", "max_weight"), lambda c: c.imbalance.mode == "pseudo",
     'imbalance.mode = "pseudo" weighs no rows', 'set imbalance.mode = "both"'),
    # every event's time is None: no time feature is ever made, and a CSV's time column is learned as categories
    ("model", ("time_features",), lambda c: c.model.time_features and not c.mapping.timestamp,
     'mapping.timestamp = "" names no event time, so no time features are made',
     "set mapping.timestamp to the field or column holding the event time"),
)


def _idle_keys(config: Config, written: Mapping) -> list[str]:
    """A warning for each key ``written`` sets in a section that is on but whose other settings leave
    the key unread (:data:`_IDLE_KEYS`); a section that is off is :func:`_keys_of_sections_off`'s.

    >>> tables = {"drift": {"detector": "adwin", "response": ["need"], "forget_events": 50},
    ...           "homeostasis": {"enabled": True, "lr_high": 3.0}}
    >>> for note in _idle_keys(load_config_dict(tables), tables): print(note)
    homeostasis.lr_high: set, but model.kind = "online" does not read it (the learning-rate scales are the trainable MLP's): remove it, or set model.kind = "trainable"
    drift.forget_events: set, but drift.response has no "forget": remove it, or add "forget" to drift.response
    """
    out = []
    for section, keys, idle, why, fix in _IDLE_KEYS:
        switch, off = SECTION_SWITCHES.get(section, ("", None))  # a section without a switch ([model]) is on
        if (switch and getattr(getattr(config, section), switch) == off) or not idle(config):
            continue
        out += [f"{section}.{key}: set, but {why}: remove it, or {fix}" for key in _keys(written, section) if key in keys]
    return out


def _time_field_as_feature(config: Config) -> list[str]:
    """A warning when ``mapping.features`` names the ``mapping.timestamp`` field: its value is then
    learned as a raw input too, an ISO 8601 time as a category of its own for every event (filling
    model.max_categories, and slow). Not an error, as the id is (:class:`MappingConfig`): a
    numeric epoch time may be meant as an input. ``model.time_features`` makes the time's inputs.

    >>> tables = {"mapping": {"features": ["amount", "ts"]}}
    >>> print(*_time_field_as_feature(load_config_dict(tables)))
    mapping.features: names 'ts', the event-time field (mapping.timestamp): its value is learned as a raw input too, an ISO 8601 time as a category of its own for every event; remove it from mapping.features, and set model.time_features = true for hour-of-day and day-of-week inputs (keep it only for a numeric time meant as a raw input)
    """
    m = config.mapping
    if not m.timestamp or m.timestamp not in m.feature_fields:
        return []
    time_inputs = (": model.time_features (on) already gives the hour-of-day and day-of-week inputs"
                   if config.model.time_features else
                   ", and set model.time_features = true for hour-of-day and day-of-week inputs")
    return [f"mapping.features: names {m.timestamp!r}, the event-time field (mapping.timestamp): its value is learned "
            "as a raw input too, an ISO 8601 time as a category of its own for every event; remove it from "
            f"mapping.features{time_inputs} (keep it only for a numeric time meant as a raw input)"]


def _keys_of_sections_off(config: Config, written: Mapping) -> list[str]:
    """A warning for each key ``written`` sets in a continual-learning section that is off
    (:data:`SECTION_SWITCHES`): ``[drift] response = ["reset"]`` without a detector builds no monitor.

    >>> tables = {"drift": {"response": ["reset"]}, "homeostasis": {"lr_high": 3.0, "control_every": 8}}
    >>> for note in _keys_of_sections_off(load_config_dict(tables), tables): print(note)
    drift.response: set, but drift.detector = "none" turns [drift] off, so nothing reads it: set drift.detector (e.g. "adwin"), or remove it
    homeostasis.lr_high: set, but homeostasis.enabled = false turns [homeostasis] off, so nothing reads it: set homeostasis.enabled = true, or remove it
    """
    out = []
    for section, (switch, off) in SECTION_SWITCHES.items():
        if getattr(getattr(config, section), switch) != off:
            continue
        shown = "false" if off is False else f'"{off}"'
        out += [f"{section}.{key}: set, but {section}.{switch} = {shown} turns [{section}] off, so nothing reads it: "
                f"{_turn_on(section, switch, key)}, or remove it"
                for key in _keys(written, section) if key != switch and (section, key) not in _READ_WHEN_OFF]
    return out


def _turn_on(section: str, switch: str, key: str) -> str:
    """How to turn ``section`` on so that ``key`` is read: the policy that alone reads it, if one does."""
    readers = [policy for policy, keys in POLICY_ONLY_KEYS.get((section, switch), {}).items() if key in keys]
    return f'set {section}.{switch} = "{readers[0]}"' if readers else _TURN_ON[section]


def _keys(written: Mapping, section: str) -> list[str]:
    """The keys a config's table ``section`` sets, in the order written (none where it is no table)."""
    table = written.get(section, {}) if isinstance(written, Mapping) else {}
    return list(table) if isinstance(table, Mapping) else []


def load_config(path: str | Path) -> Config:
    return load_config_dict(read_toml(path))


def read_toml(path: str | Path) -> dict:
    """A config file's tables as written, not yet validated: which keys it sets (the rest take defaults)."""
    if str(path) == "":  # Path("") is ".", the current directory: name the empty value instead
        raise ConfigError("config path: empty (got ''); pass --config PATH to a TOML file")
    path = Path(path)
    text = _utf8_text(path, _config_bytes(path))
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the syntax at that line") from None
    except ValueError as e:  # an integer of more digits than Python converts (4,300): not a TOMLDecodeError
        raise ConfigError(f"{path}: a number too long to read ({str(e).split(';')[0]}); write a smaller "
                          "number") from None


PIPE_WRITER_WAIT_S = 30  # how long a named pipe given as the config waits for a process to write it
# A config is a few kilobytes: a larger read is a wrong path (a device such as /dev/zero never ends)
MAX_CONFIG_BYTES = 16 * 1024 * 1024


def _config_bytes(path: Path) -> bytes:
    """The file's bytes, or a ConfigError naming the path and the fix. Any readable path is read, not only a
    regular file: a pipe (``--config <(envsubst < tmpl.toml)``, ``--config /dev/stdin``) holds a config as
    well as a file does. An unreadable file was a PermissionError traceback with exit 1, which systemd's
    ``Restart=on-failure`` restarts for ever (exit 2, a config error, it does not). A named pipe is opened
    without waiting for a writer (a blocking open() held the start, SIGTERM kept, until SIGKILL), and a
    writer is waited for :data:`PIPE_WRITER_WAIT_S` at most: one that no process writes by then reads as
    nothing, and nothing is refused as a config."""
    try:
        data, pipe = _read_config(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; pass --config PATH to a TOML file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a directory, not a config file; pass --config PATH to a TOML file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror or e}); fix its permissions or the "
                          "path") from None
    except ValueError as e:  # a NUL in the path (from Python, not the command line): open raises no OSError
        raise ConfigError(f"{str(path)!r}: not a usable path ({e}); pass --config PATH to a TOML file") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: more than {MAX_CONFIG_BYTES:_} bytes, not a config file; pass --config PATH "
                          "to a TOML file")
    if pipe and not data:
        raise ConfigError(f"{path}: a pipe that gave nothing (no process wrote to it); write the config into it, or "
                          "pass --config PATH to a TOML file")
    return data


def _read_config(path: Path) -> tuple[bytes, bool]:
    """At most ``MAX_CONFIG_BYTES + 1`` bytes of ``path``, and whether it is a pipe. Opened non-blocking (a
    FIFO's open() otherwise waits for a writer, for ever), a writer waited for a while, then read blocking:
    a pipe's writer may be slow."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if stat.S_ISFIFO(mode):  # a named pipe whose writer opens it later (r32 F7): it was refused at once
            waiting = select.poll()
            waiting.register(fd, select.POLLIN)
            waiting.poll(PIPE_WRITER_WAIT_S * 1000)  # data, or a writer gone (HUP); none yet: no event
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(MAX_CONFIG_BYTES + 1), stat.S_ISFIFO(mode)
    finally:
        os.close(fd)


# byte-order marks a Windows editor writes: TOML is UTF-8 without one (tomllib reads a UTF-8 BOM as a
# stray character at line 1, column 1, where the line looks right)
_BOMS = {b"\xef\xbb\xbf": "UTF-8", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def _utf8_text(path: Path, data: bytes) -> str:
    """The file's text (``data``, its bytes), read as UTF-8 whatever the locale; a ConfigError naming the
    file otherwise."""
    why = next((f"it begins with a {name} byte-order mark" for bom, name in _BOMS.items() if data.startswith(bom)),
               None)
    if why is None:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            why = f"byte {e.start}: {e.reason}"
    raise ConfigError(f"{path}: not UTF-8 text without a byte-order mark ({why}); save the file as UTF-8 "
                      "(without a byte-order mark)")


def load_config_dict(data: Mapping) -> Config:
    return _build(Config, data, "")


def _build(cls, data: Mapping, prefix: str):
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'}: expected a table, got {type(data).__name__}; write [{prefix}] with key = value lines")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            _dotted_key(prefix, key, data[key], fields)
            raise ConfigError(f"{_join(prefix, key)}: {_unknown_key(prefix, key, data[key], fields)}")
    values = {}
    for name, f in fields.items():
        if name not in data:
            continue
        key = _join(prefix, name)
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, data[name], key)
            continue
        value = _coerce(data[name], tp, key)
        check_path(key, value)
        if "check" in f.metadata and value is not None:
            fn, what, fix = f.metadata["check"]
            _check(fn(value), key, what, value, fix)
        _at_most(value, key, f.metadata)
        values[name] = value
    return cls(**values)


def _unknown_key(prefix: str, key: str, value: Any, fields: Mapping) -> str:
    """Why ``key`` is refused in the section ``prefix`` ("" at the top of the file), and the fix. A valid key
    written in the wrong section is pointed to the sections that have one: the section's own list of keys
    did not say that ``threads`` under [model] is [run]'s. Pointed to, not sent: a name may mean another
    setting there (``[checkpoint] path`` is not ``[source] path``, the input file), so this section's own
    keys (or the nearest of them) are named too.

    >>> _unknown_key("model", "threads", 2, {"kind": None, "gamma": None})
    "not a [model] key; [run] has one (move it there if that is the setting you mean); [model]'s keys: kind, gamma"
    >>> _unknown_key("run", "seed", 1, {"batch_size": None, "threads": None})
    "not a [run] key; [model], [replay], [drift] and [imbalance] have one (move it to the one you mean); [run]'s keys: batch_size, threads"
    >>> _unknown_key("", "gamma", 1.0, {})
    'not a section; gamma is a key of [model] (write it below a [model] line)'
    """
    sections = _sections_with(key, prefix)
    if prefix and key in _section_types():  # [model.trainable]: a section written inside another
        return f"a section, not a [{prefix}] key; write its keys below a [{key}] line of their own"
    if sections and not prefix and not isinstance(value, Mapping):
        where = f"a [{sections[0]}] line" if len(sections) == 1 else f"the one you mean, e.g. a [{sections[0]}] line"
        return f"not a section; {key} is a key of {_either(sections)} (write it below {where})"
    close = _suggestion(prefix, key, fields)
    if not (sections and prefix):
        return f"unknown key; {close or 'valid keys: ' + ', '.join(fields)}"
    mine = close or f"[{prefix}]'s keys: {', '.join(fields)}"  # the key may be meant for this section
    if len(sections) == 1:
        return f"not a [{prefix}] key; [{sections[0]}] has one (move it there if that is the setting you mean); {mine}"
    return f"not a [{prefix}] key; {_either(sections, 'and')} have one (move it to the one you mean); {mine}"


def _section_types() -> dict:
    """Each section's name and its dataclass."""
    return typing.get_type_hints(Config)


def _sections_with(key: str, besides: str) -> list[str]:
    """The sections other than ``besides`` that have a key ``key``, in the order of :class:`Config`."""
    return [name for name, tp in _section_types().items()
            if name != besides and key in {f.name for f in dataclasses.fields(tp)}]


def _either(sections: list[str], word: str = "or") -> str:
    """``[a]``, ``[a] or [b]``, ``[a], [b] or [c]`` (``word``: "or", or "and")."""
    names = [f"[{s}]" for s in sections]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


# [kafka] has two passwords, which edit distance confuses: SASL's and the TLS key file's (sasl_password is
# nearest ssl_password, which SASL_PLAINTEXT refuses)
_KAFKA_SECRETS = {"pass": ("sasl_plain_password", "ssl_password"), "user": ("sasl_plain_username",)}
_SECRET_OF = {"sasl_plain_password": "SASL's", "ssl_password": "the TLS key file's", "sasl_plain_username": "SASL's"}


def _suggestion(prefix: str, key: str, fields: Mapping) -> str | None:
    """``did you mean 'x'?`` for the valid key nearest ``key``, or None. The keys of its family (those that
    share its first word: ``sasl_``, ``ssl_``, ``max_``) are tried first; then, in [kafka], a key that
    names a password or a user is shown every key of that kind with its protocol; then every key; then
    the family's keys, where it has several.

    >>> kafka = {f.name: f for f in dataclasses.fields(KafkaConfig)}
    >>> [_suggestion("kafka", k, kafka) for k in ("sasl_password", "ssl_key_password", "sasl_username_env")]
    ["did you mean 'sasl_plain_password'?", "did you mean 'ssl_password'?", "did you mean 'sasl_plain_username_env'?"]
    >>> _suggestion("kafka", "password", kafka)
    "did you mean 'sasl_plain_password' (SASL's) or 'ssl_password' (the TLS key file's)?"
    """
    family = [name for name in fields if "_" in key and name.split("_")[0] == key.split("_")[0]]
    close = difflib.get_close_matches(key, family, n=1)
    secrets = next((names for word, names in _KAFKA_SECRETS.items() if word in key.lower()), None)
    if not close and prefix == "kafka" and secrets:
        env = "_env" if key.lower().endswith("_env") else ""
        names = [f"{name + env!r} ({_SECRET_OF[name]})" for name in secrets]
        return f"did you mean {' or '.join(names)}?"
    close = close or difflib.get_close_matches(key, fields, n=1)
    if not close and len(family) > 1:  # sasl_jaas_config: the SASL keys there are, not all of [kafka]'s
        return f"the {key.split('_')[0]}_ keys: {', '.join(family)}"
    return f"did you mean {close[0]!r}?" if close else None


# The keys that name a file or a directory: a NUL character in one reached os.stat or open as a
# ValueError traceback (exit 1; the daemon's restart loop) instead of a config error naming the key
_PATH_KEYS = frozenset({"source.path", "run.report", "run.predictions", "run.dead_letters", "checkpoint.dir",
                        "kafka.status_file", "kafka.ssl_cafile", "kafka.ssl_certfile", "kafka.ssl_keyfile"})


def check_path(key: str, value: Any) -> None:
    """Refuse a NUL character in a path key's value (no file name holds one): as a file is read, and by the file
    run for a :class:`Config` made in code (``connectors.run.check_outputs``)."""
    if key in _PATH_KEYS and isinstance(value, str) and "\x00" in value:
        raise ConfigError(f"{key}: a path with a NUL character in it (got {value!r}); remove the \\u0000 "
                          "from the path")


def _at_most(value: Any, key: str, meta: Mapping) -> None:
    """Refuse an integer above its field's ceiling (:data:`MAX_COUNT` unless :func:`at_most` set one)."""
    most = meta.get("max", MAX_COUNT)
    if type(value) is int and value > most:
        fix = meta["check"][2] if "check" in meta else "use a smaller value"
        raise ConfigError(f"{key}: must be at most {most:_} (got {_shown(key, value)}); {fix}")


def _dotted_key(prefix: str, key: str, value: Any, fields: Mapping) -> None:
    """An unknown key whose value is a table may be a dotted key, Kafka's own spelling such as
    ``sasl.mechanism``: TOML reads it as the table ``sasl`` holding ``mechanism``. Name the whole
    path, and the key with underscores where one is close (else the caller's error stands)."""
    if not prefix:  # a section: ``model.gamma = 1.0`` at the top is [model]'s gamma already
        return
    path = [key]
    while isinstance(value, Mapping) and value:
        name, value = next(iter(value.items()))
        path.append(name)
    if len(path) == 1:
        return
    close = _suggestion(prefix, "_".join(path), fields)
    if close:
        raise ConfigError(f"{_join(prefix, '.'.join(path))}: unknown key (TOML reads the dots in a key as nested "
                          f"tables); {close}")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _coerce(value: Any, tp: Any, key: str) -> Any:
    # whatever the key's type: an error quoting this integer would fail (Python prints at most 4,300 digits)
    _check_int_size(value, key, MAX_QUOTED_BITS, "far too large", "more than any key takes")
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: expected one of {_name(tp)} (got {_shown(key, value)}); fix the value's type")
    if origin is Literal:
        choices = typing.get_args(tp)
        _check(value in choices, key, f"must be one of {', '.join(map(repr, choices))}", value, "pick one of those")
        return value
    if origin is list:
        (item,) = typing.get_args(tp)
        _check(isinstance(value, list), key, "expected a list", value, f"write {key.rsplit('.', 1)[-1]} = [ ... ]")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), key, "expected a number", value, "write a number without quotes")
        _check_int_size(value, key, 1023, "must be a finite number", "past a float's range")  # float() overflows
        return float(value)
    if tp is int:
        _check(isinstance(value, int) and not isinstance(value, bool), key, "expected an integer", value, "write a whole number without quotes")
        return value
    if tp is bool:
        _check(isinstance(value, bool), key, "expected true or false", value, "write true or false without quotes")
        return value
    if tp is str:
        _check(isinstance(value, str), key, "expected a string", value, "put the value in quotes")
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")


# An integer of more bits is refused by its size (about 3,000 digits: TOML reads 4,300 decimal digits, and
# any length in hexadecimal)
MAX_QUOTED_BITS = 10_000


def _check_int_size(value: Any, key: str, bits: int, what: str, past: str) -> None:
    """Refuse an integer of more than ``bits`` bits, naming its digits and not its value: a 400-digit
    integer for a float key was an OverflowError traceback (exit 1), and the repr of one past 4,300
    digits (a long hex number in TOML) raises ValueError, so the usual error could not quote it.

    >>> _check_int_size(10 ** 400, "model.gamma", 1023, "must be a finite number", "past a float's range")
    Traceback (most recent call last):
    ...
    stream_cl.config.ConfigError: model.gamma: must be a finite number (got an integer of about 401 digits, past a float's range); write a smaller number
    """
    if type(value) is int and value.bit_length() > bits:
        digits = int(value.bit_length() * math.log10(2)) + 1
        raise ConfigError(f"{key}: {what} (got an integer of about {digits} digits, {past}); write a smaller number")


def _name(tp) -> str:
    return " | ".join(getattr(a, "__name__", repr(a)) for a in typing.get_args(tp))
