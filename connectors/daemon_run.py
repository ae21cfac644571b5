"""A Kafka daemon's run: build a daemon, run it, and build it again, in the same process, after a start over.

:func:`run_daemon` is the run: its signal handlers (:mod:`connectors.daemon_signals`) and its
``[metrics]`` server come first, then it builds a :class:`~connectors.daemon.Daemon` and runs its loop.
A daemon fenced, or whose partitions were lost, returns ``EXIT_RESET`` and is built again at once, or
after a wait (:data:`RESET_DELAY_S`) when the one rebuilt last time had to start over too without
committing anything; a rebuild that finds no broker is built again after a shorter one
(:data:`BROKER_AWAY_DELAY_S`). Every build of a run shares its changelog, its mapping checks and its
first contact with a broker. A start that builds no daemon ends the run with its closing line here;
the exit codes and the ``failed`` lines shared with the loop are :mod:`connectors.daemon_exits`'.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
import time
from collections.abc import Callable

from stream_cl.checkpoint_format import CheckpointError
from stream_cl.config import Config, ConfigError
from stream_cl.mapping_check import MappingChecks

from .authorisation import not_authorised
from .daemon import Daemon, log_mapping_warnings
from .daemon_build import BrokerContact, RunChangelog
from .daemon_exits import (EXIT_BROKER_AWAY, EXIT_FAILED, EXIT_OK, EXIT_RESET, config_failed,
                           not_authorised_failed)
from .daemon_signals import install_signal_handlers
from .logs import log_event, named, startup_done
from .status import DaemonMetrics

__all__ = ["run_daemon"]

log = logging.getLogger("stream_cl.daemon")

# a daemon rebuilt after a start over that must start over again without having committed anything (the
# same failure again, likely) is rebuilt after a wait: 1 s, doubling up to 60 s, so a member that cannot
# commit does not hammer the broker with a new producer, a rejoin and a re-learn every second or two
RESET_DELAY_S = (1.0, 60.0)
# rebuilds that find no broker wait less (from 1 s, doubling up to this): each waits up to
# kafka.bootstrap_timeout_ms for one anyway, and a member back up to 60 s after its broker came back
# lengthened every outage (review r118 F7)
BROKER_AWAY_DELAY_S = 5.0
# a daemon rebuilt in the same process (a start over) restores its checkpoint and catches up with the
# changelog as a first start does; its heartbeat goes on meanwhile for up to this long, the start-up
# budget that deploy/k8s gives the first start (its startupProbe: 30 x 10 s), then /healthz says stalled
REBUILD_ALIVE_S = 300.0
REBUILD_BEAT_S = 1.0


def run_daemon(config: Config, stop_event: threading.Event | None = None,
               on_ready: Callable[[Daemon], None] | None = None) -> int:
    """Run the Kafka daemon until stopped; returns the exit code (0 = clean stop).

    In the main thread, SIGTERM and SIGINT request a clean stop (a second one, or a
    stop slower than ``kafka.shutdown_timeout_s``, exits the process at once with 1).
    ``stop_event`` stops it from another thread. ``on_ready(daemon)`` is called once the
    daemon is built (checkpoint restored, consumer subscribed), before its loop starts:
    e.g. to serve ``daemon.metrics``.

    With ``[metrics] enabled`` (the default) the HTTP endpoints start first, so the probes
    answer (503) while the checkpoint is restored, and stop when this returns.
    """
    stop = stop_event or threading.Event()
    # before the warm-up (seconds): a signal during it, or while a daemon is built or rebuilt, is a clean
    # stop, never left to the default handlers (death by SIGTERM, a KeyboardInterrupt traceback)
    restore = install_signal_handlers(stop, config.kafka.shutdown_timeout_s)
    try:
        return _serve_and_run(config, stop, on_ready)
    finally:
        restore()


def _serve_and_run(config: Config, stop: threading.Event, on_ready) -> int:
    """:func:`run_daemon`'s work, its signal handlers installed: warm up, serve ``[metrics]``, build and run."""
    from stream_cl.runtime import set_threads, warm_up

    if not stop.is_set():  # (seconds: torch, numba)
        set_threads(getattr(config.run, "threads", 1))
        warm_up()  # before the probes answer ready: not in the first batch's latency
    if stop.is_set():  # asked for during the imports or the warm-up: nothing is built, nothing to commit
        return _stopped_before_built(None)
    server = None
    metrics_cfg = getattr(config, "metrics", None)
    if metrics_cfg is not None and metrics_cfg.enabled:
        from .http import serve

        try:
            server = serve(metrics_cfg)
        except OSError as e:
            fix = {errno.EADDRINUSE: "free the port or change metrics.port (0 = any free port)",
                   errno.EACCES: "use a metrics.port of 1024 or more (a lower one needs privileges)"}.get(
                e.errno, "set metrics.host to an address of this machine (\"127.0.0.1\", \"0.0.0.0\" or \"::\" for all)")
            log_event(log, "failed", level=logging.ERROR,
                      detail=f"cannot serve [metrics] on {metrics_cfg.host}:{metrics_cfg.port}: {e}; {fix}")
            return EXIT_FAILED
    try:
        return _build_and_run(config, stop, on_ready, server)
    finally:
        if server is not None:
            server.close()


