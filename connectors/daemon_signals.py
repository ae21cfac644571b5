"""SIGTERM and SIGINT during a Kafka daemon's run: the first asks for a clean stop, watched by a timeout;
a second ends the process at once.

:func:`install_signal_handlers` is :func:`connectors.daemon_run.run_daemon`'s first step; it takes over
the signals kept while the process started (:func:`connectors.early_signals.keep_early_signals`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

from .daemon_exits import EXIT_FAILED
from .early_signals import take_early_signals
from .logs import log_event

__all__ = ["install_signal_handlers"]

log = logging.getLogger("stream_cl.daemon")


def install_signal_handlers(stop: threading.Event, timeout_s: float):
    """SIGTERM and SIGINT: the first asks for a clean stop (the batch in flight, then a final checkpoint
    and commit) and exits 1 if that takes over ``timeout_s``; a second exits 1 at once. Returns the
    function that puts the previous handlers back.

    The handler sets ``stop`` (before it returns: the start and the loop read it at once) and hands
    the rest to a thread (``stream-cl-signals``) that watches the time and has the lines written. A handler runs on
    the main thread wherever that thread is: a log line written there while the loop was writing one
    (stderr to a full pipe) raised "reentrant call" before the stop was set, and the signal was lost.
    The handler waits up to a second for the thread's line, so that it comes before what the main
    thread logs next (the shutdown), unless the main thread is itself inside a log write. The timeout
    runs from the signal: the lines are written on threads of their own (:func:`_aside`), so a log
    stream that blocks does not defer the exit."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    # counted here, not read off `stop`: the daemon sets `stop` itself (stop_at_end, max_events),
    # and a first signal during that final commit is no second one
    received: list[int] = []
    woken, said = threading.Lock(), threading.Lock()  # plain locks: safe to release and acquire in a handler
    woken.acquire()  # released by the handler (or by restore, with no signal): the thread's turn
    said.acquire()  # released by the thread once its line is written
    over = threading.Event()  # run_daemon returned: the watchdog stands down
    talking: list[threading.Thread] = []  # the log lines' threads (_aside), joined by restore

    def handler(signum, frame):
        received.append(signum)
        if len(received) > 1:
            os._exit(EXIT_FAILED)  # (the first signal's log line says so)
        stop.set()
        woken.release()
        said.acquire(timeout=1.0)

    def on_signal():
        woken.acquire()
        if over.is_set():  # restored with no signal
            return
        deadline = time.monotonic() + timeout_s  # from the signal: a log stream that blocks must not defer it

        def said_stop():
            log_event(log, "stop_requested", reason=signal.Signals(received[0]).name,
                      detail="a running daemon finishes the batch in flight, then makes a final checkpoint and "
                             "commit (a start not done yet stops as soon as it can, committing nothing); a second "
                             "signal exits at once, the last checkpoint staying valid")
            said.release()

        try:
            talking.append(_aside(said_stop))
        except RuntimeError:  # no thread to be had (a process limit): the line is lost, the watchdog is not
            pass
        if not over.wait(max(deadline - time.monotonic(), 0.0)):
            try:
                _aside(lambda: log_event(log, "shutdown_timeout", level=logging.ERROR, timeout_s=timeout_s,
                                         detail="exiting now")).join(1.0)  # said if the log takes it within a second
            except RuntimeError:  # (no thread to be had: exit unsaid)
                pass
            os._exit(EXIT_FAILED)

    watcher = threading.Thread(target=on_signal, name="stream-cl-signals", daemon=True)
    watcher.start()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    for signum in take_early_signals():  # received during the imports (python -m connectors.daemon): taken over
        handler(signum, None)

    def restore():
        for sig, h in previous.items():
            signal.signal(sig, h)
        # after the handlers, so no signal wakes the thread again: the stop is over, and the watchdog
        # must not end the caller's process shutdown_timeout_s after run_daemon returned
        over.set()
        if not received:
            woken.release()  # the thread, still waiting for a signal, returns
        watcher.join(5.0)
        for thread in talking:  # the stop's line, written by now unless the log is blocked
            thread.join(1.0)

    return restore


def _aside(say: Callable[[], None]) -> threading.Thread:
    """Run ``say`` (a log line) on a thread of its own: a log stream that blocks (stderr to a full pipe)
    holds up that thread only, not the signal watcher's clock."""
    thread = threading.Thread(target=say, name="stream-cl-signals-log", daemon=True)
    thread.start()
    return thread
