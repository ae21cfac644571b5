"""Style review r44, findings 7, 8 and 10: public names instead of other modules' private ones, no
module-level registries, and the kafka-python private attributes the daemon reads.

* F7: ``runtime.warm_up`` and three benchmarks imported the private ``stream_cl.heads._linalg``
  (now :mod:`stream_cl.heads.linalg`); ``AnalyticDesign._design_frame`` read ``FeatureIndex._pos``
  (now :attr:`FeatureIndex.positions`); ``benchmarks/decode_speed.py`` swapped ``decode._fast_loads``
  (now :func:`stream_cl.decode.standard_library_only`); ``benchmarks/partitions.py`` called
  ``_serve_sums`` and set ``_since_sum`` (now ``PartitionedLearner.resum(forgetting_only=True)``).
* F10: ``connectors.logs`` kept the secrets in a module-level set that every ``Redact`` read (now each
  ``Redact`` holds its own; the process's, which ``setup_logging`` installs, holds ``hide_secret``'s);
  ``benchmarks/kafka_throughput.py`` kept the topics to delete in a module-level list (now the caller's).
* F8: the three kafka-python private attributes are listed in docs/daemon.md and checked here
  against the installed kafka-python, without a broker.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from connectors import logs  # noqa: E402
from connectors.logs import Redact, hide_secret, log_event, setup_logging, teardown_logging  # noqa: E402
from stream_cl import decode  # noqa: E402
from stream_cl.config import MappingConfig  # noqa: E402
from stream_cl.features import FeatureIndex  # noqa: E402

# the files of finding 7, each of which reached into another module's private names
F7_FILES = ["stream_cl/runtime.py", "stream_cl/heads/analytic_design.py", "benchmarks/head_speed.py",
            "benchmarks/batch_size.py", "benchmarks/one_event_breakdown.py", "benchmarks/decode_speed.py",
            "benchmarks/partitions.py"]


def _private_reaches(rel: str) -> list[str]:
    """Imports from a private module and ``obj._name`` reads where ``obj`` is not self, cls, os or sys."""
    tree = ast.parse((ROOT / rel).read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [a.name for a in node.names]
            private = [part for part in module.split(".") + names if part.startswith("_") and part != "__future__"]
            if private:
                found.append(f"{rel}:{node.lineno}: from {'.' * node.level}{module} import {', '.join(names)}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls", "os", "sys")):
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    return found


# -- F7 ------------------------------------------------------------------------------------------
def test_the_files_of_finding_7_reach_into_no_private_name():
    assert [hit for rel in F7_FILES for hit in _private_reaches(rel)] == []


def test_heads_linalg_names_the_objects_the_heads_use():
    from stream_cl.heads import _linalg, linalg, scaled_triangle

    for name in linalg.__all__:
        home = scaled_triangle if name == "ScaledTriangle" else _linalg
        assert getattr(linalg, name) is getattr(home, name), name  # the same objects: a setting reaches the heads
    assert linalg.NumpyLinalg.max_chunk == linalg.CPU_CHUNK
    linalg.warm()  # loads (or compiles) the pivot check; runtime.warm_up calls it


def test_feature_index_positions_is_a_read_only_view_of_each_key_column():
    index = FeatureIndex()
    index.commit(["a", "b"])
    positions = index.positions
    assert dict(positions) == {"a": 0, "b": 1} and "c" not in positions
    with pytest.raises(TypeError):
        positions["c"] = 2  # type: ignore[index]
    index.commit(["c"])
    assert positions["c"] == 2  # a view: what commit adds shows
    restored = FeatureIndex().load_state_dict(index.state_dict())
    assert dict(restored.positions) == {"a": 0, "b": 1, "c": 2}


def test_the_frame_design_reads_the_public_positions(monkeypatch):
    import pandas as pd

    from stream_cl.heads import AnalyticClassifier

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(64, 3)), columns=["f0", "f1", "f2"])
    model = AnalyticClassifier().learn_many(X, pd.Series(rng.integers(0, 2, 64)))
    before = model.predict_proba_many(X[["f2", "f0", "f1"]])  # columns out of index order
    reads = []
    view = FeatureIndex.positions
    monkeypatch.setattr(FeatureIndex, "positions", property(lambda self: reads.append(1) or view.fget(self)))
    assert model.predict_proba_many(X[["f2", "f0", "f1"]]).equals(before)
    assert reads  # the frame path went through the public view


def test_standard_library_only_refuses_the_fast_path_and_restores_it():
    decoder = decode.EventDecoder(MappingConfig())
    raw = b'{"x": {"a": 1.5, "b": "red"}, "y": "cat", "id": 7}'
    fast = decoder.decode_json(raw, "t:0")
    with decode.standard_library_only():
        assert decode._fast_loads is not orjson.loads
        with pytest.raises(orjson.JSONDecodeError):
            decode._fast_loads(raw)  # every record falls through to json, as one orjson refuses
        assert decoder.decode_json(raw, "t:0") == fast  # the same event either way
    assert decode._fast_loads is orjson.loads
    with pytest.raises(KeyError):
        with decode.standard_library_only():
            raise KeyError("inside")
    assert decode._fast_loads is orjson.loads  # back after an exception too
    assert "standard_library_only" in decode.__all__


def _forgetting_error(model) -> float:
    """Largest relative error of the served forgetting heads' weights against the exact sums of the parts."""
    errors = []
    for head, stats in zip(model.heads_, model.served_statistics()):
        if head.ridge.forgetting >= 1.0:
            continue
        d = stats.A.shape[0]
        exact = np.linalg.solve(stats.A + head.ridge.gamma * np.eye(d), stats.B)
        served = head.ridge.weights()[:d, : exact.shape[1]]
        errors.append(np.linalg.norm(served - exact) / np.linalg.norm(exact))
    assert errors, "no forgetting head to compare"
    return max(errors)