def _build_and_run(config: Config, stop: threading.Event, on_ready, server) -> int:
    """Build the daemon and run it; again, in this process, each time it must start over (fenced): at once,
    unless the daemon rebuilt last time had to start over too without committing anything (the same failure
    again, likely): then after a delay (:data:`RESET_DELAY_S`). A daemon that ran longer than the longest
    delay before it started over counts as healthy, committed or not: on a quiet topic nothing is
    committed, and routine start overs hours apart (a rebalance) must not each wait longer."""
    metrics = None
    # one changelog for every build: a reset keeps what it read (RunChangelog); closed however the run ends
    changelog = RunChangelog()
    from .kafka import mapping_checks

    # one set of mapping checks too: a warning is said once per run, and a short topic judged by all it read
    checks = mapping_checks(config.kafka, config.mapping, config.model.time_features)
    contact = BrokerContact(config.kafka, stop)  # and one first contact: whether a build reached a broker
    rebuilt, delay = False, 0.0
    try:
        while True:
            committed, began = _committed(metrics), time.monotonic()
            code, metrics = _build_and_run_once(config, stop, on_ready, server, metrics, changelog, checks, contact)
            if code not in (EXIT_RESET, EXIT_BROKER_AWAY):
                return code
            away = code == EXIT_BROKER_AWAY
            if stop.is_set():  # asked for before the daemon had to start over: its final commit was refused
                _say_final_mapping_warnings(checks)
                return _stopped_before_built(metrics) if away else _stopped_in_start_over(metrics)
            brief = time.monotonic() - began < RESET_DELAY_S[1]
            again = rebuilt and brief and _committed(metrics) == committed
            most = BROKER_AWAY_DELAY_S if away else RESET_DELAY_S[1]
            delay = min(max(2 * delay, RESET_DELAY_S[0]), most) if again else 0.0
            # a stop asked for during the wait ends the next build before it starts: the clean stop (exit 0)
            _wait_before_rebuild(stop, metrics, delay)
            if metrics is not None:  # once: the caller already holds the first daemon
                on_ready = None
            rebuilt = True
    finally:
        changelog.close()
        # the run's end, however it came (each warning is said once: here, only what no closing line said before)
        _say_final_mapping_warnings(checks)


def _say_final_mapping_warnings(checks: MappingChecks | None) -> None:
    """The run ends: a short topic's mapping warnings (judged by all its daemons read), said before the run's
    closing ``shutdown`` or ``failed`` line where one follows. None: the daemon holds its own checks."""
    if checks is None:
        return
    try:
        log_mapping_warnings(checks.take(final=True))
    except Exception:  # noqa: BLE001 -- the checks only advise: the run's exit code stands
        log.warning("mapping checks failed at the end of the run", exc_info=True)


def _stopped_in_start_over(metrics: DaemonMetrics | None) -> int:
    """Log a stop asked for while the daemon had to start over (fenced, or its partitions lost, in the same
    turn) as its ``failed`` line; returns exit code 1: its final commit could not be made, so what it did since
    its last commit does not count (a restart resumes from that commit, as after any failure)."""
    log_event(log, "failed", level=logging.ERROR, exit_code=EXIT_FAILED,
              records=metrics.records if metrics is not None else 0,
              detail="stopped while the daemon had to start over (fenced, or its partitions lost): its final commit "
                     "could not be made; nothing since its last commit counts, and a restart resumes from it")
    return EXIT_FAILED


