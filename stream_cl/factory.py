"""Build a learner from the ``[model]`` section of the config (and, given the whole config,
the continual-learning sections ``[replay]``, ``[drift]``, ``[homeostasis]``, ``[imbalance]``
and ``[trainable]``)."""

from __future__ import annotations

import dataclasses
import re

from .backbones import RandomFeatures
from .backbones.device import check_device
from .column_bound import check_columns, check_network_inputs
from .config import Config, ConfigError, ModelConfig
from .heads import AnalyticClassifier
from .learner import OnlineContinualLearner


def build_learner(cfg: ModelConfig | Config):
    """The learner a run uses; ``kind = "online"`` is the default composite.

    Given the whole :class:`~stream_cl.config.Config`, the continual-learning sections are
    wired in too (with only ``[model]`` they are off).

    >>> build_learner(ModelConfig(kind="analytic", gamma=0.5)).gamma
    0.5
    >>> from stream_cl.config import load_config_dict
    >>> cfg = load_config_dict({"replay": {"policy": "power_law", "max_samples": 500},
    ...                         "drift": {"detector": "adwin", "response": ["need", "forget"]},
    ...                         "homeostasis": {"enabled": True}, "model": {"device": "cpu"}})
    >>> learner = build_learner(cfg)
    >>> type(learner.replay).__name__, learner.drift.detector, learner.drift.response, learner.homeostasis is not None
    ('PowerLawReplay', 'adwin', ('need', 'forget'), True)
    """
    if isinstance(cfg, Config):
        parts = _continual_parts(cfg)
        cfg = cfg.model
    else:
        parts = {}
    _check_model(cfg)
    if cfg.kind == "trainable":
        return _trainable(cfg, parts)
    if cfg.kind == "analytic":
        if any(v is not None for k, v in parts.items() if k not in ("trainable", "control_every")):
            raise ConfigError("model.kind: the bare analytic model takes no replay, drift, homeostasis or imbalance; "
                              'use kind = "online" for those')
        device = "cpu" if cfg.device == "auto" else cfg.device
        try:
            return AnalyticClassifier(gamma=cfg.gamma, forgetting=cfg.forgetting[0], hash_width=cfg.hash_width,
                                      temperature=cfg.temperature, device=device, max_columns=cfg.max_columns or None,
                                      **_encoding(cfg))
        except ValueError as e:
            raise _key_error("model", cfg, e) from None
    # the factors' range and count are checked by ModelConfig (the learner keeps its own guard)
    heads = tuple((lam, "all") for lam in cfg.forgetting) + tuple((lam, "inputs") for lam in cfg.input_forgetting)
    try:
        return OnlineContinualLearner(backbone=RandomFeatures(width=cfg.width, seed=cfg.seed), key_units=cfg.key_units,
                                      heads=heads, gamma=cfg.gamma, temperature=cfg.temperature,
                                      sgd_lr=cfg.sgd_lr or None, mix_decay=cfg.mix_decay,
                                      hash_width=cfg.hash_width, max_columns=cfg.max_columns or None,
                                      device=cfg.device, seed=cfg.seed, **_encoding(cfg),
                                      **{k: v for k, v in parts.items() if k != "trainable"})
    except ValueError as e:
        raise _key_error("model", cfg, e) from None


def _key_error(section: str, table, e: Exception) -> ConfigError:
    """A learner part's ``ValueError`` as a config error naming the key it is about (review r135): the key of
    ``[section]`` the message begins with (``set_point_rate (0.002) must be below recent_rate (0.001)``), or
    else the first it names whose name has an underscore (``... over max_columns (1)``; a plain word such as
    ``kind`` may be prose), or else the section alone.

    >>> from stream_cl.config import HomeostasisConfig
    >>> str(_key_error("homeostasis", HomeostasisConfig(), ValueError("set_point_rate (2) must be below recent_rate (1)")))
    'homeostasis.set_point_rate: set_point_rate (2) must be below recent_rate (1)'
    """
    text = str(e)
    names = {f.name for f in dataclasses.fields(table)}
    first = re.match(r"\w+", text)
    key = first.group(0) if first and first.group(0) in names else next(
        (w for w in re.findall(r"\b[a-z]+_\w+\b", text) if w in names), None)
    return ConfigError(f"{section}.{key}: {text}" if key else f"{section}: {text}")


def _check_model(cfg: ModelConfig) -> None:
    """The ``[model]`` keys each kind's learner would refuse only once it is made, named as keys here.

    * ``device``: one prefix, ``model.device:``, for every kind (a learner's own error would read
      ``model: device ...`` for two kinds of three).
    * ``hash_width`` past ``max_columns``: every ridge head (kinds "online" and "analytic") is at
      least ``1 + hash_width`` columns wide, the analytic head exactly. Refused before the learner
      is made, whose feature index keeps a slot per hashed input (2**28 took gigabytes before the
      learner's own check); the learner still checks its exact width, this is only the quick bound.
      Kind "trainable": its network's first layer takes exactly ``hash_width`` inputs, and over
      ``max_columns`` every event was refused at learn time.
    """
    try:
        check_device(cfg.device)
    except ValueError as e:
        raise ConfigError(f"model.device: {e}") from None
    if cfg.hash_width is not None:
        try:
            if cfg.kind == "trainable":  # the network's inputs are not design columns
                check_network_inputs(cfg.hash_width, cfg.max_columns or None)
            else:
                check_columns(1 + cfg.hash_width, cfg.max_columns or None, f"hash_width={cfg.hash_width} gives",
                              "the head" if cfg.kind == "analytic" else "every head at least")
        except ValueError as e:
            raise ConfigError(f"model.hash_width: {e}") from None


