"""The sections of a run that learns, and the field checks every section attaches.

[source], [mapping], [model], [run] and the continual-learning sections ([replay], [drift],
[homeostasis], [imbalance], [trainable]) are frozen dataclasses whose fields are the keys a user may
write; a field's check rides in its metadata (:func:`check`, :func:`positive`, :func:`at_most`), and
:mod:`stream_cl.config.building` applies it as a file is read. The Kafka daemon's sections are
:mod:`stream_cl.config.daemon_schema`'s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

# The bounds the engine also checks are stream_cl.bounds' (one rule each), imported, so that the config and the
# library take the same values (each message here names the key and the fix)
from ..bounds import (
    MAX_IMBALANCE_WEIGHT, MAX_REPLAY_RATIO, MIN_COUNT, MIN_FORGETTING, OPEN_UNIT, POSITIVE, is_forgetting, is_lr_high, is_lr_low,
    is_max_weight, is_nonnegative, is_off_or_positive, is_open_unit, is_positive, is_ratio,
)


MAX_DEPTH = 100  # mapping.max_depth's bound: nesting a record's features may have


class ConfigError(ValueError):
    """A configuration problem, naming the key and the fix."""

    # its public name, which tracebacks and doctests print (and pickle finds): the package's, not
    # this module's
    __module__ = "stream_cl.config"


# Keys whose value is a secret: an error names the key, never the value (a config error is logged,
# and an unquoted password is still the password)
_SECRET_KEYS = frozenset({"kafka.ssl_password", "kafka.sasl_plain_username", "kafka.sasl_plain_password"})


def first_clause(error: ValueError) -> str:
    """A ValueError's message up to its first ``;``: Python's advice after it (raise
    ``sys.set_int_max_str_digits``) is no fix for a user of ours, who must write a smaller number.

    >>> try:
    ...     int("9" * 5000)
    ... except ValueError as e:
    ...     first_clause(e)
    'Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits'
    """
    return str(error).split(";")[0]


def shown(key: str, value: Any) -> str:
    """``value`` as an error quotes it: ``<redacted>`` for a secret key's, and a description where Python
    cannot write it (an integer past 4,300 digits, a long hex number in TOML, inside a list: the error
    itself was a ValueError traceback).

    >>> shown("run.report", [16 ** 4000])
    'a value too large to show (Exceeds the limit (4300 digits) for integer string conversion)'
    """
    if key in _SECRET_KEYS:
        return "<redacted>"
    try:
        return repr(value)
    except ValueError as e:
        return f"a value too large to show ({first_clause(e)})"


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
MAX_SEED = 2**32 - 1  # a 32-bit seed, as most tools take; the library's classes take any int >= 0 (check_seed)
MAX_TOTAL = 2**53  # run.max_events, replay.max_bytes: totals that may pass MAX_COUNT (exact as a JSON number)
MAX_KEY_UNITS = 1_000  # model.key_units: threshold units per input feature (the default is 8)


def at_most(most: int, meta: dict) -> dict:
    """A field's ``meta`` with an integer ceiling other than :data:`MAX_COUNT` (``_build`` checks it)."""
    return {**meta, "max": most}


def _seed() -> dict:
    return at_most(MAX_SEED, check(lambda v: v >= 0, "must be >= 0", "use a seed such as 0"))


def nonnegative(fix: str) -> dict:
    return check(lambda v: v >= 0, "must be >= 0", fix)


def _finite_nonnegative(fix: str) -> dict:
    return check(is_nonnegative, "must be a finite number >= 0", fix)


def finite_positive(fix: str) -> dict:
    return check(is_positive, f"must be {POSITIVE}", fix)


def _forgetting(fix: str) -> dict:
    # the heads' rule (stream_cl.bounds.is_forgetting): NaN fails it too
    return check(lambda v: all(is_forgetting(lam) for lam in v), f"each factor must be in [{MIN_FORGETTING}, 1.0]", fix)


def _number(x: float) -> str:
    """``x`` as a short number for an error: ``1e6``, not ``1e+06``.

    >>> _number(1e6), _number(100.0), _number(2.5e-05)
    ('1e6', '100', '2.5e-5')
    """
    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", f"{x:g}")


