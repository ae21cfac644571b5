"""``stream-cl report RUN.json``: PNG plots of a run's JSON report.

Three figures, each from keys of the report (:meth:`stream_cl.prequential.PrequentialStats.report`
plus what the run loop adds); a key that is absent skips or simplifies its plot, and the
command says so:

``accuracy.png``
    windowed prequential accuracy against events seen (``windowed_accuracy``), the
    overall accuracy as a dashed line, and drift alarms (``alarms``: ``{"t": events
    seen, "detector", "response"}``) as vertical lines.
``accuracy_matrix.png``
    the per-task accuracy matrix (``tasks.accuracy_matrix`` of a run's report, or
    ``lifelong.accuracy_matrix`` of an offline evaluation; rows = after learning task *i*,
    columns = accuracy on task *j*, labelled by ``tasks.tasks``) as a heatmap. Skipped,
    with a note, when the report has none (the events carried no task). The figure is at most
    1,400 px high (14 in) and 1,520 px wide with its colour bar; past 40 tasks every k-th
    task is labelled; of a matrix larger than 500 x 500 the first 500 rows and columns are
    drawn, with a note; a value outside [0, 1] is drawn as a gap, as a missing one is.
``throughput.png``
    events/s over time (``throughput``: ``[{"t", "events_per_s"}]``) and consumer lag
    (``lag``: ``[{"t", "lag"}]``, one line per ``topic``/``partition`` when those keys
    are present). Without ``throughput``: events processed against elapsed time, from
    the timestamps of ``windowed_accuracy``. ``t`` is seconds since the start (Unix
    times are shifted to start at 0).

A value that is not a number, or is past 1e15 (no count, time or rate of a run is), is skipped
as damaged. A figure that still cannot be drawn is a :class:`ReportError` naming it, as is a
file that is not a run report (a daemon status file among them); the command exits 2.

Matplotlib is used through its object API on the Agg canvas (no pyplot state, no
display needed) and imported only when plotting.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from stream_cl.config import first_clause

__all__ = ["ReportError", "load_report", "plot_report", "main"]

DPI = 100
_UNIX_EPOCH_CUTOFF = 1e9  # t values above this are Unix timestamps, not elapsed seconds
# No count, time (Unix seconds included) or rate of a run comes near this: a value past it is damaged, and
# skipped as a non-finite one is (1e308 events made matplotlib's tick arithmetic fail: "arange: cannot compute length")
_MAX_VALUE = 1e15
# The task-matrix figure grew 0.7 in a task without bound (100 tasks: a 7370 x 7250 PNG, 2.1 GB to draw; 1000: a
# MemoryError): its side is capped, its tick labels thinned, and a larger matrix drawn in part, said in a note
MATRIX_MAX_SIDE_IN = 14.0
MATRIX_MAX_LABELS = 40  # tick labels per axis; past it every k-th task is labelled
MATRIX_MAX_TASKS = 500  # rows and columns drawn (the first ones); a run's report keeps at most 100 tasks


class ReportError(ValueError):
    """The report file is missing or not a stream-cl JSON report."""


def load_report(path: str | Path) -> dict:
    """The run report at ``path``; :class:`ReportError`, naming the path, for anything else (a missing,
    unreadable or damaged file, a daemon status file, a JSON that is not a run report)."""
    path = Path(path)
    try:  # is_file() itself raises for a folder that cannot be searched (EACCES): one message for both
        if path.is_dir():
            raise ReportError(f"{path}: is a directory; pass the report's JSON file (written by `stream-cl run --report PATH`)")
        if not path.is_file():
            raise ReportError(f"{path}: no such report; write one with `stream-cl run --report {path}`")
        text = path.read_text()
    except OSError as e:  # was a traceback, exit 1
        raise ReportError(f"{path}: cannot read the report ({e.strerror or e}); fix its permissions or the path") from None
    except UnicodeDecodeError as e:
        raise ReportError(f"{path}: not a JSON report ({e})") from None
    try:
        report = json.loads(text)
    except ValueError as e:  # JSONDecodeError, or an integer past Python's 4,300 digits (r32 F5)
        raise ReportError(f"{path}: not a JSON report ({first_clause(e)})") from None
    _check_is_run_report(report, path)
    return report


def _check_is_run_report(report, path: Path) -> None:
    """Refuse a JSON that is not a run report, saying what it is. The daemon's status file
    (``kafka.status_file``) has a top-level ``events`` too, a dict of counts: taken for a report, it gave
    empty plots whose notes contradicted it (its alarms and task matrix are under ``report``, its lag is
    per partition, not a series)."""
    if isinstance(report, dict) and isinstance(report.get("report"), Mapping) and {"state", "started_at"} & set(report):
        raise ReportError(f"{path}: a daemon status file (kafka.status_file), not a run report: it holds the latest "
                          "counts only; the daemon's series are on /metrics (Prometheus, the Grafana dashboard); "
                          "plot a file run's report (`stream-cl run --report PATH`)")
    if not isinstance(report, dict) or not ({"events", "windowed_accuracy"} & set(report)):
        raise ReportError(f"{path}: not a stream-cl report (neither events nor windowed_accuracy); "
                          "write one with `stream-cl run --report PATH`")
    events = report.get("events")
    if "events" in report and (not isinstance(events, int) or isinstance(events, bool)):
        raise ReportError(f"{path}: not a stream-cl report (events is {type(events).__name__} {_short(events)}, "
                          "a run report's is a count); write one with `stream-cl run --report PATH`")


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def plot_report(report: Mapping, out_dir: str | Path) -> tuple[list[Path], list[str]]:
    """Write the PNGs of ``report`` into ``out_dir``; return (paths written, notes on skips)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, notes = [], []
    for name, plot in (("accuracy.png", _accuracy), ("accuracy_matrix.png", _accuracy_matrix),
                       ("throughput.png", _throughput)):
        try:
            path, note = plot(report, out)
        except ReportError:
            raise
        # values no figure can hold, or of the wrong shape (a "tasks" that is no list, r32 F5): was a traceback
        except (MemoryError, ValueError, OverflowError, TypeError, KeyError, AttributeError) as e:
            raise ReportError(f"{name}: cannot plot the report's values ({type(e).__name__}: {e}); "
                              "the report is damaged or hand-made: check its numbers") from None
        if path is not None:
            written.append(path)
        if note:
            notes.append(note)
    return written, notes


