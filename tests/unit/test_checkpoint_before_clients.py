"""A checkpoint the config cannot resume (corrupt, or written with other settings) stops the
daemon's start before any Kafka client is made: exit 2 naming the file, not a connection error
from a broker that cannot be reached (as a review saw)."""

import dataclasses

import pytest
from kafka import TopicPartition

from stream_cl.checkpoint_format import CheckpointError
from stream_cl.config import ConfigError, load_config_dict
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import PrequentialStats

from client_kit import no_clients  # noqa: F401 -- a fixture (tests/unit/client_kit.py)


def _config(tmp_path, width, changelog):
    return load_config_dict({"model": {"device": "cpu", "width": width},
                             "kafka": {"bootstrap_servers": "127.0.0.1:1", "bootstrap_timeout_ms": 100, "topics": ["t"]},
                             "checkpoint": {"dir": str(tmp_path / "ck")}, "changelog": {"enabled": changelog}})


def _write_checkpoint(tmp_path):
    from connectors.state import CheckpointState
    from connectors.status import DaemonMetrics

    cfg = _config(tmp_path, 32, False)
    state = CheckpointState(cfg, build_learner(cfg), PendingStores(), DaemonMetrics(), PrequentialStats())
    state.policy.add(1)
    state.write(state.snapshot({TopicPartition("t", 0): 1}, "shutdown"))
    return sorted((tmp_path / "ck").glob("ckpt-*"))[-1]


@pytest.mark.parametrize("changelog", [False, True])
def test_a_checkpoint_of_other_settings_is_refused_before_any_client(tmp_path, no_clients, changelog):
    from connectors.daemon import Daemon

    path = _write_checkpoint(tmp_path)
    with pytest.raises(ConfigError, match=f"model.width: the checkpoint {path} was written with width = 32, the config says 64"):
        Daemon.from_config(_config(tmp_path, 64, changelog))
    assert no_clients == []


def test_a_corrupt_checkpoint_is_refused_before_any_client(tmp_path, no_clients):
    from connectors.daemon import Daemon

    path = _write_checkpoint(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match=path.name):
        Daemon.from_config(_config(tmp_path, 32, False))
    assert no_clients == []


@pytest.mark.parametrize("kind, unread, read", [
    ("analytic", {"width": 64, "key_units": 2, "sgd_lr": 0.5, "seed": 3}, {"gamma": 2.0}),
    ("online", {}, {"width": 64}),
    ("trainable", {"gamma": 2.0, "width": 64, "forgetting": [1.0]}, {"seed": 3}),
])
def test_model_keys_a_kind_does_not_read_do_not_block_its_resume(tmp_path, kind, unread, read):
    # (a review: width changed under kind = "analytic", which never reads it, refused the restore)
    from connectors.state import check_settings

    def config(**model):
        return load_config_dict({"model": {"device": "cpu", "kind": kind, "width": 32, **model},
                                 "kafka": {"topics": ["t"]}, "checkpoint": {"dir": str(tmp_path)}})

    saved = {"model_config": dataclasses.asdict(config().model)}
    check_settings(config(**unread), saved, "ckpt")  # resumes
    key = next(iter(read))
    with pytest.raises(ConfigError, match=f"^model.{key}: the checkpoint ckpt was written with"):
        check_settings(config(**read), saved, "ckpt")
