"""The Prometheus metrics the daemon exports: the one list everything else is checked against.

The exporter (``connectors/``) registers exactly these; the Grafana dashboard and the
Prometheus rules under ``deploy/`` reference only these (``tests/unit/test_deploy.py``
checks both directions that concern ``deploy/``). A new metric is added *here* first.

``EXPORTED_METRICS`` maps each name (as written in PromQL, counters with their
``_total``) to its type; ``METRIC_LABELS`` gives the label names of each. With
``prometheus_client``, register a counter without the suffix (``Counter("stream_cl_events",
...)`` exports ``stream_cl_events_total``); histograms export ``_bucket``/``_sum``/``_count``.
Call ``prometheus_client.disable_created_metrics()`` before registering, or counters and
histograms also export ``*_created`` series that are not in this list.

>>> EXPORTED_METRICS["stream_cl_events_total"], METRIC_LABELS["stream_cl_events_total"]
('counter', ('outcome',))
>>> base_metric("stream_cl_event_latency_seconds_bucket"), base_metric("stream_cl_classes"), base_metric("nope")
('stream_cl_event_latency_seconds', 'stream_cl_classes', None)
"""

from __future__ import annotations

__all__ = ["EXPORTED_METRICS", "METRIC_LABELS", "METRIC_HELP", "EVENT_OUTCOMES", "LABEL_OUTCOMES", "TRANSACTION_OUTCOMES",
           "base_metric"]

# name -> (type, labels, help)
_METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    # throughput and outcomes
    "stream_cl_events_total": ("counter", ("outcome",), "Events processed, by outcome (learned, predicted_only, dead_lettered)."),
    "stream_cl_dead_letters_total": ("counter", ("reason",), "Records sent to the dead letters, by reason."),
    "stream_cl_model_step_seconds": ("histogram", (), "Seconds of predict+learn per micro-batch."),
    "stream_cl_event_latency_seconds": ("histogram", (), "Seconds from poll to prediction produced, per event."),
    # accuracy
    "stream_cl_prequential_accuracy_ratio": ("gauge", (), "Prequential accuracy (0..1) over the last window of labelled events."),
    "stream_cl_task_accuracy_ratio": ("gauge", ("task",), "Prequential accuracy (0..1) per task."),
    "stream_cl_drift_alarms_total": ("counter", ("detector", "response"), "Drift alarms raised, by detector and response."),
    # model state
    "stream_cl_replay_buffer_samples": ("gauge", (), "Samples in the replay buffer."),
    "stream_cl_replay_buffer_bytes": ("gauge", (), "Bytes held by the replay buffer."),
    "stream_cl_homeostatic_need": ("gauge", (), "Current homeostatic need (0 = settled)."),
    "stream_cl_forgetting_factor": ("gauge", ("head",), "Current forgetting factor of each head."),
    "stream_cl_learning_rate": ("gauge", ("layer",), "Current learning rate of each trainable layer."),
    "stream_cl_model_version": ("gauge", (), "Version of the model being served."),
    "stream_cl_classes": ("gauge", (), "Classes the model knows."),
    "stream_cl_features": ("gauge", (), "Input columns the model knows: a numeric feature's, one per category value kept, each feature's <other>, time columns."),
    "stream_cl_category_overflow_total": ("counter", (), "Category values over model.max_categories (or past model.max_columns), read as the feature's shared k=<other> column."),
    # Kafka
    "stream_cl_consumer_lag_messages": ("gauge", ("topic", "partition"), "Messages between the consumer position and the log end."),
    "stream_cl_committed_offset": ("gauge", ("topic", "partition"), "Last committed offset."),
    "stream_cl_transactions_total": ("counter", ("outcome",), "Kafka transactions (outputs + offsets), by outcome (committed, aborted, fenced)."),
    "stream_cl_commit_duration_seconds": ("histogram", (), "Seconds from the start of a transaction's commit until it was committed (the loop goes on meanwhile)."),
    "stream_cl_commit_deferrals_total": ("counter", (), "Loop turns that put off a due interval commit because the one before was still under way."),
    "stream_cl_replayed_events_total": ("counter", (), "Events re-learned after a restore, without output (committed before)."),
    # checkpoints
    "stream_cl_checkpoint_age_seconds": ("gauge", (), "Seconds since the last durable checkpoint."),
    "stream_cl_checkpoint_duration_seconds": ("histogram", (), "Seconds to write a checkpoint."),
    "stream_cl_checkpoint_size_bytes": ("gauge", (), "Size of the last checkpoint in bytes."),
    "stream_cl_checkpoints_total": ("counter", (), "Checkpoints written."),
    # delayed labels
    "stream_cl_pending_labels": ("gauge", (), "Predicted events waiting for a delayed label."),
    "stream_cl_waiting_labels": ("gauge", (), "Labels read before their event, waiting for it."),
    "stream_cl_labels_total": ("counter", ("outcome",), "Delayed labels, by outcome (joined, expired, unknown)."),
    # liveness
    "stream_cl_last_progress_timestamp_seconds": ("gauge", (), "Unix time the loop last made progress."),
}

EXPORTED_METRICS: dict[str, str] = {name: spec[0] for name, spec in _METRICS.items()}
METRIC_LABELS: dict[str, tuple[str, ...]] = {name: spec[1] for name, spec in _METRICS.items()}
METRIC_HELP: dict[str, str] = {name: spec[2] for name, spec in _METRICS.items()}

EVENT_OUTCOMES = ("learned", "predicted_only", "dead_lettered")
LABEL_OUTCOMES = ("joined", "expired", "unknown")
TRANSACTION_OUTCOMES = ("committed", "aborted", "fenced")

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def base_metric(series: str) -> str | None:
    """The exported metric a scraped series name belongs to, or ``None``."""
    if series in EXPORTED_METRICS:
        return series
    for suffix in _HISTOGRAM_SUFFIXES:
        if series.endswith(suffix):
            base = series[: -len(suffix)]
            if EXPORTED_METRICS.get(base) == "histogram":
                return base
    return None
