"""Continual-learning scenarios generated locally (no downloads).

* :func:`permuted_digits` -- scikit-learn's bundled 8x8 digits, one fixed pixel
  permutation per task (task 0 unpermuted): *domain-incremental* (same labels, new input
  distribution per task);
* :func:`split_digits` -- the ten digits split into tasks of two classes each:
  *class-incremental* (one head over every class seen, no task identity at test time);
* :func:`drift_stream` -- River's synthetic generators switched abruptly between
  concepts at known change points;
* :func:`power_law_schedule` -- the order in which tasks (or concepts) recur: tasks are
  introduced one by one, and between introductions the next segment revisits task k
  with probability proportional to ``(s - last_seen_k) ** -alpha`` (``s`` the segment),
  the naturalistic-environment statistics of the power-law replay policy;
* :func:`task_stream` -- a stream of labelled events from a list of tasks and a schedule.

Features are dicts with string keys (``"p00"`` ... ``"p63"`` for digits), values scaled
to [0, 1]; labels are ints.

>>> tasks = permuted_digits(n_tasks=3, seed=0)
>>> len(tasks), len(tasks[0].train), len(tasks[0].test), sorted(tasks[0].train[0][0])[:2]
(3, 1347, 450, ['p00', 'p01'])
>>> power_law_schedule(n_tasks=3, n_segments=8, alpha=1.0, seed=0)
[0, 1, 2, 2, 2, 2, 2, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DriftStream",
    "Task",
    "TaskStream",
    "digits_arrays",
    "drift_stream",
    "permuted_digits",
    "power_law_schedule",
    "split_digits",
    "task_stream",
]


@dataclass
class Task:
    """One task: its name, classes, and train/test events ``(dict, label)``."""

    name: str
    train: list
    test: list
    classes: list = field(default_factory=list)


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: ``X`` (1797, 64) in [0, 1], ``y`` (1797,) ints."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float64) / 16.0, d.target.astype(np.int64)


def _split(n: int, y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    return np.sort(tr), np.sort(te)


def _events(X: np.ndarray, y: np.ndarray) -> list:
    keys = [f"p{j:02d}" for j in range(X.shape[1])]
    return [(dict(zip(keys, row)), int(label)) for row, label in zip(X.tolist(), y.tolist())]


def permuted_digits(n_tasks: int = 10, seed: int = 0, test_size: float = 0.25) -> list[Task]:
    """Domain-incremental permuted digits: task ``k`` permutes the 64 pixels with its own
    fixed permutation (task 0: identity). The same train/test split for every task."""
    X, y = digits_arrays()
    tr, te = _split(len(y), y, test_size, seed)
    rng = np.random.default_rng([seed, 101])
    tasks = []
    for k in range(n_tasks):
        perm = np.arange(X.shape[1]) if k == 0 else rng.permutation(X.shape[1])
        Xp = X[:, perm]
        tasks.append(Task(f"permutation-{k}", _events(Xp[tr], y[tr]), _events(Xp[te], y[te]), list(range(10))))
    return tasks


def split_digits(n_tasks: int = 5, seed: int = 0, test_size: float = 0.25) -> list[Task]:
    """Class-incremental split digits: task ``k`` holds classes ``{2k, 2k+1}`` (for 5 tasks)."""
    X, y = digits_arrays()
    tr, te = _split(len(y), y, test_size, seed)
    groups = np.array_split(np.arange(10), n_tasks)
    tasks = []
    for k, cls in enumerate(groups):
        mtr, mte = np.isin(y[tr], cls), np.isin(y[te], cls)
        tasks.append(Task(f"classes-{'-'.join(map(str, cls))}", _events(X[tr][mtr], y[tr][mtr]),
                          _events(X[te][mte], y[te][mte]), [int(c) for c in cls]))
    return tasks


def power_law_schedule(n_tasks: int, n_segments: int, alpha: float = 1.0, seed: int = 0,
                       introduce_every: int | None = None) -> list[int]:
    """Task of each segment: new tasks every ``introduce_every`` segments (default: spread
    over the first half), otherwise task k with probability ``(s - last_seen_k) ** -alpha``
    among the tasks introduced so far (``s - last_seen_k >= 1``; the task of the previous
    segment has the largest weight, so tasks persist and recur at power-law intervals)."""
    if n_segments < n_tasks:
        raise ValueError(f"n_segments ({n_segments}) must be at least n_tasks ({n_tasks})")
    every = introduce_every or max(1, n_segments // (2 * n_tasks))
    rng = np.random.default_rng([seed, 202])
    last: dict[int, int] = {}
    out = []
    for s in range(n_segments):
        k_new = len(last)
        if k_new < n_tasks and (s >= k_new * every or n_segments - s <= n_tasks - k_new):
            task = k_new
        else:
            ks = np.array(sorted(last))
            w = (s - np.array([last[k] for k in ks], dtype=float)) ** -alpha
            task = int(ks[np.searchsorted(np.cumsum(w), rng.random() * w.sum(), side="right").clip(max=len(ks) - 1)])
        last[task] = s
        out.append(task)
    return out


@dataclass
class TaskStream:
    """Events of a task stream with the task of each event and the segment boundaries."""

    events: list  # (dict, label)
    tasks: list  # task index per event
    segments: list  # (task, start, end) per segment
    schedule: list


def task_stream(tasks: Sequence[Task], schedule: Sequence[int], segment_events: int, seed: int = 0) -> TaskStream:
    """Concatenate ``segment_events`` events of ``tasks[schedule[s]]`` per segment; each task's
    training events are drawn in a fresh random order each pass (epochs without repeats)."""
    rng = np.random.default_rng([seed, 303])
    queues: dict[int, list] = {}
    events, owner, segments = [], [], []
    for t in schedule:
        start = len(events)
        for _ in range(segment_events):
            q = queues.get(t)
            if not q:
                q = queues[t] = list(rng.permutation(len(tasks[t].train)))
            events.append(tasks[t].train[q.pop()])
            owner.append(int(t))
        segments.append((int(t), start, len(events)))
    return TaskStream(events, owner, segments, list(schedule))


@dataclass
class DriftStream:
    """A stream with abrupt concept changes at known positions."""

    name: str
    events: list  # (dict, label)
    change_points: list  # event indices where a new concept starts
    concepts: list  # concept of each segment


_CONCEPTS = {"sea": 4, "agrawal": 10, "stagger": 3, "sine": 4, "mixed": 2}


def _generator(name: str, concept: int, seed: int):
    from river.datasets import synth

    if name == "sea":
        return synth.SEA(variant=concept, seed=seed, noise=0.05)
    if name == "agrawal":
        return synth.Agrawal(classification_function=concept, seed=seed, perturbation=0.05)
    if name == "stagger":
        return synth.STAGGER(classification_function=concept, seed=seed, balance_classes=True)
    if name == "sine":
        return synth.Sine(classification_function=concept, seed=seed, has_noise=False)
    if name == "mixed":
        return synth.Mixed(classification_function=concept, seed=seed)
    raise ValueError(f"unknown drift stream {name!r}; use one of {', '.join(_CONCEPTS)}")


def drift_stream(name: str, n_events: int, change_points: Sequence[int], concepts: Sequence[int] | None = None,
                 seed: int = 0) -> DriftStream:
    """River's ``name`` generator (sea, agrawal, stagger, sine, mixed) switching concept at each
    change point. ``concepts`` gives the concept of each of the ``len(change_points) + 1``
    segments (default: cycling through the generator's concepts; pass a
    :func:`power_law_schedule` for power-law recurrence).

    >>> s = drift_stream("sea", 300, [100, 200], seed=1)
    >>> len(s.events), s.change_points, s.concepts
    (300, [100, 200], [0, 1, 2])
    """
    cps = sorted(int(c) for c in change_points)
    if cps and (cps[0] <= 0 or cps[-1] >= n_events):
        raise ValueError("change points must lie strictly inside the stream")
    n_concepts = _CONCEPTS.get(name)
    if n_concepts is None:
        raise ValueError(f"unknown drift stream {name!r}; use one of {', '.join(_CONCEPTS)}")
    concepts = list(concepts) if concepts is not None else [i % n_concepts for i in range(len(cps) + 1)]
    if len(concepts) != len(cps) + 1:
        raise ValueError(f"need {len(cps) + 1} concepts for {len(cps)} change points, got {len(concepts)}")
    bounds = [0, *cps, n_events]
    events = []
    for s, concept in enumerate(concepts):
        gen = _generator(name, int(concept), seed * 1000 + s)
        n = bounds[s + 1] - bounds[s]
        for x, y in gen.take(n):
            events.append(({str(k): float(v) for k, v in x.items()}, _label(y)))
    return DriftStream(name, events, cps, [int(c) for c in concepts])


def _label(y):
    if isinstance(y, (bool, np.bool_)):
        return int(y)
    return int(y) if isinstance(y, (int, np.integer)) else y
