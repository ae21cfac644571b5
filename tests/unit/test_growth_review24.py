"""Review r17's growth findings: output files a long run can rotate (F2), a followed file's
windowed-accuracy points bounded (F3), the per-task accuracy gauge following current tasks (F5)."""

from __future__ import annotations

import json
import os

from connectors.file_sinks import JsonlPredictionSink
from connectors.prometheus import TaskAccuracy
from connectors.run import run_file
from stream_cl.config import Config, ModelConfig, RunConfig, SourceConfig
from stream_cl.events import Prediction
from stream_cl.prequential import DAEMON_MAX_POINTS


def _preds(start: int, n: int) -> list[Prediction]:
    return [Prediction(f"e{i}", "a", 1.0, "a", None) for i in range(start, start + n)]


def _ids(path) -> list[str]:
    data = open(path, "rb").read()
    assert b"\0" not in data
    return [json.loads(line)["id"] for line in data.splitlines()]


# -- F2: rotation ------------------------------------------------------------------------------
def test_copytruncate_leaves_the_new_lines_at_the_start(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text("an older run's line\n")
    with JsonlPredictionSink(path) as sink:  # a new run: starts the file anew
        sink.write(_preds(0, 50))
        sink.flush()
        os.truncate(path, 0)  # logrotate copytruncate
        sink.write(_preds(50, 3))
        sink.flush()
    assert _ids(path) == ["e50", "e51", "e52"]


def test_rename_rotation_sends_later_lines_to_the_new_file(tmp_path):
    path = tmp_path / "preds.jsonl"
    rotated = tmp_path / "preds.jsonl.1"
    with JsonlPredictionSink(path) as sink:
        sink.write(_preds(0, 2))
        sink.flush()
        os.rename(path, rotated)
        path.write_text("")  # logrotate "create"
        sink.write(_preds(2, 1))  # the first write after a flush looks for a rotation
        sink.flush()
        sink.write(_preds(3, 2))
    assert _ids(rotated) == ["e0", "e1"]
    assert _ids(path) == ["e2", "e3", "e4"]


def test_a_path_that_cannot_be_opened_again_keeps_the_lines_in_the_open_file(tmp_path, caplog):
    # its folder removed mid-run: the write raised FileNotFoundError and the close "flush of closed file"
    folder = tmp_path / "out"
    path, moved = folder / "preds.jsonl", tmp_path / "kept.jsonl"
    sink = JsonlPredictionSink(path)
    sink.write(_preds(0, 1))
    sink.flush()
    os.rename(path, moved)  # the open file lives on under another name
    folder.rmdir()
    sink.write(_preds(1, 1))
    sink.flush()
    sink.write(_preds(2, 1))
    sink.close()
    assert _ids(moved) == ["e0", "e1", "e2"]
    said = [r.getMessage() for r in caplog.records if "cannot be opened again" in r.getMessage()]
    assert len(said) == 1  # once, not at every flush


def test_a_run_that_never_flushes_never_looks_for_a_rotation(tmp_path):
    path = tmp_path / "preds.jsonl"
    with JsonlPredictionSink(path) as sink:  # a finite file's run: flushed only by the close
        sink.write(_preds(0, 1))
        os.rename(path, tmp_path / "moved.jsonl")
        sink.write(_preds(1, 1))
    assert not path.exists() and _ids(tmp_path / "moved.jsonl") == ["e0", "e1"]


def test_rename_without_create_makes_the_file_again(tmp_path):
    path = tmp_path / "preds.jsonl"
    with JsonlPredictionSink(path) as sink:
        sink.write(_preds(0, 1))
        sink.flush()
        os.rename(path, tmp_path / "old.jsonl")
        sink.flush()
        sink.write(_preds(1, 1))
    assert _ids(path) == ["e1"]


def test_append_keeps_what_the_file_holds(tmp_path):
    path = tmp_path / "preds.jsonl"
    with JsonlPredictionSink(path) as sink:
        sink.write(_preds(0, 1))
    with JsonlPredictionSink(path, append=True) as sink:
        sink.write(_preds(1, 1))
    assert _ids(path) == ["e0", "e1"]


# -- F3: a followed file's fixed window keeps the latest points ---------------------------------
def _run(tmp_path, follow: bool, n: int) -> dict:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"e{i}", "x": {"a": i % 7}, "y": i % 2}) + "\n" for i in range(n)))
    cfg = Config(source=SourceConfig(kind="file", path=str(src), follow=follow, follow_idle_timeout_s=0.01),
                 model=ModelConfig(kind="analytic", seed=0),
                 run=RunConfig(window=1, progress=False, dead_letters="", batch_size=512))
    return run_file(cfg, warn=lambda _: None)


