"""Smaller items of the configuration review (r15, its "minor" list)."""

import json

import pytest

from connectors.cli import main
from stream_cl.config import ConfigError, load_config_dict


# -- a run without a dead-letter file does not send the user to one -------------------------------------------------------

def test_a_failed_run_without_a_dead_letter_file_quotes_the_first_dead_letter():
    from connectors.run import failure

    report = {"events": 0, "dead_letters_total": 3, "dead_letters": {"missing_features": 3}, "labelled": 0,
              "dead_letter_examples": {"missing_features": "no field 'x'"}}
    assert "see the dead-letter file" in failure(report)
    alone = failure(report, dead_letters=False)
    assert "dead-letter file" not in alone and "the first: no field 'x'" in alone and alone.endswith("check [mapping]")
    older = failure({**report, "dead_letter_examples": {}}, dead_letters=False)  # a report without examples
    assert "write them to a file with --dead-letters" in older
    rejected = failure({**report, "dead_letters": {"rejected_by_model": 3}}, dead_letters=False)
    assert "check [model]" in rejected and "dead-letter file" not in rejected


def test_the_cli_says_so_when_dead_letters_are_not_written(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps({"y": "a"}) + "\n" for _ in range(3)))  # no features at all
    code = main(["run", "--source", str(path), "--quiet", "--dead-letters", "", "--predictions", ""])
    err = capsys.readouterr().err
    assert code == 1 and "no event could be used" in err and "see the dead-letter file" not in err


# -- one topic-name rule, one message ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["..", "has space", "x" * 250])
def test_every_topic_key_gives_kafkas_rule_in_the_same_words(name):
    said = {}
    for key, tables in (("kafka.predictions_topic", {"kafka": {"predictions_topic": name}}),
                        ("changelog.topic", {"changelog": {"topic": name}})):
        with pytest.raises(ConfigError) as e:
            load_config_dict(tables)
        said[key] = str(e.value).removeprefix(key)
    assert said["kafka.predictions_topic"] == said["changelog.topic"]
    assert said["changelog.topic"].endswith("use letters, digits, '.', '_' and '-', at most 249 characters, not '.' or '..'")


# -- a hand-written report with odd values plots what it can -----------------------------------------------------------------

@pytest.mark.parametrize("odd", [3, "text", {"t": 1}, [1, "x", None]])
def test_a_report_with_a_malformed_series_is_plotted_without_it(tmp_path, odd):
    from connectors.report import main as report_main

    path = tmp_path / "run.json"
    path.write_text(json.dumps({"events": 10, "accuracy": 0.5, "windowed_accuracy": odd, "alarms": odd}))
    assert report_main(str(path), str(tmp_path / "plots")) == 0
