"""stream-cl: streaming online continual learning with exact analytic ridge heads."""

from .heads import AnalyticClassifier

__all__ = ["AnalyticClassifier"]
__version__ = "0.1.0"
