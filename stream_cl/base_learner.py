"""What every learner of the engine shares: label checks, River's one/many methods, watching.

A learner implements two batch methods, ``prequential_batch(xs, ys, sample_weight,
partition=)`` (predict then learn each event in order) and ``predict_proba_batch(xs,
partition=)``, plus ``classes_``; :class:`StreamingClassifier` derives River's
``learn_one``/``learn_many``/``predict_*`` from them, feeds the drift monitor and the
homeostasis from the probabilities it scored (:meth:`StreamingClassifier._watch`), cuts a
batch at control points (:func:`control_ends`) and answers :meth:`~StreamingClassifier.status`.

>>> check_label("spam")
>>> check_label(float("nan"))
Traceback (most recent call last):
...
ValueError: label is missing (nan): use predict_one for unlabelled events (None in a batch's labels)
>>> check_weight(0.0)
Traceback (most recent call last):
...
ValueError: sample weight must be a positive finite number from 1e-300 to 1e+50, got 0.0
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
from river import base

from .bounds import MIN_POSITIVE
from .checks import holds_missing
from .encoding import check_frame_columns, frame_rows
from .memory import tensor_bytes
from .monitoring import ContinualMonitoring
from .status import DriftStatus, HeadStatus, LearnerStatus

__all__ = ["MAX_WEIGHT", "MIN_WEIGHT", "StreamingClassifier", "check_event_batch", "check_label", "check_tasks",
           "check_weight", "checked_labels", "control_ends", "frame_weights"]

# The largest sample weight: a row's w x x' stays within 1e250 for values within encoding.MAX_ABS_VALUE (1e100),
# so that sums of any number of rows a stream can bring stay within the 1e300 a part's statistics are
# held to (part_stats.MAX_STATISTIC; review r78: six rows at 1e100 each, w=1e100, made a state that
# would not load). A finite weight such as 1e308 made X'X infinite: the live model, which reads it
# only at a re-anchor, looked fine, and the model restored from its checkpoint was NaN. The smallest:
# a row's noise l / w stays finite (below ~5.6e-309 it overflowed and the batch path's priors were NaN).
MAX_WEIGHT = 1e50
MIN_WEIGHT = MIN_POSITIVE


def check_label(y) -> None:
    """Refuse a label no model can learn: ``None`` (use predict), unhashable, or a missing value
    of any type (NaN, a numpy NaN, ``NaT``, ``pd.NA``), alone or in a tuple: each NaN would be a class
    of its own."""
    if y is None:
        raise ValueError("label is None: use predict_one for unlabelled events")
    try:
        hash(y)
    except TypeError:
        raise TypeError(f"label must be hashable, got {type(y).__name__}") from None
    if holds_missing(y):
        raise ValueError(f"label is missing ({y!r}): use predict_one for unlabelled events (None in a batch's labels)")


def check_tasks(tasks: Sequence | None, n_events: int) -> None:
    """Refuse ``tasks`` that are not one per event, or a task that is not ``None`` (no task), a
    string or an integer -- what the daemon's decoder passes on (:mod:`stream_cl.decode`). Task-aware
    replay groups rows by task: an unhashable task would fail half way through a batch, and each
    NaN would be a group of its own that no longer matches itself after a checkpoint.

    >>> check_tasks(["a", 2, None], n_events=3)
    >>> check_tasks([0, float("nan")], n_events=2)
    Traceback (most recent call last):
    ...
    TypeError: tasks[1] must be a string or an integer (None: no task), got float nan
    """
    if tasks is None:
        return
    if len(tasks) != n_events:
        raise ValueError(f"{n_events} events and {len(tasks)} tasks: give one task per event (None: no task)")
    for i, t in enumerate(tasks):
        if not (t is None or isinstance(t, str) or (isinstance(t, numbers.Integral) and not isinstance(t, bool))):
            raise TypeError(f"tasks[{i}] must be a string or an integer (None: no task), got {type(t).__name__} {t!r}")


def check_weight(w) -> float:
    """``w`` as a float, or refused: a sample weight is a positive finite real number within
    ``MAX_WEIGHT`` (a NaN, an infinite or a huge one would make the model's statistics infinite or
    NaN for good, a zero or negative one divides by zero or unlearns), and one number (a
    one-element array or a ``Decimal`` compares like one, then fails as a weight after the
    learner has changed)."""
    if isinstance(w, bool) or not isinstance(w, numbers.Real):
        raise TypeError(f"sample weight must be one real number, got {type(w).__name__} {w!r}")
    value = float(w)  # first: numpy's float32 would compare the bounds in float32, where 1e-300 is 0 (review r79)
    if not MIN_WEIGHT <= value <= MAX_WEIGHT:  # false for NaN
        raise ValueError(f"sample weight must be a positive finite number from {MIN_WEIGHT:g} to {MAX_WEIGHT:g}, "
                         f"got {w!r}")
    return value


def widened(P: np.ndarray, c: int) -> np.ndarray:
    """Probabilities ``P`` (b, c0) over the first ``c0`` of ``c`` classes, as (b, c): 0 for the rest
    (classes are only ever appended: a batch learned in pieces may end knowing more than it began).

    >>> widened(np.array([[0.25, 0.75]]), 3).tolist()
    [[0.25, 0.75, 0.0]]
    """
    return P if P.shape[1] == c else np.pad(P, ((0, 0), (0, c - P.shape[1])))


def stacked(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Probability blocks of consecutive events, each widened to the last one's classes, one below the other."""
    return parts[0] if len(parts) == 1 else np.vstack([widened(P, parts[-1].shape[1]) for P in parts])


