"""Event times in epoch milliseconds (review r11, finding 3).

With model.time_features on, a time of 1714601643000 (what Kafka, Java and JavaScript producers send) was read as
epoch seconds, the year ~56,000, silently: the time features were noise. The time census now says so once, as it
says a time field that is absent.
"""

import json

import pytest

from connectors.cli import main
from stream_cl.config import MappingConfig
from stream_cl.events import Event
from stream_cl.mapping_check import TimeCensus

T0 = 1714521600  # 2024-05-01T00:00:00Z


def _events(times):
    return [Event({"a": 1.0}, "p", ts=None if t is None else float(t)) for t in times]


def _unit_warnings(warnings):
    return [w for w in warnings if "look like epoch" in w]


@pytest.mark.parametrize("scale, unit, code", [(1000, "milliseconds", "ms"), (10**6, "microseconds", "us"),
                                               (10**9, "nanoseconds", "ns")])
def test_times_beyond_plausible_seconds_are_said_once(scale, unit, code):
    census = TimeCensus(MappingConfig(), time_features=True, sample=4)
    census.observe(_events([(T0 + 3600) * scale, None]))
    assert census.take() == []  # the sample is not complete yet
    census.observe(_events([(T0 + 7200) * scale, T0 + 60]))
    (warning,) = census.take()
    example = f"{(T0 + 3600) * scale}"
    assert warning == (
        f"model.time_features: 2 of the first 4 events had a time in field 'ts' (mapping.timestamp) beyond 1e11 "
        f"seconds (e.g. {example}), after the year 5138 as epoch seconds: they look like epoch {unit}, so their time "
        f'features are noise; set mapping.timestamp_unit = "{code}"')
    assert census.take(final=True) == []  # said once
    census.observe(_events([T0 * scale]))  # the sample is complete: nothing more is looked at
    assert census.n == 4


def test_plausible_seconds_and_the_time_features_off_say_nothing():
    census = TimeCensus(MappingConfig(), time_features=True, sample=3)
    census.observe(_events([T0, -86400.0 * 365 * 60, 99_999_999_999]))  # 2024, 1910, the year 5138
    assert census.take() == []
    off = TimeCensus(MappingConfig(), time_features=False, sample=1)
    off.observe(_events([T0 * 1000]))
    assert off.take(final=True) == []


def test_a_named_time_field_is_checked_too_and_a_short_stream_at_its_end():
    """The absent-field warning leaves a named field to FieldCensus; the unit is this census's alone."""
    census = TimeCensus(MappingConfig(timestamp="when"), time_features=True, sample=1000)
    census.observe(_events([-T0 * 1000]))  # before 1970, in milliseconds
    assert census.take() == []
    (warning,) = _unit_warnings(census.take(final=True))
    assert warning.startswith("model.time_features: the first event had a time in field 'when' (mapping.timestamp) "
                              f"beyond 1e11 seconds (e.g. {-T0 * 1000})")


def test_a_time_beyond_any_epoch_unit_is_said_without_guessing_one():
    census = TimeCensus(MappingConfig(), time_features=True, sample=1)
    census.observe(_events([1e300]))
    (warning,) = census.take()
    assert "(e.g. 1e+300)" in warning and "look like epoch" not in warning
    assert warning.endswith("after the year 5138 as epoch seconds: a plausible epoch time in no unit (seconds to "
                            "nanoseconds), so their time features are noise; send epoch seconds, or set mapping.timestamp_unit to their "
                            "unit, or send an ISO 8601 string")


def test_no_time_at_all_is_still_its_own_warning():
    census = TimeCensus(MappingConfig(), time_features=True, sample=2)
    census.observe(_events([None, None]))
    (warning,) = census.take()
    assert warning.startswith("model.time_features: none of the first 2 events had a time in field 'ts'")


