"""The keys a config sets that nothing reads: a warning for each, not an error (the run is right, only
the key is idle).

A key may be unread because the model's kind does not read it (:data:`UNREAD_MODEL_KEYS`,
:data:`UNREAD_SECTION_KEYS`), because its section is off (:data:`SECTION_SWITCHES`), because another
policy of its section alone reads it (:data:`POLICY_ONLY_KEYS`), or because the section's other settings
leave it idle. connectors/state.py reads the same tables to know which keys a resume compares.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from .building import Config


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


def unread_keys(config: Config, written: Mapping) -> list[str]:
    """A warning for each key that ``written`` (the config's tables as given, :func:`read_toml`)
    sets and ``config.model.kind`` does not read: a ``[model]`` key of
    :data:`UNREAD_MODEL_KEYS`, another section's of :data:`UNREAD_SECTION_KEYS`, or a
    ``[trainable]`` key with another kind. The model is built
    without them, so a value tuned there changes nothing; the file run and the daemon say so
    (not an error: the run is right, only the key is idle). A key set to its default value
    counts: the user wrote it, and may mean to tune it.

    >>> from stream_cl.config import load_config_dict
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
    # the in-process publisher's commits are kafka-python's own, without the replaceable child's bound (r98)
    ("kafka", ("commit_timeout_ms",), lambda c: c.kafka.publisher == "thread",
     'kafka.publisher = "thread" commits in the daemon\'s process, where no commit is given up',
     'set kafka.publisher = "process"'),
    # (review r100: keys other settings leave idle, found unwarned)
    ("model", ("max_categories",), lambda c: c.model.hash_width is not None,
     "model.hash_width is set, and hashed categories take no per-feature bound", "remove model.hash_width"),
    ("homeostasis", ("alarm_gain",), lambda c: c.drift.detector == "none" or "need" not in c.drift.response,
     'no drift response "need" raises the need at an alarm', 'add "need" to drift.response'),
    ("drift", ("seed",), lambda c: c.drift.detector != "kswin", 'only drift.detector = "kswin" draws at random',
     'set drift.detector = "kswin"'),
    ("mapping", ("timestamp_unit",), lambda c: not c.mapping.timestamp, 'mapping.timestamp = "" names no event time',
     "set mapping.timestamp to the field or column holding the event time"),
    # a file run's progress line and output files: the daemon's outputs are topics and its progress /metrics (its
    # output file keys are refused: connectors.daemon_config.check_file_outputs)
    ("run", ("progress", "append"), lambda c: c.source.kind == "kafka",
     'source.kind = "kafka" does not read it (the daemon shows no progress line and appends to no file: its '
     "outputs are topics, its progress /metrics and its logs)", 'set source.kind = "file" for a file run'),
    ("source", ("follow_idle_timeout_s",), lambda c: c.source.kind == "file" and not c.source.follow,
     "source.follow = false: a file run ends at the file's end", "set source.follow = true"),
    # every event's time is None: no time feature is ever made, and a CSV's time column is learned as categories
    ("model", ("time_features",), lambda c: c.model.time_features and not c.mapping.timestamp,
     'mapping.timestamp = "" names no event time, so no time features are made',
     "set mapping.timestamp to the field or column holding the event time"),
)


def _idle_keys(config: Config, written: Mapping) -> list[str]:
    """A warning for each key ``written`` sets in a section that is on but whose other settings leave
    the key unread (:data:`_IDLE_KEYS`); a section that is off is :func:`_keys_of_sections_off`'s.

    >>> from stream_cl.config import load_config_dict
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

    >>> from stream_cl.config import load_config_dict
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

    >>> from stream_cl.config import load_config_dict
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
        # a kind that refuses the section on: turning it on is no fix (review r100), the kind is
        fix = (f'model.kind = "{config.model.kind}" takes no [{section}] (kind "online" does), so remove it'
               if section in _SECTIONS_REFUSED.get(config.model.kind, ()) else None)
        out += [f"{section}.{key}: set, but {section}.{switch} = {shown} turns [{section}] off, so nothing reads it: "
                + (fix or f"{_turn_on(section, switch, key)}, or remove it")
                for key in _keys(written, section) if key != switch and (section, key) not in _READ_WHEN_OFF]
    return out


# The continual sections a model kind refuses turned on (stream_cl.factory.build_learner says so, naming the kind)
_SECTIONS_REFUSED = {"analytic": frozenset(SECTION_SWITCHES), "trainable": frozenset({"imbalance"})}


def _turn_on(section: str, switch: str, key: str) -> str:
    """How to turn ``section`` on so that ``key`` is read: the policy that alone reads it, if one does."""
    readers = [policy for policy, keys in POLICY_ONLY_KEYS.get((section, switch), {}).items() if key in keys]
    return f'set {section}.{switch} = "{readers[0]}"' if readers else _TURN_ON[section]


def _keys(written: Mapping, section: str) -> list[str]:
    """The keys a config's table ``section`` sets, in the order written (none where it is no table)."""
    table = written.get(section, {}) if isinstance(written, Mapping) else {}
    return list(table) if isinstance(table, Mapping) else []
