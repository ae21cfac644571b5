"""Structured logs: JSON lines for machines, plain text for people.

Two calls make up the whole API:

* :func:`setup_logging` once at process start (the CLI / daemon entry point, never a
  library module). With ``fmt="auto"`` it writes JSON lines when stderr is not a
  terminal (containers, systemd, Kubernetes: the log collector parses them) and plain
  text on a terminal.
* :func:`log_event` for *lifecycle* events -- one line each, never one per data event::

      log = logging.getLogger("stream_cl.daemon")
      log_event(log, "start", group="stream-cl", topics=["events"])
      log_event(log, "assignment", partitions=["events-0", "events-1"])
      log_event(log, "checkpoint", seq=12, records=120_000, seconds=0.41, bytes=3_200_000)
      log_event(log, "drift_alarm", detector="adwin", response="forget", t=53_211)
      log_event(log, "shutdown", reason="SIGTERM", records=130_002)
      log_event(log, "shutdown_timeout", level=logging.ERROR, timeout_s=30.0)

A JSON line is one object: ``{"ts", "level", "logger", "event", ...fields}``. ``ts`` is
UTC ISO 8601 with milliseconds; ``event`` is the event name for :func:`log_event` and
the rendered message for ordinary ``log.info("...")`` calls (so existing log calls keep
working, with no fields); an exception adds ``"exc"`` (the traceback text). Values
that JSON cannot hold are written with ``str()``; NaN and infinities become ``null``.

>>> import io
>>> buf = io.StringIO()
>>> _ = setup_logging("INFO", fmt="json", stream=buf)
>>> log_event("stream_cl.daemon", "checkpoint", seq=3, seconds=0.25)
>>> line = json.loads(buf.getvalue())
>>> line["level"], line["logger"], line["event"], line["seq"], line["seconds"]
('INFO', 'stream_cl.daemon', 'checkpoint', 3, 0.25)
>>> teardown_logging()
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import IO, Any, Literal

__all__ = ["JsonFormatter", "ListenerTiming", "Redact", "StartupQuiet", "TextFormatter", "hide_secret",
           "log_event", "named", "setup_logging", "startup_done", "teardown_logging"]

# The events the daemon logs are listed in docs/observability.md (tests/unit/test_log_events_documented.py).

RESERVED = ("ts", "level", "logger", "event", "exc")
_FIELDS_ATTR = "stream_cl_fields"  # LogRecord attribute carrying log_event's fields
_HANDLER_FLAG = "_stream_cl_handler"
_PROCESS_FLAG = "_stream_cl_process"  # marks the process's Redact on the root logger (_process_redact)
_PROCESS_LOCK = threading.Lock()  # two first calls at once must not make two of them

Format = Literal["auto", "json", "text"]

# Values never written to the log (the configured passwords) are held by a Redact filter: see hide_secret()
_MIN_SECRET = 4  # a shorter value would mask ordinary words and numbers in every line
REDACTED = "<redacted>"


def setup_logging(level: int | str = "INFO", fmt: Format = "auto", stream: IO[str] | None = None,
                  quiet: tuple[str, ...] = ("kafka",), hold_until_started: bool = False) -> logging.Handler:
    """Route every logger to one handler on ``stream`` (default stderr) and return it.

    ``fmt``: ``"json"`` (JSON lines), ``"text"`` (plain), or ``"auto"`` (text when
    ``stream`` is a terminal, JSON otherwise). ``level``: a name (``"INFO"``) or number.
    Loggers named in ``quiet`` (chatty client libraries) are held at WARNING or above
    unless ``level`` is DEBUG. With ``hold_until_started`` their lines are dropped (counted)
    until :func:`startup_done` (see :class:`StartupQuiet`). Credentials are kept out of
    every line, at every level (see :class:`Redact`). Calling it again replaces
    the handler it installed before (and restores the levels first); handlers installed
    by others are left alone.
    """
    stream = sys.stderr if stream is None else stream
    if fmt not in ("auto", "json", "text"):
        raise ValueError(f"log format {fmt!r}: use 'auto', 'json' or 'text'")
    if isinstance(level, str):
        numeric = logging.getLevelName(level.upper())
        if not isinstance(numeric, int):
            raise ValueError(f"log level {level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        level = numeric
    if fmt == "auto":
        fmt = "text" if _isatty(stream) else "json"
    teardown_logging()
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    # What teardown_logging() puts back: the levels this call changes.
    saved = {"": root.level, **{name: logging.getLogger(name).level for name in quiet}}
    setattr(handler, _HANDLER_FLAG, saved)
    # the process's filter: what hide_secret() was given before this call is masked too. First: StartupQuiet
    # keeps a message it holds back, which must be clean too
    handler.addFilter(_process_redact())
    handler.addFilter(ListenerTiming())
    if hold_until_started:
        handler.addFilter(StartupQuiet(quiet))
    root.addHandler(handler)
    root.setLevel(level)
    for name in quiet:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))
    return handler


def current_format() -> Format:
    """The format of the handler :func:`setup_logging` installed (``"auto"`` if none):
    child processes log in their parent's format."""
    for h in logging.getLogger().handlers:
        if getattr(h, _HANDLER_FLAG, None) is not None:
            return "json" if isinstance(h.formatter, JsonFormatter) else "text"
    return "auto"


