"""Review r115 (a consumer group on a real broker through outages; exactly-once held in all 14 runs):
- F1: a rebuild after a start over that found no broker (an outage past ~60 s: the transaction's request
  timeout, then the rebuild's bootstrap timeout) ended the run with exit 1 and the first start's "check the
  address" hint, in every member at once: the group was down until restarted. A rebuild now says
  ``broker_unreachable`` and is built again after the start overs' backoff; a first start still exits 1.
- F2: ``kafka.commit_timeout_ms`` counted from the loop's wait for the commit, which begins only when the
  next commit is due: a quiet member kept a stuck commit 120 s (limit 60 s), looking healthy. It counts
  from the commit's start now, and a turn of the loop that does not wait gives it up too.
- F3: a refused connection while the member looked up its group coordinator (a broker restart during a
  rebalance) escaped ``consumer.poll()``: the daemon exited 1 with a traceback. It is a
  ``broker_unreachable`` line now, and the loop polls on.
Review r118 F5 (a first start that had reached the broker and met its restart exited 1 with a traceback) is
here too: such a start is an outage, as a rebuild's is.
No broker here: the builds, the child's pipe and the consumer are stubs (the real-broker runs are r115's)."""
from __future__ import annotations

import json
import logging
import threading
from multiprocessing.connection import Pipe

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

import connectors.daemon as daemon_module
import connectors.daemon_exits as daemon_exits
import connectors.daemon_run as daemon_run
from connectors import kafka as kafka_module
from connectors.daemon_build import BrokerContact
from connectors.logs import JsonFormatter
from connectors.publisher import ProcessPublisher
from connectors.status import DaemonMetrics
from connectors.transaction import TransactionAborted
from stream_cl.config import load_config_dict

UNABLE = KafkaTimeoutError("Unable to bootstrap from ['127.0.0.1:39592']")


def _config(tmp_path):
    return load_config_dict({
        "model": {"kind": "analytic", "forgetting": [1.0]},
        "kafka": {"topics": ["events"], "predictions_topic": "p", "group_id": "g"},
        "checkpoint": {"dir": str(tmp_path / "ckpt")},
        "metrics": {"enabled": False},
    })


def _events(records) -> list[dict]:
    return [json.loads(JsonFormatter().format(r)) for r in records]


# -- F1 ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("error", [UNABLE, KafkaConnectionError("111 ECONNREFUSED")])
def test_a_rebuild_that_finds_no_broker_is_built_again(tmp_path, monkeypatch, caplog, error):
    def away(cls, config, stop, metrics, **kwargs):
        raise error

    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(away))
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        code, _ = daemon_run._build_and_run_once(_config(tmp_path), threading.Event(), None, None, DaemonMetrics())
    assert code == daemon_exits.EXIT_BROKER_AWAY
    (line,) = _events(caplog.records)
    assert line["event"] == "broker_unreachable" and line["level"] == "WARNING"
    assert type(error).__name__ in line["error"]
    assert line["error"] == str(error)  # kafka-python's text names its type: once, not "KafkaTimeoutError: KafkaTimeoutError: ..."


def test_a_first_start_that_finds_no_broker_still_exits_1_with_the_settings_to_check(tmp_path, monkeypatch, caplog):
    def away(cls, config, stop, metrics, **kwargs):
        raise UNABLE

    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(away))
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        code, _ = daemon_run._build_and_run_once(_config(tmp_path), threading.Event(), None, None, None)
    assert code == daemon_exits.EXIT_FAILED
    assert [x["event"] for x in _events(caplog.records)] == ["failed"]


def test_a_rebuild_that_fails_otherwise_still_ends_the_run(tmp_path, monkeypatch):
    def broken(cls, config, stop, metrics, **kwargs):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(broken))
    code, _ = daemon_run._build_and_run_once(_config(tmp_path), threading.Event(), None, None, DaemonMetrics())
    assert code == daemon_exits.EXIT_FAILED


def test_an_outage_through_several_rebuilds_ends_in_a_running_daemon_after_backed_off_waits(tmp_path, monkeypatch):
    """The run: a daemon starts over (its commit timed out), three rebuilds find no broker, the fourth runs."""
    builds, delays = [], []

    class Ran:
        def __init__(self, code):
            self.code = code
            self.metrics = DaemonMetrics()

        def run(self):
            return self.code

    def from_config(cls, config, stop, metrics, **kwargs):
        builds.append(metrics is not None)
        if len(builds) == 1:
            return Ran(daemon_exits.EXIT_RESET)
        if len(builds) <= 7:
            raise UNABLE
        return Ran(daemon_exits.EXIT_OK)

    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(from_config))
    monkeypatch.setattr(daemon_run, "_wait_before_rebuild", lambda stop, metrics, delay: delays.append(delay))
    assert daemon_run._build_and_run(_config(tmp_path), threading.Event(), None, None) == daemon_exits.EXIT_OK
    assert builds == [False] + [True] * 7
    # at once after the first start over, then the backoff, up to 5 s while no broker answers (r118 F7: 60 s)
    assert delays == [0.0, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_a_stop_during_an_outage_ends_the_rebuilds_cleanly(tmp_path, monkeypatch, caplog):
    stop = threading.Event()

    def away(cls, config, stop_event, metrics, **kwargs):
        stop.set()  # a SIGTERM while the build waited for a broker
        raise UNABLE

    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(away))
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        code, _ = daemon_run._build_and_run_once(_config(tmp_path), stop, None, None, DaemonMetrics())
    assert code == daemon_exits.EXIT_OK
    assert [x["event"] for x in _events(caplog.records)] == ["shutdown"]