def _holds_no_none(dtype) -> bool:
    """Whether a labels Series of ``dtype`` cannot hold ``None``, so that a missing cell is the ``None`` it was
    made from (review r121 F1): pandas' strings (pandas 3 makes a list of strings and ``None`` a ``str`` Series
    holding NaN), categories, and the nullable integers, floats and booleans (``Int64``, ``Float64``,
    ``boolean``, which hold ``<NA>``). Not numpy's floats (a NaN there may be a value's) nor times (``NaT``).

    >>> [_holds_no_none(pd.Series(v).dtype) for v in (["a", None], [1, None], [1.5, None])]
    [True, False, False]
    >>> _holds_no_none(pd.Int64Dtype()), _holds_no_none(pd.Float64Dtype()), _holds_no_none(np.dtype("M8[ns]"))
    (True, True, False)
    """
    if isinstance(dtype, (pd.StringDtype, pd.CategoricalDtype)):
        return True
    return isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iufb" and dtype.na_value is pd.NA


def _label_list(ys) -> list:
    """``ys`` as a list, if it is one label per event in one dimension (a Series, a list, a tuple,
    a 1-D array): iterating a string, a mapping, a set or a frame gives characters, keys, an
    arbitrary order or column names -- labels no one meant, learned silently (a one-row frame
    taught its column's name as a class) or refused as a count that misleads ("2 events and 1
    labels" for a two-row frame)."""
    what = "a pandas Series or a 1-D sequence of labels, one per row"
    if isinstance(ys, (str, bytes)):
        raise TypeError(f"labels must be {what}, got {type(ys).__name__} {ys[:40]!r}; one event's label: [label]")
    if isinstance(ys, (Mapping, set, frozenset)):
        raise TypeError(f"labels must be {what}, got {type(ys).__name__} (its keys or its order are not labels)")
    if getattr(ys, "ndim", 1) != 1:  # a frame, an (n, 1) array; a list of tuples (tuple labels) has none
        raise ValueError(f"labels must be {what}, got {type(ys).__name__} of shape {np.shape(ys)}; "
                         "a one-column frame: pass its column")
    if isinstance(ys, pd.Series) and ys.dtype != object and ys.hasnans:
        if _holds_no_none(ys.dtype):  # its missing cells are the user's None: rows only predicted
            return [None if m else v for v, m in zip(ys.tolist(), ys.isna().tolist())]
        if ys.dtype.kind == "f":  # ints and None: pandas made floats and NaN
            first = int(np.flatnonzero(ys.isna())[0])
            raise ValueError(f"labels hold NaN in a {ys.dtype} Series (row {first}): pandas turns None among "
                             "numbers into NaN; for rows only predicted pass "
                             "y.astype(object).where(y.notna(), None), or a list with None")
    try:
        return list(ys)
    except TypeError:  # one label, not a sequence of them
        raise TypeError(f"labels must be {what}, got {type(ys).__name__} {ys!r:.40}") from None


