"""Prequential (test-then-train) processing of event batches, and its running report.

:class:`Prequential` is the one step every run loop shares (files, Kafka): predict each
event, then learn it if it has a label. It never lets a bad event through to the model
and never loses one: an event the model rejects becomes a :class:`DeadLetter`.

>>> from stream_cl import AnalyticClassifier
>>> from stream_cl.events import Event
>>> step = Prequential(AnalyticClassifier())
>>> preds, dead = step.process([Event({"a": 1.0}, "x", id="1"), Event({"a": -1.0}, "y", id="2"),
...                            Event({"a": 0.9}, None, id="3")])
>>> [(p.id, p.y_pred) for p in preds], dead
([('1', None), ('2', 'x'), ('3', 'x')], [])
>>> step.stats.report()["labelled"], step.stats.report()["predict_only"]
(2, 1)

A learner with ``time_features=True`` also gets each event's time (``Event.ts``, from
``mapping.timestamp``) as the four columns ``ts.hour_sin``, ``ts.hour_cos``,
``ts.dow_sin``, ``ts.dow_cos`` (see :func:`stream_cl.encoding.time_columns`).
"""

from __future__ import annotations

import inspect
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Protocol

import numpy as np

from .checks import check_int
from .encoding import column_clash, time_columns
from .events import DeadLetter, Event, Prediction
from .features import InvalidFeatureError
from .metrics.prequential import report_names

__all__ = ["Learner", "Prequential", "PrequentialStats"]

AUTO_FIRST_WINDOW = 10  # labelled events per point at the start of an automatic window
AUTO_MAX_POINTS = 100  # then pairs of points merge: between 50 and 100 points
DAEMON_MAX_POINTS = 1000  # a daemon's (or a followed file's) stream never ends: a fixed window keeps the latest this many points


class Learner(Protocol):
    """What a run loop needs of a model (both learners of this package provide it)."""

    @property
    def classes_(self) -> list:
        """The classes seen, in the order of the probability columns."""
        ...

    def prequential_batch(self, xs: Sequence, ys: Sequence, sample_weight=None) -> np.ndarray:
        """Predict, then learn, each event of ``xs`` (feature mappings) in order; ``ys[i] is None``: predict
        only. Probabilities (b, n_classes), each row predicted before its event is learned, in the order of
        ``classes_`` after the batch (0 for a class not seen yet). Raises ``InvalidFeatureError``, ``ValueError``
        or ``TypeError``, having changed nothing, for an event it refuses: :class:`Prequential` then retries the
        events one by one."""
        ...

    def predict_proba_batch(self, xs: Sequence) -> np.ndarray:
        """Probabilities (b, n_classes) in ``classes_`` order, without learning."""
        ...

    def state_dict(self) -> dict:
        """Settings and learned state, everything a restore needs (:meth:`load_state_dict`)."""
        ...

    def load_state_dict(self, state) -> object:
        """Restore a :meth:`state_dict`, all or nothing: ``ValueError``, changing nothing, for one it refuses
        (another kind of learner, other settings); returns the learner."""
        ...


