"""Lifelong-learning metrics from a per-task accuracy matrix and learning curves.

``R[r][j]`` is the accuracy on task ``j``'s held-out data after training phase ``r``
(the phases are the stream's segments, ``trained[r]`` the task of phase ``r``; a task
may recur). Every task is evaluated after every phase, including tasks not yet seen
(for forward transfer). With one phase per task in order this is the usual T x T
matrix and the definitions reduce to the standard ones, but for forgetting's maximum, taken
over the phases from the task's first training on (Chaudhry et al. take it over every earlier
phase, so an untrained model's lucky score on a task counts as knowledge lost).

Continual-learning metrics (Lopez-Paz and Ranzato 2017; Chaudhry et al. 2018):

* **average accuracy** -- mean of the last row over the tasks trained so far;
* **backward transfer (BWT)** -- mean over those tasks (but the last phase's) of
  ``R[-1][j] - R[l_j][j]``, ``l_j`` the last phase that trained ``j``: negative is forgetting;
* **forgetting** -- mean of ``max_{f_j <= r < T-1} R[r][j] - R[-1][j]`` (best accuracy
  ever reached on ``j`` minus the final one), ``f_j`` the first phase of ``j``;
* **forward transfer (FWT)** -- mean over tasks first trained at ``f_j > 0`` of
  ``R[f_j - 1][j] - b_j``, ``b_j`` the accuracy of the untrained model (``baseline``).

The domain-agnostic lifelong-learning set (New et al. 2022, "Lifelong learning metrics"):

* **performance maintenance (PM)** -- mean over tasks and later phases that did not
  train them of ``R[r][j] - R[m][j]``, ``m`` the latest phase before ``r`` that trained
  ``j`` (negative: knowledge decays while other tasks are learned);
* **performance relative to a single-task expert (RP)** -- per task, the area under the
  lifelong learner's learning curve on that task over the area under the curve of an
  expert trained on that task alone (same events, same order); mean over tasks;
* **sample efficiency (SE)** -- per task, ``(S_LL / S_STE) * (E_STE / E_LL)``, ``S`` the
  saturation (best accuracy over a moving window) and ``E`` the events needed to reach it; mean.

>>> R = [[0.9, 0.1, 0.1], [0.8, 0.9, 0.2], [0.7, 0.8, 0.9]]
>>> trained = [0, 1, 2]
>>> round(average_accuracy(R, trained), 4), round(backward_transfer(R, trained), 4), round(forgetting(R, trained), 4)
(0.8, -0.15, 0.15)
>>> round(forward_transfer(R, trained, baseline=[0.1, 0.1, 0.1]), 4), round(performance_maintenance(R, trained), 4)
(0.05, -0.1333)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..checks import check_int

__all__ = [
    "average_accuracy",
    "backward_transfer",
    "forgetting",
    "forward_transfer",
    "learning_curve",
    "lifelong_report",
    "performance_maintenance",
    "relative_performance",
    "sample_efficiency",
]


def _matrix(R, trained: Sequence[int]) -> np.ndarray:
    """``R`` as a float matrix, checked against ``trained``: one row per phase, task ids
    that are columns of ``R``."""
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2:
        raise ValueError(f"R must be a matrix (phases x tasks), got shape {R.shape}")
    n = len(trained)
    if n == 0:
        raise ValueError("trained is empty: give the task of each training phase, e.g. trained=[0, 1, 2]")
    if R.shape[0] != n:
        raise ValueError(f"R has {R.shape[0]} rows but trained names {n} phases: R needs one row per phase, the "
                         "accuracies after that phase (an evaluation before any training is not a row of R; "
                         "pass it as forward_transfer's baseline)")
    bad = [t for t in trained if not (isinstance(t, (int, np.integer)) and not isinstance(t, bool)
                                      and 0 <= t < R.shape[1])]
    if bad:
        raise ValueError(f"trained names task {bad[0]!r}, not a column of R (tasks 0..{R.shape[1] - 1}): "
                         "give each phase's task as the index of its column in R")
    return R


def _window(window) -> int:
    check_int(window, "window", 1, "100 (events)")
    return int(window)


def _phases(trained: Sequence[int], j: int) -> np.ndarray:
    return np.flatnonzero(np.asarray(trained) == j)


def _seen(trained: Sequence[int]) -> list[int]:
    return sorted(set(int(t) for t in trained))


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def average_accuracy(R, trained: Sequence[int]) -> float:
    R = _matrix(R, trained)
    return _mean([R[-1, j] for j in _seen(trained)])


def backward_transfer(R, trained: Sequence[int]) -> float:
    R = _matrix(R, trained)
    last_task = int(trained[-1])
    return _mean([R[-1, j] - R[_phases(trained, j)[-1], j] for j in _seen(trained) if j != last_task])


def forgetting(R, trained: Sequence[int]) -> float:
    R = _matrix(R, trained)
    last_task = int(trained[-1])
    out = []
    for j in _seen(trained):
        if j == last_task:
            continue
        first = _phases(trained, j)[0]
        out.append(R[first : len(trained) - 1, j].max() - R[-1, j])
    return _mean(out)


def forward_transfer(R, trained: Sequence[int], baseline: Sequence[float]) -> float:
    R = _matrix(R, trained)
    if len(baseline) != R.shape[1]:
        raise ValueError(f"baseline has {len(baseline)} values for {R.shape[1]} tasks: give the untrained "
                         "model's accuracy on every task (one per column of R)")
    out = []
    for j in _seen(trained):
        first = _phases(trained, j)[0]
        if first > 0:
            out.append(R[first - 1, j] - float(baseline[j]))
    return _mean(out)


def performance_maintenance(R, trained: Sequence[int]) -> float:
    R = _matrix(R, trained)
    out = []
    for j in _seen(trained):
        mine = _phases(trained, j)
        for r in range(mine[0] + 1, len(trained)):
            if trained[r] == j:
                continue
            m = mine[mine < r][-1]
            out.append(R[r, j] - R[m, j])
    return _mean(out)


def learning_curve(hits: Sequence[float], window: int) -> np.ndarray:
    """Moving average of prequential hits over ``window`` events (shorter at the start).

    >>> learning_curve([0, 1, 1, 1], 2).tolist()
    [0.0, 0.5, 1.0, 1.0]
    """
    window = _window(window)
    h = np.asarray(hits, dtype=np.float64)
    if not h.size:
        return h
    c = np.cumsum(np.insert(h, 0, 0.0))
    idx = np.arange(1, h.size + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def relative_performance(ll_hits: Mapping, ste_hits: Mapping) -> float:
    """Mean over tasks of area(lifelong curve) / area(single-task expert curve) on the same events.

    >>> relative_performance({0: [1, 1, 0, 1]}, {0: [0, 1, 1, 1]})
    1.0
    """
    out = []
    for task, ll in ll_hits.items():
        ste = ste_hits.get(task)
        if ste is None:
            continue
        n = min(len(ll), len(ste))
        area_ste = float(np.sum(ste[:n]))
        if n and area_ste > 0:
            out.append(float(np.sum(ll[:n])) / area_ste)
    return _mean(out)


def _saturation(hits, window: int, tol: float) -> tuple[float, int]:
    """Saturation value (best accuracy over full windows of ``window`` events) and the events
    consumed when a window first comes within ``tol`` of it.

    Compared as hit counts per window, not as averages: at the default ``tol`` (one hit in a
    window of 100) a window one hit below the best sits exactly on the threshold, and averages
    from ``np.convolve`` passed or failed it by rounding, which differs between OpenBLAS kernels
    and memory alignments, so ``E`` (and SE) moved with the machine. Differences of a cumulative
    sum are exact for 0/1 hits (whole numbers far below 2**53)."""
    h = np.asarray(hits, dtype=np.float64)
    w = min(window, h.size)
    c = np.cumsum(np.insert(h, 0, 0.0))
    counts = c[w:] - c[:-w]  # hits of each full window only: no noisy short prefixes
    best = float(counts.max())
    return best / w, int(np.flatnonzero(counts >= best - _hit_slack(tol, w))[0]) + w


def _hit_slack(tol: float, w: int) -> float:
    """``tol`` as hits of a window of ``w``; a whole number when it is one but for the float
    error of ``tol`` (0.29 * 100 is 28.999999999999996: the window 29 hits below the best is
    meant to pass)."""
    slack = tol * w
    nearest = round(slack)
    return float(nearest) if abs(slack - nearest) <= 1e-9 * max(1.0, abs(slack)) else slack


def sample_efficiency(ll_hits: Mapping, ste_hits: Mapping, window: int = 100, tol: float = 0.01) -> float:
    """Mean over tasks of ``(S_LL / S_STE) * (E_STE / E_LL)`` on smoothed learning curves.

    ``S`` is the saturation value (best accuracy over a moving window of ``window``
    events), ``E`` the events consumed until a window first comes within ``tol`` of it.
    Above 1: the lifelong learner reaches as good a level with fewer of the task's
    events (it transfers from other tasks).

    >>> sample_efficiency({0: [1, 1, 1, 1, 1]}, {0: [0, 0, 1, 1, 1]}, window=2)  # saturated after 2 events vs 4
    2.0
    """
    window = _window(window)
    out = []
    for task, ll in ll_hits.items():
        ste = ste_hits.get(task)
        if ste is None or not len(ll) or not len(ste):
            continue
        n = min(len(ll), len(ste))
        s_ll, e_ll = _saturation(ll[:n], window, tol)
        s_ste, e_ste = _saturation(ste[:n], window, tol)
        if s_ste > 0:
            out.append((s_ll / s_ste) * (e_ste / e_ll))
    return _mean(out)


def lifelong_report(R, trained: Sequence[int], baseline: Sequence[float] | None = None,
                    ll_hits: Mapping | None = None, ste_hits: Mapping | None = None, window: int = 100) -> dict:
    """Every metric above as a JSON-ready dict (``None`` where not defined)."""

    def clean(v):
        return None if v is None or not np.isfinite(v) else float(v)

    R = _matrix(R, trained)
    out = {
        "R": [[clean(v) for v in row] for row in R.tolist()],  # (a NaN is not JSON)
        "trained": [int(t) for t in trained],
        "average_accuracy": clean(average_accuracy(R, trained)),
        "backward_transfer": clean(backward_transfer(R, trained)),
        "forgetting": clean(forgetting(R, trained)),
        "forward_transfer": clean(forward_transfer(R, trained, baseline)) if baseline is not None else None,
        "performance_maintenance": clean(performance_maintenance(R, trained)),
        "relative_performance": None,
        "sample_efficiency": None,
    }
    if ll_hits is not None and ste_hits is not None:
        out["relative_performance"] = clean(relative_performance(ll_hits, ste_hits))
        out["sample_efficiency"] = clean(sample_efficiency(ll_hits, ste_hits, window))
    return out
