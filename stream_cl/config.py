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
stream_cl.config.ConfigError: model.gamma: must be > 0 (got -1.0); set a positive regularisation such as 1.0
>>> load_config_dict({"run": {"batch_size": 64}}).run.batch_size
64
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["Config", "ConfigError", "load_config", "load_config_dict"]


class ConfigError(ValueError):
    """A configuration problem, naming the key and the fix."""


def _check(cond: bool, key: str, what: str, value: Any, fix: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {what} (got {value!r}); {fix}")


# Validators are attached to fields as metadata: field(default=..., metadata=check(...)).
def check(fn: Callable[[Any], bool], what: str, fix: str) -> dict:
    return {"check": (fn, what, fix)}


def positive(fix: str) -> dict:
    return check(lambda v: v > 0, "must be > 0", fix)


@dataclass(frozen=True)
class MappingConfig:
    """Where each part of an event lives in a JSON object or CSV row."""

    features: str | list[str] = "x"  # a field holding a dict/list, or a list of top-level fields/columns
    label: str = "y"
    id: str = "id"
    task: str = "task"
    timestamp: str = "ts"
    unknown_fields: Literal["ignore", "reject"] = "ignore"
    max_features: int = field(default=100_000, metadata=positive("use a positive feature-count limit"))
    max_event_bytes: int = field(default=1_048_576, metadata=positive("use a positive byte limit such as 1048576"))


@dataclass(frozen=True)
class SourceConfig:
    kind: Literal["demo", "file", "kafka"] = "demo"
    path: str = ""  # for kind = "file": .jsonl, .csv, optionally .gz
    format: Literal["auto", "jsonl", "csv"] = "auto"
    follow: bool = False  # keep reading a growing file
    follow_idle_timeout_s: float = field(default=0.0, metadata=check(lambda v: v >= 0, "must be >= 0", "use 0 to follow forever"))
    demo_events: int = field(default=20_000, metadata=positive("use a positive number of demo events"))


@dataclass(frozen=True)
class ModelConfig:
    kind: Literal["online", "analytic"] = "online"
    gamma: float = field(default=1.0, metadata=positive("set a positive regularisation such as 1.0"))
    forgetting: list[float] = field(default_factory=lambda: [1.0, 0.995])
    width: int = field(default=512, metadata=check(lambda v: v >= 0, "must be >= 0", "use 0 for no random features"))
    hash_width: int | None = None
    temperature: float = field(default=0.1, metadata=positive("use a positive temperature such as 0.1"))
    device: str = "auto"
    seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    batch_size: int = field(default=256, metadata=positive("use a positive micro-batch size such as 256"))
    max_events: int | None = None
    report: str = ""  # JSON report path
    predictions: str = ""  # predictions JSONL path ("" = none)
    dead_letters: str = "dead-letters.jsonl"
    window: int = field(default=1000, metadata=positive("use a positive window such as 1000"))
    progress: bool = True


@dataclass(frozen=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def replace(self, section: str, **changes) -> "Config":
        """A copy with ``changes`` applied to one section (validated like a file)."""
        merged = {**dataclasses.asdict(getattr(self, section)), **changes}
        return dataclasses.replace(self, **{section: _build(type(getattr(self, section)), merged, section)})


def load_config(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; pass --config PATH to a TOML file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the syntax at that line") from None
    return load_config_dict(data)


def load_config_dict(data: Mapping) -> Config:
    return _build(Config, data, "")


def _build(cls, data: Mapping, prefix: str):
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'}: expected a table, got {type(data).__name__}; write [{prefix}] with key = value lines")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(fields)}"
            raise ConfigError(f"{_join(prefix, key)}: unknown key; {hint}")
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
        if "check" in f.metadata and value is not None:
            fn, what, fix = f.metadata["check"]
            _check(fn(value), key, what, value, fix)
        values[name] = value
    return cls(**values)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _coerce(value: Any, tp: Any, key: str) -> Any:
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
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: expected one of {_name(tp)} (got {value!r}); fix the value's type")
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


def _name(tp) -> str:
    return " | ".join(getattr(a, "__name__", repr(a)) for a in typing.get_args(tp))
