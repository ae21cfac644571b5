"""Events in, predictions and dead letters out: the records every connector speaks.

The engine defines them (and the decoder in :mod:`stream_cl.decode`); connectors only
move bytes. An :class:`Event` that exists has been validated: flat features whose
values are finite floats, strings (categories) or ``None`` (missing), a hashable
label or none.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, Sequence

__all__ = ["DeadLetter", "Event", "Prediction", "DeadLetterSink", "PredictionSink", "Source", "REASONS", "Batch",
           "PartitionedSource", "TransactionalPublisher"]

# Stable reason codes for dead letters (also Prometheus label values).
REASONS = (
    "oversized",  # the raw record is larger than mapping.max_event_bytes
    "malformed",  # not parseable (bad JSON, bad CSV row, bad encoding)
    "not_an_object",  # valid JSON, but not an object
    "missing_features",  # the features field/columns are absent
    "bad_features",  # the features field is neither an object nor a list, or two values flatten to one key (column)
    "wrong_type",  # a feature value is none of number, string, boolean, null, object, array
    "non_finite",  # a feature value is infinite, or NaN with mapping.nan_policy = "reject"
    "too_many_features",  # more than mapping.max_features features (after flattening)
    "unknown_field",  # a top-level field outside the mapping (unknown_fields = "reject")
    "missing_label",  # no label where labels are required
    "bad_label",  # a label that is not a string, integer or boolean
    "bad_id",  # an id that is not a string or integer
    "bad_timestamp",  # a timestamp that is neither a number nor ISO 8601
    "rejected_by_model",  # decoded, but the model refused it (e.g. a shape it cannot take)
    "too_deep",  # features nested deeper than mapping.max_depth
)


@dataclass(frozen=True, slots=True)
class Event:
    """A validated event: features, and optionally a label, id, task and time."""

    x: Mapping[Hashable, float | str | None]
    y: Hashable | None = None
    id: str | None = None
    task: Hashable | None = None
    ts: float | None = None  # seconds since the epoch
    origin: str = ""  # where it came from: "path:line" or "topic/partition@offset"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not become an event, kept whole with the reason."""

    raw: bytes | None  # None: a Kafka record with a null value (a tombstone), published as one
    reason: str  # one of REASONS
    detail: str  # human-readable explanation
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Prediction:
    id: str | None
    y_pred: Hashable | None
    proba: float  # probability of y_pred
    y_true: Hashable | None = None
    task: Hashable | None = None
    ts: float | None = None
    origin: str = ""
    extra: Mapping = field(default_factory=dict)


class Source(Protocol):
    """Where a run's events come from (:func:`connectors.run.run_file` reads one; ``connectors.files.FileSource``).
    ``poll`` returns decoded records, at most ``max_records``; used as a context manager, it is closed
    however the run ends."""

    exhausted: bool  # no more records will ever come (a finished file)
    raw: Mapping  # origin -> the record as read (bytes or text), for the dead letters of events the model refused
    error: str | None  # why the source ended before its end (a gzip stream cut short); None: read to its end

    def poll(self, max_records: int) -> Sequence[Event | DeadLetter]:
        """Up to ``max_records`` decoded records in the source's order; ``[]`` when none is ready now (tail mode
        waits for data briefly, at most once) or after the end (``exhausted``). A record that cannot become an
        event is a :class:`DeadLetter`, not an error; sets ``raw`` to this poll's records."""
        ...

    def take_warnings(self) -> list[str]:
        """Mapping mistakes found so far (a field or column the mapping names that never
        appears), each returned once; see :mod:`stream_cl.mapping_check`."""
        ...

    def close(self) -> None:
        """Release the file; a poll waiting for data wakes, and ``exhausted`` is true from then on."""
        ...

    def __enter__(self) -> "Source": ...

    def __exit__(self, *exc) -> None: ...


class PredictionSink(Protocol):
    """Where a run's predictions go (``connectors.files.JsonlPredictionSink``); a context manager too."""

    def write(self, predictions: Sequence[Prediction]) -> None:
        """Append ``predictions`` in order (one JSON line each in the file sink); durable only after
        :meth:`flush`. Raises ``ValueError`` once the sink is closed."""
        ...

    def flush(self) -> None:
        """Make what was written durable (fsync for a regular file); raises ``OSError`` where it cannot."""
        ...

    def close(self) -> None:
        """Flush and close; a flush's error is raised once, here, and the sink is closed all the same."""
        ...


