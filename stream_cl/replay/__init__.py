"""Replay buffers for online continual learning (see :mod:`stream_cl.replay.buffers`)."""

from .buffers import (
    POLICIES,
    ClassBalancedReplay,
    PowerLawReplay,
    ReplayBuffer,
    ReplayDraw,
    ReservoirReplay,
    make_replay,
)
from .rng import CounterRandom

__all__ = ["POLICIES", "ClassBalancedReplay", "CounterRandom", "PowerLawReplay", "ReplayBuffer", "ReplayDraw",
           "ReservoirReplay", "make_replay"]
