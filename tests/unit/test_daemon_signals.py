"""The daemon's SIGTERM/SIGINT handlers: a first signal asks for a clean stop (bounded by a
watchdog), a second one ends the process; nothing outlives run_daemon's return.

os._exit and the watchdog Timer are replaced by recorders: a test must never end pytest's
process, and a signal raised with signal.raise_signal runs its handler before the next line.
"""

import os
import signal
import threading

import pytest

from connectors import daemon
from connectors.daemon import EXIT_FAILED, _install_signal_handlers


class _Timer(threading.Timer):
    """A real watchdog that never fires within a test (an hour), remembered to check and clean up."""

    made: list = []

    def __init__(self, interval, function):
        super().__init__(3600.0, function)
        _Timer.made.append(self)


@pytest.fixture
def exits(monkeypatch):
    """os._exit calls (their codes) instead of exits; the watchdogs made, cancelled at the end."""
    codes: list[int] = []
    monkeypatch.setattr(os, "_exit", codes.append)
    monkeypatch.setattr(daemon.threading, "Timer", _Timer)
    _Timer.made = []
    yield codes
    for timer in _Timer.made:
        timer.cancel()


def test_the_watchdog_of_a_clean_stop_is_cancelled_when_the_handlers_are_restored(exits):
    stop = threading.Event()
    restore = _install_signal_handlers(stop, 30.0)
    try:
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set() and len(_Timer.made) == 1 and _Timer.made[0].is_alive()
    finally:
        restore()
    # run_daemon has returned 0: the caller's process must not be ended shutdown_timeout_s later
    watchdog = _Timer.made[0]
    assert watchdog.finished.is_set()  # what cancel() sets: the timer will never call its function
    watchdog.join(5.0)  # cancelled, its thread ends at once
    assert not watchdog.is_alive() and exits == []


def test_a_first_signal_after_the_daemon_stopped_itself_is_not_a_second_one(exits):
    stop = threading.Event()
    restore = _install_signal_handlers(stop, 30.0)
    try:
        stop.set()  # kafka.stop_at_end or run.max_events: the final commit is under way
        signal.raise_signal(signal.SIGTERM)  # the orchestrator's one SIGTERM
        assert exits == [] and len(_Timer.made) == 1  # a clean stop, bounded by the watchdog
        signal.raise_signal(signal.SIGINT)  # a second signal still ends the process at once
        assert exits == [EXIT_FAILED]
    finally:
        restore()


def test_restore_puts_back_the_handlers_it_replaced(exits):
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    restore = _install_signal_handlers(threading.Event(), 30.0)
    assert all(signal.getsignal(sig) is not h for sig, h in before.items())
    restore()
    assert {sig: signal.getsignal(sig) for sig in before} == before
