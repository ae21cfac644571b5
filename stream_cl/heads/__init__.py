"""Analytic (closed-form, recursively updated) heads."""

from .analytic import AnalyticClassifier
from .class_head import RidgeClassHead, scores_to_proba
from .ridge import RecursiveRidge

__all__ = ["AnalyticClassifier", "RecursiveRidge", "RidgeClassHead", "scores_to_proba"]