class DeadLetterSink(Protocol):
    """Where a run's dead letters go, each with its reason (``connectors.files.JsonlDeadLetterSink``)."""

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Append ``letters`` in order, each whole with its reason; as :meth:`PredictionSink.write`."""
        ...

    def flush(self) -> None:
        """As :meth:`PredictionSink.flush`."""
        ...

    def close(self) -> None:
        """As :meth:`PredictionSink.close`."""
        ...


# -- what the Kafka daemon uses (connectors.kafka.KafkaSource, connectors.publisher) ------------
class Batch(Protocol):
    """One poll of a partitioned source: decoded records in consumer order."""

    items: Sequence  # Event | DeadLetter | stream_cl.pending.LabelUpdate
    raw: Mapping  # origin "topic/partition@offset" -> (key, value, headers) of every record, for dead letters
    silent: frozenset  # origins processed and committed before the restored state: re-learned, not published


class PartitionedSource(Protocol):
    """A consumer-group source whose offsets commit inside the publisher's transactions.

    ``assigned``, ``positions`` (next offset the state has learned) and ``committed`` are
    keyed by topic partition; the commit coordinator reads them, the status reporter too.
    """

    assigned: set
    positions: dict
    committed: dict
    rebalances: int

    def poll(self, max_records: int) -> Batch:
        """Up to ``max_records`` decoded records of the assigned partitions (an empty batch when none came
        within the poll timeout); ``positions`` move past every record returned. Raises where a record cannot
        be read or stepped over (an unsupported codec, committed offsets that cannot be read)."""
        ...

    def take_warnings(self, final: bool = False) -> list[str]:
        """As :meth:`Source.take_warnings`; ``final``: the run stops, so checks that wait for a full sample
        judge by the fewer events read."""
        ...

    def at_end(self) -> bool:
        """True when partitions are assigned and each is consumed to its end offset (blocking lookups);
        ``kafka.stop_at_end`` stops on it."""
        ...

    def fill_positions(self) -> None:
        """Positions past transaction markers and compaction gaps (a blocking lookup)."""
        ...

    def group_metadata(self):
        """The consumer's group metadata for ``send_offsets_to_transaction`` (KIP-447 fencing)."""
        ...

    def lag(self) -> dict:
        """Records behind the end of each assigned topic partition (``None``: not known yet); the loop's
        thread only."""
        ...

    def close(self) -> None:
        """Leave the group and close, committing nothing (the publisher's transactions commit offsets)."""
        ...

    def abort(self) -> None:
        """After a failure: release the consumer at once, committing nothing and looking nothing up."""
        ...


class TransactionalPublisher(Protocol):
    """Predictions, dead letters and state records, committed with the consumed offsets in one transaction."""

    def write(self, predictions: Sequence[Prediction]) -> None:
        """Add ``predictions`` to the open transaction, published when it commits; raises
        ``connectors.sinks.DeliveryError`` where the publisher is gone."""
        ...

    def write_dead(self, records: Sequence[tuple]) -> None:
        """Dead-letter records ``(key, value, headers)`` (``connectors.sinks.dead_letter_record``)."""
        ...

    def start_commit(self, offsets: Sequence[tuple], group, records: Sequence[tuple] = ()) -> None:
        """Start committing the interval: what was written since the last commit, ``offsets``
        ``(topic, partition, next offset)`` with the group metadata, and state ``records``
        ``(topic, key, value)`` (the model changelog), in one transaction. What is written after
        this call goes into the next transaction."""
        ...

    def finish_commit(self, wait: bool = True) -> float | None:
        """Seconds the started commit took, once it is committed (``None``: none was started, or
        ``wait=False`` and it is still under way); raises if it could not commit."""
        ...

    def check(self) -> None:
        """Raise if the publisher is gone (between commits, even on a quiet topic)."""
        ...

    def close(self) -> None:
        """Wait for the commit under way, abort what is not committed, and close the producer."""
        ...

    def abort(self) -> None:
        """After a failure: stop at once; the open transaction is aborted (by the publisher, else by the
        broker when its transaction timeout passes)."""
        ...