class PrequentialStats:
    """Counts and accuracies of a prequential run, reported as JSON-ready dicts.

    ``window`` labelled events make one point of windowed accuracy. ``None`` chooses it
    as the run goes, whatever its length: windows of :data:`AUTO_FIRST_WINDOW` events
    until there are :data:`AUTO_MAX_POINTS` of them, then neighbours are merged in pairs
    and the window doubles, so a run of any length has 50 to 100 points (fewer only when
    it is short) in bounded memory. A fixed window keeps every point, or its latest
    ``max_points`` (a daemon, or a run following a file: :data:`DAEMON_MAX_POINTS`).

    Each event counts once in ``events`` (``labelled`` + ``predict_only``): an event whose label
    comes later (:meth:`update_joined`) moves from ``predict_only`` to ``labelled`` when it joins.
    Not when it was predicted by another process, or before a restore, or its mark was dropped
    from the daemon's bounded record of counted events (``counted`` false): it is then counted
    in ``labelled`` alone, and ``predict_only`` may hold it too.

    >>> stats = PrequentialStats(window=None)
    >>> stats.update([1] * 5000, [1] * 4000 + [0] * 1000)
    >>> stats.window, len(stats.windows), stats.windows[-1]["accuracy"]
    (80, 62, 0.0)
    """

    def __init__(self, window: int | None = 1000, max_points: int | None = None):
        # a window of 0, a negative one or 2.5 never completed a point: no windowed accuracy all run, silently
        check_int(window, "window", 1, "1000 (labelled events per point), or None (automatic)", optional=True)
        check_int(max_points, "max_points", 1, "1000 (the latest points kept), or None (all)", optional=True)
        self.auto = window is None
        self.max_points = max_points
        self.window = AUTO_FIRST_WINDOW if window is None else window
        self.events = 0
        self.labelled = 0
        self.correct = 0
        self.predict_only = 0
        self.unscored = 0  # delayed labels joined with an event whose published prediction is not known
        self.dead_letters: Counter = Counter()
        self.class_counts: Counter = Counter()  # labels seen
        self.predicted_counts: Counter = Counter()
        self.windows: list[dict] = []  # {"events", "accuracy", "t"} per window of labelled events
        self._win_n = 0
        self._win_hits = 0
        self.started = time.perf_counter()
        self.busy_s = 0.0  # time spent predicting and learning
        self.task_segments = None  # per-task segments and recurrence retention, once events carry tasks
        self.learner_report = None  # the learner's bound report() giving its continual-learning state
        self.feature_report = None  # () -> the learner's column counts and category overflow
        self.classes = None  # () -> the learner's classes: named in the report with those counted

    def update_tasks(self, tasks: Sequence[Hashable | None], y_true: Sequence, y_pred: Sequence) -> None:
        """Per-task prequential segments (:class:`stream_cl.metrics.TaskSegments`) of labelled events."""
        if self.task_segments is None:
            if all(t is None for t in tasks):
                return
            from .metrics import TaskSegments

            self.task_segments = TaskSegments()
        labelled = [(t, float(p == y)) for t, y, p in zip(tasks, y_true, y_pred) if y is not None]
        self.task_segments.update([t for t, _ in labelled], [h for _, h in labelled])

    def update(self, y_true: Sequence[Hashable | None], y_pred: Sequence[Hashable | None]) -> None:
        """Events just predicted (and learned, those with a label ``y_true``)."""
        for t, p in zip(y_true, y_pred):
            self.events += 1
            if p is not None:
                self.predicted_counts[p] += 1
            if t is None:
                self.predict_only += 1
                continue
            self._score(t, p)

    def update_joined(self, y_true: Sequence[Hashable], y_pred: Sequence[Hashable | None],
                      counted: Sequence[bool] | None = None) -> None:
        """Delayed labels ``y_true`` joined with events predicted earlier (``y_pred``, the predictions
        published): the events were counted when predicted, so ``events`` and ``predicted_counts``
        stay; each becomes a labelled one, taken from ``predict_only`` where ``counted`` (one per
        event; default all) says it was counted there (not: predicted before a restore, or elsewhere).

        >>> stats = PrequentialStats()
        >>> stats.update([None, None], ["x", "y"])
        >>> stats.update_joined(["x"], ["x"])
        >>> stats.events, stats.labelled, stats.predict_only, stats.correct
        (2, 1, 1, 1)
        """
        for i, (t, p) in enumerate(zip(y_true, y_pred)):
            if counted is None or counted[i]:
                self.predict_only -= 1
            self._score(t, p)

    def _score(self, t: Hashable, p: Hashable | None) -> None:
        """Count one labelled event: its hit, its class, its window."""
        hit = p == t
        self.labelled += 1
        self.correct += hit
        self.class_counts[t] += 1
        self._win_n += 1
        self._win_hits += hit
        if self._win_n == self.window:
            self.windows.append({"events": self.events, "accuracy": self._win_hits / self._win_n,
                                 "t": round(time.perf_counter() - self.started, 3)})
            self._win_n = self._win_hits = 0
            if self.auto and len(self.windows) >= AUTO_MAX_POINTS:
                self._coarsen()
            elif self.max_points is not None and len(self.windows) > self.max_points:
                del self.windows[0]

    def _coarsen(self) -> None:
        """Merge neighbouring windows in pairs (equal sizes: the mean is the pair's accuracy); double the window."""
        w = self.windows
        self.windows = [{**w[i + 1], "accuracy": (w[i]["accuracy"] + w[i + 1]["accuracy"]) / 2}
                        for i in range(0, len(w) - 1, 2)]
        self.window *= 2

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Count ``letters`` by reason."""
        self.dead_letters.update(d.reason for d in letters)

    @property
    def accuracy(self) -> float:
        """Correct predictions over labelled events so far; NaN before the first."""
        return self.correct / self.labelled if self.labelled else float("nan")

    @property
    def recent_accuracy(self) -> float:
        """Accuracy of the last complete window of labelled events; the running one before the first
        completes (the running window just after one completed had given one event's accuracy: 0.9
        to 0.0 on the progress line; review r95)."""
        if self.windows:
            return self.windows[-1]["accuracy"]
        hits, n = self._win_hits, self._win_n  # read once: a scrape on another thread, as the first window
        return hits / n if n else float("nan")  # completes, read n before its reset and divided by the reset 0 (r149)

    def class_names(self) -> dict:
        """Each class -> its name in the report (:func:`~stream_cl.metrics.report_names`): one
        naming for the learner's classes and those counted, so ``1`` and ``"1"`` stay two.

        >>> stats = PrequentialStats()
        >>> stats.update([1, "1", "1"], [1, 1, "1"])
        >>> stats.class_names(), stats.report()["class_counts"]
        ({1: '1', '1': "'1'"}, {'1': 1, "'1'": 2})
        """
        known = self.classes() if self.classes is not None else ()
        return report_names([*known, *self.class_counts, *self.predicted_counts])

    def report(self) -> dict:
        """The counts and accuracies as a JSON-ready dict: events, labelled, predict-only and unscored ones,
        ``accuracy`` (``None`` before a label) and its windowed points, dead letters by reason, classes counted
        (named by :meth:`class_names`), events per second of the run and of the model's time; per-task
        segments, feature counts and the learner's continual-learning state where there are any."""
        elapsed = time.perf_counter() - self.started
        names = self.class_names()
        return {
            "events": self.events,
            "labelled": self.labelled,
            "predict_only": self.predict_only,
            "unscored": self.unscored,
            "accuracy": self.accuracy if self.labelled else None,
            "windowed_accuracy": list(self.windows),
            "window": self.window,
            "dead_letters": dict(self.dead_letters),
            "dead_letters_total": sum(self.dead_letters.values()),
            "class_counts": {names[k]: v for k, v in self.class_counts.items()},
            "predicted_counts": {names[k]: v for k, v in self.predicted_counts.items()},
            "elapsed_s": elapsed,
            "events_per_s": self.events / elapsed if elapsed > 0 else None,
            "model_events_per_s": self.events / self.busy_s if self.busy_s > 0 else None,
            **({"tasks": self.task_segments.report()} if self.task_segments is not None else {}),
            **({"features": self.feature_report()} if self.feature_report is not None else {}),
            **self._continual(),
        }


    def _continual(self) -> dict:
        """The learner's continual-learning state, and its drift alarms (top level, for plots)."""
        if self.learner_report is None:
            return {}
        rep = self.learner_report()
        learner = getattr(self.learner_report, "__self__", None)
        if getattr(learner, "drift_", None) is not None:
            return {"continual": rep, "alarms": list(learner.alarms_)}
        return {"continual": rep}


