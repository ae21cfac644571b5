"""Read-only monitoring attributes shared by the learners that host continual-learning parts.

A learner that keeps ``drift_``, ``homeostasis_`` and ``replay_`` (each ``None`` when off)
gets the attributes the Prometheus exporter and the run reports read.
"""

from __future__ import annotations


class ContinualMonitoring:
    drift_ = None
    homeostasis_ = None
    replay_ = None

    @property
    def alarms_(self) -> list:
        """Recent drift alarms (dicts with ``t``, ``n_labelled``, ``detector``, ``signal``, ``response``;
        ``n_labelled`` is the path-independent stamp, see :class:`~stream_cl.drift.DriftMonitor`)."""
        return list(self.drift_.alarms_) if self.drift_ is not None else []

    @property
    def n_alarms_(self) -> int:
        """Drift alarms (0 without drift detection)."""
        return self.drift_.n_alarms_ if self.drift_ is not None else 0

    @property
    def alarm_counts_(self) -> dict:
        """``{detector: {response: count}}``."""
        return {k: dict(v) for k, v in self.drift_.counts_.items()} if self.drift_ is not None else {}

    @property
    def need_(self) -> float | None:
        """The homeostatic need, or ``None`` without homeostasis."""
        return self.homeostasis_.need_ if self.homeostasis_ is not None else None

    @property
    def replay_size_(self) -> int:
        """Events held in the replay buffer (0 without replay)."""
        return self.replay_.size_ if self.replay_ is not None else 0

    @property
    def replay_bytes_(self) -> int:
        """The replay buffer's bytes (0 without replay)."""
        return self.replay_.nbytes_ if self.replay_ is not None else 0
