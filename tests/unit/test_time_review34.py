"""Review r34 F2 (the time census's part): event times near 1970 are said, once.

With ``model.time_features`` on, epoch seconds read under ``mapping.timestamp_unit = "ms"`` land in
January 1970, and a date written as a number (``20240501``) in August 1970: consecutive days are
then seconds apart, and the hour and weekday columns carry nothing (accuracy 0.74 and 0.71 where the
right times give 0.99). The census warned only of times beyond 1e11 seconds; it now also warns of
times within 1e8 seconds of 1970 (before March 1973), naming the likely cause and the fix.
"""

from __future__ import annotations

import json

import pytest

from connectors.cli import main
from stream_cl.config import PER_SECOND, MappingConfig
from stream_cl.events import Event
from stream_cl.mapping_check import TimeCensus

T0 = 1714521600  # 2024-05-01T00:00:00Z


def _events(times):
    return [Event({"a": 1.0}, "p", ts=None if t is None else float(t)) for t in times]


def _near(warnings):
    return [w for w in warnings if "within 1e8 seconds of 1970" in w]


@pytest.mark.parametrize("unit, code, name, scale", [("ms", "s", "seconds", 1), ("us", "ms", "milliseconds", 1000),
                                                     ("ns", "us", "microseconds", 10**6)])
