"""A checkpoint whose offsets are not (topic, partition, offset) triples (review r140, low: a traceback from
the restore's dict comprehension, after the learner had loaded) is a CheckpointError that names the file and
the fix, raised before the learner or the label store changes."""

from __future__ import annotations

import pytest
from kafka import TopicPartition

from connectors.state import CheckpointState
from connectors.status import DaemonMetrics
from stream_cl.checkpoint import CheckpointError, CheckpointStore
from stream_cl.config import load_config_dict
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import PrequentialStats


def _state(tmp_path) -> CheckpointState:
    cfg = load_config_dict({"model": {"kind": "analytic", "forgetting": [1.0]},
                            "kafka": {"topics": ["t"]}, "checkpoint": {"dir": str(tmp_path / "ck")}})
    return CheckpointState(cfg, build_learner(cfg.model), PendingStores(), DaemonMetrics(), PrequentialStats())


@pytest.mark.parametrize("offsets", [[["t", "zero", 5]], [["t", 0]], [None], 7])
def test_malformed_offsets_are_refused_before_the_learner_changes(tmp_path, offsets):
    first = _state(tmp_path)
    for i in range(20):
        first.learner.learn_one({"a": float(i % 4)}, i % 2)
    first.policy.add(20)
    first.write(first.snapshot({TopicPartition("t", 0): 20}, "shutdown"))
    store = CheckpointStore(tmp_path / "ck")
    saved, _ = store.load_latest()
    path = store.save({**saved, "offsets": offsets}).path  # a valid digest over a malformed entry

    second = _state(tmp_path)
    before = second.learner.predict_proba_one({"a": 1.0})
    with pytest.raises(CheckpointError, match=f"{path}: its offsets are not .* move it away to resume"):
        second.restore()
    assert second.learner.predict_proba_one({"a": 1.0}) == before and second.offsets == {}