# mapping.timestamp_unit: how many of the unit make a second (a numeric time is divided by it)
PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
# mapping.features' default: JSON's field holding the features; in a CSV, every column but the label, id,
# task and timestamp (stream_cl.record_decoders.CsvRowDecoder, stream_cl.mapping_check)
FEATURES_DEFAULT = "x"


@dataclass(frozen=True)
class MappingConfig:
    """Where each part of an event lives in a JSON object or CSV row."""

    features: str | list[str] = FEATURES_DEFAULT  # a field holding a dict/list, or a list of top-level fields/columns
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
    # (at most MAX_DEPTH: far deeper, a record reached Python's recursion limit and read as nested into itself; r99)
    max_depth: int = field(default=4, metadata=check(lambda v: 0 <= v <= MAX_DEPTH, f"must be in [0, {MAX_DEPTH}]",
                                                     "use a depth such as 4 (0: no nesting)"))

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
    # finite (stream_cl.bounds.is_nonnegative): the file source checks the same rule, and refused inf as a traceback
    follow_idle_timeout_s: float = field(default=0.0, metadata=_finite_nonnegative(
        "use a number of seconds such as 60, or 0 to follow forever"))
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


@dataclass(frozen=True)
class ModelConfig:
    kind: Literal["online", "analytic", "trainable"] = "online"  # trainable: see [trainable]
    gamma: float = field(default=1.0, metadata=finite_positive("set a positive regularisation such as 1.0"))
    # heads on features + inputs; unset: [1.0] for kind = "analytic" (one head), else [1.0, 0.995] (__post_init__)
    forgetting: list[float] | None = field(default=None, metadata=_forgetting("1.0 keeps everything, 0.99 forgets fast"))
    input_forgetting: list[float] = field(default_factory=lambda: [0.999, 1.0], metadata=_forgetting(
        "1.0 keeps everything, 0.99 forgets fast"))  # heads on the inputs only (kind = "online")
    sgd_lr: float = field(default=0.01, metadata=check(is_off_or_positive, f"must be 0 (no SGD head) or {POSITIVE}",
                                                       "use 0 for no SGD softmax head, or a rate such as 0.01"))
    mix_decay: float = field(default=0.995, metadata=check(is_open_unit, OPEN_UNIT, "use e.g. 0.995 (a memory of about 200 events)"))
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
    temperature: float = field(default=0.1, metadata=finite_positive("use a positive temperature such as 0.1"))
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
    recent_rate: float = field(default=0.02, metadata=check(is_open_unit, OPEN_UNIT, "use a rate such as 0.02"))
    set_point_rate: float = field(default=0.002, metadata=check(is_open_unit, OPEN_UNIT, "use a rate such as 0.002"))
    tolerance: float = field(default=0.01, metadata=_finite_nonnegative("use a small tolerance such as 0.01"))
    z: float = field(default=2.0, metadata=_finite_nonnegative("use a band of about 2 standard deviations"))
    loss_gain: float = field(default=1.0, metadata=_finite_nonnegative("use a gain such as 1.0"))
    error_gain: float = field(default=0.5, metadata=_finite_nonnegative("use a gain such as 0.5"))
    alarm_gain: float = field(default=1.0, metadata=_finite_nonnegative("use a gain such as 1.0"))
    need_decay: float = field(default=0.99, metadata=check(is_open_unit, OPEN_UNIT, "use a decay such as 0.99"))
    max_need: float = field(default=4.0, metadata=finite_positive("use a ceiling such as 4.0"))
    half_need: float = field(default=1.0, metadata=finite_positive("use a value such as 1.0"))
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
    max_pseudo: int = field(default=2, metadata=nonnegative("use a small number such as 2"))
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
    lr: float = field(default=0.01, metadata=finite_positive("use a learning rate such as 0.01"))
    micro_batch: int = field(default=16, metadata=positive("use a micro-batch such as 16"))
    steps: int = field(default=1, metadata=positive("use 1 or a few steps per micro-batch"))
    weight_decay: float = field(default=0.0, metadata=_finite_nonnegative("use 0 or a small decay such as 1e-4"))
    dtype: Literal["float32", "float64"] = "float64"