def _encoding(cfg: ModelConfig) -> dict:
    """How every learner turns strings, nulls and datetimes into columns."""
    return {"max_categories": cfg.max_categories, "missing_indicators": cfg.missing_indicators,
            "time_features": cfg.time_features}


def _continual_parts(config: Config) -> dict:
    """Learner keyword arguments from the continual-learning sections (``None`` where off)."""
    from .drift import DriftMonitor
    from .homeostasis import Homeostasis
    from .imbalance import ImbalanceCompensator
    from .replay import make_replay

    r, d, h, im = config.replay, config.drift, config.homeostasis, config.imbalance
    try:
        replay = make_replay(r.policy, max_samples=r.max_samples, max_bytes=r.max_bytes, ratio=r.ratio, alpha=r.alpha,
                             group=r.group, exclude_current=r.exclude_current, seed=r.seed)
    except ValueError as e:
        raise _key_error("replay", r, e) from None
    drift = None
    if d.detector != "none":
        if "need" in d.response and not h.enabled:
            raise ConfigError("drift.response: 'need' raises the homeostatic need; set homeostasis.enabled = true "
                              "or drop 'need' from the responses")
        try:
            drift = DriftMonitor(d.detector, signal=d.signal, response=tuple(d.response), direction=d.direction,
                                 forget_value=d.forget_value, forget_events=d.forget_events,
                                 restart_after=d.restart_after, max_alarms=d.max_alarms, seed=d.seed)
        except ValueError as e:
            raise _key_error("drift", d, e) from None
    homeostasis = None
    if h.enabled:
        try:
            homeostasis = Homeostasis(recent_rate=h.recent_rate, set_point_rate=h.set_point_rate, tolerance=h.tolerance, z=h.z,
                                      loss_gain=h.loss_gain, error_gain=h.error_gain, alarm_gain=h.alarm_gain,
                                      need_decay=h.need_decay, max_need=h.max_need, half_need=h.half_need,
                                      min_forgetting=h.min_forgetting, lr_sensitivity=tuple(h.lr_sensitivity) or (0.5,),
                                      lr_low=h.lr_low, lr_high=h.lr_high)
        except ValueError as e:
            raise _key_error("homeostasis", h, e) from None
    imbalance = None
    if im.mode != "none":
        try:
            imbalance = ImbalanceCompensator(mode=im.mode, max_pseudo=im.max_pseudo, power=im.power,
                                             max_weight=im.max_weight, min_count=im.min_count, seed=im.seed)
        except (TypeError, ValueError) as e:
            raise _key_error("imbalance", im, e) from None
    return {"replay": replay, "drift": drift, "homeostasis": homeostasis, "imbalance": imbalance,
            "control_every": h.control_every, "trainable": config.trainable}


def _trainable(cfg: ModelConfig, parts: dict):
    """``model.kind = "trainable"``: the online MLP of :mod:`stream_cl.trainable`."""
    from .config import TrainableConfig
    from .trainable import TrainableLearner, check_decay, check_rate, unsupported_responses

    t = parts.get("trainable") or TrainableConfig()
    if parts.get("imbalance") is not None:
        raise ConfigError("imbalance.mode: imbalance compensation is for the analytic heads; "
                          'set mode = "none" with model.kind = "trainable"')
    # checked here, not by the learner: its error named "trainable", and the key to change is drift.response,
    # whose default ("restart") this kind does not take
    drift = parts.get("drift")
    bad = unsupported_responses(drift.response if drift is not None else ())
    if bad:
        toml = ", ".join(f'"{r}"' for r in bad)
        default = " (the default)" if list(drift.response) == ["restart"] else ""
        raise ConfigError(f'drift.response: model.kind = "trainable" takes only "record" and "need", not [{toml}]'
                          f'{default}; set response = ["record"], or ["need"] with homeostasis.enabled = true')
    # checked here too, to name the keys: the learner's own error would read "trainable: lr * weight_decay ..."
    homeostasis = parts.get("homeostasis")
    lr_high = homeostasis.lr_high if homeostasis is not None else None
    for key, check in (("lr", lambda: check_rate(t.lr, lr_high, prefix="trainable.")),
                       ("weight_decay", lambda: check_decay(t.lr, t.weight_decay, lr_high, prefix="trainable."))):
        try:
            check()
        except ValueError as e:
            raise ConfigError(f"trainable.{key}: {e}") from None
    try:
        return TrainableLearner(hidden=tuple(t.hidden) or None, lr=t.lr, micro_batch=t.micro_batch, steps=t.steps,
                                weight_decay=t.weight_decay, replay=parts.get("replay"), drift=parts.get("drift"),
                                homeostasis=parts.get("homeostasis"), hash_width=cfg.hash_width, device=cfg.device,
                                dtype=t.dtype, seed=cfg.seed, max_columns=cfg.max_columns or None, **_encoding(cfg))
    except ValueError as e:
        raise _key_error("trainable", t, e) from None
