"""Build a learner from the ``[model]`` section of the config."""

from __future__ import annotations

from .backbones import RandomFeatures
from .config import ConfigError, ModelConfig
from .heads import AnalyticClassifier
from .learner import OnlineContinualLearner


def build_learner(cfg: ModelConfig):
    """The learner a run uses; ``kind = "online"`` is the default composite.

    >>> build_learner(ModelConfig(kind="analytic", gamma=0.5, forgetting=[1.0])).gamma
    0.5
    """
    if cfg.kind == "analytic":
        if len(cfg.forgetting) != 1:
            raise ConfigError(f"model.forgetting: the analytic model has one head, got {cfg.forgetting!r}; give one value such as [1.0]")
        device = "cpu" if cfg.device == "auto" else cfg.device
        return AnalyticClassifier(gamma=cfg.gamma, forgetting=cfg.forgetting[0], hash_width=cfg.hash_width,
                                  temperature=cfg.temperature, device=device)
    for key in ("forgetting", "input_forgetting"):
        for i, lam in enumerate(getattr(cfg, key)):
            if not 0.5 <= lam <= 1.0:
                raise ConfigError(f"model.{key}[{i}]: must be in [0.5, 1.0] (got {lam!r}); 1.0 keeps everything, 0.99 forgets fast")
    heads = tuple((lam, "all") for lam in cfg.forgetting) + tuple((lam, "inputs") for lam in cfg.input_forgetting)
    if not heads:
        raise ConfigError("model.forgetting: no heads at all; give at least one factor, e.g. forgetting = [1.0, 0.995]")
    try:
        return OnlineContinualLearner(backbone=RandomFeatures(width=cfg.width, seed=cfg.seed), key_units=cfg.key_units,
                                      heads=heads, gamma=cfg.gamma, temperature=cfg.temperature,
                                      hash_width=cfg.hash_width, device=cfg.device, seed=cfg.seed)
    except ValueError as e:
        raise ConfigError(f"model: {e}") from None
