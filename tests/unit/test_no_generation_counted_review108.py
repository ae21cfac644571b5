"""Review r108: the coordinator's refusal of a commit without a group generation (r104) is a fencing, and
``stream_cl_transactions_total{outcome="fenced"}`` must count it, as it counts the writer's refusal of the
same commit and the broker's of a stale generation (docs/observability.md: "fenced (a newer generation or
producer took over: the member starts over)"). It raised before anything counted it.
"""

from __future__ import annotations

import pytest

from connectors.commit import CommitCoordinator, CommitPolicy
from connectors.transaction import Fenced
from commit_kit import CommitMetrics, NullStore, StartedCommits  # tests/unit/commit_kit.py
from test_no_generation_commit_review104 import _Source


def test_a_commit_refused_for_want_of_a_generation_counts_as_fenced():
    metrics = CommitMetrics()
    policy = CommitPolicy(200)
    policy.touch()
    coordinator = CommitCoordinator(_Source(), StartedCommits(), NullStore(), metrics, policy)
    with pytest.raises(Fenced):
        coordinator.commit("interval")
    assert metrics.transactions["fenced"] == 1, dict(metrics.transactions)