def _run(tmp_path, fmt: str, scale: int, config: str = "[model]\ntime_features = true\n") -> tuple[int, list[str]]:
    """``stream-cl run`` with time features on 30 events whose times are epoch seconds times ``scale``."""
    rows = [(i % 3, (T0 + 3600 * i) * scale, "pq"[i % 2]) for i in range(30)]
    path = tmp_path / f"data.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({"x": {"a": a}, "ts": ts, "y": y}) + "\n" for a, ts, y in rows))
    else:
        path.write_text("a,ts,y\n" + "".join(f"{a},{ts},{y}\n" for a, ts, y in rows))
    cfg, report = tmp_path / "cfg.toml", tmp_path / "report.json"
    cfg.write_text(config)
    code = main(["run", "--source", str(path), "--config", str(cfg), "--quiet", "--dead-letters", "",
                 "--report", str(report)])
    return code, json.loads(report.read_text())["warnings"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_file_run_warns_about_millisecond_times(tmp_path, capsys, fmt):
    code, warnings = _run(tmp_path, fmt, 1000)
    (warning,) = _unit_warnings(warnings)
    assert code == 0 and warning.startswith("model.time_features: 30 of the first 30 events had a time in field 'ts'")
    assert "look like epoch milliseconds" in warning and f"warning: {warning}" in capsys.readouterr().err
    code, warnings = _run(tmp_path, fmt, 1)  # the same times in seconds: nothing said
    assert code == 0 and warnings == []


# -- mapping.timestamp_unit: times in a finer unit read as what they are --------------------------------------------------

@pytest.mark.parametrize("unit, scale", [("ms", 1000), ("us", 10**6), ("ns", 10**9)])
def test_the_unit_turns_numeric_times_into_epoch_seconds_in_json_and_csv(unit, scale):
    from stream_cl.decode import EventDecoder

    decoder = EventDecoder(MappingConfig(timestamp_unit=unit))
    raw = (T0 + 5400) * scale
    for value in (raw, float(raw), str(raw)):  # an integer, a float (the decoder's fast path), a numeric string
        event = decoder.decode_json(json.dumps({"x": {"a": 1}, "ts": value}).encode(), "t:1")
        assert event.ts == pytest.approx(T0 + 5400, abs=1e-6)
    assert decoder.decode_csv_row({"a": "1", "ts": str(raw)}, b"", "t.csv:2").ts == pytest.approx(T0 + 5400, abs=1e-6)
    iso = decoder.decode_json(b'{"x": {"a": 1}, "ts": "2024-05-01T01:30:00Z"}', "t:2")
    assert iso.ts == T0 + 5400  # an ISO 8601 time names its own unit
    dead = decoder.decode_json(b'{"x": {"a": 1}, "ts": "soon"}', "t:3")
    assert dead.reason == "bad_timestamp"


def test_seconds_stay_exactly_as_sent_by_default():
    from stream_cl.decode import EventDecoder

    event = EventDecoder(MappingConfig()).decode_json(b'{"x": {"a": 1}, "ts": 1714521600.123456}', "t:1")
    assert event.ts == 1714521600.123456


def test_an_unknown_unit_is_a_config_error_naming_the_key():
    from stream_cl.config import ConfigError, load_config_dict

    with pytest.raises(ConfigError, match="mapping.timestamp_unit"):
        load_config_dict({"mapping": {"timestamp_unit": "sec"}})


def test_the_census_reads_the_unit_and_names_the_one_that_fits():
    census = TimeCensus(MappingConfig(timestamp_unit="ms"), time_features=True, sample=1)
    census.observe(_events([(T0 * 10**6) / 1000]))  # microseconds read as milliseconds, decoded to seconds
    (warning,) = census.take()
    assert warning == (
        f"model.time_features: the first event had a time in field 'ts' (mapping.timestamp, in ms: "
        f"mapping.timestamp_unit) beyond 1e11 seconds (e.g. {T0 * 10**6}), after the year 5138 as epoch seconds: they "
        f'look like epoch microseconds, so their time features are noise; set mapping.timestamp_unit = "us"')
    fine = TimeCensus(MappingConfig(timestamp_unit="ms"), time_features=True, sample=1)
    fine.observe(_events([T0]))  # milliseconds decoded to seconds: plausible
    assert fine.take() == []


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_file_run_with_the_unit_set_says_nothing_and_learns_the_same_as_seconds(tmp_path, fmt):
    cfg_ms = "[model]\ntime_features = true\n[mapping]\ntimestamp_unit = \"ms\"\n"
    code, warnings = _run(tmp_path, fmt, 1000, config=cfg_ms)
    assert code == 0 and warnings == []
    ms = json.loads((tmp_path / "report.json").read_text())
    code, _ = _run(tmp_path, fmt, 1)
    seconds = json.loads((tmp_path / "report.json").read_text())
    assert ms["accuracy"] == seconds["accuracy"] and ms["events"] == seconds["events"] == 30
