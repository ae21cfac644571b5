"""Keys of a continual-learning section that is off are read by nothing: the file run and the daemon say so
(r19 finding 3), as they do for a key the model's kind does not read."""

from __future__ import annotations

import pytest

from stream_cl.config import load_config_dict, unread_keys


def _notes(tables: dict) -> list[str]:
    return unread_keys(load_config_dict(tables), tables)


@pytest.mark.parametrize("tables, key, fix", [
    ({"drift": {"response": ["reset"]}}, "drift.response", 'set drift.detector (e.g. "adwin")'),
    ({"homeostasis": {"enabled": False, "lr_high": 3.0}}, "homeostasis.lr_high", "set homeostasis.enabled = true"),
    ({"replay": {"max_samples": 500}}, "replay.max_samples", 'set replay.policy (e.g. "reservoir")'),
    ({"imbalance": {"power": 2.0}}, "imbalance.power", 'set imbalance.mode (e.g. "reweight")'),
])
def test_a_key_of_a_section_that_is_off_is_warned_of_with_the_switch_to_set(tables, key, fix):
    notes = _notes(tables)
    assert len(notes) == 1 and notes[0].startswith(f"{key}: set, but ") and "turns [" in notes[0] and fix in notes[0]


def test_the_switch_itself_and_control_every_which_paces_drift_responses_are_not_warned_of():
    assert _notes({"drift": {"detector": "none"}, "homeostasis": {"enabled": False, "control_every": 8},
                   "replay": {"policy": "none"}, "imbalance": {"mode": "none"}}) == []


def test_sections_that_are_on_are_not_warned_of():
    assert _notes({"drift": {"detector": "adwin", "response": ["reset"]},
                   "homeostasis": {"enabled": True, "lr_high": 3.0},
                   "replay": {"policy": "reservoir", "max_samples": 500},
                   "imbalance": {"mode": "reweight", "power": 2.0}}) == []
