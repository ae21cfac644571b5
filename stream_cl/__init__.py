"""stream-cl: streaming online continual learning with exact analytic ridge heads."""

from .heads import AnalyticClassifier
from .learner import OnlineContinualLearner
from .runtime import set_threads

__all__ = ["AnalyticClassifier", "OnlineContinualLearner", "set_threads"]
__version__ = "0.1.0"