def _committed(metrics: DaemonMetrics | None) -> int:
    """The transactions committed so far by the run's daemons (their metrics carry over a reset)."""
    return metrics.transactions["committed"] if metrics is not None else 0


def _wait_before_rebuild(stop: threading.Event, metrics: DaemonMetrics | None, delay: float) -> None:
    """Wait ``delay`` seconds before a start over (none: at once), or until a stop is asked for. The loop's
    heartbeat goes on: the member waits on purpose, and /healthz must not have it restarted for that
    (``metrics`` None: no daemon was built yet, and /healthz says ``starting``)."""
    if delay <= 0:
        return
    log_event(log, "rejoin_delayed", level=logging.WARNING, delay_s=delay,
              detail=f"the daemon rebuilt last time had to start over too, having committed nothing, or found no "
                     f"broker: waiting {delay:g} s (doubling each time again, up to {RESET_DELAY_S[1]:g} s, or "
                     f"{BROKER_AWAY_DELAY_S:g} s while no broker answers; a commit ends it)")
    deadline = time.monotonic() + delay
    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
        if metrics is not None:
            metrics.beat()
        # not stop.wait(): this is the main thread, where SIGTERM's handler calls stop.set(), and a signal in
        # the bytecodes where Event.wait holds the Event's plain lock left the handler waiting on it for good
        # (review r149). A sleep the signal interrupts holds no lock; the flag is read every 0.1 s.
        time.sleep(min(left, 0.1))


def _build_and_run_once(config: Config, stop: threading.Event, on_ready, server, metrics,
                        changelog: RunChangelog | None = None, checks: MappingChecks | None = None,
                        contact: BrokerContact | None = None) -> tuple[int, object]:
    """Build a daemon and run it; returns its exit code and its metrics (the next build keeps them; None
    while no daemon was built). ``changelog``: the run's (closed by the caller); ``checks``: the run's
    mapping checks; ``contact``: the run's first contact with a broker; None: the daemon makes its own."""
    of_run = {k: v for k, v in (("changelog", changelog), ("checks", checks), ("contact", contact)) if v is not None}
    daemon, failure = None, None
    if not stop.is_set():  # (else a stop asked for since the last look)
        try:
            with _alive_while_rebuilt(metrics):
                daemon = Daemon.from_config(config, stop, metrics, **of_run)
        except Exception as e:
            failure = e
    # a rebuild, or a first start once a build of this run reached a broker (review r118 F5)
    reached = metrics is not None or (contact is not None and contact.ever_reached)
    if daemon is None and reached and not stop.is_set() and _broker_away(failure, config, rebuild=metrics is not None):
        return EXIT_BROKER_AWAY, metrics  # built again after _build_and_run's (shorter) backoff
    if daemon is None:  # the run ends here: what an earlier build's daemon read is said before the closing line
        _say_final_mapping_warnings(checks)
        return _not_built(config, stop, metrics, failure), metrics
    if server is not None:
        server.attach(daemon)
    if on_ready is not None:
        try:
            on_ready(daemon)
        except Exception:
            log.exception("on_ready failed; stopping before the first poll")
            daemon.abort()
            return EXIT_FAILED, daemon.metrics
    return daemon.run(), daemon.metrics


