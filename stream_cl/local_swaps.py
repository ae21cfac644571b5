"""Reads of every partition's local state that a swap of partitions under way cannot tear.

A learner with a part per partition (:class:`~stream_cl.parts.PartitionedLearner`) keeps the active
partition's local state (replay buffer, drift monitor, ...) in its attributes and every other one in its
part; a swap moves them in several statements (:meth:`~stream_cl.parts.PartitionedLearner._enter`, and the
temporary swaps that export or import a part's local state: a checkpoint, a changelog record, a merge). A
reader on another thread between those statements (the daemon's metrics scrape summing the replay buffers
or the drift alarms of every partition) counted one partition twice or missed one: a spike or dip of one
partition's buffer in ``stream_cl_replay_buffer_samples`` (review r139 F3, fixed in r149).

The swapping thread brackets each swap with :meth:`LocalSwaps._swap_begin` / :meth:`LocalSwaps._swap_end`
(two integer increments: nothing on the per-event path, where no swap happens); a reader on another thread
retries while a swap is under way or one came meanwhile (:meth:`LocalSwaps._read_settled`), as a seqlock's
reader does. No lock: the loop never waits for a reader.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["LocalSwaps", "SETTLE_TRIES"]

T = TypeVar("T")

# times a reader on another thread reads again while swaps go on; then it takes what it read (as before
# review r149): a swap lasts microseconds to milliseconds (a replay buffer's state copied for a checkpoint)
SETTLE_TRIES = 100


class LocalSwaps:
    """Counts swaps of local state (module docstring). Class defaults: a learner pickled before these
    attributes existed has none of its own."""

    _swap_seq = 0  # changes at the start and at the end of each swap
    _swap_depth = 0  # swaps under way (nested: a swap inside another)
    _swap_owner: int | None = None  # the thread of the swap under way: its own reads see its own state

    def _swap_begin(self) -> None:
        """A swap of local state starts (call :meth:`_swap_end` when it ends, in a ``finally``)."""
        self._swap_owner = threading.get_ident()
        self._swap_depth += 1
        self._swap_seq += 1

    def _swap_end(self) -> None:
        self._swap_seq += 1
        self._swap_depth -= 1

    def _read_settled(self, read: Callable[[], T]) -> T:
        """``read()`` with no swap under way on another thread, from its start to its end (the swapping
        thread's own reads: at once, as its own state is)."""
        me = threading.get_ident()
        for _ in range(SETTLE_TRIES):
            seq = self._swap_seq
            if not self._swap_depth or self._swap_owner == me:
                value = read()
                if self._swap_seq == seq:
                    return value
            time.sleep(0)  # hand the interpreter to the swapping thread, which finishes its swap
        return read()
