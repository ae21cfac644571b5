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
stream_cl.config.ConfigError: model.gamma: must be a finite number >= 1e-300 (got -1.0); set a positive regularisation such as 1.0
>>> load_config_dict({"run": {"batch_size": 64}}).run.batch_size
64

The package's modules, one job each: :mod:`~stream_cl.config.schema` (the learning run's sections and
the field checks), :mod:`~stream_cl.config.daemon_schema` (the Kafka daemon's sections),
:mod:`~stream_cl.config.kafka_checks` (topic names, bootstrap servers), :mod:`~stream_cl.config.building`
(the whole :class:`Config`, built from a table), :mod:`~stream_cl.config.reading` (config files and pipes),
:mod:`~stream_cl.config.writing` (TOML out) and :mod:`~stream_cl.config.unread` (keys nothing reads).
Import from ``stream_cl.config``; a test that patches a value patches the module that reads it.
"""

from .building import MAX_QUOTED_BITS, Config, check_path, load_config_dict
from .daemon_schema import (
    HEARTBEAT_INTERVAL_MS,
    JOIN_POLL_MS,
    MAX_SHUTDOWN_S,
    STALL_MARGIN_S,
    TAKEOVER_SHARE_OF_POLL,
    TXN_ABORT_MARGIN_MS,
    ChangelogConfig,
    CheckpointConfig,
    KafkaConfig,
    LabelsConfig,
    MetricsConfig,
    longest_idle_turn_s,
)
from .reading import MAX_CONFIG_BYTES, PIPE_WRITER_WAIT_S, load_config, read_toml
from .schema import (
    MAX_COUNT,
    MAX_KEY_UNITS,
    MAX_SEED,
    MAX_THREADS,
    MAX_TOTAL,
    MAX_WIDTH,
    FEATURES_DEFAULT,
    PER_SECOND,
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
    at_most,
    check,
    first_clause,
    positive,
)
from .unread import POLICY_ONLY_KEYS, SECTION_SWITCHES, UNREAD_MODEL_KEYS, UNREAD_SECTION_KEYS, policy_unread, unread_keys
from .writing import to_toml

__all__ = ["HEARTBEAT_INTERVAL_MS", "JOIN_POLL_MS", "MAX_CONFIG_BYTES", "MAX_COUNT", "MAX_KEY_UNITS", "MAX_QUOTED_BITS", "MAX_SEED", "TAKEOVER_SHARE_OF_POLL", "TXN_ABORT_MARGIN_MS",
           "FEATURES_DEFAULT", "MAX_SHUTDOWN_S", "MAX_THREADS", "MAX_TOTAL", "MAX_WIDTH", "PER_SECOND", "PIPE_WRITER_WAIT_S",
           "POLICY_ONLY_KEYS", "SECTION_SWITCHES", "STALL_MARGIN_S", "UNREAD_MODEL_KEYS", "UNREAD_SECTION_KEYS",
           "ChangelogConfig", "CheckpointConfig", "Config", "ConfigError", "DriftConfig", "HomeostasisConfig",
           "ImbalanceConfig", "KafkaConfig", "LabelsConfig", "MappingConfig", "MetricsConfig", "ModelConfig",
           "ReplayConfig", "RunConfig", "SourceConfig", "TrainableConfig", "at_most", "check", "check_path",
           "first_clause", "load_config", "load_config_dict", "longest_idle_turn_s", "policy_unread", "positive",
           "read_toml", "to_toml", "unread_keys"]