def hide_secret(*values: object) -> None:
    """Never log these values (the passwords of the config, once read): :class:`Redact` writes
    ``<redacted>`` in their place. ``None``, non-strings and values under 4 characters are
    ignored (masking those would garble every line; the lines that carry credentials are
    dropped whatever their length). For the whole process: a secret stays one, in the
    handler :func:`setup_logging` installs whether it is called before or after this, and
    again after :func:`teardown_logging` (the values are held by the process's
    :class:`Redact`, which every such handler uses)."""
    _process_redact().hide(*values)


def _process_redact() -> Redact:
    """The :class:`Redact` that holds the process's secrets, made at the first call. It is kept on
    the root logger, as the process's logging configuration is (it masks the lines logged there
    directly too): a secret hidden before :func:`setup_logging` (the publisher child learns its
    passwords first) or before a new setup must be masked by the handler the setup installs."""
    root = logging.getLogger()
    with _PROCESS_LOCK:
        for f in root.filters:
            if isinstance(f, Redact) and getattr(f, _PROCESS_FLAG, False):
                return f
        redact = Redact()
        setattr(redact, _PROCESS_FLAG, True)
        root.addFilter(redact)
        return redact


class Redact(logging.Filter):
    """Keeps credentials out of the log, at every level (:func:`setup_logging` installs it).

    kafka-python at DEBUG (``--kafka-log-level DEBUG``) logs the repr of every request it
    sends and every response (``kafka.net.connection``, ``kafka.protocol.parser``) and the
    raw bytes it sends (``kafka.protocol.parser``): a SASL PLAIN authentication request
    holds the username and the password in clear, an OAUTHBEARER one the token. Dropped:
    a ``kafka*`` logger's lines that mention ``SaslAuthenticate`` or ``SaslBytes`` (the
    SASL exchange, both ways), and ``kafka.protocol.parser``'s ``Send:`` byte dumps (the
    request's own line, kept, says what was sent); a ``kafka*`` logger's lines that name a
    credential's setting (the clients' configuration dumps: ``Starting KafkaAdminClient with
    configuration`` prints the whole dict at DEBUG, each value as its repr). Kept: the line
    naming the principal that authenticated (a user name is no secret; an ACL names it too).
    Masked: this filter's ``secrets`` (given here or to :meth:`hide`), as written and as a repr
    or JSON string writes them (a backslash doubled), in any logger's message and
    :func:`log_event` fields. Each filter holds its own; the one :func:`setup_logging` installs
    holds the values given to :func:`hide_secret`.
    """

    SASL = ("SaslAuthenticate", "SaslBytes")
    # a library line naming one of these shows credentials (review r98: the admin client's dump held
    # the password as its repr, which masking missed for a backslash in it, and the username)
    CREDENTIALS = ("sasl_plain_password", "sasl_plain_username", "ssl_password", "sasl_oauth_token")

    def __init__(self, secrets: Iterable[object] = ()):
        super().__init__()
        self.secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self.hide(*secrets)

    def hide(self, *values: object) -> None:
        """Mask these values from now on; ``None``, non-strings and values under 4 characters are
        ignored (see :func:`hide_secret`). The set is replaced whole, never changed in place: a
        line being masked on another thread meanwhile goes on with the set it started with."""
        found = {v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET}
        found |= {form for v in found for form in (repr(v)[1:-1], json.dumps(v)[1:-1])}  # as a dict's repr shows it
        if found:
            with self._lock:  # two threads hiding at once: both values are kept
                self.secrets = self.secrets | found

    def mask(self, text: str) -> str:
        """``text`` with every secret replaced (the same object when none occurs). The longest first: a
        secret inside another (a key password ``changeit``, a SASL password ``changeit-sasl-42``) masked
        first left the rest of the longer one in the line, as the set's order chose (review r153)."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Hide the secrets in ``record``; kafka-python's raw request dumps are dropped, every other record kept."""
        library = record.name.startswith("kafka")
        if not library and not self.secrets:
            return True
        if library and record.name == "kafka.protocol.parser" and " Send: " in str(record.msg):
            return False  # raw bytes: several requests at once, a SASL one among them as likely as not
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 -- a malformed log call: the handler reports it, as without this filter
            return True
        if library and any(name in message for name in self.SASL + self.CREDENTIALS):
            return False
        if self.secrets:
            masked = self.mask(message)
            if masked is not message:
                record.msg, record.args = masked, None
            fields = getattr(record, _FIELDS_ATTR, None)
            if fields:
                setattr(record, _FIELDS_ATTR, {k: self._masked(v) for k, v in fields.items()})
            if record.exc_info:  # a traceback's text (an error's message may hold a secret): masked as text
                text = _TRACEBACKS.formatException(record.exc_info)
                masked = self.mask(text)
                if masked is not text:
                    record.exc_info, record.exc_text = None, masked
        return True

    def _masked(self, value):
        """A field with every secret masked, in nested lists, tuples and dicts too (review r74 F3)."""
        if isinstance(value, str):
            return self.mask(value)
        if type(value) in (list, tuple):
            return type(value)(self._masked(v) for v in value)
        if isinstance(value, dict):
            return {k: self._masked(v) for k, v in value.items()}
        return value


