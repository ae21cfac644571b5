"""Lifelong-learning metrics: accuracy matrices, transfer and forgetting, the domain-agnostic
lifelong-learning set, drift-detection scores, and prequential per-task retention."""

from .detection import detection_report
from .lifelong import (
    average_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
    learning_curve,
    lifelong_report,
    performance_maintenance,
    relative_performance,
    sample_efficiency,
)
from .prequential import TaskSegments, report_names

__all__ = [
    "TaskSegments",
    "average_accuracy",
    "backward_transfer",
    "detection_report",
    "forgetting",
    "forward_transfer",
    "learning_curve",
    "lifelong_report",
    "performance_maintenance",
    "relative_performance",
    "report_names",
    "sample_efficiency",
]
