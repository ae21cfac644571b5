"""The daemon's SIGTERM/SIGINT handlers: a first signal asks for a clean stop (bounded by a
watchdog), a second one ends the process; nothing outlives run_daemon's return.

os._exit is replaced by a recorder: a test must never end pytest's process. A signal raised with
signal.raise_signal runs its handler before the next line: the handler sets the stop flag and wakes
the watcher thread (``stream-cl-signals``), which runs the watchdog and has the lines written (each on a
thread of its own): the tests join it.
"""

import io
import logging
import os
import signal
import threading

import pytest

from connectors.daemon_exits import EXIT_FAILED
from connectors.daemon_signals import install_signal_handlers


@pytest.fixture
def exits(monkeypatch):
    """os._exit calls (their codes) instead of exits."""
    codes: list[int] = []
    monkeypatch.setattr(os, "_exit", codes.append)
    yield codes


def _watcher() -> threading.Thread:
    return next(t for t in threading.enumerate() if t.name == "stream-cl-signals")


def test_the_watchdog_of_a_clean_stop_stands_down_when_the_handlers_are_restored(exits):
    stop = threading.Event()
    restore = install_signal_handlers(stop, 3600.0)
    watcher = _watcher()
    try:
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set() and watcher.is_alive()  # the stop is asked for; the watchdog is waiting
    finally:
        restore()
    # run_daemon has returned 0: the caller's process must not be ended shutdown_timeout_s later
    assert not watcher.is_alive() and exits == []


def test_a_stop_that_outlasts_the_timeout_exits_1(exits):
    stop = threading.Event()
    restore = install_signal_handlers(stop, 0.01)
    watcher = _watcher()
    try:
        signal.raise_signal(signal.SIGTERM)
        watcher.join(10.0)  # the final commit never ends here: the watchdog's time runs out
        assert stop.is_set() and exits == [EXIT_FAILED]
    finally:
        restore()


def test_a_first_signal_after_the_daemon_stopped_itself_is_not_a_second_one(exits):
    stop = threading.Event()
    restore = install_signal_handlers(stop, 3600.0)
    try:
        stop.set()  # kafka.stop_at_end or run.max_events: the final commit is under way
        signal.raise_signal(signal.SIGTERM)  # the orchestrator's one SIGTERM
        assert exits == []  # a clean stop, bounded by the watchdog
        signal.raise_signal(signal.SIGINT)  # a second signal still ends the process at once
        assert exits == [EXIT_FAILED]
    finally:
        restore()


def test_restore_with_no_signal_ends_the_watcher_and_puts_back_the_handlers_it_replaced(exits):
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    restore = install_signal_handlers(threading.Event(), 30.0)
    watcher = _watcher()
    assert all(signal.getsignal(sig) is not h for sig, h in before.items())
    restore()
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert not watcher.is_alive() and exits == []


class _OneWriterStream(io.StringIO):
    """A log stream that, like a buffered stderr, refuses a write inside a write; a SIGTERM comes
    while the first line is being written (as it does while the loop waits on a full pipe)."""

    def __init__(self):
        super().__init__()
        self.writer: int | None = None  # the thread inside write (another thread waits its turn, as on a lock)
        self.turn = threading.Lock()
        self.signalled = False

    def write(self, text):
        if self.writer == threading.get_ident():
            raise RuntimeError("reentrant call")
        with self.turn:
            self.writer = threading.get_ident()
            try:
                if not self.signalled:
                    self.signalled = True
                    signal.raise_signal(signal.SIGTERM)  # its handler runs here, inside this write
                return super().write(text)
            finally:
                self.writer = None


def test_a_signal_that_comes_while_the_loop_writes_a_log_line_still_stops_the_daemon(exits, monkeypatch):
    # the handler logged before it set the stop flag: inside the loop's own write that raised
    # "reentrant call" (logging's report of the error, on the same stderr, raised it again), and the
    # SIGTERM was lost (a second one then exited with no final checkpoint)
    stream = _OneWriterStream()
    monkeypatch.setattr("sys.stderr", stream)
    logger = logging.getLogger("stream_cl.daemon")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO  # the daemon's (setup_logging): stop_requested is written
    stop = threading.Event()
    restore = install_signal_handlers(stop, 3600.0)
    try:
        logger.warning("a line the loop writes")
        assert stop.is_set() and exits == []
    finally:
        restore()
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert "a line the loop writes" in stream.getvalue()


class _BlockedStream(io.StringIO):
    """A log stream whose writes wait until ``gate`` is set (stderr to a pipe nobody reads)."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()

    def write(self, text):
        self.gate.wait(60.0)
        return super().write(text)


def test_the_shutdown_timeout_runs_from_the_signal_even_while_the_log_is_blocked(exits):
    # the watchdog started counting after the stop_requested line was written: with the log blocked, the
    # process outlived kafka.shutdown_timeout_s by as long as the log stayed blocked
    stream = _BlockedStream()
    logger = logging.getLogger("stream_cl.daemon")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    stop = threading.Event()
    restore = install_signal_handlers(stop, 0.05)
    watcher = _watcher()
    try:
        signal.raise_signal(signal.SIGTERM)  # its line waits for the log; the handler gives up on it after a second
        watcher.join(30.0)  # the watchdog's exit, with the log still blocked
        assert stop.is_set() and exits == [EXIT_FAILED] and not stream.gate.is_set()
    finally:
        stream.gate.set()
        restore()
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_the_watchdog_still_exits_when_no_thread_can_be_started_for_the_log(exits, monkeypatch):
    # the watcher died at the first thread it could not start (a process limit), and a stuck stop was never ended
    import connectors.daemon_signals as daemon_signals

    def no_thread(say):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(daemon_signals, "_aside", no_thread)
    stop = threading.Event()
    restore = install_signal_handlers(stop, 0.05)
    watcher = _watcher()
    try:
        signal.raise_signal(signal.SIGTERM)
        watcher.join(30.0)
        assert stop.is_set() and exits == [EXIT_FAILED]
    finally:
        restore()
