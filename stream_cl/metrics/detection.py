"""Drift detection against known change points: delay, misses and false alarms.

An alarm *detects* change point ``c_i`` if it is the first alarm in
``[c_i, min(c_{i+1}, c_i + max_delay))``; its delay is ``alarm - c_i``. Every other
alarm is a false alarm (reported per 10,000 events). Alarms and change points count events the same way
(``benchmarks/continual.py``: 0-based indices, a change point being its first event of the new concept).

>>> r = detection_report([120, 130, 700, 1150], change_points=[100, 1000], n_events=2000, max_delay=500)
>>> r["detected"], r["missed"], r["mean_delay"], r["false_alarms"], r["false_alarms_per_10k"]
(2, 0, 85.0, 2, 10.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["detection_report"]


def detection_report(alarms: Sequence[int], change_points: Sequence[int], n_events: int,
                     max_delay: int | None = None) -> dict:
    alarms = sorted(int(a) for a in alarms)
    cps = sorted(int(c) for c in change_points)
    delays, used = [], set()
    for i, c in enumerate(cps):
        end = cps[i + 1] if i + 1 < len(cps) else n_events + 1
        if max_delay is not None:
            end = min(end, c + max_delay)
        hit = next((k for k, a in enumerate(alarms) if c <= a < end), None)
        if hit is not None:
            delays.append(alarms[hit] - c)
            used.add(hit)
    false = len(alarms) - len(used)
    return {
        "alarms": len(alarms),
        "detected": len(delays),
        "missed": len(cps) - len(delays),
        "delays": delays,
        "mean_delay": float(np.mean(delays)) if delays else None,
        "false_alarms": false,
        "false_alarms_per_10k": false * 10_000 / n_events if n_events else None,
    }