# -- r118 F5: a first start that reached the broker, then met its restart, exited 1 with a traceback -------------
LOST = KafkaConnectionError("socket disconnected")  # (create_topics of the changelog, as r118 saw it)


def _reaching(errors):
    """A ``from_config`` whose builds reach the broker (the run's contact says so) and raise ``errors`` one by
    one (``UNABLE``: finds no broker; ``None``: a daemon whose run ends at once with exit 0)."""
    builds = []

    class Ran:
        metrics = DaemonMetrics()

        def run(self):
            return daemon_exits.EXIT_OK

    def from_config(cls, config, stop, metrics, contact=None, **kwargs):
        builds.append(metrics)
        error = errors[len(builds) - 1]
        contact = contact.again()  # as build_daemon does
        if error is not UNABLE:  # (an "Unable to bootstrap" is a contact that found none)
            contact.reached = contact.ever_reached = True  # BrokerContact.__call__ after admin_once_reached
        if error is not None:
            raise error
        return Ran()

    return from_config, builds


def test_a_first_start_that_loses_the_broker_it_reached_is_built_again(tmp_path, monkeypatch, caplog):
    from_config, builds = _reaching([LOST, UNABLE, UNABLE, None])
    delays, ready = [], []
    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(from_config))
    monkeypatch.setattr(daemon_run, "_wait_before_rebuild", lambda stop, metrics, delay: delays.append(delay))
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        code = daemon_run._build_and_run(_config(tmp_path), threading.Event(), ready.append, None)
    assert code == daemon_exits.EXIT_OK
    assert builds == [None, None, None, None]  # no daemon until the fourth: no metrics handed on
    assert delays == [0.0, 1.0, 2.0]  # the backoff of the rebuilds that find no broker
    assert len(ready) == 1  # on_ready: once, for the daemon that was built (not dropped with the failed starts)
    lines = [x for x in _events(caplog.records) if x["event"] == "broker_unreachable"]
    assert len(lines) == 3
    assert "lost the broker its start had reached" in lines[0]["detail"]
    assert lines[0]["error"] == str(LOST)
    # the later tries met no broker at all ("Unable to bootstrap"), and an earlier one of the run had reached it
    assert "if this lasts: no broker of kafka.bootstrap_servers" in lines[1]["detail"]


def test_a_first_start_that_never_reached_a_broker_still_exits_1_naming_the_settings(tmp_path, monkeypatch, caplog):
    from_config, builds = _reaching([UNABLE, None])
    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(from_config))
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        code = daemon_run._build_and_run(_config(tmp_path), threading.Event(), None, None)
    assert code == daemon_exits.EXIT_FAILED and len(builds) == 1
    (line,) = _events(caplog.records)
    assert line["event"] == "failed" and "check the address" in line["detail"]


def test_a_first_start_that_reached_the_broker_and_failed_otherwise_still_ends_the_run(tmp_path, monkeypatch):
    from_config, builds = _reaching([RuntimeError("a bug of ours"), None])
    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(from_config))
    assert daemon_run._build_and_run(_config(tmp_path), threading.Event(), None, None) == daemon_exits.EXIT_FAILED
    assert len(builds) == 1


def test_the_contact_waits_again_at_each_build_and_remembers_that_one_reached(monkeypatch):
    waits = []

    class Admin:
        def close(self):
            pass

    monkeypatch.setattr("connectors.kafka_bootstrap.admin_once_reached", lambda cfg, stop: waits.append(cfg) or Admin())
    contact = BrokerContact(object(), threading.Event())
    assert not contact.ever_reached
    contact(), contact()  # the first client of a build waits; the others find it reached
    assert len(waits) == 1 and contact.ever_reached
    contact.again()()
    assert len(waits) == 2 and contact.ever_reached


# -- F2 ---------------------------------------------------------------------------------------------------------
class _Writer:
    error = None

    def __init__(self, conn):
        self.conn = conn

    def put(self, message):
        self.conn.send(message)


class _Alive:
    def poll(self):
        return None