def main(report_path: str, out_dir: str | None = None) -> int:
    """The ``stream-cl report`` command: plot, print the paths written and any skips."""
    report = load_report(report_path)
    rp = Path(report_path)
    out = Path(out_dir) if out_dir else rp.with_name(rp.stem + "-plots")
    # the folder is checked, and a failed write caught, here: an OSError was a traceback and exit 1
    where = f"--out {out}" if out_dir else f"{out} (the plots' default folder, beside the report)"
    if out.exists() and not out.is_dir():
        raise ReportError(f"{where}: is a file, not a folder; choose a folder (it is made if missing) with --out DIR")
    try:
        written, notes = plot_report(report, out)
    except OSError as e:
        raise ReportError(f"{where}: cannot write the plots there ({e}); choose a writable folder with --out DIR") from None
    if _stopped(report):
        print(f"the run was {_stopped(report)}: the plots cover only the records read before the stop")
    for note in notes:
        print(note)
    for path in written:
        print(path)
    return 0


# -- the figures ----------------------------------------------------------------------------
def _figure(width: float, height: float):
    """A figure on its own Agg canvas: no pyplot, no global backend switch, no display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path, description: str = "") -> Path:
    """Write the PNG; ``description`` (its tEXt ``Description``) states the figures it shows, so that
    a picture copied into the docs can be checked against a new run."""
    meta = {"Software": "stream-cl report", **({"Description": description} if description else {})}
    fig.savefig(path, dpi=DPI, format="png", metadata=meta)
    return path


def _num(v) -> float:
    """``v`` as a float to plot, or NaN (skipped) for what is not a number or is past :data:`_MAX_VALUE`."""
    try:
        v = float(v)
    except (TypeError, ValueError, OverflowError):
        return math.nan
    return v if abs(v) <= _MAX_VALUE else math.nan


def _title(report: Mapping) -> str:
    parts = [str(report.get("model", "")), str(report.get("source", ""))]
    return " on ".join(p for p in parts if p) or "stream-cl run"


def _stopped(report: Mapping) -> str | None:
    """What cut the run short (a report's ``"complete": false``), or None: its plots cover only the records
    read before the stop, which the run's summary says and the plots must too."""
    if report.get("complete", True) is not False:
        return None
    by, read = report.get("stopped_by"), report.get("records_read")
    where = f" after {read:,} records read" if isinstance(read, int) and not isinstance(read, bool) else ""
    return f"stopped by {by}{where}: partial run" if isinstance(by, str) and by else f"stopped{where}: partial run"


def _entries(report: Mapping, key: str) -> list[Mapping]:
    """The objects of list ``key`` (a hand-written or damaged report may hold anything there: skipped)."""
    value = report.get(key)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _accuracy(report: Mapping, out: Path):
    windows = _entries(report, "windowed_accuracy")
    alarms = [a for a in _entries(report, "alarms") if math.isfinite(_num(a.get("t")))]
    fig = _figure(10, 4.5)
    ax = fig.add_subplot()
    xs = [_num(w.get("events")) for w in windows]
    ys = [_num(w.get("accuracy")) for w in windows]
    if windows:
        per = f" per {report['window']:,} labelled events" if isinstance(report.get("window"), int) else ""
        ax.plot(xs, ys, marker="o" if len(xs) <= 60 else None, markersize=3, linewidth=1.6, color="C0",
                label=f"accuracy{per}")
    else:
        ax.text(0.5, 0.5, "no complete accuracy window in this run", ha="center", va="center", transform=ax.transAxes)
    overall = report.get("accuracy")
    if isinstance(overall, (int, float)) and math.isfinite(overall):
        ax.axhline(overall, color="0.4", linestyle="--", linewidth=1, label=f"overall {overall:.3f}")
    styles: dict[tuple[str, str], tuple] = {}
    for a in alarms:
        key = (str(a.get("detector", "?")), str(a.get("response", "?")))
        label = None
        if key not in styles:
            styles[key] = (f"C{(len(styles) + 1) % 10}", (":", "-.", "--", (0, (1, 3)))[len(styles) // 9 % 4])
            label = f"drift alarm: {key[0]} → {key[1]}"
        color, ls = styles[key]
        ax.axvline(_num(a["t"]), color=color, linestyle=ls, linewidth=1.2, alpha=0.85, label=label)
    ax.set_xlabel("events seen")
    ax.set_ylabel("prequential accuracy")
    lo = min([y for y in ys if math.isfinite(y)] + [1.0])
    ax.set_ylim(max(0.0, min(lo - 0.05, 0.5)), 1.01)
    ax.grid(True, alpha=0.3)
    # the report keeps the last drift.max_alarms alarms; the count raised is the drift section's
    continual = report.get("continual")
    drift = continual.get("drift") if isinstance(continual, Mapping) else None
    raised = drift.get("alarms") if isinstance(drift, Mapping) else None
    total = raised if isinstance(raised, int) and raised > len(alarms) else len(alarms)
    drawn = f" (the last {len(alarms):,} drawn)" if total > len(alarms) else ""
    n_alarms = f", {total:,} drift alarm{'s' if total != 1 else ''}{drawn}" if "alarms" in report else ""
    events = report.get("events")
    stopped = f" ({_stopped(report)})" if _stopped(report) else ""  # a partial run must not read as a whole one
    ax.set_title(f"{_title(report)}: {events:,} events{n_alarms}{stopped}" if isinstance(events, int)
                 else f"{_title(report)}{n_alarms}{stopped}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    note = None if "alarms" in report else "accuracy.png: the report has no alarms (no drift monitor in this run)"
    shown = f"overall accuracy {overall:.4f}" if isinstance(overall, (int, float)) and math.isfinite(overall) else ""
    described = "; ".join(p for p in (f"events {events}" if isinstance(events, int) else "", shown,
                                      f"drift alarms {total}{drawn}" if "alarms" in report else "",
                                      _stopped(report) or "") if p)
    return _save(fig, out / "accuracy.png", described), note


def _accuracy_matrix(report: Mapping, out: Path):
    # a run's report holds it under "tasks" (stream_cl.metrics.TaskSegments); offline evaluations under "lifelong"
    lifelong = next((report[k] for k in ("tasks", "lifelong") if isinstance(report.get(k), Mapping)
                     and isinstance(report[k].get("accuracy_matrix"), list)), None)
    matrix = lifelong.get("accuracy_matrix") if lifelong is not None else None
    if not isinstance(matrix, list) or not all(isinstance(r, list) for r in matrix) or not any(matrix):
        # no rows, or rows without a column ([[]]): nothing to plot
        return None, ("skipped accuracy_matrix.png: the report has no per-task accuracy matrix "
                      "(tasks.accuracy_matrix: the events carry no task field, mapping.task)")
    import numpy as np

    all_rows, all_cols = len(matrix), max(len(r) for r in matrix)
    n_rows, n_cols = min(all_rows, MATRIX_MAX_TASKS), min(all_cols, MATRIX_MAX_TASKS)
    data = np.full((n_rows, n_cols), np.nan)
    for i, row in enumerate(matrix[:n_rows]):
        for j, v in enumerate(row[:n_cols]):
            data[i, j] = _num(v)
    data[(data < 0) | (data > 1)] = np.nan  # not an accuracy: damaged, drawn as a gap like a missing one
    tasks = [str(t) for t in (lifelong.get("tasks") or [])]
    cols = tasks[:n_cols] + [str(j) for j in range(len(tasks), n_cols)]
    rows = tasks[:n_rows] + [str(i) for i in range(len(tasks), n_rows)]
    side = min(MATRIX_MAX_SIDE_IN, max(4.5, 0.7 * max(n_rows, n_cols) + 2.5))
    fig = _figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(data), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax, label="accuracy")
    x_at, y_at = _tick_positions(n_cols), _tick_positions(n_rows)
    x_labels = [cols[j][:20] for j in x_at]  # a long task name would push the heatmap out of the capped figure
    slanted = max(map(len, x_labels)) > 4
    ax.set_xticks(x_at, x_labels, rotation=45 if slanted else 0, ha="right" if slanted else "center")
    ax.set_yticks(y_at, [rows[i][:20] for i in y_at])
    ax.set_xlabel("accuracy on task")
    ax.set_ylabel("after learning task")
    if n_rows * n_cols <= 400:
        for i in range(n_rows):
            for j in range(n_cols):
                if math.isfinite(data[i, j]):
                    ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color="black" if data[i, j] > 0.6 else "white")
    note = None
    if (n_rows, n_cols) != (all_rows, all_cols):
        note = (f"accuracy_matrix.png: the matrix has {all_rows} x {all_cols} tasks; drawn: the first "
                f"{n_rows} x {n_cols} (at most {MATRIX_MAX_TASKS} a side)")
        ax.set_title(f"per-task accuracy, first {n_rows} x {n_cols} of {all_rows} x {all_cols} tasks: {_title(report)}")
    else:
        ax.set_title(f"per-task accuracy: {_title(report)}")
    return _save(fig, out / "accuracy_matrix.png"), note


def _tick_positions(n: int) -> range:
    """Every task's position up to :data:`MATRIX_MAX_LABELS`, else every k-th: labels overlapped past it.

    >>> list(_tick_positions(5)), len(_tick_positions(100)), _tick_positions(100).step
    ([0, 1, 2, 3, 4], 34, 3)
    """
    return range(0, n, max(1, math.ceil(n / MATRIX_MAX_LABELS)))


def _series(points, key: str) -> tuple[list[float], list[float]]:
    pts = [(_num(p.get("t")), _num(p.get(key))) for p in points if isinstance(p, Mapping)]
    pts = sorted((t, v) for t, v in pts if math.isfinite(t) and math.isfinite(v))
    return [t for t, _ in pts], [v for _, v in pts]


def _time_origin(*series: list[float]) -> float:
    ts = [t for s in series for t in s]
    return min(ts) if ts and min(ts) > _UNIX_EPOCH_CUTOFF else 0.0


def _iso(unix: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))


def _throughput(report: Mapping, out: Path):
    throughput = report.get("throughput") if isinstance(report.get("throughput"), list) else None
    lag = report.get("lag") if isinstance(report.get("lag"), list) else None
    notes = []
    panels = 2 if lag else 1
    fig = _figure(10, 3.4 * panels + 0.6)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    groups: dict[str, list] = {}
    for p in lag or []:
        if isinstance(p, Mapping):
            name = "/".join(str(p[k]) for k in ("topic", "partition") if k in p) or "total"
            groups.setdefault(name, []).append(p)
    lag_series = {name: _series(pts, "lag") for name, pts in sorted(groups.items())}
    tp_t, tp_v = _series(throughput, "events_per_s") if throughput else ([], [])
    t0 = _time_origin(tp_t, *(t for t, _ in lag_series.values()))  # one time axis for both panels
    ax = axes[0]
    if throughput:
        ax.plot([x - t0 for x in tp_t], tp_v, color="C0", linewidth=1.5, label="events/s")
        ax.set_ylabel("events/s")
        ax.set_ylim(bottom=0)
        ax.set_title(f"throughput{' and consumer lag' if lag else ''}: {_title(report)}")
    else:
        notes.append("throughput.png: the report has no throughput series; plotting events against elapsed time")
        pts = [(0.0, 0.0)] + [(_num(w.get("t")), _num(w.get("events"))) for w in _entries(report, "windowed_accuracy")]
        if isinstance(report.get("elapsed_s"), (int, float)) and isinstance(report.get("events"), int):
            pts.append((_num(report["elapsed_s"]), _num(report["events"])))
        pts = sorted(p for p in pts if all(map(math.isfinite, p)))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) <= 60 else None, markersize=3,
                color="C0", linewidth=1.5, label="events processed")
        ax.set_ylabel("events processed")
        rate = report.get("events_per_s")
        rate_text = f" ({rate:,.0f} events/s end to end)" if isinstance(rate, (int, float)) and math.isfinite(rate) else ""
        ax.set_title(f"events over time{rate_text}: {_title(report)}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    if lag:
        ax = axes[1]
        for k, (name, (t, v)) in enumerate(lag_series.items()):
            ax.plot([x - t0 for x in t], v, color=f"C{(k + 1) % 10}", linewidth=1.4, label=f"lag {name}")
        ax.set_ylabel("consumer lag (messages)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, ncol=max(1, min(4, len(lag_series) // 6 + 1)))
    else:
        notes.append("throughput.png: the report has no consumer lag series")
    axes[-1].set_xlabel("elapsed time (s)" if not t0 else f"seconds since {_iso(t0)}")
    return _save(fig, out / "throughput.png"), "\n".join(notes) or None