_TRACEBACKS = logging.Formatter()  # formats a record's exception for Redact, as the handlers' formatters do


class ListenerTiming(logging.Filter):
    """kafka-python's lines about the daemon's rebalance listener. Its warning of a listener over 1 s comes
    without its advice: it says that the listener blocks the event loop and heartbeats, and to move its work
    to a worker thread, which is where the daemon's work runs (:func:`connectors.kafka_assignment.
    off_the_io_thread`) while the heartbeats go on (review r112); the line and its duration stay. Its
    traceback of a listener's error that the daemon's own ``failed`` line says (an error whose class sets
    ``said_by_the_daemon``) is dropped (review r122: the remedy came after a traceback of it).

    >>> r = logging.LogRecord("kafka.coordinator.consumer", logging.WARNING, "", 0, ADVICE_FORMAT,
    ...                       ("AssignmentListener", "on_partitions_revoked", "g", 9.6), None)
    >>> ListenerTiming().filter(r), r.getMessage()[-69:]
    (True, 'took 9.600s (the daemon work, on a worker thread: heartbeats went on)')
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Reword kafka-python's slow-listener advice (the work runs off its IO thread); drop its traceback of an
        error the daemon says itself; keep every other record."""
        if record.exc_info and getattr(record.exc_info[1], "said_by_the_daemon", False):
            return False
        if record.name == "kafka.coordinator.consumer" and record.msg == ADVICE_FORMAT:
            record.msg = ("Rebalance listener %s.%s for group %s took %.3fs (the daemon work, on a worker thread: "
                          "heartbeats went on)")
        return True


# kafka-python 3.0.12's format (coordinator/consumer.py, _invoke_rebalance_listener_async); another release's
# wording is left as it is
ADVICE_FORMAT = ("Rebalance listener %s.%s for group %s took %.3fs. Sync listeners block the consumer event loop "
                 "(including heartbeats) -- consider AsyncConsumerRebalanceListener or wrap blocking work in a "
                 "worker thread.")


def named(error: BaseException) -> str:
    """``"Type: message"``, once: kafka-python's errors begin their message with their type already
    ("CommitFailedError: CommitFailedError: ..." in a start over's reason, review r115), as do the
    ``error`` fields of ``broker_unreachable`` lines.

    >>> from kafka.errors import CommitFailedError
    >>> named(CommitFailedError("metadata mismatch")), named(ValueError("bad"))
    ('CommitFailedError: metadata mismatch', 'ValueError: bad')
    """
    text, name = str(error), type(error).__name__
    return text if text.startswith(name) else f"{name}: {text}"


