"""Review r56 #3: a delayed label the model refused at its join (past ``model.max_classes``, say) became a
dead letter under its *event's* origin, whose prediction was published already, keyless and re-encoded
under the default field names (``id``/``x``/``y``), while the label record that brought the refusal had no
output at all. It is now the label record's dead letter: its origin, its bytes and its key where it was read
in the same poll, else (the label came before its event) the label record written again under the mapping's
names; the detail names the event."""

from __future__ import annotations

import json
from types import SimpleNamespace

from connectors.kafka import PolledBatch
from connectors.router import Router
from connectors.sinks import dead_letter_record
from connectors.status import DaemonMetrics
from router_kit import RecordingPublisher  # tests/unit/router_kit.py
from stream_cl.config import load_config_dict
from stream_cl.decode import EventDecoder
from stream_cl.factory import build_learner
from stream_cl.pending import LabelDecoder
from stream_cl.pending_stores import PendingStores
from stream_cl.prequential import Prequential

CONFIG = load_config_dict({"kafka": {"topics": ["events"], "labels_topic": "labels", "predictions_topic": "p",
                                     "dead_letter_topic": "dead"},
                           "model": {"kind": "analytic", "max_classes": 2},
                           "mapping": {"id": "event_id", "features": "feat", "label": "outcome"}})


def _router() -> Router:
    learner = build_learner(CONFIG.model)
    state = SimpleNamespace(add=lambda n: None, touched=lambda key, n: None)
    return Router(CONFIG, Prequential(learner, window=5, max_classes=2), learner, PendingStores(), RecordingPublisher(),
                  DaemonMetrics(), state, partitioned=False)


def _poll(router: Router, records: list[tuple[str, bytes, bytes]]) -> None:
    """Records ``(origin, key, value)`` of the events or labels topic, decoded as the source decodes them."""
    events, labels = EventDecoder(CONFIG.mapping), LabelDecoder(CONFIG.mapping)
    items = [(labels.decode if origin.startswith("labels/") else events.decode_json)(value, origin)
             for origin, key, value in records]
    router.process(PolledBatch(items, {origin: (key, value, []) for origin, key, value in records}, frozenset()))


def _event(i: int) -> bytes:
    return json.dumps({"event_id": f"e{i}", "feat": {"card": {"amount": i, "country": "FR"}}}).encode()


def _label(i: int, y: str) -> bytes:
    return json.dumps({"event_id": f"e{i}", "outcome": y}).encode()


def test_a_refused_delayed_label_is_its_label_records_dead_letter_with_its_bytes_and_key():
    router = _router()
    _poll(router, [(f"events/0@{i}", f"k-e{i}".encode(), _event(i)) for i in range(3)])
    labels = [(f"labels/0@{i}", f"k-e{i}".encode(), _label(i, y)) for i, y in enumerate(("ok", "fraud", "chargeback"))]
    _poll(router, labels)
    [(key, value, headers)] = router.publisher.dead
    headers = dict(headers)
    assert (key, value) == (b"k-e2", labels[2][2])  # the label record as it was written
    assert headers["stream-cl.origin"] == b"labels/0@2" and headers["stream-cl.reason"] == b"rejected_by_model"
    assert headers["stream-cl.detail"].endswith(b"(the label of the event read at events/0@2)")
    assert len(router.publisher.predictions) == 3  # each event its prediction; the label record its dead letter


def test_a_refused_label_that_came_before_its_event_is_written_again_under_the_mappings_names():
    router = _router()
    _poll(router, [(f"events/0@{i}", b"k", _event(i)) for i in range(2)])
    _poll(router, [("labels/0@0", b"k", _label(0, "ok")), ("labels/0@1", b"k", _label(1, "fraud")),
                   ("labels/0@2", b"k-e2", _label(2, "chargeback"))])  # e2's label first: it waits
    _poll(router, [("events/0@2", b"k-e2", _event(2))])  # its event comes: joined, refused
    [(key, value, headers)] = router.publisher.dead
    assert json.loads(value) == {"event_id": "e2", "outcome": "chargeback"} and key is None  # read in an earlier poll
    assert dict(headers)["stream-cl.origin"] == b"labels/0@2"


def test_dead_letter_record_of_a_refused_join_names_the_label_record():
    d = _router()._refused_join(*_refusal())
    assert dead_letter_record(d)[0] is None and d.origin == "labels/0@9"


def _refusal():
    from stream_cl.events import DeadLetter, Event

    event = Event({"a": 1.0}, "x", "e9", None, None, "events/0@4")
    return DeadLetter(b"{}", "rejected_by_model", "a third class", "events/0@4"), event, "labels/0@9", {}


def test_a_refused_labels_dead_letter_carries_the_label_records_own_headers():
    router = _router()
    _poll(router, [(f"events/0@{i}", b"k", _event(i)) for i in range(3)])
    labels = LabelDecoder(CONFIG.mapping)
    records = [(f"labels/0@{i}", b"k", _label(i, y), [("trace", f"t{i}".encode()), ("stream-cl.detail", b"old")])
               for i, y in enumerate(("ok", "fraud", "chargeback"))]
    router.process(PolledBatch([labels.decode(value, origin) for origin, _, value, _ in records],
                               {origin: (key, value, headers) for origin, key, value, headers in records}, frozenset()))
    [(_, _, headers)] = router.publisher.dead
    assert headers[0] == ("trace", b"t2") and [v for k, v in headers if k == "stream-cl.detail"] != [b"old"]
    assert [k for k, _ in headers].count("stream-cl.detail") == 1
