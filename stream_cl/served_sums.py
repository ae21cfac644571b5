"""The served model of a learner with several parts: the sums of the parts' statistics
(:class:`ServedSums`, a part of :class:`~stream_cl.parts.PartitionedLearner`).

Exact heads serve the sum at every row (learning a row updates its part and the served head by
the same rank-k update). A forgetting head's sum of parts decaying on separate clocks changes by a
full-rank matrix at every row, so between re-sums (:meth:`ServedSums._serve_sums`, at every change
of partition, every ``SUM_EVERY_ROWS`` learned rows and every merge) it decays its served
statistics by the learning partition's share of the forgetting (:meth:`ServedSums._set_served_clocks`).

The learner provides ``_ridge_heads()``, ``_parts`` (key -> :class:`~stream_cl.part_stats.Part`),
``_active``, ``_multi`` and ``_since_sum`` (:class:`~stream_cl.parts.PartitionedLearner`'s).
"""

from __future__ import annotations

from .part_stats import PartStats, install, sum_parts

__all__ = ["ServedSums"]


class ServedSums:
    """The heads as the sums of the parts' statistics (module docstring)."""

    def _serve_sums(self, forgetting_only: bool = False) -> None:
        """Set the heads to the exact sums of the parts' statistics, re-anchored (``install``: R is
        dropped, and rebuilt from the sums by one inverse only when something next reads it)."""
        self._since_sum = 0
        for i, head in enumerate(self._ridge_heads()):
            if forgetting_only and head.ridge.forgetting >= 1.0 and not head.approximate:
                continue  # exact: its served statistics are the sum (another partition's factor may be < 1)
            install(head, [p.stats[i] for p in self._parts.values()])
        self._set_served_clocks()

    def _forgetting_changed(self) -> None:
        """A head's factor was changed (a drift response, homeostasis, ``set_forgetting``): with several
        parts, the served clocks follow it (a stale clock decayed every part by the new factor)."""
        if self._multi:
            self._set_served_clocks()

    def _set_served_clocks(self) -> None:
        """Until the next re-sum, a forgetting head decays its served statistics per row by
        ``1 - (1 - l) s``, ``s`` the learning partition's share of the decayed row mass (X'X's
        bias entry): the exact sum decays that partition's statistics only."""
        part = self._parts.get(self._active) if self._parts else None
        for i, head in enumerate(self._ridge_heads()):
            lam = head.ridge.forgetting
            if not self._multi or lam >= 1.0 or part is None or part.stats is None:
                head.served_forgetting = None
                continue
            mine, total = part.stats[i].A, head.ridge.row_mass()
            # a part with no row yet (made by _enter: its X'X is 0 x 0) holds no share: at 1, a new partition's
            # first run decayed every partition's statistics per row (review r101: 0.43 off the 0.995 head's sums)
            share = (float(mine[0, 0]) if mine.shape[0] else 0.0) / total if total > 0 else 1.0
            head.served_forgetting = 1.0 - (1.0 - lam) * min(max(share, 0.0), 1.0)

    def served_statistics(self) -> list[PartStats]:
        """Per head, the sum of the parts' statistics (the heads' own when there is one part)."""
        heads = self._ridge_heads()
        if not self._multi:
            return [PartStats.from_head(h) for h in heads]
        return [sum_parts(h, [p.stats[i] for p in self._parts.values()]) for i, h in enumerate(heads)]

    def resum(self, forgetting_only: bool = False) -> None:
        """Set the served heads to the exact sums of the parts (after merges with ``resum=False``).
        ``forgetting_only``: only the heads whose served sums drift from the parts' (forgetting or
        approximate ones), as learning does every ``SUM_EVERY_ROWS`` rows; either way the count
        towards the next such re-sum starts again."""
        if self._multi:
            self._serve_sums(forgetting_only)

    def _summed_heads_state(self, head_states: list) -> list:
        """``head_states`` with the statistics replaced by the parts' sums (what ``sufficient_statistics`` reads)."""
        if not self._multi:
            return head_states
        out = []
        for s, st in zip(head_states, self.served_statistics()):
            ridge = dict(s["ridge"])
            A, B = st.la.to_numpy(st.A), st.la.to_numpy(st.B)
            ridge["A"], ridge["B"], ridge["n_rows"] = A.copy(), B.copy(), st.n_rows
            out.append({**s, "ridge": ridge, "counts": st.counts.tolist()})
        return out
