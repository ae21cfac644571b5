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
from typing import NamedTuple

import numpy as np

from stream_cl.checkpoint import CheckpointStore
from stream_cl.config import Config, ConfigError

from .logs import log_event
from .status import jsonable_report

__all__ = ["CheckpointPolicy", "CheckpointState", "Snapshot", "detached"]

log = logging.getLogger("stream_cl.daemon")

# Model settings that may change between runs sharing a checkpoint (placement only).
_MODEL_KEYS_FREE = {"device"}


class CheckpointPolicy:
    """Due every ``every_events`` records or ``every_seconds`` seconds, whichever comes first."""

    def __init__(self, every_events: int, every_seconds: float, clock=time.monotonic):
        self.every_events, self.every_seconds, self.clock = every_events, every_seconds, clock
        self.records = 0
        self.last = clock()

    def add(self, n: int) -> None:
        self.records += n

    def due(self) -> bool:
        return self.records >= self.every_events or (self.clock() - self.last >= self.every_seconds)

    def reset(self) -> None:
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


class CheckpointState:
    """The learner, the label store and their offsets, in local checkpoint files (module docstring)."""

    def __init__(self, config: Config, learner, pending, metrics, stats, store: CheckpointStore | None = None):
        """``pending``: the delayed-label stores (:class:`stream_cl.pending_stores.PendingStores`)."""
        self.config = config
        self.learner = learner
        self.pending = pending
        self.metrics = metrics
        self.stats = stats  # the run's PrequentialStats, kept with the checkpoint
        self.store = store or CheckpointStore(config.checkpoint.dir, config.checkpoint.keep)
        self.policy = CheckpointPolicy(config.checkpoint.every_events, config.checkpoint.every_seconds)
        self.offsets: dict = {}  # TopicPartition -> next offset the restored (or last written) state covers

    def restore(self) -> dict:
        """Load the newest checkpoint into the learner and the label store; return its offsets."""
        from kafka import TopicPartition

        loaded = self.store.load_latest()
        if loaded is None:
            log_event(log, "restore", checkpoint=None, dir=str(self.store.dir), detail="no checkpoint: a new model")
            return {}
        state, info = loaded
        saved_model = state.get("model_config", {})
        current = dataclasses.asdict(self.config.model)
        for key in sorted(set(saved_model) | set(current)):
            if key in _MODEL_KEYS_FREE or saved_model.get(key) == current.get(key):
                continue
            raise ConfigError(
                f"model.{key}: the checkpoint {info.path} was written with {key} = {saved_model.get(key)!r}, "
                f"the config says {current.get(key)!r}; restore the setting, or point checkpoint.dir at an empty directory"
            )
        self.learner.load_state_dict(state["model"])
        self.pending.load_state_dict(state["pending"])
        self.offsets = {TopicPartition(t, int(p)): int(o) for t, p, o in state["offsets"]}
        self.load_extra(state)
        m = self.metrics
        m.checkpoint_seq, m.checkpoint_at, m.checkpoint_bytes = info.seq, info.created, info.size_bytes
        m.restored_from = m.checkpoint_path = str(info.path)
        log_event(log, "restore", checkpoint=str(info.path), seq=info.seq, partitions=len(self.offsets),
                  pending_labels=len(self.pending))
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
        return reason != "interval" or self.policy.due()

    def snapshot(self, offsets: dict, reason: str) -> "Snapshot | None":
        """The checkpoint of the state as it is now, covering ``offsets``, for :meth:`write` to save
        once the commit of those offsets is durable; None when none is due (:meth:`checkpoint_due`)
        or nothing is new. It holds copies: the loop goes on learning while the commit is under way."""
        if not self.checkpoint_due(reason):
            return None
        merged = {**self.offsets, **offsets}
        if merged == self.offsets and self.policy.records == 0:
            return None  # nothing new since the last checkpoint
        state = detached({
            "model": self.learner.state_dict(),
            "pending": self.pending.state_dict(),
            "offsets": [[tp.topic, tp.partition, o] for tp, o in sorted(merged.items())],
            "model_config": dataclasses.asdict(self.config.model),
            "group_id": self.config.kafka.group_id,
            "stats": jsonable_report(self.stats.report()),
            **self.extra_state(),
        })
        meta = {"reason": reason, "records": self.metrics.records,
                "offsets": {f"{tp.topic}/{tp.partition}": o for tp, o in merged.items()}}
        self.policy.reset()  # the next one counts what comes after this state
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
