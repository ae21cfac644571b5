"""A changelog topic described with no configs names DescribeConfigs (review r145's left-out item).

A principal without DescribeConfigs on the changelog topic gets an answer with no configs; the start's
refusal said only "no cleanup.policy in the broker's answer", sending the user to the topic's policy
rather than to the permission.
"""

import pytest

from connectors.changelog import check_changelog_policy
from stream_cl.config import ConfigError


def test_a_topic_described_without_configs_names_the_permission():
    with pytest.raises(ConfigError, match="no cleanup.policy in the broker's answer") as e:
        check_changelog_policy("g.model", None)
    assert "DescribeConfigs" in str(e.value)