def test_times_in_a_coarser_unit_read_as_a_finer_one_are_said_once(unit, code, name, scale):
    census = TimeCensus(MappingConfig(timestamp_unit=unit), time_features=True, sample=3)
    per = {"ms": 1000, "us": 10**6, "ns": 10**9}[unit]
    census.observe(_events([T0 * scale / per, None, T0 * 1.0]))  # the last one right (in seconds, decoded)
    (warning,) = census.take()
    units = {"ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
    assert warning == (
        f"model.time_features: 1 of the first 3 events had a time in field 'ts' (mapping.timestamp, in {unit}: "
        f"mapping.timestamp_unit) within 1e8 seconds of 1970 (e.g. {T0 * scale}), before March 1973 as epoch "
        f"seconds: they look like epoch {name} read as {units[unit]}, so their time features are noise; "
        f'set mapping.timestamp_unit = "{code}"')
    assert census.take(final=True) == []  # said once


def test_dates_written_as_numbers_are_said_with_the_iso_fix():
    census = TimeCensus(MappingConfig(), time_features=True, sample=2)
    census.observe(_events([20240501, 20240502]))
    (warning,) = census.take()
    assert warning.startswith("model.time_features: 2 of the first 2 events had a time in field 'ts' (mapping.timestamp) "
                              "within 1e8 seconds of 1970 (e.g. 20240501), before March 1973 as epoch seconds: if they "
                              "are dates or times written as numbers (20240501 for 2024-05-01)")
    assert 'send an ISO 8601 string ("2024-05-01"), or epoch seconds' in warning


def test_plausible_and_historical_times_and_the_features_off_say_nothing():
    census = TimeCensus(MappingConfig(), time_features=True, sample=4)
    census.observe(_events([T0, 1e8, -1e8, -86400.0 * 365 * 60]))  # 2024, March 1973, October 1966, 1910
    assert census.take() == []
    off = TimeCensus(MappingConfig(timestamp_unit="ms"), time_features=False, sample=1)
    off.observe(_events([T0 / 1000]))
    assert off.take(final=True) == []


def _run(tmp_path, times, config: str) -> tuple[int, dict]:
    """``stream-cl run`` on 60 JSON events at ``times`` (as written), time features on."""
    path, report = tmp_path / "in.jsonl", tmp_path / "report.json"
    path.write_text("".join(json.dumps({"x": {"a": i % 3}, "ts": t, "y": "pq"[i % 2]}) + "\n"
                            for i, t in enumerate(times)))
    (tmp_path / "cfg.toml").write_text("[model]\ntime_features = true\n" + config)
    code = main(["run", "--source", str(path), "--config", str(tmp_path / "cfg.toml"), "--quiet", "--dead-letters", "",
                 "--report", str(report)])
    return code, json.loads(report.read_text())


def test_a_file_run_says_seconds_read_as_milliseconds_and_nothing_for_seconds(tmp_path, capsys):
    times = [T0 + 3600 * i for i in range(60)]
    code, report = _run(tmp_path, times, '[mapping]\ntimestamp_unit = "ms"\n')
    (warning,) = _near(report["warnings"])
    assert code == 0 and 'set mapping.timestamp_unit = "s"' in warning and f"warning: {warning}" in capsys.readouterr().err
    code, report = _run(tmp_path, times, "")
    assert code == 0 and report["warnings"] == []
    code, report = _run(tmp_path, [f"{20240501 + i % 28}" for i in range(60)], "")  # dates as digits: numbers
    (warning,) = _near(report["warnings"])
    assert code == 0 and 'send an ISO 8601 string ("2024-05-01")' in warning


def test_the_bundled_demo_with_time_features_says_nothing(tmp_path):
    (tmp_path / "cfg.toml").write_text("[model]\ntime_features = true\n")
    report = tmp_path / "report.json"
    code = main(["run", "--config", str(tmp_path / "cfg.toml"), "--max-events", "1200", "--quiet", "--dead-letters", "",
                 "--report", str(report)])
    assert code == 0 and json.loads(report.read_text())["warnings"] == []


@pytest.mark.parametrize("unit", ["s", "ms"])
@pytest.mark.parametrize("written, iso", [(20240501123000, "2024-05-01T12:30:00"), (202405011230, "2024-05-01T12:30:00")])
def test_dates_and_times_written_in_digits_are_said_whatever_the_unit(unit, written, iso):
    """Review r38: 20240501123000 is after 5138 as seconds, and the fix that warning named (unit "ms")
    read it as 2611 (202405011230: 1976), which no check said: the time features stayed noise."""
    census = TimeCensus(MappingConfig(timestamp_unit=unit), time_features=True, sample=3)
    # as the decoder divides by the unit; most of them written so
    census.observe(_events([written / PER_SECOND[unit], (written + 100) / PER_SECOND[unit], 1714521600.0]))
    (warning,) = census.take()
    assert f"written as a date and time in digits (e.g. {written}, {iso})" in warning
    assert f'send ISO 8601 strings ("{iso}")' in warning and "beyond 1e11" not in warning


def test_a_few_epoch_milliseconds_that_read_as_digits_say_nothing():
    """Epoch milliseconds of 1976 are 12 digits, and about one in 250 of them reads as a date and time
    in digits (190001010000 is 1976-01-08 in ms, and 1900-01-01 00:00 as digits): only most of the
    times written so is a stream of them (review r39)."""
    census = TimeCensus(MappingConfig(timestamp_unit="ms"), time_features=True, sample=3)
    census.observe(_events([190001010000 / 1000, 195000000000 / 1000, 200000000000 / 1000]))  # (1950-00-00: none)
    assert census.take() == []


def test_a_time_that_reads_as_digits_among_others_still_counts_in_the_other_warnings():
    """The same 1976 epoch milliseconds read as seconds: all three are beyond 1e11, the one that also
    reads as digits among them, and the warning names the unit."""
    census = TimeCensus(MappingConfig(), time_features=True, sample=3)
    census.observe(_events([190001010000.0, 195000000000.0, 200000000000.0]))
    (warning,) = census.take()
    assert warning.startswith("model.time_features: 3 of the first 3 events had a time in field 'ts' (mapping.timestamp) "
                              "beyond 1e11 seconds (e.g. 195000000000)") and 'timestamp_unit = "ms"' in warning


def test_digit_dates_and_epoch_milliseconds_in_one_range_are_each_said_by_what_they_are():
    """Review r41: decided over all times, the digits of a majority hid the epoch milliseconds beside
    them, and a minority of digits was said by a unit with a digit date as its example."""
    census = TimeCensus(MappingConfig(), time_features=True, sample=10)
    census.observe(_events([20240501123000.0 + 100 * i for i in range(6)] + [1714521600000.0 + i for i in range(4)]))
    digits, unit = sorted(census.take(), key=lambda w: "digits" in w, reverse=True)
    assert "6 of the first 10 events" in digits and "written as a date and time in digits" in digits
    assert unit.startswith("model.time_features: 4 of the first 10 events had a time in field 'ts' (mapping.timestamp) "
                           "beyond 1e11 seconds (e.g. 1714521600000)") and 'timestamp_unit = "ms"' in unit


def test_fourteen_digit_dates_are_said_as_digits_also_as_a_minority():
    """Review r42: four such among six epoch-ms times were told to set "ms" with the rest, which reads
    them as 2611; no unit reads 14 digits as a time of the last century, so they are always digits."""
    census = TimeCensus(MappingConfig(), time_features=True, sample=10)
    census.observe(_events([20240501123000.0 + 100 * i for i in range(4)] + [1714521600000.0 + i for i in range(6)]))
    digits, unit = sorted(census.take(), key=lambda w: "digits" in w, reverse=True)
    assert "4 of the first 10 events" in digits and "written as a date and time in digits" in digits
    assert unit.startswith("model.time_features: 6 of the first 10 events had a time in field 'ts' (mapping.timestamp) "
                           "beyond 1e11 seconds (e.g. 1714521600000)")
