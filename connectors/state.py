"""The daemon's learned state between runs, and where each partition resumes.

:class:`CheckpointState` keeps the learner and the delayed-label store in local
checkpoint files (:class:`stream_cl.checkpoint.CheckpointStore`), each with the offsets
it covers. Offsets are committed by the Kafka transaction, not by the checkpoint, and a
checkpoint is written only after a commit: so the state a restart restores covers
offsets ``S`` at or below the group's committed offsets ``C``. The source resumes each
partition at ``S`` and re-learns ``S..C`` silently (their predictions and dead letters
were committed before); from ``C`` on it predicts and publishes as usual. Nothing is
learned twice, nothing is lost, nothing is published twice.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from stream_cl.checkpoint import CheckpointStore
from stream_cl.checkpoint_format import CheckpointError
from stream_cl.config import (SECTION_SWITCHES, UNREAD_MODEL_KEYS, UNREAD_SECTION_KEYS, Config, ConfigError,
                              policy_unread)

from .logs import log_event
from .status import jsonable_report

__all__ = ["CheckpointPolicy", "CheckpointState", "Snapshot", "check_settings", "detached", "settings_state"]

log = logging.getLogger("stream_cl.daemon")

# how a refusal of a checkpoint's settings says to start a new model instead
_NEW_CHECKPOINT = "point checkpoint.dir at an empty directory"

# Model settings that may change between runs sharing a checkpoint (placement only).
_MODEL_KEYS_FREE = {"device", "max_classes"}  # where the model runs; which events it refuses (not what it learned)

# The sections besides [model] that the learner is built from (stream_cl.factory.build_learner), each
# with the setting that turns it off: the checkpoint keeps them, a restart must match them.
_LEARNER_SECTIONS = {**SECTION_SWITCHES, "trainable": None}


def _section_keys(name: str, saved: dict, current: dict, kind: str) -> list:
    """The settings of section ``name`` to compare: its switch first; the rest only where it is on in
    both (a section that is off builds nothing, whatever else it says). [trainable] counts only for
    ``model.kind = "trainable"``; [homeostasis].control_every also paces [drift]'s responses, for
    the kinds that read it (UNREAD_SECTION_KEYS: a change the model never sees blocked a resume).

    >>> _section_keys("replay", {"policy": "none", "seed": 1}, {"policy": "none", "seed": 2}, "online")
    ['policy']
    >>> _section_keys("homeostasis", {"enabled": False}, {"enabled": False}, "online")
    ['enabled', 'control_every']
    >>> _section_keys("homeostasis", {"enabled": True, "control_every": 32}, {"enabled": True}, "trainable")
    ['enabled']
    >>> _section_keys("trainable", {"lr": 0.1}, {"lr": 0.2}, "online")
    []
    """
    switch = _LEARNER_SECTIONS[name]
    if switch is None:  # [trainable]
        return sorted(set(saved) | set(current)) if kind == "trainable" else []
    key, off = switch
    if saved.get(key, off) == off or current.get(key, off) == off:
        keys = [key, "control_every"] if name == "homeostasis" else [key]
    else:
        keys = [key] + sorted((set(saved) | set(current)) - {key})
    unread = UNREAD_SECTION_KEYS.get(kind, frozenset())
    idle = policy_unread(name, saved) & policy_unread(name, current)  # (policy itself compared first)
    return [k for k in keys if (name, k) not in unread and k not in idle]


def _same_settings(section: str, written: str, saved: Mapping, now: Mapping, keys, new: str = _NEW_CHECKPOINT) -> None:
    """Raise :class:`ConfigError` at the first of ``keys`` whose value the state ``written`` (``"the
    checkpoint <path>"``) was written with (``saved``) differs from the config's (``now``) in
    ``[section]``; ``new``: how to start a new model instead."""
    for key in keys:
        if saved.get(key) != now.get(key):
            raise ConfigError(
                f"{section}.{key}: {written} was written with {key} = {saved.get(key)!r}, the config "
                f"says {now.get(key)!r}; restore the [{section}] setting, or {new}"
            )


class CheckpointPolicy:
    """Due every ``every_events`` records or ``every_seconds`` seconds, whichever comes first."""

    def __init__(self, every_events: int, every_seconds: float, clock=time.monotonic):
        self.every_events, self.every_seconds, self.clock = every_events, every_seconds, clock
        self.records = 0
        self.last = clock()

    def add(self, n: int) -> None:
        """``n`` more records since the last checkpoint."""
        self.records += n

    def due(self) -> bool:
        """Whether ``every_events`` records or ``every_seconds`` seconds have come since the last checkpoint."""
        return self.records >= self.every_events or (self.clock() - self.last >= self.every_seconds)

    def reset(self) -> None:
        """A checkpoint was taken: count records and time from now."""
        self.records = 0
        self.last = self.clock()


class Snapshot(NamedTuple):
    """A checkpoint taken when a commit started, saved once it is durable (:meth:`CheckpointState.write`)."""

    state: dict
    meta: dict
    offsets: dict  # {TopicPartition: next offset} the state covers
    reason: str


def detached(state):
    """``state`` with its containers and arrays copied, so that learning on cannot change it
    (a learner's ``state_dict`` may hand out its live arrays; ours copy, others need not).

    >>> live = np.zeros(2)
    >>> saved = detached({"w": [live]})
    >>> live += 1.0
    >>> saved["w"][0].tolist()
    [0.0, 0.0]
    """
    if isinstance(state, dict):
        return {k: detached(v) for k, v in state.items()}
    if type(state) in (list, tuple):
        return type(state)(detached(v) for v in state)
    if isinstance(state, np.ndarray):
        return state.copy()
    if hasattr(state, "detach") and hasattr(state, "clone"):  # a torch tensor (not imported here)
        return state.detach().clone()
    return state


def settings_state(config: Config) -> dict:
    """The settings a state records (a checkpoint, a changelog record), for :func:`check_settings`."""
    return {"model_config": dataclasses.asdict(config.model), "learner_config": _learner_sections(config)}


def check_settings(config: Config, state: dict, path, written: str = "", new: str = _NEW_CHECKPOINT) -> None:
    """Raise :class:`ConfigError` unless ``config`` matches what the checkpoint at ``path`` was
    written with: the consumer group, [model] (but its placement) and the learner's other sections
    (checkpoints written before those were kept are not compared on them). ``written`` names
    another state than a checkpoint (a changelog record), ``new`` how to start a new model then."""
    source = "state" if written else "checkpoint"  # what a model cannot resume from, of another kind
    written = written or f"the checkpoint {path}"
    saved_group, group = state.get("group_id"), config.kafka.group_id
    if saved_group is not None and saved_group != group:
        raise ConfigError(
            f"kafka.group_id: the checkpoint {path} was written by group {saved_group!r}, the config says {group!r}; "
            f"its model and offsets belong to {saved_group!r}: to start group {group!r} with a new model, point "
            f"checkpoint.dir at an empty directory, or keep group_id = {saved_group!r} to resume"
        )
    saved_model = state.get("model_config", {})
    _same_kind(saved_model.get("kind"), config.model.kind, written, new, source)
    # a key the checkpoint lacks did not exist when it was written (model.max_columns): its
    # default keeps the behaviour of then, so an upgrade resumes
    unread = UNREAD_MODEL_KEYS.get(config.model.kind, frozenset()) if saved_model.get("kind") == config.model.kind else ()
    keys = sorted(k for k in saved_model if k not in _MODEL_KEYS_FREE and k not in unread)
    _same_settings("model", written, saved_model, dataclasses.asdict(config.model), keys, new)
    saved_sections = state.get("learner_config")
    if saved_sections is None:
        return  # written before the sections were kept
    kind = config.model.kind
    for name, now in _learner_sections(config).items():
        saved = saved_sections.get(name, {})
        _same_settings(name, written, saved, now, _section_keys(name, saved, now, kind), new)


def _same_kind(saved: str | None, now: str, written: str, new: str, source: str) -> None:
    """Refuse a checkpoint of another model kind, before any other [model] key is compared: some
    keys default by kind (``forgetting``), so a change of kind alone was named as theirs, quoting
    defaults the user never wrote (and a fix that could not work)."""
    if saved is not None and saved != now:
        raise ConfigError(
            f"model.kind: {written} holds a model of kind {saved!r}, the config says {now!r}; a model "
            f"cannot resume from another kind's {source}: set kind = {saved!r} to resume it, or {new} to start a "
            f"new {now!r} model"
        )


def _learner_sections(config: Config) -> dict:
    """The sections besides [model] the learner is built from, as plain values."""
    return {name: dataclasses.asdict(getattr(config, name)) for name in _LEARNER_SECTIONS}


class CheckpointState:
    """The learner, the label store and their offsets, in local checkpoint files (module docstring)."""

    def __init__(self, config: Config, learner, pending, metrics, stats, store: CheckpointStore | None = None,
                 loaded: tuple | None = None):
        """``pending``: the delayed-label stores (:class:`stream_cl.pending_stores.PendingStores`);
        ``loaded``: ``store.load_latest()`` read by the caller (:meth:`restore` then reads no file)."""
        self.config = config
        self.learner = learner
        self.pending = pending
        self.metrics = metrics
        # the run's PrequentialStats: each checkpoint holds a copy of its report for whoever reads the
        # file; a restore does not read it back (the process's counts start anew, docs/observability.md)
        self.stats = stats
        # the directory's one writer from the start: a second daemon on it is refused before it reads anything
        self.store = (store or CheckpointStore(config.checkpoint.dir, config.checkpoint.keep)).claim()
        self.policy = CheckpointPolicy(config.checkpoint.every_events, config.checkpoint.every_seconds)
        self.offsets: dict = {}  # TopicPartition -> next offset the restored (or last written) state covers
        # the state changed with no new record (waiting labels evicted to fit a changelog record): the next
        # commit checkpoints it, as the changelog holds it; a checkpoint of the same offsets from before the
        # eviction would win a restore's tie and bring the evicted entries back (review r58)
        self.changed_without_records = False
        self._loaded = loaded

    def restore(self) -> dict:
        """Load the newest checkpoint into the learner and the label store; return its offsets."""
        from kafka import TopicPartition

        loaded, self._loaded = self._loaded or self.store.load_latest(), None
        if loaded is None:
            log_event(log, "restore", checkpoint=None, dir=str(self.store.dir), detail="no checkpoint: a new model")
            return {}
        state, info = loaded
        check_settings(self.config, state, info.path)
        try:  # the offsets first: a malformed entry (review r140) is refused before the learner changes
            offsets = {TopicPartition(str(t), int(p)): int(o) for t, p, o in state["offsets"]}
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{info.path}: its offsets are not (topic, partition, offset) triples "
                                  f"({type(e).__name__}: {str(e)[:200]}); move it away to resume from the one before") from e
        try:
            # its settings were compared as config sections (check_settings): the model's own identity
            # (their repr) is left out, which an upgrade adding a parameter to a part would change
            self.learner.load_state_dict({k: v for k, v in state["model"].items() if k != "identity"})
            self.pending.load_state_dict(state["pending"])
        except (KeyError, ValueError, IndexError, TypeError) as e:
            raise CheckpointError(
                f"{info.path}: does not fit this learner ({type(e).__name__}: {str(e)[:200]}); restore the settings "
                f"it was written with, or point checkpoint.dir at an empty directory to start a new model"
            ) from e
        self.offsets = offsets
        self.load_extra(state)
        m = self.metrics
        m.checkpoint_seq, m.checkpoint_at, m.checkpoint_bytes = info.seq, info.created, info.size_bytes
        m.restored_from = m.checkpoint_path = str(info.path)
        log_event(log, "restore", checkpoint=str(info.path), seq=info.seq, partitions=len(self.offsets),
                  pending_labels=len(self.pending), waiting_labels=self.pending.waiting_labels)
        return dict(self.offsets)

    def extra_state(self) -> dict:
        """What a subclass keeps in the checkpoint beside the learner, the labels and the offsets."""
        return {}

    def load_extra(self, state) -> None:
        """Restore :meth:`extra_state` (called after the offsets are restored)."""

    def resume_at(self, partitions) -> dict:
        """Where each of ``partitions`` resumes: the offset the state covers (absent: none)."""
        return {tp: self.offsets[tp] for tp in partitions if tp in self.offsets}

    def add(self, n: int) -> None:
        """``n`` more records were processed."""
        self.policy.add(n)

    def records_for(self, offsets: dict, force: bool = False) -> list:
        """State records for the transaction: none (this store writes files after the commit)."""
        return []

    def records_due(self) -> bool:
        """Whether state records wait for a transaction (never: this store writes files)."""
        return False

    def touched(self, key, n: int) -> None:
        """``n`` events of partition ``key`` were processed (only the checkpoint policy counts here)."""

    def checkpoint_due(self, reason: str) -> bool:
        """Whether :meth:`committed` after a commit for ``reason`` writes a checkpoint: when due, and
        always on shutdown and revocation."""
        return reason != "interval" or self.policy.due() or self.changed_without_records

    def snapshot(self, offsets: dict, reason: str) -> "Snapshot | None":
        """The checkpoint of the state as it is now, covering ``offsets``, for :meth:`write` to save
        once the commit of those offsets is durable; None when none is due (:meth:`checkpoint_due`)
        or nothing is new. It holds copies: the loop goes on learning while the commit is under way."""
        if not self.checkpoint_due(reason):
            return None
        merged = {**self.offsets, **offsets}
        if merged == self.offsets and self.policy.records == 0 and not self.changed_without_records:
            return None  # nothing new since the last checkpoint
        state = detached({
            "model": self.learner.state_dict(),
            "pending": self.pending.state_dict(),
            "offsets": [[tp.topic, tp.partition, o] for tp, o in sorted(merged.items())],
            **settings_state(self.config),
            "group_id": self.config.kafka.group_id,
            "stats": jsonable_report(self.stats.report()),
            **self.extra_state(),
        })
        meta = {"reason": reason, "records": self.metrics.records,
                "offsets": {f"{tp.topic}/{tp.partition}": o for tp, o in merged.items()}}
        self.policy.reset()  # the next one counts what comes after this state
        self.changed_without_records = False
        return Snapshot(state, meta, merged, reason)

    def write(self, snapshot: "Snapshot") -> None:
        """Save ``snapshot`` (after the commit of its offsets)."""
        info = self.store.save(snapshot.state, snapshot.meta)
        self.offsets = snapshot.offsets
        m = self.metrics
        m.checkpoints += 1
        m.checkpoint_seq, m.checkpoint_at = info.seq, info.created
        m.checkpoint_duration_s, m.checkpoint_bytes = info.duration_s, info.size_bytes
        m.checkpoint_path = str(info.path)
        m.checkpoint_duration.observe(info.duration_s)
        log_event(log, "checkpoint", seq=info.seq, reason=snapshot.reason, records=snapshot.meta["records"],
                  bytes=info.size_bytes, seconds=round(info.duration_s, 4), path=str(info.path))

    def committed(self, offsets: dict, reason: str) -> None:
        """After a commit: write a checkpoint covering ``offsets`` now, when due (:meth:`snapshot`)."""
        snapshot = self.snapshot(offsets, reason)
        if snapshot is not None:
            self.write(snapshot)
