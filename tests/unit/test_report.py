"""``stream-cl report``: PNG plots from a real demo run's report and from a full synthetic one."""

import json
import struct
from pathlib import Path

from connectors.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", head[8:16])
    assert kind == b"IHDR" and length == 13, f"{path}: first chunk is not IHDR"
    return struct.unpack(">II", head[16:24])


def check_png(path: Path) -> None:
    width, height = png_size(path)
    assert width > 200 and height > 200, f"{path}: {width}x{height} px"
    assert path.stat().st_size > 5_000, f"{path}: only {path.stat().st_size} bytes"


def written(out: str) -> list[Path]:
    return [Path(line) for line in out.splitlines() if line.endswith(".png")]


def test_report_of_a_real_demo_run(tmp_path, capsys):
    """The report `stream-cl run` itself writes (the demo's events carry tasks) gives every plot."""
    run_json = tmp_path / "run.json"
    assert main(["run", "--report", str(run_json), "--dead-letters", "", "--quiet"]) == 0
    report = json.loads(run_json.read_text())
    assert report["tasks"]["tasks"] == ["A", "B"] and len(report["tasks"]["accuracy_matrix"]) == 2
    assert main(["report", str(run_json), "--out", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    paths = written(out)
    assert sorted(p.name for p in paths) == ["accuracy.png", "accuracy_matrix.png", "throughput.png"]
    assert all(p.parent == tmp_path / "plots" for p in paths)
    assert "skipped" not in out
    for p in paths:
        check_png(p)


def test_a_run_without_tasks_says_why_it_has_no_matrix(tmp_path, capsys):
    events = tmp_path / "e.jsonl"
    events.write_text("".join(json.dumps({"x": {"a": i % 7}, "y": i % 2}) + "\n" for i in range(300)))
    run_json = tmp_path / "run.json"
    assert main(["run", "--source", str(events), "--report", str(run_json), "--dead-letters", "", "--quiet"]) == 0
    assert main(["report", str(run_json), "--out", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "skipped accuracy_matrix.png" in out and "mapping.task" in out  # said, not silent
    assert sorted(x.name for x in (tmp_path / "plots").iterdir()) == ["accuracy.png", "throughput.png"]


def test_default_out_dir_is_next_to_the_report(tmp_path, capsys):
    run_json = tmp_path / "r.json"
    assert main(["run", "--max-events", "1200", "--report", str(run_json), "--dead-letters", "", "--quiet"]) == 0
    assert main(["report", str(run_json)]) == 0
    paths = written(capsys.readouterr().out)
    assert {p.parent for p in paths} == {tmp_path / "r-plots"}
    for p in paths:
        check_png(p)


def synthetic_report() -> dict:
    windows = [{"events": 500 * (i + 1), "accuracy": 0.9 - 0.3 * (8 <= i < 11) + 0.01 * (i % 3), "t": 0.2 * (i + 1)}
               for i in range(24)]
    start = 1_700_000_000.0  # Unix times are shifted to start at 0
    return {
        "source": "kafka", "model": "OnlineContinualLearner", "events": 12_000, "labelled": 12_000,
        "predict_only": 0, "accuracy": 0.87, "window": 500, "windowed_accuracy": windows, "elapsed_s": 4.8,
        "events_per_s": 2500.0, "dead_letters": {}, "dead_letters_total": 0, "class_counts": {},
        "alarms": [{"t": 4_300, "detector": "adwin", "response": "forget"},
                   {"t": 4_450, "detector": "page_hinkley", "response": "record"},
                   {"t": 8_200, "detector": "adwin", "response": "forget"}],
        "lifelong": {"tasks": ["A", "B", "A again"],
                     "accuracy_matrix": [[0.92, None, 0.92], [0.81, 0.88, 0.81], [0.90, 0.86, 0.91]]},
        "throughput": [{"t": start + s, "events_per_s": 2400 + 40 * (s % 7)} for s in range(60)],
        "lag": [{"t": start + s, "lag": max(0, 500 - 9 * s) + 30 * p, "topic": "events", "partition": p}
                for s in range(60) for p in range(2)],
    }


def test_synthetic_report_covers_alarms_matrix_throughput_and_lag(tmp_path, capsys):
    run_json = tmp_path / "kafka-run.json"
    run_json.write_text(json.dumps(synthetic_report()))
    assert main(["report", str(run_json), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    paths = written(out)
    assert sorted(p.name for p in paths) == ["accuracy.png", "accuracy_matrix.png", "throughput.png"]
    assert "skipped" not in out and "no throughput" not in out and "no consumer lag" not in out
    for p in paths:
        check_png(p)
    # Two panels (throughput over lag) make a taller figure than the single-panel fallback.
    assert png_size(tmp_path / "out" / "throughput.png")[1] > 600


def test_matrix_only_and_empty_windows(tmp_path, capsys):
    report = {"windowed_accuracy": [], "events": 10, "accuracy": None,
              "lifelong": {"accuracy_matrix": [[1.0], [0.5, 0.75]]}}  # ragged, no task labels
    (tmp_path / "r.json").write_text(json.dumps(report))
    assert main(["report", str(tmp_path / "r.json"), "--out", str(tmp_path / "o")]) == 0
    paths = written(capsys.readouterr().out)
    assert sorted(p.name for p in paths) == ["accuracy.png", "accuracy_matrix.png", "throughput.png"]
    for p in paths:
        png_size(p)


def test_bad_reports_exit_2_with_a_message(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "no such report" in capsys.readouterr().err
    (tmp_path / "x.json").write_text("{not json")
    assert main(["report", str(tmp_path / "x.json")]) == 2
    assert "not a JSON report" in capsys.readouterr().err
    for i, text in enumerate(['{"foo": 3}', "[1, 2]"]):
        (tmp_path / f"y{i}.json").write_text(text)
        assert main(["report", str(tmp_path / f"y{i}.json")]) == 2
        assert "not a stream-cl report" in capsys.readouterr().err


def test_a_report_without_windows_still_plots(tmp_path, capsys):
    """A daemon status-style report (no windowed_accuracy) gets its plots, with the gaps said."""
    (tmp_path / "s.json").write_text(json.dumps({"events": 50, "accuracy": 0.5, "elapsed_s": 1.0, "events_per_s": 50.0}))
    assert main(["report", str(tmp_path / "s.json"), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in written(out)) == ["accuracy.png", "throughput.png"]


def test_a_matrix_without_columns_is_skipped_not_a_crash(tmp_path, capsys):
    for i, matrix in enumerate([[[]], [[], []]]):
        (tmp_path / f"m{i}.json").write_text(json.dumps({"events": 3, "tasks": {"tasks": [], "accuracy_matrix": matrix}}))
        assert main(["report", str(tmp_path / f"m{i}.json"), "--out", str(tmp_path / f"o{i}")]) == 0
        out = capsys.readouterr().out
        assert "skipped accuracy_matrix.png" in out
        assert sorted(p.name for p in written(out)) == ["accuracy.png", "throughput.png"]


def test_a_fixed_window_keeps_a_bounded_number_of_points():
    """The daemon's fixed window added a point every window for ever (272 B each: ~9.8 GiB in 30 days
    at 15k labelled events/s), and copied them all into its status report every second."""
    from stream_cl.prequential import DAEMON_MAX_POINTS, PrequentialStats

    n = 2 * (DAEMON_MAX_POINTS + 50)
    stats = PrequentialStats(window=2, max_points=DAEMON_MAX_POINTS)
    stats.update(["a"] * n, ["a", "b"] * (n // 2))
    assert len(stats.windows) == DAEMON_MAX_POINTS and stats.windows[-1]["events"] == n
    assert stats.labelled == n and stats.correct == n // 2
    whole = PrequentialStats(window=2)  # a file run's report keeps every point of its fixed window
    whole.update(["a"] * n, ["a", "b"] * (n // 2))
    assert len(whole.windows) == n // 2 and whole.windows[0]["events"] == 2
