"""stream-cl: streaming online continual learning with exact analytic ridge heads.

The learners are imported on first use (PEP 562), so tools that only need the
configuration or the decoder (``stream-cl --help``, the CLI's argument parsing) do
not pay for importing torch.
"""

from importlib import import_module

__all__ = ["AnalyticClassifier", "OnlineContinualLearner", "set_threads"]
__version__ = "0.1.0"

_LAZY = {"AnalyticClassifier": ".heads", "OnlineContinualLearner": ".learner", "set_threads": ".runtime"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # imported once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