def frame_weights(w, n: int):
    """``learn_many``'s sample weights ``w`` for ``n`` rows: one number for every row, as River's batch
    learners take it (``w: float | pd.Series = 1``), or one per row as given (:func:`checked_labels`
    checks those).

    >>> frame_weights(2.0, 3).tolist(), frame_weights(1, 3), frame_weights([1.0, 2.0], 2)
    ([2.0, 2.0, 2.0], None, [1.0, 2.0])
    """
    if w is None or np.ndim(w) != 0:
        return w
    w = check_weight(w)  # a string, a NaN: refused as one event's weight is
    return None if w == 1.0 else np.full(n, w)


def check_event_batch(xs) -> None:
    """A ``TypeError`` that names the fix where ``prequential_batch`` is given something other than a
    sequence of events: a pandas frame (whose iteration gives its column names), or one event.

    >>> check_event_batch(pd.DataFrame({"a": [1.0]}))
    Traceback (most recent call last):
    ...
    TypeError: prequential_batch takes a sequence of events (dicts), got a DataFrame: pass df.to_dict("records"), or learn a frame with learn_many and predict_many
    >>> check_event_batch({"a": 1.0})
    Traceback (most recent call last):
    ...
    TypeError: prequential_batch takes a sequence of events (dicts), got one event (a dict); one event: [x]
    """
    if isinstance(xs, pd.DataFrame):
        raise TypeError('prequential_batch takes a sequence of events (dicts), got a DataFrame: pass '
                        'df.to_dict("records"), or learn a frame with learn_many and predict_many')
    if isinstance(xs, Mapping):
        raise TypeError(f"prequential_batch takes a sequence of events (dicts), got one event (a "
                        f"{type(xs).__name__}); one event: [x]")


def checked_labels(ys: Sequence, n_events: int | None = None, sample_weight=None) -> tuple[list, np.ndarray]:
    """``ys`` as a list (``None``: predict only) and its labelled mask; refuses bad labels, bad
    sample weights (:func:`check_weight`), and labels or sample weights that are not one per event
    (of ``n_events``; weights in one dimension: a list, an array or a Series), before anything is learned.

    >>> checked_labels(["a", None], n_events=2)[1].tolist()
    [True, False]
    >>> checked_labels(["a"], n_events=2)
    Traceback (most recent call last):
    ...
    ValueError: 2 events and 1 labels: give one label per event (None to predict only)
    >>> checked_labels("ab", n_events=2)
    Traceback (most recent call last):
    ...
    TypeError: labels must be a pandas Series or a 1-D sequence of labels, one per row, got str 'ab'; one event's label: [label]
    """
    ys = _label_list(ys)
    if n_events is not None and len(ys) != n_events:
        raise ValueError(f"{n_events} events and {len(ys)} labels: give one label per event (None to predict only)")
    if sample_weight is not None and np.ndim(sample_weight) != 1:
        # a (n, 1) array or a one-column frame has n elements, but a learner that does not ravel
        # it failed to broadcast it after the batch's columns and classes were added
        raise ValueError(f"sample weights must be one number per event in one dimension (a list, an array or a "
                         f"Series), got {type(sample_weight).__name__} of shape {np.shape(sample_weight)}; "
                         "a one-column frame: pass its column")
    if n_events is not None and sample_weight is not None and np.size(sample_weight) != n_events:
        raise ValueError(f"{n_events} events and {np.size(sample_weight)} sample weights: give one weight per event")
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64)
        bad = np.flatnonzero(~((w >= MIN_WEIGHT) & (w <= MAX_WEIGHT)))
        if len(bad):
            check_weight(float(w[bad[0]]))  # the message, for the first one
    for y in ys:
        if y is not None:
            check_label(y)
    return ys, np.array([y is not None for y in ys], dtype=bool)


