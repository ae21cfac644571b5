"""A GET with a body on a keep-alive connection (review r139's left-out item).

The handler never reads a request's body, so the connection's next request was parsed from the body's
bytes: ``GET /healthz`` with ``Content-Length: 3`` and ``abc``, then ``GET /healthz``, answered the second
with 501 (``abcGET``). A request with a body is now answered and the connection closed.
"""

import socket

from prometheus_client import CollectorRegistry

from connectors.http import DaemonStatus, ObservabilityServer
from connectors.prometheus import register_metrics


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):  # until the server closes (or the timeout below raises)
        out += chunk
    return out


def test_a_get_with_a_body_is_answered_and_its_connection_closed():
    status = DaemonStatus(stall_timeout_s=5.0)
    registry = CollectorRegistry()
    register_metrics(registry, status.get_daemon)
    server = ObservabilityServer("127.0.0.1", 0, status, registry)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                         b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = _read_all(sock)
    finally:
        server.close()
    assert answer.startswith(b"HTTP/1.1 503 ")  # /healthz before a daemon is attached: starting
    assert b" 501 " not in answer and answer.count(b"HTTP/1.1 ") == 1, answer