def _broker_away(failure: Exception | None, config: Config, rebuild: bool = True) -> bool:
    """Whether a build that follows a broker reached with these settings failed for want of a broker
    (kafka-python's retriable errors, "Unable to bootstrap"): said as ``broker_unreachable``, and the daemon
    is built again after the start overs' backoff. ``rebuild``: after a start over (else: a first start
    whose broker went away during it). The outage is the likely cause: a group went down whole when an
    outage passed ~60 s (the transaction's request timeout, then the rebuild's bootstrap timeout: review
    r115 F1), and a member whose first start met a broker restart exited 1 with a traceback (r118 F5). A
    first start that reaches no broker still exits 1 with the settings to check (:func:`_not_built`)."""
    from kafka.errors import RetriableError

    from .kafka_bootstrap import bootstrap_hint
    from .publisher import BrokerUnreachable

    if failure is None:
        return False
    hint = bootstrap_hint(failure, config.kafka)
    # (a publisher process's start that found none says so: BrokerUnreachable, review r118 F6)
    if hint is None and not isinstance(failure, (RetriableError, BrokerUnreachable)):
        return False
    what = "could not be built again after a start over" if rebuild else "lost the broker its start had reached"
    log_event(log, "broker_unreachable", level=logging.WARNING, error=named(failure),
              detail=f"the daemon {what}: no broker answered; it is built again after a wait "
                     "(/readyz says not ready meanwhile)" + (f"; if this lasts: {hint}" if hint else ""))
    return True


@contextlib.contextmanager
def _alive_while_rebuilt(metrics: DaemonMetrics | None):
    """Beat the run's heartbeat while a daemon is rebuilt after a start over (``metrics``: the run's; None
    at the first build, which /healthz calls ``starting``), for up to :data:`REBUILD_ALIVE_S`. Nothing
    turned the loop during the rebuild's restore and changelog catch-up, so /healthz said ``stalled``
    after ``stall_timeout_s`` and a liveness probe killed a member in the middle of a routine start over
    (review r69 F2); a rebuild that hangs past the budget is still said to be stalled."""
    if metrics is None:
        yield
        return
    built = threading.Event()

    def beat():
        deadline = time.monotonic() + REBUILD_ALIVE_S
        while time.monotonic() < deadline:
            metrics.beat()
            if built.wait(REBUILD_BEAT_S):
                return

    beating = threading.Thread(target=beat, name="stream-cl-rebuild-beat", daemon=True)
    beating.start()
    try:
        yield
    finally:
        built.set()
        beating.join()


def _not_built(config: Config, stop: threading.Event, metrics, failure: Exception | None) -> int:
    """Log the closing line of a start that built no daemon, and return its exit code. ``failure``: the error
    the build ended in; None: a stop was asked for before it began."""
    if failure is None:
        return _stopped_before_built(metrics)
    if isinstance(failure, (ConfigError, CheckpointError)):  # a setting to fix, stopped or not: exit 2
        return config_failed(failure)
    if stop.is_set():  # a stop asked for during the build ended it (BootstrapStopped), or it came first
        return _stopped_before_built(metrics, failure)
    if (detail := not_authorised(failure, config)) is not None:  # a publisher or changelog an ACL denies
        return not_authorised_failed(detail)
    from .kafka_bootstrap import bootstrap_hint

    hint = bootstrap_hint(failure, config.kafka)
    held = startup_done()  # (ends the start-up hold of kafka-python's lines, hint or not)
    if hint is None:  # not a configuration problem: the traceback is for us
        log.error("daemon could not start", exc_info=failure)
        return EXIT_FAILED
    cause = held.last_error if held is not None and held.last_error else ""
    if not cause and "last error:" in str(failure):
        cause = str(failure).rsplit("last error:", 1)[1].strip()
    log_event(log, "failed", level=logging.ERROR, detail=f"daemon could not start: {hint}",
              **({"client_error": cause} if cause else {}))
    return EXIT_FAILED


def _stopped_before_built(metrics: DaemonMetrics | None, ended: Exception | None = None) -> int:
    """Log a start stopped before its daemon was built (nothing to commit) as its ``shutdown`` line;
    returns exit code 0, the documented clean stop. ``ended``: the error the build ended in after the
    stop was asked for, named in the line unless it is the stop's own (BootstrapStopped): a stop
    asked for must not turn into a failure, and the error is said all the same."""
    detail = "stopped before the daemon was built"
    if ended is not None:
        from .kafka_bootstrap import BootstrapStopped

        if not isinstance(ended, BootstrapStopped):
            detail += f" (the start it stopped ended in {type(ended).__name__}: {ended})"
    log_event(log, "shutdown", records=metrics.records if metrics is not None else 0,
              checkpoint_seq=metrics.checkpoint_seq if metrics is not None else None, exit_code=EXIT_OK, detail=detail)
    return EXIT_OK
