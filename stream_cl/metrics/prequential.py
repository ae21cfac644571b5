"""Prequential lifelong metrics from a live stream: per-task segments and recurrence retention.

A run loop sees each event's task (when events carry one) and whether the prediction
was right. :class:`TaskSegments` cuts the stream into *segments* (maximal runs of one
task) and, when a task recurs, compares the accuracy on its first ``probe`` events back
with the accuracy on the last ``probe`` events of its previous segment: the
*recurrence retention* (0: nothing lost while away; negative: forgotten). This is the
prequential counterpart of backward transfer for streams without held-out data.

It also fills a prequential *accuracy matrix* (tasks in first-seen order): row ``i`` is
the moment task ``i``'s first segment ended; its diagonal is the accuracy over that
segment's last ``probe`` events, and entry ``(i, j)`` the accuracy over the first
``probe`` events of task ``j``'s next segment after it (``None`` if ``j`` has not come
back since). Without held-out data this is how well the learner did on each task when
it next met it.

>>> seg = TaskSegments(probe=2)
>>> seg.update(["a"] * 4 + ["b"] * 4 + ["a"] * 4, [1, 1, 1, 1] + [0, 1, 1, 1] + [0, 1, 1, 1])
>>> r = seg.report()
>>> r["segments"], r["recurrences"], r["mean_retention"]
(3, 1, -0.5)
>>> r["tasks"], r["accuracy_matrix"]
(['a', 'b'], [[1.0, 0.5], [0.5, 1.0]])
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from ..checks import check_int

__all__ = ["TaskSegments", "report_names"]


def report_names(keys: Iterable[Hashable]) -> dict:
    """Each of ``keys`` (classes, tasks) -> its name in a JSON report, where keys are text:
    ``str(key)``, unless two keys share it (the label ``1`` and the label ``"1"`` are two
    classes): then ``repr(key)`` for those, so that no two keys' counts merge.

    >>> report_names(["cat", 1, "1", True])  # True == 1 in Python: one class, named by the first
    {'cat': 'cat', 1: '1', '1': "'1'"}
    """
    names: dict = {}
    for k in keys:
        names.setdefault(k, str(k))  # keys equal in Python (True, 1) are one: the first names it
    shared = Counter(names.values())
    if len(shared) < len(names):
        names = {k: repr(k) if shared[n] > 1 else n for k, n in names.items()}
        if len(set(names.values())) < len(names):  # "'1'" beside "1" and 1: a repr each
            names = {k: repr(k) for k in names}
    return names


class TaskSegments:
    """Per-task segments of a prequential stream, in bounded memory: the last ``keep`` segments, and
    per-task state (matrix row, last tail, retention) for the first ``MAX_TASKS`` tasks only.

    Those tracked tasks are the ones the accuracy matrix reports (the first seen, at the end of
    their first segment). A segment of any later task is kept among the recent segments (its
    ``retention`` None) and counted in ``untracked_segments`` / ``untracked_events``; its
    recurrences are not measured (that would take state per task ever seen: a stream whose task
    is a session id would grow forever). With at most ``MAX_TASKS`` tasks nothing is untracked.

    Segments follow the order in which events are scored: with delayed labels, their labels' order
    of arrival, so labels out of order around a task boundary can split a segment (review r143).
    """

    MAX_TASKS = 100  # tasks in the accuracy matrix (the first ones seen), and the only ones with state

    def __init__(self, probe: int = 100, keep: int = 200):
        # probe 0 made every head and tail the mean of nothing (NaN in a "JSON-ready" report, a warning per
        # segment), a negative one a ValueError at the first event; keep None kept every segment (unbounded)
        check_int(probe, "probe", 1, "100 (events at each end of a segment)")
        check_int(keep, "keep", 0, "200 (recent segments)")
        self.probe = probe
        self.keep = keep
        self.order: list = []  # tasks of the matrix, first-seen order (the tracked tasks)
        self.matrix: dict = {}  # task i -> {task j -> accuracy}, tracked tasks only
        self.segments: deque = deque(maxlen=keep)  # finished segments, dicts
        self.current: dict | None = None
        self.last_tail: dict = {}  # tracked task -> accuracy over the last `probe` events of its latest segment
        self.retention: dict = {}  # tracked task -> [sum, count] of recurrence retention
        self.n_segments = 0
        self.events = 0
        self.untracked_segments = 0  # segments of tasks past MAX_TASKS
        self.untracked_events = 0  # their events

    def update(self, tasks: Sequence[Hashable | None], hits: Sequence[float]) -> None:
        """Add events in order: their tasks (None: none) and hits (1.0 right, 0.0 wrong)."""
        for task, hit in zip(tasks, hits):
            self.events += 1
            if task is None:
                continue
            cur = self.current
            if cur is None or cur["task"] != task:
                self._close()
                cur = self.current = {"task": task, "start": self.events - 1, "n": 0, "hits": 0.0,
                                      "head": [], "tail": deque(maxlen=self.probe)}
            cur["n"] += 1
            cur["hits"] += float(hit)
            if len(cur["head"]) < self.probe:
                cur["head"].append(float(hit))
            cur["tail"].append(float(hit))

    def _tracked(self, task: Hashable) -> bool:
        """Whether ``task`` has (or, its first segment ending now, gets) per-task state."""
        return task in self.matrix or len(self.order) < self.MAX_TASKS

    def _close(self) -> None:
        cur = self.current
        if cur is None:
            return
        task = cur["task"]
        tracked = self._tracked(task)
        head = float(np.mean(cur["head"]))
        seg = {"task": _jsonable(task), "start": cur["start"], "events": cur["n"], "accuracy": cur["hits"] / cur["n"],
               "head_accuracy": head, "retention": None}
        if tracked:
            if task in self.last_tail:
                seg["retention"] = head - self.last_tail[task]
                acc = self.retention.setdefault(task, [0.0, 0])
                acc[0] += seg["retention"]
                acc[1] += 1
            tail = float(np.mean(cur["tail"]))
            for i, row in self.matrix.items():  # rows whose first segment ended before this one
                if i != task and task not in row:
                    row[task] = head
            if task not in self.matrix:
                self.order.append(task)
                self.matrix[task] = {task: tail}
            self.last_tail[task] = tail
        else:
            self.untracked_segments += 1
            self.untracked_events += cur["n"]
        self.segments.append(seg)
        self.n_segments += 1
        self.current = None

    def report(self) -> dict:
        """JSON-ready summary (the current segment is included as if it ended now, and the state put
        back after: per-task state is bounded by ``MAX_TASKS``, so the copy is O(MAX_TASKS ** 2), not
        of the tasks ever seen)."""
        saved = (self.current, dict(self.last_tail), {k: list(v) for k, v in self.retention.items()},
                 list(self.segments), self.n_segments, list(self.order), {k: dict(v) for k, v in self.matrix.items()},
                 self.untracked_segments, self.untracked_events)
        if self.current is not None:
            cur = self.current
            self.current = {**cur, "head": list(cur["head"]), "tail": deque(cur["tail"], maxlen=self.probe)}
            self._close()
        names = report_names(self.last_tail)  # every tracked task met (those with a retention among them)
        total = sum(v[0] for v in self.retention.values())
        count = sum(v[1] for v in self.retention.values())
        out = {
            "segments": self.n_segments,
            "recurrences": count,
            "mean_retention": total / count if count else None,
            "retention_by_task": {names[k]: v[0] / v[1] for k, v in self.retention.items()},
            "recent_segments": list(self.segments)[-20:],
            "probe": self.probe,
            "tasks": [_jsonable(t) for t in self.order],
            "accuracy_matrix": [[self.matrix[i].get(j) for j in self.order] for i in self.order],
            "accuracy_matrix_kind": "prequential: diagonal at the end of a task's first segment, "
                                    "off-diagonal at the next segment of the column's task",
            "max_tasks": self.MAX_TASKS,
            "untracked_segments": self.untracked_segments,
            "untracked_events": self.untracked_events,
        }
        (self.current, self.last_tail, self.retention, segments, self.n_segments, self.order, self.matrix,
         self.untracked_segments, self.untracked_events) = saved
        self.segments = deque(segments, maxlen=self.keep)
        return out


def _jsonable(v):
    return v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
