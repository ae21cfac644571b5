"""SIGTERM and SIGINT kept while an entry point starts, until the run's own handlers take them over.

``stream-cl run`` (the image's and the unit's entry point) and ``python -m connectors.daemon`` spend a
second or more importing numpy, torch and kafka-python before their handlers exist. Meanwhile SIGTERM's
default action would kill the process (exit 143), and as a container's PID 1 the kernel drops it: the
daemon would start, take partitions over and be killed at the grace period. Kept here, a first signal
sets :attr:`EarlySignals.stop` and is remembered for the run to take over (a clean stop, exit 0, as
docs/daemon.md says); a second one exits at once (exit 1: nothing is built yet, nothing to save).

This module imports only the standard library: it must be importable before the slow imports.

>>> import signal
>>> early = EarlySignals().install()
>>> signal.raise_signal(signal.SIGTERM)   # kept, not the default death
>>> early.stop.is_set(), early.take() == [signal.SIGTERM], early.take()
(True, True, [])
>>> early.restore()
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading

KEPT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class EarlySignals:
    """The keeper: :meth:`install` it first, :meth:`take` the kept signals when the run's handlers are in,
    :meth:`restore` (or :meth:`release`) the handlers it replaced when the entry point returns.

    Installed by an entry point, never at import: a library importing the module keeps its own handlers.
    """

    def __init__(self):
        self.kept: list[int] = []
        self.stop = threading.Event()
        self.saved: dict = {}

    def install(self) -> EarlySignals:
        """Keep SIGTERM and SIGINT from now on (main thread only; elsewhere nothing changes); returns ``self``."""
        if threading.current_thread() is threading.main_thread():  # (signal.signal refuses other threads)
            for sig in KEPT_SIGNALS:
                previous = signal.signal(sig, self.keep)
                self.saved.setdefault(sig, previous)  # installed twice: the first one's handlers go back
        return self

    def keep(self, signum, frame=None) -> None:
        """The handler; also called for a signal another keeper kept before this one was installed."""
        self.kept.append(signum)
        self.stop.set()
        if len(self.kept) > 1:  # a second one exits at once, as the daemon's (exit 1; nothing to save yet)
            os._exit(1)

    def take(self) -> list[int]:
        """The signals kept so far, handed over once: the run's own handler takes them from here on."""
        taken, self.kept[:] = list(self.kept), []
        return taken

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        for sig, handler in self.saved.items():
            if handler is not None:  # None: set outside Python; nothing to put back
                signal.signal(sig, handler)
        self.saved = {}

    def release(self) -> None:
        """The handlers put back, and a signal kept meanwhile raised again for them: a command with no stop
        of its own (``stream-cl report``) is interrupted by Ctrl-C as before, not made to ignore the first one."""
        self.restore()
        for signum in self.take():
            signal.raise_signal(signum)


def exit_settled(code: int):
    """``sys.exit(code)`` for an entry point whose result is settled: from here on SIGTERM and SIGINT end
    the process at once with that code. The interpreter's teardown after a run takes a second or more
    (torch, numba and the BLAS threads unloading), and a signal's default action then turned a clean
    stop, or a run that had written its report, into a death by signal (exit 143; review r77). Ignored,
    a signal could not end a teardown that hangs (an exit hook writing to a full pipe; review r79): it
    now skips what is left of it, as a stop asked for now has nothing else to stop.

    The teardown is the part a process needs, then ``os._exit``: the other threads finished (as the
    interpreter waits for them), the exit hooks run (logging's, multiprocessing's children), the
    standard streams flushed. Not the interpreter's own finalisation: once it began, no Python
    handler ran, a signal had its default action, and one in the second or so that torch and numba
    took to unload killed a finished run (9 of 9 tries, review r100)."""
    code = 0 if code is None else code if isinstance(code, int) else 1

    def settled(signum, frame=None):
        os._exit(code)

    main = threading.current_thread() is threading.main_thread()
    for sig in KEPT_SIGNALS:
        try:
            signal.signal(sig, settled)
        except ValueError:  # (not the main thread: the signals are not this thread's to set)
            break
    if not main:  # (a test's thread, say: the process is not this call's to end)
        sys.exit(code)
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # (CPython's own call for this, as multiprocessing's children use it)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, or a pipe whose reader left
            pass
    os._exit(code)


# the Kafka daemon's keeper: `python -m connectors.daemon` spends a second or more in its imports (numpy, pandas,
# kafka-python): a SIGTERM or Ctrl-C meanwhile is kept here, and run_daemon's handlers take it over (a clean stop,
# exit 0, as docs/daemon.md says), instead of SIGTERM's default death by signal or a KeyboardInterrupt traceback
_EARLY = EarlySignals()


def keep_early_signals(kept: list[int] | tuple[int, ...] = ()) -> None:
    """Keep SIGTERM and SIGINT from now until :func:`connectors.daemon_run.run_daemon` installs its handlers,
    which take them over (:func:`take_early_signals`): a stop asked for during the start is a clean one (exit 0),
    not a death by signal or, as a container's PID 1, a signal dropped. ``kept``: the signals an entry point
    kept itself before it imported the daemon (``stream-cl run``: :func:`connectors.cli.main`); read after
    this keeper's handlers are in, so one that comes meanwhile is kept by one or the other, never lost."""
    _EARLY.install()
    for signum in kept:
        _EARLY.keep(signum)


def take_early_signals() -> list[int]:
    """The signals :func:`keep_early_signals` kept so far, handed over once: the daemon's own handlers
    (:func:`connectors.daemon_signals.install_signal_handlers`) take them from here on."""
    return _EARLY.take()