def _publisher(timeout_s: float):
    """A ProcessPublisher whose child takes the commit and never answers (a producer stuck in flush)."""
    ours, theirs = Pipe(duplex=True)
    parent = object.__new__(ProcessPublisher)
    parent._conn, parent._proc, parent._writer = ours, _Alive(), _Writer(ours)
    parent.commit_timeout_s, parent._committing, parent.sent = timeout_s, False, 0
    return parent, theirs


def test_a_commit_past_its_timeout_is_given_up_by_a_turn_that_does_not_wait():
    parent, child = _publisher(60.0)
    parent.start_commit([("events", 0, 7)], ("g", 1, "m", None))
    assert child.recv()[0] == "commit"
    assert parent.finish_commit(wait=False) is None  # under way, within its time: the loop goes on
    parent._commit_started -= 61.0  # a minute on, no answer, no new event to make a commit due
    with pytest.raises(TransactionAborted, match=r"did not answer commit within 60 s"):
        parent.finish_commit(wait=False)


def test_the_wait_for_a_commit_counts_from_its_start():
    parent, _child = _publisher(60.0)
    parent.start_commit([("events", 0, 7)], ("g", 1, "m", None))
    parent._commit_started -= 59.9  # the loop waits only now: 0.1 s of the minute is left, not a new minute
    with pytest.raises(TransactionAborted, match=r"within 60 s"):
        parent.finish_commit(wait=True)


# -- F3 ---------------------------------------------------------------------------------------------------------
class _Refusing:
    """A consumer whose poll meets a refused connection (the coordinator lookup of a broker restarting)."""

    def __init__(self):
        self.polls = 0

    def poll(self, timeout_ms, max_records):
        self.polls += 1
        raise KafkaConnectionError("KafkaConnectionError: 111 ECONNREFUSED")


def test_a_poll_that_meets_a_refused_connection_returns_nothing_and_says_so_once(monkeypatch, caplog):
    source = object.__new__(kafka_module.KafkaSource)
    # (an assigned partition: the poll waits poll_timeout_ms, not a join's longer wait)
    source.consumer, source.assigned, source._away_said = _Refusing(), {TopicPartition("e", 0)}, -float("inf")
    source.cfg = load_config_dict({"kafka": {"topics": ["e"], "predictions_topic": "p",
                                             "poll_timeout_ms": 1}}).kafka
    with caplog.at_level(logging.INFO, logger="stream_cl.kafka"):
        batches = [source.poll(100) for _ in range(3)]
    assert [b.items for b in batches] == [[], [], []] and source.consumer.polls == 3
    (line,) = _events(caplog.records)  # at most one line per BROKER_AWAY_SAY_S
    assert line["event"] == "broker_unreachable" and "ECONNREFUSED" in line["error"]


# -- a low finding: reasons said once -----------------------------------------------------------------------------
class _CommitRefused:
    """A transactional producer whose commit fails as r115 saw it (the group moved on while the broker froze)."""

    def __init__(self):
        self.aborted = 0

    def init_transactions(self):
        pass

    def begin_transaction(self):
        pass

    def flush(self, timeout=None):
        pass

    def send_offsets_to_transaction(self, offsets, group):
        from kafka.errors import CommitFailedError

        raise CommitFailedError("Transaction offset commit failed due to consumer group metadata mismatch")

    def abort_transaction(self, timeout_ms=None):
        self.aborted += 1


def test_a_fenced_commits_reason_names_its_error_once():
    from connectors.transaction import Fenced, TransactionalWriter

    writer = TransactionalWriter(_CommitRefused())
    with pytest.raises(Fenced) as raised:
        writer.commit([("events", 0, 7)], ("g", 3, "m", None))
    assert str(raised.value) == ("fenced: CommitFailedError: Transaction offset commit failed due to consumer "
                                 "group metadata mismatch")


# -- a low finding: a failed daemon's child aborts its transaction itself ------------------------------------------
class _Proc:
    def __init__(self):
        self.killed = False

    def poll(self):
        return 0 if self.killed else None

    def kill(self):
        self.killed = True

    def wait(self, timeout=None):
        return 0


class _Queued(_Writer):
    def stop(self):
        pass


def _child_publisher(**state):
    ours, theirs = Pipe(duplex=True)
    parent = object.__new__(ProcessPublisher)
    parent._conn, parent._proc, parent._writer = ours, _Proc(), _Queued(ours)
    parent.commit_timeout_s, parent._committing, parent._unanswered, parent.sent = 60.0, False, False, 0
    for k, v in state.items():
        setattr(parent, k, v)
    return parent, theirs


