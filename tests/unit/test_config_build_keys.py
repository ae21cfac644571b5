"""Rules the learner's parts check as they are built name their config key (review r135's left-out item).

A config error names the key and the fix. These rules are checked when ``build_learner`` makes the
parts, and were named by their section alone (``drift: ...``, ``model: ...``), leaving the user to find
the key among the section's.
"""

import pytest

from stream_cl.config import ConfigError, load_config_dict
from stream_cl.factory import build_learner


@pytest.mark.parametrize("config, key", [
    ({"drift": {"detector": "adwin", "response": ["restart", "restart"]}}, "drift.response"),
    ({"drift": {"detector": "ddm", "signal": "loss"}}, "drift.signal"),
    ({"homeostasis": {"enabled": True, "set_point_rate": 0.002, "recent_rate": 0.001}}, "homeostasis.set_point_rate"),
    ({"model": {"max_columns": 1}}, "model.max_columns"),
], ids=["response-twice", "ddm-loss", "set-point", "max-columns"])
def test_a_rule_checked_at_build_names_its_key(config, key):
    with pytest.raises(ConfigError) as e:
        build_learner(load_config_dict(config))
    assert str(e.value).startswith(f"{key}: "), str(e.value)
