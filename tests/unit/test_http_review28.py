"""connectors/http.py (review r28, F1): a client that goes away is one DEBUG line, never an ERROR nor a raw
traceback on stderr, and a connection that waits too long on a read is closed.

Synchronisation is by events: the learner's ``status()`` blocks until the client has gone, and each test waits
for the server's log line (or for the server to close the connection), each with a bound that only a failure
reaches.
"""

from __future__ import annotations

import inspect
import json
import logging
import socket
import struct
import threading
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from connectors.daemon import DaemonMetrics
from connectors.http import IDLE_TIMEOUT_S, DaemonStatus, ObservabilityServer
from connectors.prometheus import register_metrics
from stream_cl.status import HeadStatus, LearnerStatus

WAIT_S = 10.0  # only a failure waits this long


class Recorder(logging.Handler):
    """The records of ``stream_cl.http``; ``seen`` is set at the first one."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.seen.set()


@pytest.fixture
def recorder():
    logger = logging.getLogger("stream_cl.http")
    handler, level = Recorder(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def a_daemon(status) -> SimpleNamespace:
    m = DaemonMetrics()
    m.state = "running"
    m.beat()
    return SimpleNamespace(metrics=m, learner=SimpleNamespace(status=status), source=SimpleNamespace(assigned=set()))


def snapshot() -> LearnerStatus:
    return LearnerStatus(kind="OnlineContinualLearner", classes=["a", "b"], features=["f0"],
                         heads=[HeadStatus(1.0, 1.0, "all", 1.0)])


def start(status, idle_timeout_s: float = IDLE_TIMEOUT_S) -> ObservabilityServer:
    probes = DaemonStatus(stall_timeout_s=60.0)
    registry = CollectorRegistry(auto_describe=True)
    register_metrics(registry, probes.get_daemon)
    server = ObservabilityServer("127.0.0.1", 0, probes, registry, idle_timeout_s=idle_timeout_s)
    server.attach(a_daemon(status))
    return server


def reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0): a client killed, or a proxy that dropped the flow."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_answer(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 answer (headers and a Content-Length body) from a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before its answer"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=WAIT_S) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_a_scrape_abandoned_mid_answer_is_one_debug_line_and_no_traceback(recorder, capsys):
    # review r28 F1: an ERROR "HTTP /metrics failed" with its traceback, then a 500 tried on the dead socket,
    # whose error socketserver printed to stderr as ~30 raw lines outside the JSON log format
    collecting, client_gone = threading.Event(), threading.Event()

    def status():  # a learner busy in the loop: the scrape waits for its snapshot
        collecting.set()
        assert client_gone.wait(WAIT_S)
        return snapshot()

    server = start(status)
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert collecting.wait(WAIT_S)
        reset(sock)  # the scraper timed out and went
        client_gone.set()
        assert recorder.seen.wait(WAIT_S), "nothing logged for the abandoned scrape"
        record = recorder.records[0]
        assert (record.levelno, record.getMessage(), record.exc_info) == (logging.DEBUG, "http_client_gone", None)
        code, body = get(server.url + "/healthz")  # the server goes on
        assert code == 200 and json.loads(body)["status"] == "ok"
    finally:
        server.close()
    assert [r.getMessage() for r in recorder.records] == ["http_client_gone"]
    assert "Traceback" not in capsys.readouterr().err


def test_an_idle_keep_alive_connection_reset_is_one_debug_line_and_no_traceback(recorder, capsys):
    # review r28 F1: after a complete answer, an RST on the idle connection reached socketserver's
    # handle_error, which printed the ConnectionResetError's traceback to stderr
    server = start(snapshot)
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_answer(sock).startswith(b"HTTP/1.1 200")
        reset(sock)
        assert recorder.seen.wait(WAIT_S), "nothing logged for the reset connection"
    finally:
        server.close()
    [record] = recorder.records
    assert (record.levelno, record.getMessage(), record.exc_info) == (logging.DEBUG, "http_client_gone", None)
    assert "ConnectionResetError" in record.stream_cl_fields["detail"]
    assert "Traceback" not in capsys.readouterr().err


def test_a_connection_that_sends_nothing_is_closed_after_the_idle_timeout(recorder):
    # review r28 F1: with no timeout an idle (or half-open) connection held its handler thread for good
    server = start(snapshot, idle_timeout_s=0.2)
    try:
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S)
        assert idle.recv(1) == b""  # the server closed it (a client-side timeout would raise instead)
        kept = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_answer(kept).startswith(b"HTTP/1.1 200")
        assert kept.recv(1) == b""  # idle after a complete answer: closed too
        idle.close()
        kept.close()
    finally:
        server.close()
    assert not [r for r in recorder.records if r.levelno >= logging.INFO]  # a timeout is no error either


def test_the_default_idle_timeout_is_the_documented_30_s():
    assert IDLE_TIMEOUT_S == 30.0
    assert inspect.signature(ObservabilityServer).parameters["idle_timeout_s"].default == IDLE_TIMEOUT_S


def test_an_answer_that_fails_is_still_a_500_and_one_error_line(recorder):
    def status():
        raise RuntimeError("snapshot failed")

    server = start(status)
    server.status.model = status  # /model reads the learner directly: its failure is the handler's
    try:
        code, body = get(server.url + "/model")
    finally:
        server.close()
    assert code == 500 and json.loads(body) == {"error": "RuntimeError: snapshot failed"}
    [record] = recorder.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
