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
                   "homeostasis": {"enabled": True, "half_need": 3.0},
                   "replay": {"policy": "reservoir", "max_samples": 500},
                   "imbalance": {"mode": "reweight", "power": 2.0}}) == []


def test_power_law_keys_under_another_policy_are_warned_of_and_not_compared_at_resume(tmp_path):
    """make_replay passes alpha, group and exclude_current to the power-law buffer alone (r24 finding 3):
    under reservoir or class_balanced they change nothing, so they are warned of, and a change of one no
    longer refuses a resume over a checkpoint."""
    from connectors.state import check_settings, settings_state

    tables = {"replay": {"policy": "reservoir", "alpha": 1.0, "exclude_current": False}}
    notes = _notes(tables)
    assert [n.split(":")[0] for n in notes] == ["replay.alpha", "replay.exclude_current"]
    assert all('replay.policy = "reservoir" does not read it (policy "power_law" does)' in n for n in notes)
    assert _notes({"replay": {"policy": "power_law", "alpha": 1.0}}) == []
    saved = settings_state(load_config_dict({"replay": {"policy": "reservoir", "alpha": 1.0}}))
    check_settings(load_config_dict({"replay": {"policy": "reservoir", "alpha": 2.0}}), saved, tmp_path)  # passes
    with pytest.raises(Exception, match=r"^replay\.alpha: the checkpoint"):
        power = settings_state(load_config_dict({"replay": {"policy": "power_law", "alpha": 1.0}}))
        check_settings(load_config_dict({"replay": {"policy": "power_law", "alpha": 2.0}}), power, tmp_path)


def test_a_power_law_key_with_replay_off_names_the_policy_that_reads_it():
    """With replay off, the fix named for alpha was 'set replay.policy (e.g. "reservoir")', which reads no
    alpha either: following it gave a second warning (r26)."""
    [note] = _notes({"replay": {"alpha": 1.0}})
    assert note.endswith('set replay.policy = "power_law", or remove it')
    [note] = _notes({"replay": {"max_samples": 10}})
    assert 'set replay.policy (e.g. "reservoir")' in note