def test_resum_forgetting_only_sets_the_forgetting_heads_to_the_exact_sums():
    from stream_cl import OnlineContinualLearner
    from stream_cl.parts import SUM_EVERY_ROWS

    rng = np.random.default_rng(3)

    def rows(n):
        X = rng.normal(size=(n, 5))
        return [dict(enumerate(x.tolist())) for x in X], (X[:, 0] + X[:, 1] > 0).astype(int).tolist()

    model = OnlineContinualLearner(device="cpu")
    for part in (0, 1, 0):  # two parts; the third batch learns on partition 0's own clock
        xs, ys = rows(SUM_EVERY_ROWS // 2)
        model.prequential_batch(xs, ys, partition=part)
    drifted = _forgetting_error(model)
    model.resum(forgetting_only=True)
    assert model._since_sum == 0  # the count towards the next re-sum starts again
    assert _forgetting_error(model) < 1e-8 < drifted


# -- F10 -----------------------------------------------------------------------------------------
def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("stream_cl.test", logging.INFO, __file__, 1, message, None, None)


def _masked(redact: Redact, message: str) -> str:
    record = _record(message)
    assert redact.filter(record)
    return record.getMessage()


def test_two_redact_filters_keep_their_own_secrets():
    first, second = Redact(["alpha-r44-secret"]), Redact()
    second.hide("beta-r44-secret", None, "abc")  # None and values under 4 characters are ignored
    line = "alpha-r44-secret and beta-r44-secret, abc"
    assert _masked(first, line) == "<redacted> and beta-r44-secret, abc"
    assert _masked(second, line) == "alpha-r44-secret and <redacted>, abc"
    assert second.secrets == {"beta-r44-secret"}


def test_hide_secret_fills_the_process_filter_not_every_filter():
    hide_secret("gamma-r44-secret")
    assert _masked(Redact(), "gamma-r44-secret") == "gamma-r44-secret"  # a filter of its own holds its own
    assert not [v for v in vars(logs).values() if isinstance(v, (set, frozenset, list, dict)) and "gamma-r44-secret" in v]


def test_a_secret_hidden_before_setup_logging_is_masked_and_stays_hidden():
    hide_secret("delta-r44-secret")  # the publisher child: its passwords come before its setup_logging
    buf = io.StringIO()
    try:
        setup_logging("INFO", fmt="json", stream=buf)
        log_event("stream_cl.test", "failed", detail="refused delta-r44-secret")
        teardown_logging()
        setup_logging("INFO", fmt="json", stream=buf)  # a secret stays one, after a teardown too
        logging.getLogger("stream_cl.test").warning("again delta-r44-secret")
        hide_secret("epsilon-r44-secret")  # after the setup: the installed handler masks it at once
        logging.getLogger("stream_cl.test").warning("then epsilon-r44-secret")
    finally:
        teardown_logging()
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [line.get("detail", line["event"]) for line in lines] == [
        "refused <redacted>", "again <redacted>", "then <redacted>"]


def test_logs_keeps_no_module_level_secret_registry():
    assert not hasattr(logs, "_SECRETS")
    assert not [name for name, v in vars(logs).items() if isinstance(v, (set, list)) and name != "__all__"]


def test_create_topic_records_into_the_callers_list_and_main_deletes_them(monkeypatch, tmp_path):
    from benchmarks import kafka_throughput

    assert not hasattr(kafka_throughput, "CREATED")
    made, deleted = [], []
    admin = SimpleNamespace(create_topics=lambda topics, **kw: made.extend(topics),
                            delete_topics=deleted.extend, close=lambda: None)
    mine: list[str] = []
    assert kafka_throughput.create_topic(admin, "t-r44", 2, mine) == "t-r44"
    assert kafka_throughput.create_topic(admin, "u-r44", 1) == "u-r44"  # no list: the caller keeps none
    assert made == ["t-r44", "u-r44"] and mine == ["t-r44"]

    # main: every topic it and its runs create is deleted at the end, and nothing is left behind for the next call
    n = 100
    made.clear()
    monkeypatch.setattr("stream_cl.runtime.set_threads", lambda n: None)  # not this test process's threads
    monkeypatch.setattr(kafka_throughput, "KafkaAdminClient", lambda **kw: admin)
    monkeypatch.setattr(kafka_throughput, "cpu_meter_available", lambda: False)
    monkeypatch.setattr(kafka_throughput, "fill", lambda *a: {"events_per_s": 1.0, "bytes_per_event": 1.0,
                                                               "sent_ms": {str(i): 1.0e6 + i for i in range(n)}})
    run = {"events_per_s": 9.0, "events": n - 1, "uncounted": 1}
    monkeypatch.setattr(kafka_throughput, "bare_consumer", lambda *a: dict(run))

    def passthrough(bootstrap, admin, topic, n, publisher, created):
        kafka_throughput.create_topic(admin, f"{topic}-pass-{publisher}", 1, created)
        return dict(run)

    def drain(bootstrap, admin, topic, n, sent_ms, model, folder, meter, created):
        kafka_throughput.create_topic(admin, f"{topic}-pred", 1, created)
        recs = [SimpleNamespace(key=str(i).encode(), timestamp=1.0e6 + i + 5) for i in range(n)]
        return {**kafka_throughput.summarise_predictions(recs, sent_ms), "model_events_per_s": 1.0}

    monkeypatch.setattr(kafka_throughput, "passthrough", passthrough)
    monkeypatch.setattr(kafka_throughput, "drain", drain)
    for _ in range(2):
        deleted.clear()
        kafka_throughput.main(["--events", str(n), "--models", "default", "--markdown", str(tmp_path / "r.md")])
        bench = made[-4]
        assert bench.startswith("bench-") and deleted == [bench, f"{bench}-pass-thread", f"{bench}-pass-process",
                                                          f"{bench}-pred"]


# -- F8 ------------------------------------------------------------------------------------------
def test_the_kafka_python_private_attributes_the_daemon_reads_exist():
    """docs/daemon.md, "kafka-python's private attributes": each is read through getattr, and a
    kafka-python without one loses that feature with at most a warning; this says which went."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers="127.0.0.1:9", api_version=(2, 8), group_id="r44-private",
                             enable_auto_commit=False)  # no broker: nothing is asked before a poll
    try:
        cluster = consumer._cluster
        assert isinstance(cluster.config, dict)  # changelog._no_auto_create
        assert callable(cluster.topic_id)  # ChangelogTable._topic_id
        assert inspect.iscoroutinefunction(consumer._fetcher._fetch_offsets_by_times_async)  # log starts
        assert inspect.iscoroutinefunction(consumer._coordinator.fetch_committed_offsets_async)  # committed offsets
        assert list(inspect.signature(consumer._fetcher._fetch_offsets_by_times_async).parameters)[:2] == [
            "timestamps", "timeout_ms"]
        assert list(inspect.signature(consumer._coordinator.fetch_committed_offsets_async).parameters)[:2] == [
            "partitions", "timeout_ms"]
        assert callable(consumer._net.call_soon_threadsafe)  # kafka_assignment.off_the_io_thread
        # unreadable_record.drop_failed_fetch (review r117): None until a fetch is parsed, then a PartitionRecords
        assert hasattr(consumer._fetcher, "_next_partition_records")
        assert consumer._fetcher._next_partition_records is None
        assert callable(type(consumer._fetcher).PartitionRecords.drain)
    finally:
        consumer.close()
    from kafka import KafkaProducer  # transaction.keep_transactional_requests (review r118)

    producer = KafkaProducer(bootstrap_servers="127.0.0.1:9", api_version=(2, 8))  # no broker: nothing asked yet
    try:
        assert callable(producer._sender._client.await_ready)
    finally:
        producer.close(timeout=1)
    doc = (ROOT / "docs" / "daemon.md").read_text()
    for name in ("_cluster", "_fetcher._fetch_offsets_by_times_async", "_coordinator.fetch_committed_offsets_async",
                 "_net.call_soon_threadsafe", "_fetcher._next_partition_records"):
        assert f"`KafkaConsumer.{name}" in doc, name
    assert "`KafkaProducer._sender._client`" in doc


def test_the_other_libraries_private_names_exist():
    """docs/daemon.md's second table (review r117): river's ``_get_params``, CPython's exit handlers'
    runner, and the CRC module the daemon benchmark measures against."""
    import atexit

    from river import base, drift

    assert drift.ADWIN(delta=0.01)._get_params()["delta"] == 0.01  # stream_cl.detectors.check_saved_params
    assert callable(base.Base._get_params)  # part_exchange: a learner's settings
    assert callable(atexit._run_exitfuncs)  # early_signals
    from kafka.record import _crc32c  # benchmarks/kafka_throughput.py

    assert callable(_crc32c.crc)
    doc = (ROOT / "docs" / "daemon.md").read_text()
    for name in ("`Base._get_params()`", "`atexit._run_exitfuncs()`", "`kafka.record._crc32c`"):
        assert name in doc, name


def test_a_consumer_without_the_coordinator_attribute_reads_no_committed_offsets_and_says_so(caplog):
    # the other two private reads went through getattr; this one raised AttributeError in the rebalance callback
    from connectors.kafka_assignment import RebalanceCallbacks

    class Member:
        consumer = object()  # a kafka-python without _coordinator

    step = RebalanceCallbacks._committed_async(Member(), set())
    with caplog.at_level("WARNING", logger="stream_cl.kafka"), pytest.raises(StopIteration) as done:
        step.send(None)  # returns before its first await
    assert done.value.value == {}
    assert "cannot read committed offsets in a rebalance callback" in caplog.text