def control_ends(labelled: np.ndarray, n_before: int, every: int, fresh_pos: np.ndarray, n_rows: int) -> list[int]:
    """Where a batch's rows are cut so that control happens after every ``every``-th labelled
    event of the learner's life, whatever the batching.

    ``fresh_pos[i]`` is the row of event ``i`` (other rows, replayed or pseudo, follow the
    event they belong to); a segment ends where the event after a control point starts.

    >>> control_ends(np.array([True, False, True, True]), n_before=1, every=2, fresh_pos=np.arange(4), n_rows=4)
    [1, 4]
    """
    count = n_before + np.cumsum(labelled)
    cut = np.flatnonzero(labelled & (count % every == 0))  # events ending a segment
    nxt = np.append(fresh_pos, n_rows)  # a segment ends where the next event's rows start
    return sorted(set(nxt[cut + 1].tolist()) | {n_rows})


class StreamingClassifier(ContinualMonitoring, base.MiniBatchClassifier):
    """River's per-event and mini-batch methods on top of a learner's two batch methods."""

    @property
    def _multiclass(self):
        return True

    @property
    def _raw_memory_usage(self) -> int:
        """River's count (numpy arrays' data included) plus the torch tensors' storages, which it counts as
        headers only (:mod:`stream_cl.memory`): what ``show_memory`` and River's memory checks read."""
        return super()._raw_memory_usage + tensor_bytes(self)

    @property
    def feature_names_in_(self) -> list:
        """The inputs' names in column order; with ``hash_width``, the buckets ``0 .. hash_width - 1`` (as
        many as ``AnalyticClassifier.coef_`` has columns: a key's bucket is its hash's)."""
        if self.index_.hash_width is not None:
            return list(range(self.index_.hash_width))
        return list(self.index_.names)

    @property
    def partitions_(self) -> list:
        """The partitions this learner holds a part of (a learner without partitions: none)."""
        return []

    # -- River's methods, from the batch ones ------------------------------------------
    def learn_one(self, x: Mapping, y: Hashable, w: float = 1.0, partition: Hashable = None):
        """Learn one labelled event (``w``: its weight, finite and > 0) in ``partition``'s part; returns
        ``self``, ``x`` untouched. Refused (``ValueError``) before anything changes."""
        check_label(y)
        w = check_weight(w)
        self.prequential_batch([x], [y], None if w == 1.0 else [w], partition=partition)
        return self

    def learn_many(self, X: pd.DataFrame, y: pd.Series, w=None, partition: Hashable = None):
        """Learn a frame's rows in order (``y``: any labels; ``None`` where a row is only predicted, as is a
        missing cell of a Series that cannot hold ``None``: ``str``, ``Int64``...), as many :meth:`learn_one`
        calls would; returns ``self``, ``X`` and ``y`` untouched."""
        rows = frame_rows(X)
        self.prequential_batch(rows, y, frame_weights(w, len(rows)), partition=partition)  # y checked there (checked_labels)
        return self

    def predict_proba_one(self, x: Mapping, partition: Hashable = None) -> dict:
        """``{class: probability}`` for ``x`` in ``partition``'s part, without learning (``{}`` before any label)."""
        rows = self.predict_proba_batch([x], partition=partition)  # (1, n classes); an untrained model judges x too
        return dict(zip(self.classes_, rows[0].tolist()))

    def predict_one(self, x: Mapping, partition: Hashable = None):
        """The most probable class for ``x`` (``None`` before any label)."""
        proba = self.predict_proba_one(x, partition=partition)
        return max(proba, key=proba.get) if proba else None

    def predict_proba_many(self, X: pd.DataFrame, partition: Hashable = None) -> pd.DataFrame:
        """A frame of probabilities, one column per class in ``classes_`` order, on ``X``'s index."""
        P = self.predict_proba_batch(frame_rows(X), partition=partition)  # (b, classes)
        return pd.DataFrame(P, columns=self.classes_, index=X.index)

    def predict_many(self, X: pd.DataFrame, partition: Hashable = None) -> pd.Series:
        """The most probable class of each row, on ``X``'s index."""
        check_frame_columns(X)  # before X.index, below
        if not self.classes_:  # nothing learned yet: the frame is still judged as it would be later (r68 L6)
            self.predict_proba_many(X, partition=partition)
            return pd.Series([None] * len(X), index=X.index, dtype=object)
        return self.predict_proba_many(X, partition=partition).idxmax(axis=1)

    # -- continual-learning parts -------------------------------------------------------
    def _watch(self, P: np.ndarray, classes: list, ys: Sequence, lab: np.ndarray) -> None:
        """Feed each labelled row's 0/1 error and loss (1 - p(label)) to the drift monitor and
        the homeostasis; an alarm is stamped ``t``, the events passed to ``prequential_batch``
        and ``learn_*`` so far (``n_events_`` before these rows, plus the row's position; a
        ``y=None`` row counts, a ``predict_*`` call does not), and handed to :meth:`_on_alarm`.
        So ``t`` depends on the path when a stream has predict-only events: the River loop
        predicts them with ``predict_proba_one`` and learns only the labelled ones. The alarm's
        ``n_labelled`` (labelled events watched) is the same on every path."""
        if self.drift_ is None and self.homeostasis_ is None:
            return
        pos = {c: k for k, c in enumerate(classes)}
        need_on_alarm = self.drift_ is not None and "need" in self.drift_.response
        for j in np.flatnonzero(lab):
            k = pos.get(ys[j], -1)
            row = P[j]
            p_true = float(row[k]) if 0 <= k < row.shape[0] else 0.0
            error = float(not (row.size and row.max() > 0 and int(row.argmax()) == k))
            # a mixture's weights sum to 1 only within rounding: with every member sure of the class
            # (a small temperature) p reads 1 + 2.2e-16, and Homeostasis refused the loss of -2.2e-16
            loss = min(max(1.0 - p_true, 0.0), 1.0)
            alarm = None
            if self.drift_ is not None:
                alarm = self.drift_.update(error, loss, t=self.n_events_ + int(j) + 1)
                if alarm is not None:
                    if self.homeostasis_ is not None:
                        alarm["need"] = self.homeostasis_.need_
                    self._on_alarm(alarm)
            if self.homeostasis_ is not None:
                self.homeostasis_.observe(error, loss, alarm=alarm is not None and need_on_alarm)

    def _on_alarm(self, alarm: dict) -> None:
        """A drift alarm was just raised (a learner with more responses than the monitor's own
        overrides this)."""

    def _load_part_states(self, state: Mapping, names: Sequence[str]) -> None:
        """Load the optional parts ``<name>_`` from ``state[name]``; a part configured on one side
        only is refused, naming it."""
        for name in names:
            part = getattr(self, name + "_")
            if (part is None) != (state[name] is None):
                raise ValueError(f"checkpoint and learner disagree on {name}: configure it the same way")
            if part is not None:
                part.load_state_dict(state[name])

    # -- status ------------------------------------------------------------------------
    def _head_status(self) -> list[HeadStatus]:
        return []

    def _learning_rates(self) -> list | None:
        return None

    def _sgd_weight(self) -> float | None:
        return None

    def status(self) -> LearnerStatus:
        """A snapshot of what the learner knows and how it is set (:mod:`stream_cl.status`)."""
        drift = None
        if self.drift_ is not None:
            d = self.drift_
            drift = DriftStatus(detector=d.detector, response=d.response_name, alarms=self.n_alarms_,
                                counts=self.alarm_counts_, recent=[dict(a) for a in self.alarms_[-5:]])
        index = self.index_
        return LearnerStatus(
            kind=type(self).__name__, classes=list(self.classes_), features=list(index.names),
            category_overflow=int(index.overflow_total), heads=self._head_status(), drift=drift, need=self.need_,
            replay_samples=self.replay_size_ if self.replay_ is not None else None,
            replay_bytes=self.replay_bytes_ if self.replay_ is not None else None,
            learning_rates=self._learning_rates(), partitions=self.partitions_, sgd_weight=self._sgd_weight())
