"""Review r151: delayed labels that cannot reach their event's partition were never said.

* An events topic that does not exist at start, beside a labels topic of several partitions, was
  not refused (the mirror case, a missing labels topic beside a partitioned events topic, was): created
  on first use with the broker's default count (1 on the dev broker), the labels of every labels
  partition past it never joined. Measured on a broker: 96 of 200 labels left waiting, nothing said.
* A label keyed (or partitioned) otherwise than its event reaches another partition number than its
  event, and a label joins only its own partition's store: it never joins, even in a single daemon
  that reads both partitions. Measured on a broker with one daemon and two partitions: 108 of 200
  labels left waiting, with no line in the log and nothing in ``stream_cl_labels_total`` until
  ``labels.max_age_s`` (a day) counted them unknown. Such a label is now said
  (``label_not_co_partitioned``, at most a line a minute) when its event waits in another partition
  of the same member.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from connectors.kafka import PolledBatch
from connectors.kafka_topics import check_subscribed_topics
from connectors.router import Router
from connectors.status import DaemonMetrics
from router_kit import RecordingPublisher  # tests/unit/router_kit.py
from stream_cl.config import ConfigError, KafkaConfig, load_config_dict
from stream_cl.events import Event
from stream_cl.factory import build_learner
from stream_cl.pending import LabelUpdate
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import Prequential
from topic_kit import Metadata  # tests/unit/topic_kit.py


def test_a_missing_events_topic_beside_a_partitioned_labels_topic_is_refused_with_the_fix():
    config = KafkaConfig(bootstrap_servers="127.0.0.1:1", topics=["events"], labels_topic="labels")
    with pytest.raises(ConfigError, match=r"^kafka.topics: 'events' does not exist and the labels topic 'labels' has 3 "
                                          r"partitions.*--create --topic events --partitions 3"):
        check_subscribed_topics(Metadata({"labels": 3}), config, ["events", "labels"])


def test_a_missing_events_topic_beside_a_one_partition_labels_topic_is_only_a_warning(caplog):
    config = KafkaConfig(bootstrap_servers="127.0.0.1:1", topics=["events"], labels_topic="labels")
    with caplog.at_level(logging.WARNING, logger="stream_cl.kafka"):
        check_subscribed_topics(Metadata({"labels": 1}), config, ["events", "labels"])
    assert [r.stream_cl_fields["key"] for r in caplog.records] == ["kafka.topics"]


def _router():
    cfg = load_config_dict({"model": {"kind": "analytic", "forgetting": [1.0]},
                            "kafka": {"topics": ["events"], "predictions_topic": "p", "labels_topic": "labels"}})
    learner = build_learner(cfg.model)
    state = SimpleNamespace(add=lambda n: None, touched=lambda key, n: None)
    return Router(cfg, Prequential(learner, window=5), learner, PendingStores(), RecordingPublisher(), DaemonMetrics(),
                  state, partitioned=True)


def _said(caplog) -> list[dict]:
    return [r.stream_cl_fields for r in caplog.records if r.getMessage() == "label_not_co_partitioned"]


def test_a_label_on_another_partition_than_its_waiting_event_is_said(caplog):
    router = _router()
    router.process(PolledBatch([Event({"a": 1.0}, None, "e1", None, None, "events/0@0"),
                                Event({"a": -1.0}, None, "e2", None, None, "events/1@0")], {}, frozenset()))
    with caplog.at_level(logging.WARNING, logger="stream_cl.daemon"):
        # e1 waits in partition 0, its label came to partition 1 (keyed otherwise); e2's came to its own
        router.process(PolledBatch([LabelUpdate("e1", "x", "labels/1@0"), LabelUpdate("e2", "y", "labels/1@1")],
                                   {}, frozenset()))
    assert router.pending.counters()["joined"] == 1  # e2's; e1's label can never join (it waits, as does e1)
    [said] = _said(caplog)
    assert (said["label"], said["event_partition"], said["labels"]) == ("labels/1@0", "events/0", 1)
    assert "labels/1 joins events/1" in said["detail"] and "keyed as their events are" in said["detail"]


def test_labels_on_their_events_partition_or_before_their_event_say_nothing(caplog):
    router = _router()
    router.process(PolledBatch([Event({"a": 1.0}, None, "e1", None, None, "events/0@0")], {}, frozenset()))
    with caplog.at_level(logging.WARNING, logger="stream_cl.daemon"):
        router.process(PolledBatch([LabelUpdate("e9", "x", "labels/1@0"),  # its event not read yet: it waits
                                    LabelUpdate("e1", "x", "labels/0@0")], {}, frozenset()))
    assert _said(caplog) == [] and router.pending.counters()["joined"] == 1
