"""The wait before a start over does not wait on the stop Event (review r149's left-out item).

``_wait_before_rebuild`` runs on the main thread, where SIGTERM's handler calls ``stop.set()``. It
waited with ``stop.wait(...)``: a signal landing in the few bytecodes where ``Event.wait`` holds the
Event's plain (non-reentrant) lock left the handler blocked on that lock for good, and the process
hung until a second signal or SIGKILL. The wait now sleeps in short steps and reads the flag.
"""

import threading

from connectors import daemon_run


class _NoWaitStop(threading.Event):
    """A stop flag whose ``wait`` must not be called on the signal handler's thread."""

    def __init__(self, set_after_reads: int):
        super().__init__()
        self.reads, self.set_after = 0, set_after_reads

    def wait(self, timeout=None):
        raise AssertionError("the main thread waited on the Event that SIGTERM's handler sets")

    def is_set(self):  # the handler's stop.set(), after a few looks
        self.reads += 1
        if self.reads > self.set_after:
            self.set()
        return super().is_set()


def test_the_wait_before_a_start_over_reads_the_flag_and_never_waits_on_it():
    stop = _NoWaitStop(set_after_reads=3)
    daemon_run._wait_before_rebuild(stop, None, 60.0)  # returns once the flag is set, not after 60 s
    assert stop.reads == 4