def test_a_followed_file_keeps_the_latest_points(tmp_path):
    n = DAEMON_MAX_POINTS + 200
    report = _run(tmp_path, follow=True, n=n)
    points = report["windowed_accuracy"]
    assert report["labelled"] == n
    assert len(points) == DAEMON_MAX_POINTS and points[-1]["events"] == n and points[0]["events"] == n - DAEMON_MAX_POINTS + 1


def test_a_finite_file_keeps_every_point(tmp_path):
    n = DAEMON_MAX_POINTS + 200
    assert len(_run(tmp_path, follow=False, n=n)["windowed_accuracy"]) == n


# -- F5: the task gauge follows the current tasks -----------------------------------------------
def test_task_accuracy_keeps_the_most_recent_tasks():
    acc = TaskAccuracy(window=10, max_tasks=100)
    for day in range(150):  # rolling daily tasks, the later ones half right
        acc.update([Prediction(str(i), "a", 1.0, "a" if day < 100 or i % 2 else "b", f"day-{day:03d}")
                    for i in range(20)])
    snap = acc.snapshot()
    assert len(snap) == 100 and min(snap) == "day-050" and max(snap) == "day-149"
    assert snap["day-149"] == 0.5 and acc.dropped == 50


def test_a_task_labelled_again_is_not_dropped():
    acc = TaskAccuracy(window=2, max_tasks=2)
    acc.update([Prediction("1", "a", 1.0, "a", "old")])
    acc.update([Prediction("2", "a", 1.0, "a", "mid")])
    acc.update([Prediction("3", "a", 1.0, "b", "old")])  # "old" is now the more recent
    acc.update([Prediction("4", "a", 1.0, "a", "new")])  # drops "mid"
    assert acc.snapshot() == {"old": 0.5, "new": 1.0} and acc.dropped == 1


def test_more_tasks_in_one_batch_than_tracked():
    acc = TaskAccuracy(window=5, max_tasks=2)
    acc.update([Prediction(str(i), "a", 1.0, "a", t) for i, t in enumerate(["t0", "t1", "t2", "t0", "t3"])])
    assert acc.snapshot() == {"t0": 1.0, "t3": 1.0} and acc.dropped == 3


# -- review r17 F6: dead letters without a dead-letter topic, logged a line a minute at most ------------------------------

def test_unrouted_dead_letters_are_logged_a_line_a_minute_with_the_counts(caplog):
    import logging

    from connectors.router import UnroutedDeadLetters
    from stream_cl.events import DeadLetter

    now = [0.0]
    said = UnroutedDeadLetters(every_s=60.0, clock=lambda: now[0])
    bad, deep = DeadLetter(b"{", "malformed", "not JSON", "e/0@1"), DeadLetter(b"{}", "too_deep", "nested", "e/0@9")
    with caplog.at_level(logging.WARNING, logger="stream_cl.daemon"):
        for poll in range(600):  # ten minutes of polls a second, each with two dead letters
            now[0] = float(poll)
            said.add([bad, deep])
    lines = [r.getMessage() for r in caplog.records if "dead letters since the last such line" in r.getMessage()]
    assert len(lines) == 10  # was one a poll: 600
    assert lines[0].startswith("2 dead letters since the last such line") and "malformed 1, too_deep 1" in lines[0]
    assert lines[1].startswith("120 dead letters") and "malformed 60, too_deep 60" in lines[1]
    assert lines[1].endswith("the latest: too_deep at e/0@9: nested")
