"""``PrequentialStats.recent_accuracy`` reads the running window once (review r149's left-out item).

A metrics scrape on another thread reads it while the loop updates the window. It read the window's
count twice, for the test and for the division: a scrape between the two, as the first window completed
and the count was reset, divided by 0 (a 500 for that scrape). Here the count changes between two reads.
"""

from stream_cl.prequential import PrequentialStats


class _ResetBetweenReads(PrequentialStats):
    """The window's count as a scrape on another thread sees it when the loop resets it between two reads."""

    @property
    def _win_n(self):
        self._reads = getattr(self, "_reads", 0) + 1
        return 4 if self._reads == 1 else 0

    @_win_n.setter
    def _win_n(self, value):
        pass


def test_the_running_window_is_read_once():
    stats = _ResetBetweenReads()
    stats._win_hits = 3
    assert stats.recent_accuracy == 0.75
