"""The exporter and the deploy rules (review r28): F3, the tasks 1 and "1" are two series; F2, the dead-letter
ratio divides by every record read, label records included."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.kafka import PolledBatch
from connectors.prometheus import TaskAccuracy, register_metrics
from connectors.router import Router
from connectors.status import DaemonMetrics
from router_kit import RecordingPublisher  # tests/unit/router_kit.py
from stream_cl.config import load_config_dict
from stream_cl.decode import EventDecoder
from stream_cl.events import DeadLetter, Event, Prediction
from stream_cl.factory import build_learner
from stream_cl.metrics import report_names
from stream_cl.pending import LabelUpdate
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import Prequential

RULES = Path(__file__).resolve().parents[2] / "deploy/prometheus/rules/stream-cl.rules.yml"


def scrape(metrics: DaemonMetrics) -> dict[str, list]:
    """Each sample of a scrape, by name: ``[(labels, value), ...]``."""
    registry = CollectorRegistry()
    register_metrics(registry, lambda: SimpleNamespace(metrics=metrics))
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


# -- F3: task labels ----------------------------------------------------------------------------
def test_tasks_1_and_str_1_are_two_series_named_as_the_run_report_names_them():
    # review r28 F3: snapshot() keyed both by str(task), so task="1" held whichever came later (0.0 here)
    decoder = EventDecoder(load_config_dict({}).mapping)
    number = decoder.decode_json(b'{"x": {"a": 1}, "y": "p", "task": 1}').task
    text = decoder.decode_json(b'{"x": {"a": 1}, "y": "p", "task": "1"}').task
    assert (number, text) == (1, "1")
    m = DaemonMetrics()
    m.tasks = TaskAccuracy(window=4)
    m.tasks.update([Prediction(str(i), "y", 1.0, "y", number) for i in range(4)]  # 4 of 4 right
                   + [Prediction(str(i), "n", 1.0, "y", text) for i in range(4, 8)])  # 0 of 4 right
    names = report_names([number, text])
    assert names == {1: "1", "1": "'1'"}
    expected = {names[number]: 1.0, names[text]: 0.0}
    assert m.tasks.snapshot() == expected
    assert {labels["task"]: v for labels, v in scrape(m)["stream_cl_task_accuracy_ratio"]} == expected
    assert m.to_dict()["task_accuracy"] == expected  # the status file (and /model) the same


def test_a_task_whose_text_no_other_task_shares_keeps_its_plain_name():
    acc = TaskAccuracy(window=2)
    acc.update([Prediction("1", "a", 1.0, "a", 7), Prediction("2", "a", 1.0, "a", "t1"),
                Prediction("3", "a", 1.0, "b", "t1")])
    assert acc.snapshot() == {"7": 1.0, "t1": 0.5}


# -- F2: the dead-letter ratio -----------------------------------------------------------------
def one_poll_with_labels(n_events: int, n_labels: int, n_bad_labels: int, seed: int = 0) -> DaemonMetrics:
    """One poll through the real Router: ``n_events`` unlabelled events, then the valid labels of the first
    ``n_labels`` of them and ``n_bad_labels`` invalid label records (``bad_id``)."""
    cfg = load_config_dict({"model": {"kind": "analytic"}, "run": {"batch_size": 256},
                            "kafka": {"topics": ["events"], "predictions_topic": "p", "labels_topic": "labels"}})
    learner = build_learner(cfg.model)
    m = DaemonMetrics()
    router = Router(cfg, Prequential(learner, window=50), learner, PendingStores(), RecordingPublisher(), m,
                    SimpleNamespace(add=lambda n: None, touched=lambda key, n: None), partitioned=True)
    rng = np.random.default_rng(seed)
    items = [Event({"a": float(rng.normal())}, None, f"e{i}", None, None, f"events/0@{i}") for i in range(n_events)]
    items += [LabelUpdate(f"e{i}", "p" if i % 2 else "n", f"labels/0@{i}") for i in range(n_labels)]
    items += [DeadLetter(b'{"id": [1]}', "bad_id", "label record: bad id", f"labels/0@{n_labels + i}")
              for i in range(n_bad_labels)]
    router.process(PolledBatch(items, {}, frozenset()))
    return m


def records_read(samples: dict) -> float:
    """The ratio rule's denominator, from one scrape: stream_cl_events_total (every outcome) plus the valid
    label records, stream_cl_labels_total{outcome=~"joined|unknown"}."""
    events = sum(v for _, v in samples["stream_cl_events_total"])
    labels = sum(v for labels, v in samples["stream_cl_labels_total"] if labels["outcome"] in ("joined", "unknown"))
    return events + labels


def test_the_ratio_denominator_counts_every_record_read_labels_included():
    # review r28 F2: 1000 events and 1000 label records, 100 of them invalid, are 5% dead letters; the rule
    # divided by stream_cl_events_total alone (1100) and read 9.1%
    m = one_poll_with_labels(1000, 900, 100)
    samples = scrape(m)
    dead = dict((labels["outcome"], v) for labels, v in samples["stream_cl_events_total"])["dead_lettered"]
    assert (dead, m.records) == (100, 2000)
    assert records_read(samples) == m.records
    assert dead / records_read(samples) == 0.05


def test_the_ratio_rule_divides_by_events_and_valid_label_records():
    rules = {r.get("record"): r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    expr = " ".join(rules["instance:stream_cl_dead_letter_ratio:rate5m"].split())
    numerator, denominator = expr.split(" / ", 1)
    assert 'stream_cl_events_total{outcome="dead_lettered"}' in numerator
    assert "rate(stream_cl_events_total[5m])" in denominator
    assert re.search(r'rate\(stream_cl_labels_total\{outcome=~"joined\|unknown"\}\[5m\]\)', denominator)


def test_a_task_gets_a_series_only_once_it_has_a_complete_window():
    """Review r69 F1: a task per event (a session id as mapping.task) made a new series with every scrape,
    up to 100 at once and without end over time, each one event's 0 or 1. Only tasks with a complete window
    are series now; /model and the status file still show each tracked task's running window."""
    m = DaemonMetrics()
    m.tasks = TaskAccuracy(window=3)
    m.tasks.update([Prediction(str(i), "y", 1.0, "y", f"session-{i}") for i in range(50)])  # one event each
    m.tasks.update([Prediction(str(i), "y", 1.0, "y" if i != 50 else "n", "day") for i in range(50, 53)])
    assert {labels["task"]: v for labels, v in scrape(m)["stream_cl_task_accuracy_ratio"]} == {"day": 2 / 3}
    assert len(m.to_dict()["task_accuracy"]) == 51


def test_a_task_without_a_series_does_not_rename_another_tasks_series():
    """The number 7 and the text "7" are two tasks; one event of the number (no complete window, no series)
    renamed the text's series from task="7" to task="'7'" (review r70 L1)."""
    m = DaemonMetrics()
    m.tasks = TaskAccuracy(window=2)
    m.tasks.update([Prediction(str(i), "y", 1.0, "y", "7") for i in range(2)])
    m.tasks.update([Prediction("9", "y", 1.0, "y", 7)])
    assert {labels["task"]: v for labels, v in scrape(m)["stream_cl_task_accuracy_ratio"]} == {"7": 1.0}
    assert m.tasks.snapshot() == {"'7'": 1.0, "7": 1.0}  # /model and the status file name both apart