def test_an_abort_asks_the_child_to_abort_its_open_transaction_before_it_is_killed():
    """A daemon that exits 1 killed its publisher child at once: the open transaction then held every
    read_committed reader of the predictions until the broker's transaction timeout (up to ~70 s, r115)."""
    parent, child = _child_publisher()
    asked = []

    def serve():
        asked.append(child.recv())
        child.send(("ok", 0))  # (the child: writer.close() aborted the transaction)

    thread = threading.Thread(target=serve)
    thread.start()
    parent.abort()
    thread.join()
    assert asked == [("close",)] and parent._proc.killed


@pytest.mark.parametrize("state", [{"_unanswered": True}, {"_committing": True}])
def test_a_stuck_or_committing_child_is_killed_at_once(state):
    parent, child = _child_publisher(**state)
    parent.abort()
    assert parent._proc.killed
    with pytest.raises(EOFError):  # nothing asked of it: the pipe's end, closed
        child.recv()


# -- r118 F6: a rebuild whose publisher process found no broker -----------------------------------------------
class _StartFails:
    """The child's KafkaProducer, whose transactions cannot start with ``error``."""

    error: Exception = KafkaTimeoutError("Timeout waiting for init_transactions")

    def __init__(self, **options):
        pass

    def init_transactions(self):
        raise self.error

    def close(self, timeout=None):
        pass


@pytest.mark.parametrize(("error", "kind"), [
    (KafkaTimeoutError("Timeout waiting for init_transactions"), "unreachable"),
    (KafkaConnectionError("111 ECONNREFUSED"), "unreachable"),
    (KafkaError("[Error 53] TransactionalIdAuthorizationFailedError"), "error"),
])
def test_the_publisher_process_says_whether_its_start_found_no_broker(monkeypatch, error, kind):
    from connectors import publisher

    monkeypatch.setattr(_StartFails, "error", error)
    monkeypatch.setattr(publisher, "KafkaProducer", _StartFails)
    monkeypatch.setattr(publisher.signal, "signal", lambda *args: None)  # the child's own handlers, not pytest's
    monkeypatch.setattr("connectors.logs.setup_logging", lambda *args, **kwargs: None)
    ours, theirs = Pipe(duplex=True)
    ours.send(("start", {}, "predictions", "", "text", logging.WARNING))
    assert publisher._serve(theirs) == 1
    said, detail = ours.recv()
    assert said == kind and detail.startswith("cannot start the predictions producer: ")


@pytest.mark.parametrize("answer", [("unreachable", "cannot start the predictions producer: KafkaTimeoutError: x"), None])
def test_a_rebuild_whose_publisher_found_no_broker_is_built_again(tmp_path, monkeypatch, caplog, answer):
    """The child's "unreachable" answer, or none within its time: BrokerUnreachable, and the daemon is built again."""
    from connectors.publisher import BrokerUnreachable

    parent, child = _publisher(60.0)
    if answer is not None:
        child.send(answer)
    with pytest.raises(BrokerUnreachable) as raised:
        parent._reply(0.0, "start")

    def away(cls, config, stop, metrics, **kwargs):
        raise raised.value

    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(away))
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        code, _ = daemon_run._build_and_run_once(_config(tmp_path), threading.Event(), None, None, DaemonMetrics())
    assert code == daemon_exits.EXIT_BROKER_AWAY
    assert [x["event"] for x in _events(caplog.records)] == ["broker_unreachable"]


@pytest.mark.parametrize("detail", [
    "cannot start the predictions producer: TransactionalIdAuthorizationFailedError: [Error 53] denied",
    "cannot start the predictions producer: ValueError: a bug",
])
def test_a_rebuild_whose_publisher_failed_otherwise_ends_the_run(tmp_path, monkeypatch, detail):
    from connectors.sinks import DeliveryError

    def failed(cls, config, stop, metrics, **kwargs):
        raise DeliveryError(detail)

    monkeypatch.setattr(daemon_module.Daemon, "from_config", classmethod(failed))
    code, _ = daemon_run._build_and_run_once(_config(tmp_path), threading.Event(), None, None, DaemonMetrics())
    assert code == daemon_exits.EXIT_FAILED


def test_a_stop_after_a_rebuild_found_no_broker_is_the_clean_stop(tmp_path, monkeypatch, caplog):
    """Nothing was built, so nothing is lost: exit 0, not the failed stop of a daemon that had to start over."""
    stop = threading.Event()

    def away(config, stop_event, on_ready, server, metrics, changelog=None, checks=None, contact=None):
        stop.set()  # a SIGTERM just after the rebuild gave up
        return daemon_exits.EXIT_BROKER_AWAY, metrics or DaemonMetrics()

    monkeypatch.setattr(daemon_run, "_build_and_run_once", away)
    with caplog.at_level(logging.INFO, logger="stream_cl.daemon"):
        assert daemon_run._build_and_run(_config(tmp_path), stop, None, None) == daemon_exits.EXIT_OK
    assert [x["event"] for x in _events(caplog.records)] == ["shutdown"]