class Prequential:
    """Predict, then learn, every event of each batch."""

    def __init__(self, learner: Learner, window: int | None = 1000, max_points: int | None = None,
                 max_classes: int | None = None):
        self.learner = learner
        self.max_classes = max_classes  # None: no bound (model.max_classes; _past_class_bound)
        self.stats = PrequentialStats(window, max_points)
        self.stats.learner_report = getattr(learner, "report", None)  # continual learners: alarms, need, replay
        if hasattr(getattr(learner, "index_", None), "report"):  # read at report time: a restore replaces nothing else
            self.stats.feature_report = lambda: learner.index_.report()
        self.stats.classes = lambda: learner.classes_
        self._takes_tasks = "tasks" in inspect.signature(learner.prequential_batch).parameters
        self._time_features = bool(getattr(learner, "time_features", False))

    def process(self, events: Sequence[Event], partition=None,
                published: Sequence[Prediction | None] | None = None,
                counted: Sequence[bool] | None = None) -> tuple[list[Prediction], list[DeadLetter]]:
        """Predictions for the events the model took, dead letters for any it refused.

        ``partition`` (a source partition's key; ``None``: the learner's one partition) is
        the part of the learner the events belong to: their order within it is what counts.
        ``published`` (one per event, or ``None``) holds the predictions already published for
        events whose delayed label has just come: the accuracies score the label against that
        prediction, and the returned prediction is that one, not the one made now by a model
        that has learned more since. Such events were counted when predicted: the report counts
        them once (see :meth:`PrequentialStats.update_joined`, which ``counted`` goes to). An
        event whose published prediction is not known (``None``: re-read after a restore, or
        restored from a checkpoint that did not keep it) is learned and not scored: it has no
        prediction in the result, and the report counts it in ``unscored`` alone (a prediction
        made by the replay or now would score a prediction nobody was told).
        """
        if not events:
            return [], []
        predictions, dead, start = [], [], 0
        while True:  # up to each event whose label would pass max_classes, then that event, then on
            over = self._past_class_bound(events[start:], partition)
            stop = start + over[0] if over else len(events)
            if stop > start:
                p, d = self._process(events[start:stop], partition, None if published is None else published[start:stop],
                                     None if counted is None else counted[start:stop])
                predictions += p
                dead += d
            if stop == len(events):
                return predictions, dead
            # the events before it are learned or refused now: is it still past the bound?
            if self._past_class_bound(events[stop : stop + 1], partition):
                e = events[stop]
                letter = DeadLetter(_raw(e), "rejected_by_model",
                                    f"label {e.y!r} would be a new class past model.max_classes = {self.max_classes:,} "
                                    f"(each class adds a column to every head): raise the bound, or map the labels "
                                    "to fewer classes", e.origin)
                self.stats.add_dead_letters([letter])
                dead.append(letter)
                start = stop + 1
            else:
                start = stop  # a class the events before it did not take after all: learned with the rest

    def _process(self, events, partition, published, counted) -> tuple[list[Prediction], list[DeadLetter]]:
        """:meth:`process` of events within ``max_classes``."""
        t0 = time.perf_counter()
        task_kw = {}
        if self._takes_tasks and any(e.task is not None for e in events):
            task_kw = {"tasks": [e.task for e in events]}  # task-aware replay
        if partition is not None:
            task_kw["partition"] = partition
        try:
            probas = self.learner.prequential_batch([self._x(e) for e in events], [e.y for e in events], **task_kw)
            kept, dead, at = list(events), [], range(len(events))
        except (InvalidFeatureError, ValueError, TypeError):
            # Validation happens before any state changes, so the batch can be retried
            # event by event to isolate the ones the model refuses.
            kept, dead, rows, at = [], [], [], []
            for i, e in enumerate(events):
                try:
                    one = {**task_kw, **({"tasks": [e.task]} if "tasks" in task_kw else {})}
                    rows.append(self.learner.prequential_batch([self._x(e)], [e.y], **one))
                    kept.append(e)
                    at.append(i)
                except (InvalidFeatureError, ValueError, TypeError) as err:
                    # a feature error has the decoder's code for it (bad_features): one reason, wherever found
                    reason = err.code if isinstance(err, InvalidFeatureError) else "rejected_by_model"
                    dead.append(DeadLetter(_raw(e), reason, str(err), e.origin))
            width = len(self.learner.classes_)
            probas = np.zeros((len(kept), width))
            for i, r in enumerate(rows):
                probas[i, : r.shape[1]] = r[0]
        self.stats.busy_s += time.perf_counter() - t0
        if published is not None:  # joins: scored against what was published (not known: not scored), counted once
            scored = [i for i, j in enumerate(at) if published[j] is not None]
            self.stats.unscored += len(kept) - len(scored)
            kept, predictions = [kept[i] for i in scored], [published[at[i]] for i in scored]
            y_pred = [p.y_pred for p in predictions]
            self.stats.update_joined([e.y for e in kept], y_pred, None if counted is None else [counted[at[i]] for i in scored])
        else:
            predictions = self._predictions(kept, probas)
            y_pred = [p.y_pred for p in predictions]
            self.stats.update([e.y for e in kept], y_pred)
        self.stats.update_tasks([e.task for e in kept], [e.y for e in kept], y_pred)
        self.stats.add_dead_letters(dead)
        return predictions, dead

    def _past_class_bound(self, events: Sequence[Event], partition=None) -> list[int]:
        """Positions of the events whose label would be a class past ``max_classes``, in stream order
        (the first new labels take the room that is left): a label per event that is new every time
        (an order id taken for the label) would otherwise grow every head without end. The classes
        counted are the events' partition's own (``classes_of``, where the learner keeps parts): the
        partition is the unit of state, so a member that takes it over and learns its records again
        makes the same decisions (another member's classes are not this partition's room)."""
        if self.max_classes is None:
            return []
        classes_of = getattr(self.learner, "classes_of", None)
        try:
            known = self.learner.classes_ if classes_of is None else classes_of(partition)
        except (TypeError, ValueError):  # a partition key the learner refuses: it refuses the events, by name
            return []
        room = self.max_classes - len(known)
        if room >= len(events):  # an event brings at most one class
            return []
        known, over = set(known), []
        for i, e in enumerate(events):
            try:
                if e.y is None or e.y in known:
                    continue
            except TypeError:  # an unhashable label: the learner refuses it by name
                continue
            if room > 0:
                known.add(e.y)
                room -= 1
            else:
                over.append(i)
        return over

    def _predictions(self, events: list[Event], probas: np.ndarray) -> list[Prediction]:
        """Each event's most probable class (``None`` before any class, or for a NaN score) and its probability."""
        classes = self.learner.classes_
        if probas.shape[1]:  # one argmax for the batch, not two numpy calls per event
            top = probas.argmax(axis=1)  # (n,)
            best = probas[np.arange(len(top)), top].tolist()
            top = top.tolist()
        else:  # no class yet: no label
            top, best = [0] * len(events), [0.0] * len(events)
        return [Prediction(e.id, classes[k] if p > 0 else None, p if p > 0 else 0.0, e.y, e.task, e.ts, e.origin)
                for e, k, p in zip(events, top, best)]

    def _x(self, e: Event):
        """The features the learner gets: the event's, and its time when the learner takes it."""
        if self._time_features:
            for k in _TIME_KEYS:  # a feature that flattened to "ts.hour_sin": refused, as learn_one refuses it,
                if k in e.x:  # whether or not this event has a time (else it wrote the time columns; r99)
                    raise column_clash(k, e.x[k])
            if e.ts is not None:
                return {**e.x, **time_columns("ts", e.ts)}
        return e.x


_TIME_KEYS = tuple(time_columns("ts", 0.0))  # the time features' names


def _raw(event: Event) -> bytes:
    import json

    return json.dumps({"id": event.id, "x": {str(k): v for k, v in event.x.items()}, "y": event.y},
                      default=str).encode()
