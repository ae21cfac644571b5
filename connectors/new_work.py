"""What this process's new work adds to the exporter's counters that the learner and the label stores count over their lifetime.

The drift alarms, the category overflow and the delayed-label outcomes are counted by the
learner and the label stores over their lifetime, and a restore sets those lifetime counts
back: the silent re-learning after it raises them again, and a part taken over brings
another member's. :class:`NewWork` counts what the router's new work adds to them, into
:class:`~connectors.status.DaemonMetrics` (``drift_alarms``, ``category_overflow``,
``label_outcomes``), which the exporter's counters are:

* a new step's rise of the learner's drift alarm counts and category overflow counts
  (:meth:`NewWork.before_step`, :meth:`NewWork.count_step`); a silent step's does not;
* a delayed label's join counts when one of its two records was read new in this process
  (the label stores count these themselves, by each waiting record's flag of being committed
  before a restore: :meth:`~stream_cl.pending_stores.PendingStores.new_outcomes`); a join of two
  records both committed before the restore was counted by the process before;
* an eviction (by ``labels.max_pending``) and an unknown label (by ``labels.max_early``, or a
  second label for an id) count when the record that caused them was read new in this process:
  they follow the records, and those re-read silently after a restore caused the same ones in
  the process before, which counted them. An eviction for the changelog at a commit counts;
* an expiry counts whenever it happens in this process: it follows the store's clock, not the
  records, and a store taken over was dropped by its last owner without counting what it held
  (after a crash, an entry the process before expired between its checkpoint and the crash
  counts again when it expires here);
* each is the rise since the last count (:meth:`NewWork.count_labels`), from the start (after
  the restore): a takeover's install and a drop keep the totals
  (:class:`~stream_cl.pending_stores.PendingStores`).
"""

from __future__ import annotations

import logging

from .logs import log_event
from .metric_names import LABEL_OUTCOMES

__all__ = ["NewWork", "label_outcomes"]

log = logging.getLogger("stream_cl.daemon")

ALARM_LINES_PER_BATCH = 10  # drift_alarm log lines per step at most (the metric counts them all)
assert LABEL_OUTCOMES == ("joined", "expired", "unknown")  # as label_outcomes reads them


def label_outcomes(pending) -> tuple[int, int, int]:
    """The label stores' (:class:`~stream_cl.pending_stores.PendingStores`) counts of the delayed-label
    outcomes of new work (``metric_names.LABEL_OUTCOMES``, in that order; an evicted event never gets
    its label either, so it counts as expired)."""
    return pending.new_outcomes()


class NewWork:
    """Counts the rise of the learner's and the label stores' lifetime counts that new work makes (module docstring)."""

    def __init__(self, learner, pending, metrics):
        self.learner, self.pending, self.metrics = learner, pending, metrics
        # the label stores' new-work outcome counts already counted (from the start: a store installed or
        # dropped keeps the totals)
        self._labels_seen = label_outcomes(pending)

    # -- steps ---------------------------------------------------------------------------
    def before_step(self, replayed: bool) -> tuple | None:
        """What a new step's counts rise from: the drift alarm counts (:meth:`_alarm_counts`) and the learner's
        category overflow (a sum over its few overflowing features, once per step); ``None`` for a replayed one."""
        return None if replayed else (self._alarm_counts(), self.learner.index_.overflow_total)

    def count_step(self, before: tuple | None) -> None:
        """Count what the step just taken raised (``before``: :meth:`before_step`'s)."""
        if before is None:
            return
        alarms, overflow = before
        if alarms is not None:
            self._count_alarms(alarms)
        rise = self.learner.index_.overflow_total - overflow
        if rise > 0:
            self.metrics.category_overflow += rise

    def _alarm_counts(self) -> dict | None:
        """The learner's drift alarm counts over all its partitions, ``{detector: {response: n}}``
        (``None`` without a drift monitor)."""
        if getattr(self.learner, "drift_", None) is None:
            return None
        return self.learner.alarm_counts_

    def _count_alarms(self, before: dict) -> None:
        """Count and log the alarms one step raised: the counts' rise since ``before``. Taken per step,
        around the learning alone, so that a part restored, taken over or dropped between steps, or
        replayed events learned again, change nothing here (the exporter's counter is this one)."""
        after = self.learner.alarm_counts_
        if after == before:
            return
        counts = {d: dict(r) for d, r in self.metrics.drift_alarms.items()}
        new = 0
        for detector, by_response in after.items():
            for response, n in by_response.items():
                rise = n - before.get(detector, {}).get(response, 0)
                if rise > 0:
                    mine = counts.setdefault(detector, {})
                    mine[response] = mine.get(response, 0) + rise
                    new += rise
        self.metrics.drift_alarms = counts  # replaced whole: a scrape may be reading the old one
        if new:
            self._log_alarms(new)

    def _log_alarms(self, new: int) -> None:
        """One ``drift_alarm`` line per alarm of the step just taken (at most ALARM_LINES_PER_BATCH):
        the newest of the partition it learned, from that partition's own monitor (``drift_``), which
        keeps at most ``drift.max_alarms`` of them (the rest are counted in one more line)."""
        total = int(getattr(self.learner, "n_alarms_", 0))
        kept = list(self.learner.drift_.alarms_)
        alarms = kept[-min(new, ALARM_LINES_PER_BATCH, len(kept)):] if kept else []
        for a in alarms:
            log_event(log, "drift_alarm", detector=a.get("detector"), response=a.get("response"),
                      signal=a.get("signal"), t=a.get("t"), recent=a.get("recent"), baseline=a.get("baseline"),
                      alarms_total=total)
        if new > len(alarms):
            log_event(log, "drift_alarm", detail=f"{new - len(alarms)} more alarms in this batch", alarms_total=total)

    # -- the label stores -------------------------------------------------------------------
    def count_labels(self) -> None:
        """Count the rise of the label stores' new-work outcome counts since the last count."""
        now = label_outcomes(self.pending)
        rise = {o: n - s for o, n, s in zip(LABEL_OUTCOMES, now, self._labels_seen) if n > s}
        self._labels_seen = now
        if rise:
            self.metrics.label_outcomes.update(rise)
