"""The whole :class:`Config`, and building one from a table (:func:`load_config_dict`).

A table's values are checked against the sections' dataclasses: each value's type, its field's check
and ceiling, a path without a NUL, and an unknown key answered with the key it was likely meant to
be (in this section, another section, or a dotted Kafka spelling). Config is here and not in
:mod:`stream_cl.config.schema` because :meth:`Config.replace` validates through the builder and the
builder's error for an unknown key names Config's sections: one module, not an import cycle.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .daemon_schema import (
    JOIN_POLL_MS,
    STALL_MARGIN_S,
    ChangelogConfig,
    CheckpointConfig,
    KafkaConfig,
    LabelsConfig,
    MetricsConfig,
    longest_idle_turn_s,
)
from .kafka_checks import TOPIC_RULE, legal_topic
from .schema import (
    MAX_COUNT,
    ConfigError,
    DriftConfig,
    HomeostasisConfig,
    ImbalanceConfig,
    MappingConfig,
    ModelConfig,
    ReplayConfig,
    RunConfig,
    SourceConfig,
    TrainableConfig,
    shown,
)


def _check(cond: bool, key: str, what: str, value: Any, fix: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {what} (got {shown(key, value)}); {fix}")


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
                          f"{config.metrics.stall_timeout_s!r}); raise metrics.stall_timeout_s to {math.ceil(least):_} or "
                          f"more{other}")  # (rounded up: 6 digits had named a value refused; r100)


def _check_changelog_topic(config: Config) -> None:
    """The model changelog's topic named by default, ``"<kafka.group_id>.model"``, must be a legal topic name
    too: a group id may hold any character, a topic name not (the broker refused it when the daemon created it).
    Only where the daemon makes one: not with ``changelog.enabled = false``, nor for ``model.kind = "trainable"``.

    >>> try:
    ...     load_config_dict({"kafka": {"group_id": "fraud scores"}})
    ... except ConfigError as e:
    ...     print(e)  # doctest: +NORMALIZE_WHITESPACE
    kafka.group_id: 'fraud scores' names the model changelog topic 'fraud scores.model' (changelog.topic's default,
    "<kafka.group_id>.model"), not a legal Kafka topic name; set changelog.topic to one (letters, digits, '.', '_'
    and '-', at most 249 characters, not '.' or '..'), or use such a group id (or changelog.enabled = false: no
    changelog, and each member serves a model of only the partitions it consumes)
    >>> load_config_dict({"kafka": {"group_id": "fraud scores"}, "changelog": {"topic": "fraud-scores.model"}}).changelog_topic
    'fraud-scores.model'
    >>> load_config_dict({"kafka": {"group_id": "team:fraud"}, "model": {"kind": "trainable"}}).kafka.group_id
    'team:fraud'
    """
    # (a trainable learner keeps no part per partition: the daemon makes no changelog for it, and says so)
    if config.model.kind == "trainable" or not config.changelog.enabled or config.changelog.topic:
        return
    if not legal_topic(config.changelog_topic):
        raise ConfigError(f"kafka.group_id: {config.kafka.group_id!r} names the model changelog topic "
                          f"{config.changelog_topic!r} (changelog.topic's default, \"<kafka.group_id>.model\"), not a "
                          f"legal Kafka topic name; set changelog.topic to one ({TOPIC_RULE}), or use such a group id "
                          "(or changelog.enabled = false: no changelog, and each member serves a model of only the "
                          "partitions it consumes)")


def _check_across_sections(config: Config) -> None:
    """The rules that tie keys of two sections (a section's own rules are its ``__post_init__``'s)."""
    _check_stall_timeout(config)
    _check_changelog_topic(config)


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

    @property
    def changelog_topic(self) -> str:
        """The model changelog's topic: ``changelog.topic``, by default ``"<kafka.group_id>.model"``."""
        return self.changelog.topic or f"{self.kafka.group_id}.model"

    def replace(self, section: str, **changes) -> "Config":
        """A copy with ``changes`` applied to one section (validated like a file). Defaults already
        resolved are kept: ``replace("model", kind="analytic")`` keeps the online model's two
        ``forgetting`` factors (refused); pass ``forgetting`` too, or build from the file's keys."""
        merged = {**dataclasses.asdict(getattr(self, section)), **changes}
        return dataclasses.replace(self, **{section: _build(type(getattr(self, section)), merged, section)})


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
        raise ConfigError(f"{key}: must be at most {most:_} (got {shown(key, value)}); {fix}")


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
        errors, shaped = [], []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as e:
                errors.append(str(e))
                outer = typing.get_origin(option) or option
                if isinstance(outer, type) and isinstance(value, outer):  # the value's own shape: its error says why
                    shaped.append(str(e))  # (["a", 1] for str | list[str]: the item, not "one of"; r100)
        if len(errors) == 1 or len(shaped) == 1:
            raise ConfigError((shaped or errors)[0])
        raise ConfigError(f"{key}: expected one of {_name(tp)} (got {shown(key, value)}); fix the value's type")
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
