"""Keys of a continual-learning section that is on, which the section's other settings (or the model's
kind) leave unread: a file run and the daemon warn of each by name (stream_cl.config.unread_keys), as
they do for a section that is off. A warning only: the run is the same with or without the key."""

from __future__ import annotations

import pytest

from stream_cl.config import load_config_dict, unread_keys


def _warned(tables: dict) -> list[str]:
    return [w.split(":")[0] for w in unread_keys(load_config_dict(tables), tables)]


@pytest.mark.parametrize("tables, expected", [
    ({"homeostasis": {"enabled": True, "lr_low": 0.4, "lr_high": 3.0, "lr_sensitivity": [1.0], "half_need": 2.0}},
     ["homeostasis.lr_low", "homeostasis.lr_high", "homeostasis.lr_sensitivity"]),
    ({"model": {"kind": "trainable"}, "homeostasis": {"enabled": True, "min_forgetting": 0.9, "half_need": 2.0,
                                                       "lr_high": 2.0}},
     ["homeostasis.min_forgetting", "homeostasis.half_need"]),
    ({"drift": {"detector": "adwin", "response": ["need"], "forget_value": 0.9, "forget_events": 10,
                "restart_after": 5}, "homeostasis": {"enabled": True}},
     ["drift.forget_value", "drift.forget_events", "drift.restart_after"]),
    ({"drift": {"detector": "adwin", "response": ["reset"], "forget_value": 0.9, "restart_after": 5}},
     ["drift.forget_value"]),
    ({"drift": {"detector": "adwin", "response": ["forget"], "forget_value": 0.9, "restart_after": 5}},
     ["drift.restart_after"]),
    ({"model": {"kind": "trainable"}, "drift": {"detector": "adwin", "response": ["record"], "restart_after": 5}},
     ["drift.restart_after"]),
    ({"imbalance": {"mode": "reweight", "max_pseudo": 1, "min_count": 3, "seed": 2, "power": 0.5, "max_weight": 5.0}},
     ["imbalance.max_pseudo", "imbalance.min_count", "imbalance.seed"]),
    ({"imbalance": {"mode": "pseudo", "max_pseudo": 1, "min_count": 3, "seed": 2, "power": 0.5, "max_weight": 5.0}},
     ["imbalance.power", "imbalance.max_weight"]),
])
def test_a_key_its_section_leaves_unread_is_warned_of_by_name(tables, expected):
    assert _warned(tables) == expected


@pytest.mark.parametrize("tables", [
    {"homeostasis": {"enabled": True, "min_forgetting": 0.9, "half_need": 2.0}},
    {"model": {"kind": "trainable"}, "homeostasis": {"enabled": True, "lr_low": 0.4, "lr_high": 3.0}},
    {"drift": {"detector": "adwin", "response": ["forget", "restart"], "forget_value": 0.9, "forget_events": 10,
               "restart_after": 5}},
    {"imbalance": {"mode": "both", "max_pseudo": 1, "min_count": 3, "seed": 2, "power": 0.5, "max_weight": 5.0}},
])
def test_a_key_that_is_read_is_not_warned_of(tables):
    assert _warned(tables) == []


def test_the_warning_names_the_setting_that_would_read_it():
    tables = {"imbalance": {"mode": "pseudo", "power": 0.5}}
    assert unread_keys(load_config_dict(tables), tables) == [
        'imbalance.power: set, but imbalance.mode = "pseudo" weighs no rows: remove it, or set imbalance.mode = "both"']
