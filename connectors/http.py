"""The daemon's HTTP endpoints: ``/metrics``, ``/healthz``, ``/readyz``, ``/model``.

A stdlib :class:`~http.server.ThreadingHTTPServer` on a daemon thread, bound to
``[metrics] host:port`` (port 0 picks a free port, logged and written to the status
file as ``http_port``). It starts *before* the daemon is built, so probes get answers
while a large checkpoint is restored; :meth:`ObservabilityServer.attach` hands it the
daemon once it exists. Nothing here runs on the daemon's loop.

=========== ===================================================================================
``/metrics`` Prometheus text exposition of the registry (:mod:`connectors.prometheus`).
``/healthz`` 200 while the loop turns: its last iteration is at most ``stall_timeout_s`` old
             (an idle loop turns too: an idle turn lasts at most ``max(kafka.poll_timeout_ms, 3 s)``,
             the config's :func:`~stream_cl.config.longest_idle_turn_s`, which ``stall_timeout_s``
             must exceed by 2 s). 503 while starting (restoring), when stalled, and once stopped or
             failed.
``/readyz``  200 once the model is loaded (restored or new), the loop runs and partitions are
             assigned; 503 before, during a rebalance that left none, and while stopping.
``/model``   JSON: version, classes, features (count and first names), heads with their
             forgetting factors, checkpoint time and path, drift, need, replay.
=========== ===================================================================================

Health and readiness answer a small JSON body too (``{"status": ..., ...}``). A connection
that waits :data:`IDLE_TIMEOUT_S` on one read or write is closed; a client that goes away
before its answer (a scrape that timed out) is one DEBUG line (``http_client_gone``), never an
error or a traceback.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from .logs import log_event
from .prometheus import register_metrics, window_accuracy

__all__ = ["DaemonStatus", "IDLE_TIMEOUT_S", "ObservabilityServer", "describe_model", "serve"]

log = logging.getLogger("stream_cl.http")

FEATURE_NAMES_SHOWN = 20
# Seconds a connection may wait on one read or write (a request that does not come, an answer not read) before
# it is closed: an idle keep-alive or half-open connection would hold its handler thread for good. Above
# Prometheus' scrape timeout (10 s by default) and a kubelet probe's (1 s): a live client never waits that long
# on us; one that keeps a connection open between scrapes (Prometheus, every 15-60 s) reopens it when it finds it
# closed
IDLE_TIMEOUT_S = 30.0
# A client that went away before its answer was written, or between two requests of a keep-alive connection
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class DaemonStatus:
    """Health, readiness and the model description of the daemon attached (``None`` while starting).

    Reads ``daemon.metrics.state`` and ``daemon.metrics.heartbeat`` (``clock()`` time of
    the loop's last turn), whether ``daemon.source.assigned`` is non-empty, and whether
    ``daemon.stop`` is set (a stop asked for: not ready, before the loop's turn ends).
    """

    def __init__(self, stall_timeout_s: float, clock: Callable[[], float] = time.monotonic):
        self.stall_timeout_s = float(stall_timeout_s)
        self.clock = clock
        self.daemon = None

    def attach(self, daemon) -> None:
        """Answer for ``daemon`` from now on (built, or rebuilt after a start over)."""
        self.daemon = daemon

    def get_daemon(self):
        """The daemon attached (None while starting)."""
        return self.daemon

    def health(self) -> tuple[bool, dict]:
        """/healthz: whether the loop turned within ``stall_timeout_s``, and the JSON body that says why."""
        d = self.daemon
        if d is None:
            return False, {"status": "starting", "detail": "loading the model"}
        m = d.metrics
        state = m.state
        if state in ("stopped", "failed"):
            return False, {"status": state}
        heartbeat = getattr(m, "heartbeat", None)
        if heartbeat is None:  # built, the loop has not turned yet
            return False, {"status": "starting", "state": state, "detail": "the loop has not started"}
        age = max(self.clock() - heartbeat, 0.0)
        body = {"state": state, "last_loop_s": round(age, 3), "stall_timeout_s": self.stall_timeout_s}
        if age > self.stall_timeout_s:
            return False, {"status": "stalled", **body}
        return True, {"status": "ok", **body}

    def ready(self) -> tuple[bool, dict]:
        """/readyz: whether the daemon is ``running`` and holds a partition, and the JSON body that says why."""
        d = self.daemon
        if d is None:
            return False, {"status": "starting", "detail": "loading the model"}
        m = d.metrics
        source = getattr(d, "source", None)
        n_assigned = len(source.assigned) if source is not None else 0  # len() of a set: atomic
        body = {"state": m.state, "partitions": n_assigned}
        if m.state != "running":
            return False, {"status": "not_ready", **body, "detail": f"daemon {m.state}"}
        stop = getattr(d, "stop", None)  # set by SIGTERM's handler at once; the loop says "stopping" only after its turn
        if stop is not None and stop.is_set():  # (a batch, a fold, a poll held by a rebalance: seconds to minutes)
            return False, {"status": "not_ready", **body, "detail": "stop requested: finishing the batch in flight"}
        if not n_assigned:
            return False, {"status": "not_ready", **body, "detail": "no partitions assigned"}
        return True, {"status": "ready", **body}

    def model(self) -> dict:
        """/model: :func:`describe_model` of the daemon attached (``{"status": "starting"}`` before)."""
        d = self.daemon
        if d is None:
            return {"status": "starting"}
        return describe_model(d)


def describe_model(daemon) -> dict:
    """The served model as a JSON-ready dict (``/model``).

    ``version`` is the sequence number of the last checkpoint written or restored (0 =
    none yet): the served model is that checkpoint plus the events learned since.
    ``events`` holds this process's counts by outcome (as in the status file).
    """
    m = daemon.metrics
    learner = getattr(daemon, "learner", None)

    def read(fn, default=None):
        try:
            return fn()
        except Exception:
            return default

    status = read(lambda: learner.status())  # stream_cl.status.LearnerStatus, None while unreadable
    classes = status.classes if status is not None else []
    names = status.features if status is not None else []
    heads = []
    for i, h in enumerate(status.heads if status is not None else []):
        head = {"index": i, "forgetting": h.forgetting}
        if h.base_forgetting is not None:
            head["base_forgetting"] = h.base_forgetting
        if h.view is not None:
            head["view"] = h.view
        if h.weight is not None:
            head["weight"] = h.weight
        heads.append(head)
    checkpoint_at = m.checkpoint_at
    out = {
        "version": m.checkpoint_seq,
        "kind": status.kind if status is not None else (type(learner).__name__ if learner is not None else None),
        "classes": [_plain(c) for c in classes],
        "n_classes": len(classes),
        "features": len(names),
        "feature_names": [str(n) for n in names[:FEATURE_NAMES_SHOWN]],
        "heads": heads,
        **({"sgd_weight": status.sgd_weight} if status is not None and status.sgd_weight is not None else {}),
        "checkpoint": {
            "seq": m.checkpoint_seq,
            "path": getattr(m, "checkpoint_path", "") or m.restored_from or None,
            "time": _iso(checkpoint_at) if checkpoint_at is not None else None,
            "unix": checkpoint_at,
            "age_s": None if checkpoint_at is None else round(max(time.time() - checkpoint_at, 0.0), 3),
            "restored_from": m.restored_from or None,
        },
        "events": {k: v for k, v in dict(m.events).items() if v},
        "accuracy": window_accuracy(getattr(getattr(daemon, "step", None), "stats", None)),
        "state": m.state,
    }
    tasks = getattr(m, "tasks", None)
    if tasks is not None:
        out["task_accuracy"] = tasks.snapshot()
    if status is not None and status.drift is not None:
        d = status.drift
        out["drift"] = {"alarms": int(d.alarms), "by": d.counts,
                        "recent": [{k: _plain(v) for k, v in a.items()} for a in d.recent]}
    if status is not None:
        for key, value in (("need", status.need), ("replay_samples", status.replay_samples),
                           ("replay_bytes", status.replay_bytes)):
            if value is not None:
                out[key] = _plain(value)
        if status.learning_rates is not None:
            out["learning_rates"] = [float(r) for r in status.learning_rates]
    return out


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def _plain(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    item = getattr(v, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _plain(item())
        except (TypeError, ValueError):
            pass
    return str(v)


def _json(code: int, body: dict) -> tuple[int, bytes, str]:
    return code, json.dumps(body, default=str).encode(), "application/json"


def _peer(client_address) -> str:
    return f"{client_address[0]}:{client_address[1]}" if isinstance(client_address, tuple) else str(client_address)


def _client_gone(client_address, error: BaseException, path: str | None = None) -> None:
    """One DEBUG line for a client that went away: ordinary (a scrape or a probe that timed out, a client
    killed), and most likely under load, so never an ERROR that alerting would count, nor a traceback."""
    where = {"path": path} if path else {}  # none: between two requests of a keep-alive connection
    log_event(log, "http_client_gone", level=logging.DEBUG, client=_peer(client_address), **where,
              detail=f"{type(error).__name__}: {error}")


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout_s  # StreamRequestHandler.setup puts it on the connection
        super().setup()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if self.headers.get("Content-Length", "0").strip() not in ("", "0") or "Transfer-Encoding" in self.headers:
            # a body is never read: kept open, the connection's next request was parsed from it (a 501 for
            # "abcGET ..."). Answered, then closed (review r139)
            self.close_connection = True
        try:
            answer = self._answer(path)
        except Exception as e:  # never kill the server thread; say what failed
            log.exception("HTTP %s failed", path)
            answer = _json(500, {"error": f"{type(e).__name__}: {e}"})
        try:
            self._send(*answer)
        except _CLIENT_GONE as e:  # nothing to answer to (a 500 would fail the same way)
            self.close_connection = True
            _client_gone(self.client_address, e, path)

    def _answer(self, path: str) -> tuple[int, bytes, str]:
        """The status code, body and content type of ``path``."""
        owner = self.server.owner
        if path == "/metrics":
            return 200, generate_latest(owner.registry), CONTENT_TYPE_LATEST
        if path == "/healthz":
            ok, body = owner.status.health()
            return _json(200 if ok else 503, body)
        if path == "/readyz":
            ok, body = owner.status.ready()
            return _json(200 if ok else 503, body)
        if path == "/model":
            return _json(200, owner.status.model())
        return _json(404, {"error": f"no such endpoint {path!r}", "endpoints": ["/metrics", "/healthz", "/readyz", "/model"]})

    def _send(self, code: int, payload: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_HEAD = do_GET

    def log_message(self, format, *args) -> None:  # one line per request would flood the logs
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "ObservabilityServer"
    idle_timeout_s: float = IDLE_TIMEOUT_S

    def handle_error(self, request, client_address) -> None:
        """An error outside ``do_GET`` (a keep-alive connection reset or broken between requests): one log
        line, never socketserver's default, a raw traceback on stderr outside the log format."""
        error = sys.exc_info()[1]
        if isinstance(error, _CLIENT_GONE):
            _client_gone(client_address, error)
        else:
            log.exception("HTTP connection from %s failed", _peer(client_address))


class _Server6(_Server):
    """An IPv6 host (``"::"``: every address; on Linux IPv4 ones too, as dual stack): an IPv6-only
    cluster's probes cannot reach ``0.0.0.0``."""

    address_family = socket.AF_INET6


class ObservabilityServer:
    """The HTTP endpoints on a daemon thread; :meth:`close` stops them.

    ``status`` answers health, readiness and ``/model``; ``registry`` is exposed on
    ``/metrics``. Binding happens in the constructor (an ``OSError`` if the port is taken).
    """

    def __init__(self, host: str, port: int, status: DaemonStatus, registry: CollectorRegistry,
                 idle_timeout_s: float = IDLE_TIMEOUT_S):
        self.status = status
        self.registry = registry
        self._httpd = (_Server6 if ":" in host else _Server)((host, port), _Handler)
        self._httpd.owner = self
        self._httpd.idle_timeout_s = idle_timeout_s
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="stream-cl-http", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The server's base URL, with a loopback address where it listens on all of them."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def attach(self, daemon) -> None:
        """Serve ``daemon`` from now on (and tell it the port, for its status file)."""
        if hasattr(daemon, "metrics"):
            daemon.metrics.http_port = self.port
        self.status.attach(daemon)

    def close(self) -> None:
        """Stop serving and close the socket (waits up to 5 s for the serving thread)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve(cfg) -> ObservabilityServer:
    """Start the endpoints of ``[metrics]`` (a :class:`stream_cl.config.MetricsConfig`), before the daemon exists."""
    status = DaemonStatus(cfg.stall_timeout_s)
    registry = CollectorRegistry(auto_describe=True)
    register_metrics(registry, status.get_daemon)
    server = ObservabilityServer(cfg.host, cfg.port, status, registry)
    log_event(log, "metrics_listening", host=cfg.host, port=server.port, url=server.url,
              endpoints=["/metrics", "/healthz", "/readyz", "/model"])
    return server
