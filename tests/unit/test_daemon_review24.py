"""Review 24: the daemon against a dead-letter topic with a smaller limit (r16 F3), authorisation errors and
starts over that fail again (r16 F4), a stop asked for during the start (r16 F6), and the entry point's
``[source]`` (r15 F5).

No broker here: the Kafka clients are stand-ins (tests/unit/source_kit.py), and the publisher process's
side is run in-process, as tests/unit/test_transaction_timeout.py does. The real broker's refusal of an
oversized dead letter is met in tests/integration/test_daemon_review24_broker.py. The start-up signals are sent
by the daemon process itself, from an import hook, at a known point of its start: no sleeps.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from multiprocessing.connection import Pipe
from pathlib import Path
from types import SimpleNamespace

import pytest
from kafka.errors import (GroupAuthorizationFailedError, KafkaError, MessageSizeTooLargeError,
                          TopicAuthorizationFailedError)
from source_kit import CommitAtOncePublisher, OnePartitionSource  # tests/unit/source_kit.py

import connectors.daemon as daemon_module
import connectors.daemon_cli as daemon_cli
import connectors.daemon_exits as daemon_exits
import connectors.daemon_run as daemon_run
from connectors.daemon_build import topic_max_message_bytes
from connectors import publisher as publisher_module
from connectors import transaction
from connectors.authorisation import not_authorised
from connectors.logs import JsonFormatter, teardown_logging
from connectors.sinks import DeliveryError
from connectors.transaction import TransactionAborted, TransactionalWriter
from stream_cl.config import load_config_dict, to_toml
from stream_cl.factory import build_learner
from stream_cl.pending_stores import PendingStores

REPO = Path(__file__).resolve().parents[2]


def _lines(records) -> list[dict]:
    return [json.loads(JsonFormatter().format(r)) for r in records]


def _config(tmp_path, **kafka):
    return load_config_dict({
        "model": {"kind": "analytic", "forgetting": [1.0]},
        "kafka": {"topics": ["events"], "predictions_topic": "p", "dead_letter_topic": "d", "stop_at_end": True,
                  "group_id": "g", **kafka},
        "checkpoint": {"dir": str(tmp_path / "ckpt"), "every_events": 1000, "every_seconds": 3600},
        "metrics": {"enabled": False},
    })


class _Source(OnePartitionSource):
    """``records`` (raw bytes) on events/0, decoded as the daemon decodes them; ``error``: what a poll raises."""

    def __init__(self, daemon, records, error=None):
        from stream_cl.decode import EventDecoder

        super().__init__(daemon, {}, 50)
        self.decode = EventDecoder(daemon.config.mapping).decode_json
        self.records, self.error = records, error

    def size(self) -> int:
        return len(self.records)

    def poll(self, max_records):
        from connectors.kafka import PolledBatch

        if self.error is not None:
            raise self.error
        pos = self.positions[self.tp]
        chunk = self.records[pos : pos + min(self.batch, max_records)]
        origins = [f"events/0@{i}" for i in range(pos, pos + len(chunk))]
        self.positions[self.tp] = pos + len(chunk)
        return PolledBatch([self.decode(v, o) for o, v in zip(origins, chunk)],
                           {o: (b"k", v, []) for o, v in zip(origins, chunk)}, frozenset())


class _FailingPublisher(CommitAtOncePublisher):
    """Commits fail with ``error``, as the publisher reports a failed transaction."""

    def __init__(self, error):
        super().__init__([], {})
        self.error = error

    def finish_commit(self, wait=True):
        if self._done:
            self._done = False
            raise self.error
        return None


def _daemon(tmp_path, records, publisher=None, error=None, **kwargs):
    from connectors.commit import CommitPolicy

    cfg = _config(tmp_path)
    d = daemon_module.Daemon(cfg, build_learner(cfg), lambda me: _Source(me, records, error),
                             publisher or CommitAtOncePublisher([], {}), PendingStores(), threading.Event(), **kwargs)
    d.commits.policy = CommitPolicy(0)  # a commit after every poll that brought something
    return d


def _event(i: int) -> bytes:
    return json.dumps({"id": str(i), "x": {"a": float(i % 5), "b": 1.0}, "y": "ab"[i % 2]}).encode()


# -- r16 F3: the dead-letter topic's own max.message.bytes ------------------------------------------------
def test_dead_letters_are_cut_to_the_dead_letter_topics_own_limit_where_it_is_smaller(tmp_path):
    big = b"{" + b"x" * 50_000  # malformed: a dead letter of 50 kB
    records = [_event(0), big, _event(2)]
    small = _daemon(tmp_path / "a", records, dead_letter_topic_bytes=10_000)
    assert small.run() == daemon_exits.EXIT_OK
    ((key, value, headers),) = small.publisher.dead
    assert len(key) + len(value) + sum(len(a) + len(b) for a, b in headers) <= 10_000
    assert dict(headers)["stream-cl.truncated-from"] == b"50001"
    unknown = _daemon(tmp_path / "b", records)  # not known: kafka.max_message_bytes (1 MiB) alone
    assert unknown.run() == daemon_exits.EXIT_OK
    assert unknown.publisher.dead[0][1] == big


class _Admin:
    """A KafkaAdminClient whose describe_configs answers as kafka-python 3 does (``{}``: a missing topic)."""

    configs: dict = {}

    def __init__(self, **options):
        pass

    def describe_configs(self, resources, config_filter="modified"):
        assert config_filter == "all"  # a limit left at the broker's default is read too
        name = resources[0].name
        return {"topic": {name: {k: {"value": v, "config_source": "DYNAMIC_TOPIC_CONFIG"}
                                 for k, v in self.configs.get(name, {}).items()}}}

    def close(self):
        pass


def test_the_dead_letter_topics_limit_is_read_from_the_broker(monkeypatch):
    import kafka.admin

    monkeypatch.setattr(kafka.admin, "KafkaAdminClient", _Admin)
    _Admin.configs = {"dl": {"max.message.bytes": "100000", "cleanup.policy": "delete"}}
    kcfg = _config(Path("/nonexistent")).kafka
    assert topic_max_message_bytes(kcfg, "dl") == 100_000
    assert topic_max_message_bytes(kcfg, "missing") is None
    assert topic_max_message_bytes(kcfg, "") is None


class _Future:
    def __init__(self, exception=None):
        self.exception = exception

    def failed(self):
        return self.exception is not None


class _Producer:
    """A transactional KafkaProducer whose sends to ``refuse`` fail with ``error`` (as the broker answers)."""

    def __init__(self, refuse="dl", error=MessageSizeTooLargeError("[Error 10] MessageSizeTooLargeError: None"), **_):
        self.refuse, self.error, self.journal = refuse, error, []
        self.failed = False  # kafka-python refuses every send after a failed one, until the abort
        self.flush_errors: list = []  # raised by the next flushes

    def init_transactions(self):
        pass

    def begin_transaction(self):
        self.journal.append("begin")

    def send(self, topic, key=None, value=None, headers=None):
        if self.failed:
            raise KafkaError("Cannot perform send because at least one previous transactional or idempotent "
                             "request has failed with errors.", self.error)
        self.failed = topic == self.refuse
        return _Future(self.error if topic == self.refuse else None)

    def flush(self, timeout=None):
        self.journal.append("flush")
        if self.flush_errors:
            raise self.flush_errors.pop(0)

    def send_offsets_to_transaction(self, offsets, group):
        pass

    def commit_transaction(self):
        self.journal.append("commit")

    def abort_transaction(self):
        self.failed = False
        self.journal.append("abort")

    def close(self, timeout=None):
        pass


def test_a_dead_letter_its_topic_refuses_as_too_large_names_both_limits():
    producer = _Producer()
    writer = TransactionalWriter(producer, "", "dl")
    writer.write_dead([(b"k", b"v" * 10, [])])
    with pytest.raises(transaction.DeadLetterRefused) as raised:
        writer.commit([("events", 0, 5)], ("g", 1, "m", None))
    said = str(raised.value)
    assert said.startswith("kafka.max_message_bytes: ") and "max.message.bytes of 'dl'" in said
    assert "kafka-configs.sh" in said and transaction.dead_letter_refused(raised.value)
    assert producer.journal[-1] == "abort" and "commit" not in producer.journal  # nothing of it is visible


def test_sends_after_the_refused_dead_letter_are_held_for_the_commit_which_names_the_refusal():
    """kafka-python refuses every send once a record of the transaction failed: the daemon's next dead letter
    (or prediction) raised that at once (a traceback with the thread publisher), not the refusal behind it."""
    producer = _Producer()
    writer = TransactionalWriter(producer, "", "dl")
    writer.write_dead([(b"k", b"v" * 10, [])])
    writer.write_dead([(b"k2", b"w", [])])  # refused by kafka-python: held
    with pytest.raises(transaction.DeadLetterRefused):
        writer.commit([("events", 0, 5)], ("g", 1, "m", None))


def test_a_flush_that_gives_up_on_a_batch_it_split_is_flushed_again():
    from kafka.errors import UnknownError

    producer = _Producer(refuse="")
    producer.flush_errors = [UnknownError("Future not done"), UnknownError("Future not done")]
    writer = TransactionalWriter(producer, "", "dl")
    writer.write_dead([(b"k", b"v", [])])
    writer.commit([("events", 0, 5)], ("g", 1, "m", None))
    assert producer.journal.count("flush") == 3 and "commit" in producer.journal


def test_other_failures_of_a_dead_letter_or_a_size_refusal_elsewhere_start_over_as_before():
    other = TransactionalWriter(_Producer(error=KafkaError("broker gone")), "", "dl")
    other.write_dead([(b"k", b"v", [])])
    with pytest.raises(TransactionAborted) as raised:
        other.commit([("events", 0, 5)], ("g", 1, "m", None))
    assert not transaction.dead_letter_refused(raised.value)
    changelog = TransactionalWriter(_Producer(refuse="g.model"), "", "dl")  # a state record: its own rule
    with pytest.raises(TransactionAborted) as raised:
        changelog.commit([("events", 0, 5)], ("g", 1, "m", None), [("g.model", b"events/0", b"part")])
    assert not transaction.dead_letter_refused(raised.value)


class _Alive:
    error = None

    def poll(self):
        return None


def test_the_refusal_reaches_the_daemon_from_the_publisher_process(monkeypatch):
    """The child (``_serve``, run here in-process) reports it as an aborted transaction, as text: the daemon's
    side still tells it apart from other aborts."""
    monkeypatch.setattr(publisher_module, "KafkaProducer", _Producer)
    monkeypatch.setattr(publisher_module.signal, "signal", lambda *args: None)  # the child's handlers, not pytest's
    monkeypatch.setattr("connectors.logs.setup_logging", lambda *args, **kwargs: None)
    ours, theirs = Pipe(duplex=True)
    ours.send(("start", {}, "", "dl", "text", logging.WARNING))
    ours.send(("dead", [(b"k", b"v", [])]))
    ours.send(("commit", [("events", 0, 5)], ("g", 1, "m", None), [], 0.0))
    ours.send(("close",))
    assert publisher_module._serve(theirs) == 0
    parent = object.__new__(publisher_module.ProcessPublisher)  # its side, without spawning a child
    parent._conn, parent._proc, parent._writer = ours, _Alive(), _Alive()
    assert parent._reply(5.0, "start") == 0
    with pytest.raises(TransactionAborted) as raised:
        parent._reply(5.0, "commit")
    assert type(raised.value) is TransactionAborted and transaction.dead_letter_refused(raised.value)


@pytest.mark.parametrize("publisher", ["process", "thread"])
def test_the_daemon_stops_on_it_with_exit_2_instead_of_starting_over(tmp_path, caplog, publisher):
    error = transaction.DeadLetterRefused.of("d", MessageSizeTooLargeError())
    if publisher == "process":  # its text alone comes through the pipe
        error = TransactionAborted(str(error))
    d = _daemon(tmp_path, [_event(0), b"{bad", _event(2)], publisher=_FailingPublisher(error))
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        assert d.run() == daemon_exits.EXIT_CONFIG
    assert not d.reset_reason
    (line,) = [x for x in _lines(caplog.records) if x["level"] == "ERROR"]
    assert line["event"] == "failed" and line["exit_code"] == 2
    assert line["detail"].startswith("config error: kafka.max_message_bytes: ")
    assert "max.message.bytes of 'd'" in line["detail"]
    assert not [x for x in _lines(caplog.records) if x["event"] == "fenced"]


# -- r16 F4: authorisation errors, and starts over that fail again ---------------------------------------
@pytest.mark.parametrize("error, key, said", [
    (TopicAuthorizationFailedError({"events"}), "kafka.topics", "Read on topic 'events'"),
    (TransactionAborted("the transaction failed and was aborted: DeliveryError: a record could not be delivered: "
                        "TopicAuthorizationFailedError: [Error 29] TopicAuthorizationFailedError: {'p'}"),
     "kafka.predictions_topic", "Write on topic 'p'"),
    (TopicAuthorizationFailedError({"d"}), "kafka.dead_letter_topic", "Write on topic 'd'"),
    (TopicAuthorizationFailedError({"g.model"}), "changelog.topic", "on topic 'g.model'"),
    (GroupAuthorizationFailedError("g"), "kafka.group_id", "Read on group 'g'"),
    (DeliveryError("cannot start the predictions producer: TransactionalIdAuthorizationFailedError: "
                   "[Error 53] TransactionalIdAuthorizationFailedError"), "kafka.transactional_id",
     "Write and Describe on transactional id 'stream-cl.g."),
])
def test_an_authorisation_error_names_what_was_refused_the_key_and_the_acl(tmp_path, error, key, said):
    sasl = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_plain_username": "alice",
            "sasl_plain_password": "alice-secret"}
    detail = not_authorised(error, _config(tmp_path, **sasl))
    assert detail is not None and detail.startswith("not authorised: the broker refused ")
    assert said in detail and f"({key}" in detail
    assert "kafka-acls.sh --add --allow-principal User:<kafka.sasl_plain_username> --operation " in detail
    assert "alice" not in detail  # no secret in a log line


def test_other_errors_are_not_authorisation_errors(tmp_path):
    config = _config(tmp_path)
    assert not_authorised(RuntimeError("boom"), config) is None
    assert not_authorised(TransactionAborted("fenced: ProducerFencedError"), config) is None
    wrapped = DeliveryError("publishing failed")
    wrapped.__cause__ = TopicAuthorizationFailedError({"events"})  # found where it was raised from
    assert "topic 'events'" in not_authorised(wrapped, config)


def _held_offsets():
    from connectors.kafka_assignment import CommittedOffsetsUnreadable

    return CommittedOffsetsUnreadable("... `kafka-transactions.sh --bootstrap-server b abort --topic __consumer_offsets`")


@pytest.mark.parametrize("error, says", [
    (TopicAuthorizationFailedError({"events"}), "Read on topic 'events' (kafka.topics)"),
    # review r118 F9: a transaction left open on __consumer_offsets held the group's offsets; every member exited 1
    # with "User rebalance callback throws an error" and a traceback, and nothing named the remedy
    (_held_offsets(), "committed offsets not readable: ... `kafka-transactions.sh --bootstrap-server b abort"),
])
def test_a_topic_the_broker_refuses_or_offsets_it_never_gives_are_one_failed_line_without_a_traceback(
        tmp_path, caplog, error, says):
    d = _daemon(tmp_path, [], error=error)
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        assert d.run() == daemon_exits.EXIT_FAILED
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    (line,) = _lines(errors)
    assert line["event"] == "failed" and line["exit_code"] == 1
    assert says in line["detail"]


def test_an_output_topic_the_broker_refuses_stops_the_daemon_instead_of_starting_over(tmp_path, caplog):
    error = TransactionAborted("the transaction failed and was aborted: DeliveryError: a record could not be delivered: "
                               "TopicAuthorizationFailedError: [Error 29] TopicAuthorizationFailedError: {'p'}")
    d = _daemon(tmp_path, [_event(0), _event(1)], publisher=_FailingPublisher(error))
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        assert d.run() == daemon_exits.EXIT_FAILED
    assert not d.reset_reason
    (line,) = [x for x in _lines(caplog.records) if x["level"] == "ERROR"]
    assert line["event"] == "failed" and "Write on topic 'p' (kafka.predictions_topic)" in line["detail"]


def test_a_transactional_id_the_broker_refuses_at_start_is_one_failed_line(tmp_path, monkeypatch, caplog):
    def refused(cls, config, stop, metrics, **kwargs):
        raise DeliveryError("cannot start the predictions producer: TransactionalIdAuthorizationFailedError: "
                            "[Error 53] TransactionalIdAuthorizationFailedError")

    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(refused))
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        code, _ = daemon_run._build_and_run_once(_config(tmp_path), threading.Event(), None, None, None)
    assert code == daemon_exits.EXIT_FAILED
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None  # no "daemon could not start" traceback
    assert "(kafka.transactional_id" in _lines(errors)[0]["detail"]


def test_an_unexpected_error_at_start_is_logged_with_its_traceback_and_exits_1(tmp_path, monkeypatch, caplog):
    def broken(cls, config, stop, metrics, **kwargs):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(broken))
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        code, _ = daemon_run._build_and_run_once(_config(tmp_path), threading.Event(), None, None, None)
    assert code == daemon_exits.EXIT_FAILED
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.getMessage() == "daemon could not start"
    assert error.exc_info[0] is RuntimeError and "a bug of ours" in str(error.exc_info[1])


def test_starts_over_that_fail_again_wait_longer_each_time_and_a_commit_ends_that(tmp_path, monkeypatch):
    """Each build: "commit" (it committed, then had to start over), "none" (started over with no commit), "end"."""
    from connectors.status import DaemonMetrics

    script = ["commit", "none", "none", "none", "none", "none", "none", "none", "none", "commit", "none", "end"]
    builds, delays = [], []

    def build(config, stop, on_ready, server, metrics, changelog=None, checks=None, contact=None):
        metrics = metrics or DaemonMetrics()
        what = script[len(builds)]
        builds.append(what)
        if what == "end":
            return daemon_exits.EXIT_OK, metrics
        metrics.transactions["committed"] += what == "commit"
        return daemon_exits.EXIT_RESET, metrics

    monkeypatch.setattr(daemon_run, "_build_and_run_once", build)
    monkeypatch.setattr(daemon_run, "_wait_before_rebuild", lambda stop, metrics, delay: delays.append(delay))
    assert daemon_run._build_and_run(_config(tmp_path), threading.Event(), None, None) == daemon_exits.EXIT_OK
    assert builds == script
    # the first start over, and one after a daemon that committed, at once; then 1 s, doubling up to 60 s
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 0.0, 1.0]


def test_a_daemon_that_ran_long_without_committing_starts_over_at_once(tmp_path, monkeypatch):
    """A quiet topic commits nothing: start overs an hour apart (routine rebalances) must not each wait
    longer (review r18: 1, 2, 4 ... 60 s, while a static member's partitions stood still)."""
    from connectors.status import DaemonMetrics

    clock = [0.0]
    script = [("none", 5.0), ("none", 5.0), ("none", 3600.0), ("none", 3600.0), ("none", 5.0), ("end", 0.0)]
    delays = []

    def build(config, stop, on_ready, server, metrics, changelog=None, checks=None, contact=None):
        what, ran = script.pop(0)
        clock[0] += ran
        return (daemon_exits.EXIT_OK if what == "end" else daemon_exits.EXIT_RESET), metrics or DaemonMetrics()

    monkeypatch.setattr(daemon_run, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(daemon_run, "_build_and_run_once", build)
    monkeypatch.setattr(daemon_run, "_wait_before_rebuild", lambda stop, metrics, delay: delays.append(delay))
    assert daemon_run._build_and_run(_config(tmp_path), threading.Event(), None, None) == daemon_exits.EXIT_OK
    # the first at once; a brief rebuilt one that committed nothing: 1 s; an hour-long one: at once, both times
    # (the delay starts again from 1 s, not from 4); a brief one after those: 1 s
    assert delays == [0.0, 1.0, 0.0, 0.0, 1.0]


def test_the_wait_before_a_start_over_beats_and_ends_at_a_stop(monkeypatch, caplog):
    clock = [0.0]
    waits, beats = [], []

    class Stop:
        set_at = 3.5  # a SIGTERM during the wait

        def is_set(self):
            return clock[0] >= self.set_at

    def sleep(seconds):  # (the wait sleeps in steps: it must not wait on the Event, test_rejoin_wait_signal.py)
        waits.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(daemon_run, "time", SimpleNamespace(monotonic=lambda: clock[0], sleep=sleep))
    metrics = SimpleNamespace(beat=lambda: beats.append(clock[0]))
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        daemon_run._wait_before_rebuild(Stop(), metrics, 8.0)
    assert 3.5 <= sum(waits) < 3.6 and max(waits) <= 0.1  # ends at the stop, not after 8 s
    assert len(beats) == len(waits) and beats[0] == 0.0  # the heartbeat goes on at every step: /healthz
    (line,) = _lines(caplog.records)
    assert line["event"] == "rejoin_delayed" and line["delay_s"] == 8.0 and line["level"] == "WARNING"
    waits.clear()
    daemon_run._wait_before_rebuild(Stop(), metrics, 0.0)
    assert waits == []


# -- r16 F6: a stop asked for during the start ----------------------------------------------------------
SIGNAL_AT_IMPORT = """
import os, runpy, signal, sys

module, sig = sys.argv[1], getattr(signal, sys.argv[2])


class SignalAtImport:
    '''Sends the signal to this process when ``module`` is first imported: a stop at that point of the start.'''

    def find_spec(self, name, path=None, target=None):
        if name == module:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), sig)
        return None


sys.meta_path.insert(0, SignalAtImport())
sys.argv = ["connectors.daemon", *sys.argv[3:]]
runpy.run_module("connectors.daemon", run_name="__main__", alter_sys=True)
"""


# stream_cl.checkpoint_format: the daemon module's first heavy import; numba: imported first by warm_up()
@pytest.mark.parametrize("module, sig", [("stream_cl.checkpoint_format", "SIGTERM"),
                                         ("stream_cl.checkpoint_format", "SIGINT"), ("numba", "SIGTERM")])
def test_a_signal_during_the_imports_or_the_warm_up_is_a_clean_stop(tmp_path, module, sig):
    config = tmp_path / "d.toml"
    config.write_text(to_toml({  # nothing answers there: a start that went on would fail, not hang
        "source": {"kind": "kafka"}, "model": {"kind": "analytic"},
        "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["events"], "bootstrap_timeout_ms": 1000},
        "checkpoint": {"dir": str(tmp_path / "ckpt")}, "metrics": {"enabled": False}}))
    done = subprocess.run([sys.executable, "-c", SIGNAL_AT_IMPORT, module, sig, "--config", str(config),
                           "--log-format", "json"], cwd=REPO, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "Traceback" not in out
    events = [json.loads(x)["event"] for x in out.splitlines() if x.startswith("{")]
    assert events[-2:] == ["stop_requested", "shutdown"], out[-3000:]
    assert not (tmp_path / "ckpt").exists()  # nothing was built


def test_a_keyboard_interrupt_before_the_daemon_starts_exits_0(tmp_path, monkeypatch, capsys):
    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(daemon_cli, "read_toml", interrupted)
    try:
        code = daemon_cli.main(["--config", str(tmp_path / "d.toml"), "--log-format", "json"])
    except KeyboardInterrupt:  # (caught here: escaped, it would end pytest's session)
        code = "a KeyboardInterrupt traceback"
    finally:
        teardown_logging()
    assert code == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert line["event"] == "stop_requested" and line["reason"] == "SIGINT"


# -- r15 F5: python -m connectors.daemon and [source] ---------------------------------------------------
@pytest.mark.parametrize("source", [{"kind": "file", "path": "ev.jsonl"}, {"kind": "demo"}])
def test_the_daemon_entry_point_refuses_another_source_kind(tmp_path, monkeypatch, capsys, source):
    runs = []
    monkeypatch.setattr(daemon_cli, "run_daemon", lambda config: runs.append(config) or 0)
    path = tmp_path / "d.toml"
    path.write_text(to_toml({"source": source, "kafka": {"topics": ["events"]}}))
    try:
        assert daemon_cli.main(["--config", str(path), "--log-format", "json"]) == 2
    finally:
        teardown_logging()
    assert runs == []
    (line,) = [json.loads(x) for x in capsys.readouterr().err.splitlines() if '"ERROR"' in x]
    assert line["event"] == "failed" and line["detail"].startswith("config error: source.kind: ")
    assert "stream-cl run" in line["detail"] and 'kind = "kafka"' in line["detail"]


def test_without_a_source_kind_the_daemon_entry_point_reads_the_file_as_kafka(tmp_path, monkeypatch):
    runs = []
    monkeypatch.setattr(daemon_cli, "run_daemon", lambda config: runs.append(config) or 0)
    path = tmp_path / "d.toml"
    path.write_text(to_toml({"kafka": {"topics": ["events"]}}))
    try:
        assert daemon_cli.main(["--config", str(path), "--log-format", "json"]) == 0
        path.write_text(to_toml({"source": {"path": "ev.jsonl"}, "kafka": {"topics": ["events"]}}))
        assert daemon_cli.main(["--config", str(path), "--log-format", "json"]) == 2  # a file source's key
    finally:
        teardown_logging()
    assert [c.source.kind for c in runs] == ["kafka"]