class StartupQuiet(logging.Filter):
    """Holds back a client library's lines until the process has started.

    While kafka-python bootstraps, joins the group and fetches metadata it logs
    transient errors and warnings ("Topic events not found in cluster metadata",
    refused connections it retries) that say nothing about the outcome: a start-up that
    succeeds, or one that fails with the daemon's own line naming the setting to fix.
    Until :func:`startup_done` those lines are dropped (counted in ``held``); the last
    telling error is kept in ``last_error`` for the daemon's message. A library logger
    set to DEBUG (``--kafka-log-level DEBUG``) is shown everything, always.
    """

    GENERIC = ("socket disconnected", "Bootstrap failed", "Unable to bootstrap")

    def __init__(self, prefixes: tuple[str, ...] = ("kafka",)):
        super().__init__()
        self.prefixes = tuple(prefixes)
        self.active = True
        self.held = 0
        self.last_error = ""

    def filter(self, record: logging.LogRecord) -> bool:
        """While active, drop the library's lines unless its logger is at DEBUG, counting them and keeping the last
        telling error."""
        if not self.active or not record.name.startswith(self.prefixes):
            return True
        if logging.getLogger(record.name).getEffectiveLevel() <= logging.DEBUG:
            return True
        self.held += 1
        if record.levelno >= logging.ERROR:
            message = record.getMessage()
            if not any(g in message for g in self.GENERIC):
                self.last_error = message
        return False


def startup_done() -> StartupQuiet | None:
    """End the start-up hold of :func:`setup_logging`'s handler (if any); returns its filter."""
    for h in logging.getLogger().handlers:
        if getattr(h, _HANDLER_FLAG, None) is not None:
            for f in h.filters:
                if isinstance(f, StartupQuiet):
                    f.active = False
                    return f
    return None


def teardown_logging() -> None:
    """Remove the handler :func:`setup_logging` installed and restore the levels it set."""
    root = logging.getLogger()
    for h in list(root.handlers):
        saved = getattr(h, _HANDLER_FLAG, None)
        if saved is not None:
            root.removeHandler(h)
            h.close()
            for name, level in saved.items():
                logging.getLogger(name or None).setLevel(level)


def log_event(logger: logging.Logger | str, event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one lifecycle ``event`` with ``fields`` as one structured line.

    ``logger`` is a :class:`logging.Logger` or its name. The field names ``ts``,
    ``level``, ``logger``, ``event`` and ``exc`` are reserved (a ValueError names the
    clash). Use it for lifecycle events only (start, assignment, checkpoint,
    drift_alarm, shutdown, ...), never once per data event: per-event facts belong in
    metrics, predictions and dead letters.
    """
    clash = [k for k in fields if k in RESERVED]
    if clash:
        raise ValueError(f"log_event({event!r}): field name(s) {clash} are reserved; rename them")
    if isinstance(logger, str):
        logger = logging.getLogger(logger)
    if logger.isEnabledFor(level):
        logger.log(level, "%s", event, extra={_FIELDS_ATTR: fields}, stacklevel=2)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    """A JSON-safe copy: NaN/inf -> None, containers recursively, others via str()."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    try:  # numpy scalars and the like
        item = value.item()
        if isinstance(item, (bool, int, float, str)):
            return _plain(item)
    except (AttributeError, ValueError, TypeError):
        pass
    return str(value)


def _utc(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "event", ...fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON object: ``ts``, ``level``, ``logger``, ``event``, the event's fields, and ``exc`` where there is
        one."""
        out = {"ts": _utc(record.created), "level": record.levelname, "logger": record.name,
               "event": record.getMessage()}
        for k, v in getattr(record, _FIELDS_ATTR, {}).items():
            out[k] = _plain(v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, allow_nan=False)


class TextFormatter(logging.Formatter):
    """``2024-05-01 12:00:00 INFO stream_cl.daemon: checkpoint seq=3 seconds=0.25``."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%d %H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The standard line, then the event's fields as ``key=value``."""
        line = super().formatMessage(record)
        fields = getattr(record, _FIELDS_ATTR, {})
        if fields:
            line += " " + " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
        return line


def _text_value(v: Any) -> str:
    v = _plain(v)
    if isinstance(v, str) and v and not any(c.isspace() or c in '"=' for c in v):
        return v
    return json.dumps(v, ensure_ascii=False)
