"""Prequential benchmark: stream-cl against River and CapyMOA on the same streams.

Every stream is materialised once (a list of ``(dict, label)`` events) and the very
same list goes to every model, in one process. Each model is scored prequentially
(predict, then learn, every event); the wall time covers the predict+learn loop only.
Stream generation, model construction and (for CapyMOA) the conversion of the events
to MOA instances happen outside the timed loop; the conversion time is reported. Building
our learners calls ``stream_cl.runtime.warm_up()`` (numba and its compiled loops, ~0.5 s
once per process, as the daemon does at its start), so the first stream's loops do not pay
for it.

Our learners are timed twice:

* per event: ``predict_one(x)`` then ``learn_one(x, y)``, in this script's own loop or, with
  ``--loop river``, in River's ``evaluate.progressive_val_score`` (every per-event model alike);
* micro-batched: ``prequential_batch(xs, ys)`` on chunks of 256 events, which returns
  for every event the probabilities a predict-then-learn loop would have given (rows
  in ``model.classes_`` order; an all-zero row is no prediction and counts as wrong).
  Its predictions must agree with the per-event loop on every event (the speed issue's
  criterion: 100%); a single disagreement is a failed check and the summary prints the
  lowest agreement.

Usage::

    python benchmarks/vs_river.py --n 20000 --json out.json --markdown out.md
    python benchmarks/vs_river.py --quick --streams ImageSegments --models ours,river_lr
    python benchmarks/vs_river.py --loop river ...   # per-event runs timed in River's progressive_val_score

CapyMOA models need ``capymoa`` (``pip install -e '.[bench]'``, Java 17); without it
they are reported as skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import numbers
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks.common import (
    STREAMS,
    ModelResult,
    StreamData,
    fingerprint,
    fmt_markdown_table,
    fmt_num,
    materialise,
    resolve_names,
)

BATCH = 256
MIN_AGREEMENT = 1.0  # every event: the batched path is exact, so one disagreement is a defect
# The speed issue's criteria, each a ratio inside one run. The per-stream verdict lines
# (summary_line) and the summary over the streams (summary_table) both test these and no others.
TARGET_PER_EVENT_VS_ARF = 3.0  # ours per event >= 3x River ARF, on every stream
TARGET_PER_EVENT_VS_LR_MEDIAN = 0.25  # median over the streams of ours per event / River LR per event
TARGET_BATCH_VS_ARF = 25.0  # ours in batches of BATCH >= 25x River ARF, on every stream
QUICK_N = 2000


# -- model specs -------------------------------------------------------------------------
@dataclass
class Spec:
    """How to build and run one model; ``kind`` picks the loop."""

    name: str
    kind: str  # "stream_cl" (per event + batch), "river" (per event), "capymoa"
    build: Callable[[StreamData, int], tuple[object, list[str]]]  # -> (model, notes)
    description: str


def _warm_up() -> None:
    """numba and the compiled loops, loaded at model construction (outside the timed loop) as
    the daemon loads them at its start; a tree without them has nothing to load."""
    from stream_cl import runtime

    if hasattr(runtime, "warm_up"):
        runtime.warm_up()


def _build_ours(stream: StreamData, seed: int):
    import stream_cl

    _warm_up()
    cls = getattr(stream_cl, "OnlineContinualLearner", None)
    if cls is None:
        return stream_cl.AnalyticClassifier(), [
            "FALLBACK: stream_cl.OnlineContinualLearner not found, ran AnalyticClassifier()"
        ]
    return cls(), []


def _build_analytic(stream: StreamData, seed: int):
    import stream_cl

    _warm_up()
    return stream_cl.AnalyticClassifier(), []


def _labels_are_binary01(stream: StreamData) -> bool:
    return len(stream.classes) <= 2 and all(c in (0, 1) and not isinstance(c, float) for c in stream.classes)


def _drop_nulls(x: dict) -> dict:
    """River's spelling of a missing value: the key is absent (its models cannot take None)."""
    return {k: v for k, v in x.items() if v is not None}


def _river_inputs(stream: StreamData, model, one_hot: bool = False):
    """``model`` given what River needs: nulls dropped, and (``one_hot``) string features
    one-hot encoded beside the standardised numbers. Returns (model, notes)."""
    from river import compose, preprocessing

    notes = []
    if one_hot and _nominal_values(stream):
        scaled = compose.SelectType(numbers.Number) | preprocessing.StandardScaler()
        model = (scaled + (compose.SelectType(str) | preprocessing.OneHotEncoder())) | model
        notes.append("OneHotEncoder on string features")
    elif one_hot:
        model = preprocessing.StandardScaler() | model
    if _has_nulls(stream):
        model = compose.FuncTransformer(_drop_nulls) | model
        notes.append("nulls dropped (absent keys)")
    return model, notes


def _build_river_lr(stream: StreamData, seed: int):
    from river import linear_model, multiclass

    if _labels_are_binary01(stream):
        return _river_inputs(stream, linear_model.LogisticRegression(), one_hot=True)
    model, notes = _river_inputs(stream, multiclass.OneVsRestClassifier(linear_model.LogisticRegression()), one_hot=True)
    return model, ["one-vs-rest", *notes]


def _build_river_hat(stream: StreamData, seed: int):
    from river import tree

    return _river_inputs(stream, tree.HoeffdingAdaptiveTreeClassifier(seed=seed))  # strings: nominal splits


def _build_river_arf(stream: StreamData, seed: int):
    from river import forest

    return _river_inputs(stream, forest.ARFClassifier(n_models=10, seed=seed))


def _build_capymoa_arf(stream: StreamData, seed: int):
    from capymoa.classifier import AdaptiveRandomForestClassifier

    schema = capymoa_schema(stream)
    return AdaptiveRandomForestClassifier(schema=schema, ensemble_size=10, random_seed=seed), []


def _build_capymoa_hat(stream: StreamData, seed: int):
    from capymoa.classifier import HoeffdingAdaptiveTree

    schema = capymoa_schema(stream)
    return HoeffdingAdaptiveTree(schema=schema, random_seed=seed), []


MODELS: dict[str, Spec] = {
    s.name: s
    for s in [
        Spec("ours", "stream_cl", _build_ours, "stream_cl.OnlineContinualLearner() (defaults)"),
        Spec("analytic", "stream_cl", _build_analytic, "stream_cl.AnalyticClassifier() on raw features"),
        Spec("river_lr", "river", _build_river_lr,
             "river StandardScaler | LogisticRegression (OneVsRest around the LR when multiclass; with string "
             "features: SelectType(Number) | StandardScaler + SelectType(str) | OneHotEncoder)"),
        Spec("river_hat", "river", _build_river_hat, "river tree.HoeffdingAdaptiveTreeClassifier(seed)"),
        Spec("river_arf", "river", _build_river_arf, "river forest.ARFClassifier(n_models=10, seed)"),
        Spec("capymoa_arf", "capymoa", _build_capymoa_arf,
             "capymoa AdaptiveRandomForestClassifier(ensemble_size=10, random_seed)"),
        Spec("capymoa_hat", "capymoa", _build_capymoa_hat, "capymoa HoeffdingAdaptiveTree(random_seed)"),
    ]
}
BATCH_SUFFIX = f" [batch {BATCH}]"


# -- CapyMOA glue ------------------------------------------------------------------------
def capymoa_unavailable() -> str | None:
    """None if CapyMOA imports (and its JVM starts), else why not."""
    try:
        import capymoa.classifier  # noqa: F401  (starts the JVM)
        from capymoa.core import LabeledInstance  # noqa: F401
        from capymoa.stream import Schema  # noqa: F401
    except Exception as e:  # ImportError, or the JVM failing to start
        return f"capymoa not importable ({type(e).__name__}: {e}); pip install -e '.[bench]' (needs Java 17)"
    return None


def _nominal_values(stream: StreamData) -> dict:
    """Features holding strings are nominal: name -> sorted distinct values (as strings)."""
    nominal: dict = {}
    for x, _ in stream.events:
        for k, v in x.items():
            if isinstance(v, str):
                nominal.setdefault(k, set()).add(v)
    return {k: sorted(v) for k, v in nominal.items()}


def _has_nulls(stream: StreamData) -> bool:
    return any(v is None for x, _ in stream.events for v in x.values())


def capymoa_schema(stream: StreamData):
    """Numeric attributes (nominal for string-valued features) + a nominal class whose
    values are ``str(label)`` in the stream's first-seen label order."""
    from capymoa.stream import Schema

    names = [str(k) for k in stream.feature_names]
    target = "class"
    while target in names:
        target = "_" + target
    categories = {target: [str(c) for c in stream.classes]}
    if len(set(categories[target])) != len(stream.classes):
        raise ValueError("two labels have the same str(); cannot build a CapyMOA nominal class")
    nominal = _nominal_values(stream)
    for k, values in nominal.items():
        categories[str(k)] = values
    return Schema.from_custom(features=[*names, target], target=target, categories=categories, name=stream.name)


def capymoa_instances(stream: StreamData, schema) -> tuple[list, list[int]]:
    """The events as ``LabeledInstance``s with their Java instances already built."""
    from capymoa.core import LabeledInstance

    label_index = {c: i for i, c in enumerate(stream.classes)}
    nominal = {k: {v: float(i) for i, v in enumerate(vals)} for k, vals in _nominal_values(stream).items()}
    keys = stream.feature_names
    instances, targets = [], []
    for x, y in stream.events:
        row = np.array(  # absent or null: NaN, MOA's missing value
            [np.nan if x.get(k) is None else nominal[k][x[k]] if k in nominal else float(x[k]) for k in keys],
            dtype=np.float64,
        )
        inst = LabeledInstance.from_array(schema, row, label_index[y])
        inst.java_instance  # noqa: B018  (force the conversion now, not inside the timed loop)
        instances.append(inst)
        targets.append(label_index[y])
    return instances, targets


# -- prequential loops (the timed parts) ------------------------------------------------
def loop_per_event(model, events: list) -> tuple[int, float, list]:
    preds = []
    append = preds.append
    correct = 0
    t0 = time.perf_counter()
    for x, y in events:
        p = model.predict_one(x)
        if p is not None and p == y:
            correct += 1
        append(p)
        model.learn_one(x, y)
    return correct, time.perf_counter() - t0, preds


def loop_progressive(model, events: list) -> tuple[int, float]:
    """River's own prequential loop, ``evaluate.progressive_val_score`` with ``Accuracy``, timed
    whole (``--loop river``). River leaves an event without a prediction out of its metric;
    here it counts as wrong, as in ``loop_per_event``, so ``correct`` is the metric's true
    positives over every event."""
    from river import evaluate, metrics

    t0 = time.perf_counter()
    metric = evaluate.progressive_val_score(dataset=events, model=model, metric=metrics.Accuracy())
    seconds = time.perf_counter() - t0
    return int(round(metric.cm.total_true_positives)), seconds


def loop_batch(model, xs: list, ys: list, batch: int = BATCH) -> tuple[int, float, list]:
    preds: list = []
    correct = 0
    n = len(xs)
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        yb = ys[i : i + batch]
        proba = np.asarray(model.prequential_batch(xs[i : i + batch], yb))  # (b, n_classes)
        classes = model.classes_
        if proba.shape[0] != len(yb):
            raise ValueError(f"prequential_batch returned {proba.shape[0]} rows for {len(yb)} events")
        if proba.shape[1] == 0:
            chunk = [None] * len(yb)
        else:
            top = proba.argmax(axis=1).tolist()
            has = (proba.max(axis=1) > 0).tolist()
            chunk = [classes[j] if h else None for j, h in zip(top, has)]
        for p, y in zip(chunk, yb):
            if p is not None and p == y:
                correct += 1
        preds.extend(chunk)
    return correct, time.perf_counter() - t0, preds


def loop_capymoa(model, instances: list, targets: list[int]) -> tuple[int, float]:
    correct = 0
    t0 = time.perf_counter()
    for inst, y in zip(instances, targets):
        p = model.predict(inst)
        if p is not None and p == y:
            correct += 1
        model.train(inst)
    return correct, time.perf_counter() - t0


def _disagreements(r: ModelResult) -> int:
    return round((1.0 - r.agreement) * r.n_events)


def _agreement(a: Sequence, b: Sequence) -> float:
    if len(a) != len(b) or not a:
        return 0.0
    return sum(1 for p, q in zip(a, b) if p == q and (p is None) == (q is None)) / len(a)


def _error(e: BaseException) -> str:
    frame = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    where = f" at {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""
    return f"{type(e).__name__}: {e}{where}"


# -- running one model on one stream ---------------------------------------------------
def run_model(spec: Spec, stream: StreamData, seed: int, capymoa_missing: str | None,
              log: Callable[[str], None], loop: str = "own") -> list[ModelResult]:
    """One spec on one stream -> one result (two for our learners: per event and batched).

    ``loop`` times the per-event runs: "own" (``loop_per_event``) or "river"
    (``loop_progressive``); with "river", our learner's per-event predictions for the agreement
    check come from one more, untimed run of ``loop_per_event`` on a fresh model."""
    if spec.kind == "capymoa" and capymoa_missing:
        return [ModelResult(spec.name, skipped=capymoa_missing)]
    before = fingerprint(stream.events)
    results: list[ModelResult] = []

    def build(res: ModelResult):
        t0 = time.perf_counter()
        model, notes = spec.build(stream, seed)
        res.setup_s = time.perf_counter() - t0
        res.notes.extend(notes)
        return model

    if spec.kind in ("river", "stream_cl"):
        res = ModelResult(spec.name)
        results.append(res)
        per_event_preds = None
        try:
            model = build(res)
            gc.collect()
            if loop == "river":
                res.correct, res.seconds = loop_progressive(model, stream.events)
                if spec.kind == "stream_cl":  # the predictions to compare, untimed
                    _, _, per_event_preds = loop_per_event(spec.build(stream, seed)[0], stream.events)
            else:
                res.correct, res.seconds, per_event_preds = loop_per_event(model, stream.events)
            res.n_events = stream.n_events
            if spec.kind == "stream_cl":
                res.notes.insert(0, f"{type(model).__name__}, per event")
            if loop == "river":
                res.notes.insert(0, "timed in progressive_val_score")
        except Exception as e:  # noqa: BLE001  (a failing model is a result, not a crash)
            res.error = _error(e)
        if spec.kind == "stream_cl":
            bres = ModelResult(spec.name + BATCH_SUFFIX)
            results.append(bres)
            try:
                model = build(bres)
                if not hasattr(model, "prequential_batch"):
                    bres.skipped = f"{type(model).__name__} has no prequential_batch"
                else:
                    xs = [x for x, _ in stream.events]
                    ys = [y for _, y in stream.events]
                    gc.collect()
                    bres.correct, bres.seconds, batch_preds = loop_batch(model, xs, ys)
                    bres.n_events = stream.n_events
                    bres.notes.insert(0, f"{type(model).__name__}, prequential_batch({BATCH})")
                    if per_event_preds is not None:
                        bres.agreement = _agreement(per_event_preds, batch_preds)
                        bres.notes.append(f"agrees with per-event on {100 * bres.agreement:.3f}%")
            except Exception as e:  # noqa: BLE001
                bres.error = _error(e)
    elif spec.kind == "capymoa":
        res = ModelResult(spec.name)
        results.append(res)
        try:
            model = build(res)
            t0 = time.perf_counter()
            instances, targets = capymoa_instances(stream, model.schema)
            res.conversion_s = time.perf_counter() - t0
            gc.collect()
            res.correct, res.seconds = loop_capymoa(model, instances, targets)
            res.n_events = stream.n_events
            res.notes.append(f"conversion {res.conversion_s:.2f}s untimed")
        except Exception as e:  # noqa: BLE001
            res.error = _error(e)
    else:  # pragma: no cover
        raise ValueError(spec.kind)

    if fingerprint(stream.events) != before:
        for r in results:
            r.error = (r.error + "; " if r.error else "") + "model mutated the shared input events"
        raise RuntimeError(f"{spec.name} mutated the events of {stream.name}: later results would be invalid")
    for r in results:
        if r.ok:
            log(f"  {r.model:<22} acc {r.accuracy:.4f}  {r.events_per_s:>10,.0f} ev/s  ({r.seconds:.2f}s)")
        else:
            log(f"  {r.model:<22} {'FAILED: ' + r.error if r.error else 'skipped: ' + str(r.skipped)}")
    return results


# -- reporting ---------------------------------------------------------------------------
def _by_name(results: Sequence[ModelResult]) -> dict[str, ModelResult]:
    return {r.model: r for r in results}


def stream_summary(stream: StreamData, results: Sequence[ModelResult]) -> dict:
    """Speed ratios vs River ARF and accuracy deltas vs River LR / the best model."""
    by = _by_name(results)
    arf, lr = by.get("river_arf"), by.get("river_lr")
    ok = [r for r in results if r.ok]
    best = max(ok, key=lambda r: r.accuracy, default=None)
    rows = {}
    for r in results:
        rows[r.model] = {
            "speed_vs_river_arf": (r.events_per_s / arf.events_per_s) if r.ok and arf and arf.ok else None,
            "speed_vs_river_lr": (r.events_per_s / lr.events_per_s) if r.ok and lr and lr.ok else None,
            "acc_minus_river_lr": (r.accuracy - lr.accuracy) if r.ok and lr and lr.ok else None,
            "acc_minus_best": (r.accuracy - best.accuracy) if r.ok and best else None,
        }
    ours = {}
    for name in ("ours", "ours" + BATCH_SUFFIX):
        if name in by and by[name].ok:
            ours[name] = {
                "accuracy": by[name].accuracy,
                "events_per_s": by[name].events_per_s,
                **rows[name],
                "agreement": by[name].agreement,
            }
    return {"best_model": best.model if best else None, "rows": rows, "ours": ours}


def _pp(v) -> str:
    return "—" if v is None else f"{100 * v:+.2f}"


def _ratio(v) -> str:
    return "—" if v is None else (f"{v:.1f}x" if v >= 1 else f"{v:.2f}x")


def markdown_for_stream(stream: StreamData, results: Sequence[ModelResult], summary: dict) -> str:
    rows = []
    for r in results:
        s = summary["rows"][r.model]
        notes = list(r.notes)
        if r.error:
            notes.insert(0, f"FAILED: {r.error}")
        if r.skipped:
            notes.insert(0, f"skipped: {r.skipped}")
        rows.append({
            "model": r.model + (" (best)" if r.model == summary["best_model"] else ""),
            "acc": fmt_num(r.accuracy, ".4f"),
            "eps": fmt_num(r.events_per_s, ",.0f"),
            "arf": _ratio(s["speed_vs_river_arf"]),
            "lr": _pp(s["acc_minus_river_lr"]),
            "best": _pp(s["acc_minus_best"]),
            "secs": fmt_num(r.seconds if r.ok else None, ".2f"),
            "notes": "; ".join(notes),
        })
    table = fmt_markdown_table(rows, [
        ("model", "model", "l"), ("acc", "accuracy", "r"), ("eps", "events/s", "r"),
        ("arf", "speed vs River ARF", "r"), ("lr", "acc − River LR (pp)", "r"),
        ("best", "acc − best (pp)", "r"), ("secs", "loop s", "r"), ("notes", "notes", "l"),
    ])
    head = (f"### {stream.name}: {stream.n_events:,} events, {stream.n_features} features, "
            f"{stream.n_classes} classes\n\n{stream.description}\n")
    return f"{head}\n{table}\n\n{summary_line(stream, summary)}\n"


def _verdict(v: float | None, target: float, fmt: str = "x") -> str:
    """``meets``/``MISSES`` against one of the targets above; a figure not measured is a miss."""
    if v is None:
        return f"MISSES >= {target:g}{fmt}: not measured"
    return f"{'meets' if v >= target else 'MISSES'} >= {target:g}{fmt}"


def summary_line(stream: StreamData, summary: dict) -> str:
    """This stream's verdicts on the speed issue's criteria (the targets summary_table tests too:
    per event vs River ARF, batched vs River ARF; the per-event ratio to River LR is reported,
    its criterion is on the median over the streams, in the summary) and accuracy vs River LR."""
    ours = summary["ours"]
    if not ours:
        return f"**{stream.name}**: ours did not run."
    parts = []
    for name, label, target in (("ours", "per event", TARGET_PER_EVENT_VS_ARF),
                                ("ours" + BATCH_SUFFIX, f"batch {BATCH}", TARGET_BATCH_VS_ARF)):
        if name not in ours:
            parts.append(f"{label}: did not run (speed vs River ARF {_verdict(None, target)})")
            continue
        o = ours[name]
        sp, dl = o["speed_vs_river_arf"], o["acc_minus_river_lr"]
        sp_txt = f"n/a (no River ARF; {_verdict(None, target)})" if sp is None else (
            f"{sp:.2f}x ({_verdict(sp, target)})")
        lr_txt = ""
        if name == "ours":
            sl = o.get("speed_vs_river_lr")
            lr_txt = ", speed vs River LR " + ("n/a (no River LR)" if sl is None else (
                f"{sl:.3f}x (the >= {TARGET_PER_EVENT_VS_LR_MEDIAN:g} criterion is on the median over "
                f"the streams, in the summary)"))
        dl_txt = "n/a (no River LR)" if dl is None else (
            f"{_pp(dl)} pp ({'meets' if dl >= 0 else 'MISSES'} >= 0)")
        extra = f", agreement {100 * o['agreement']:.3f}%" if o.get("agreement") is not None else ""
        parts.append(f"{label}: speed vs River ARF {sp_txt}{lr_txt}, accuracy − River LR {dl_txt}{extra}")
    return f"**{stream.name}** — ours " + "; ".join(parts) + "."


def _loadavg():
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def _source_state() -> dict:
    """Commit and a digest of the stream_cl sources actually benchmarked (the tree may be dirty)."""
    import hashlib
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    state: dict = {}
    try:
        state["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                         text=True, timeout=10).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "stream_cl"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.splitlines()
        state["stream_cl_dirty"] = [line.strip() for line in dirty]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import stream_cl

        pkg = os.path.dirname(stream_cl.__file__)
        h = hashlib.sha1()
        for dirpath, _, files in sorted(os.walk(pkg)):
            for f in sorted(files):
                if f.endswith(".py"):
                    path = os.path.join(dirpath, f)
                    h.update(os.path.relpath(path, pkg).encode())
                    with open(path, "rb") as fh:
                        h.update(fh.read())
        state["stream_cl_path"] = pkg
        state["stream_cl_sha1"] = h.hexdigest()
    except Exception as e:  # noqa: BLE001
        state["stream_cl_error"] = _error(e)
    return state


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for mod in ("numpy", "pandas", "river", "torch", "stream_cl", "capymoa"):
        try:
            out[mod] = getattr(__import__(mod), "__version__", "?")
        except Exception:  # noqa: BLE001
            out[mod] = None
    return out


# -- CLI -------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20000, help="events per synthetic stream; Shuttle is capped to it")
    p.add_argument("--quick", action="store_true", help=f"smoke test: --n {QUICK_N}")
    p.add_argument("--streams", default=None, help=f"comma-separated subset of: {', '.join(STREAMS)}")
    p.add_argument("--models", default=None, help=f"comma-separated subset of: {', '.join(MODELS)}")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP/torch threads during the run (default 1: every competitor is "
                        "single-threaded, and oversubscribed BLAS threads on a busy box are very slow); "
                        "0 leaves the libraries' defaults")
    p.add_argument("--loop", choices=("own", "river"), default="own",
                   help="the per-event runs' loop: own (predict_one then learn_one, the default) or river "
                        "(River's evaluate.progressive_val_score with Accuracy, timed whole; our learner's "
                        "predictions for the agreement check then come from one more, untimed own loop)")
    p.add_argument("--json", default=None, metavar="PATH", help="write raw numbers as JSON")
    p.add_argument("--markdown", default=None, metavar="PATH", help="write the tables as markdown")
    args = p.parse_args(argv)
    if args.quick:
        args.n = QUICK_N
    if args.n < 1:
        p.error("--n must be >= 1")
    return args


_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


@contextlib.contextmanager
def thread_limit(n: int):
    """Limit BLAS/OpenMP and torch intra-op threads to ``n`` (0: no limit).

    The environment variables cover libraries loaded later (each bundled OpenBLAS reads
    them when it loads); threadpoolctl covers those already loaded, so the numeric
    libraries the models use are imported first.
    """
    if n <= 0:
        yield
        return
    saved = {k: os.environ.get(k) for k in _THREAD_ENV}
    os.environ.update({k: str(n) for k in _THREAD_ENV})
    stack = contextlib.ExitStack()
    torch, old = None, None
    try:
        for mod in ("scipy.linalg", "torch", "stream_cl"):
            try:
                __import__(mod)
            except Exception:  # noqa: BLE001  (a broken import is reported by the model that needs it)
                pass
        try:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=n))
        except ImportError:
            pass
        torch = sys.modules.get("torch")
        if torch is not None:
            old = torch.get_num_threads()
            torch.set_num_threads(n)
        with stack:
            yield
    finally:
        if torch is not None and old is not None:
            torch.set_num_threads(old)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _criterion(label: str, values: dict, missing: list, target: float, every: bool, fmt: str) -> str:
    """One criterion over the streams: ``values`` the ratio per stream measured, ``missing``
    the streams where it was not (a stream not measured is a miss, never a silent pass)."""
    if every:
        rng = (f"{fmt.format(min(values.values()))} to {fmt.format(max(values.values()))}"
               if values else "n/a")
        ok = bool(values) and min(values.values()) >= target
        what = f">= {target:g}x on every stream"
    else:
        rng = fmt.format(float(np.median(list(values.values())))) if values else "n/a"
        ok = bool(values) and float(np.median(list(values.values()))) >= target
        what = f">= {target:g}"
    if missing:
        verdict = f"MISSES {what}: not measured on {', '.join(missing)}"
    else:
        verdict = f"{'meets' if ok else 'MISSES'} {what}"
        below = [f"{k} {fmt.format(v)}" for k, v in values.items() if v < target]
        if every and below:  # "MISSES >= 3x on every stream" read as missed on all of them (review r121)
            verdict += f": below on {', '.join(below)}"
    return f"{label} {rng} ({verdict})"


def summary_table(report: dict) -> str:
    """One row per stream: our default against River's LR and ARF and the most accurate model,
    then the speed criteria of the speed issue (per event >= 3x ARF on every stream and a median
    of >= 1/4 of River LR's per-event rate; batched >= 25x ARF), each a ratio inside this run.
    A figure that did not run is ``n/a`` and the criterion needing it MISSES, naming the stream."""
    lines = ["## Summary", "",
             "| stream | ours | River LR | River ARF | most accurate | ours − most accurate (pp) | "
             f"ours batch {BATCH} ev/s | ours per event ev/s | River ARF ev/s | River LR ev/s | batch vs ARF | "
             "per event vs ARF | per event vs LR |",
             "|:---|---:|---:|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    per_arf, per_lr, batch_arf, agree = {}, {}, {}, {}
    no_per_arf, no_per_lr, no_batch_arf, no_agree = [], [], [], []

    def acc(r):
        return "n/a" if r is None else f"{r['accuracy']:.4f}"

    def eps(r):
        return "n/a" if r is None else f"{r['events_per_s']:,.0f}"

    def ratio(a, b, into: dict, missing: list, name: str, fmt: str) -> str:
        if a is None or b is None:
            missing.append(name)
            return "n/a"
        into[name] = a["events_per_s"] / b["events_per_s"]
        return fmt.format(into[name])

    for name, st in report["streams"].items():
        res = {r["model"]: r for r in st.get("results", []) if r.get("ok")}
        ours, lr, arf = res.get("ours"), res.get("river_lr"), res.get("river_arf")
        batch = res.get("ours" + BATCH_SUFFIX)  # no fallback: a batched run that failed is not measured
        best = max(res.values(), key=lambda r: r["accuracy"], default=None)
        if batch is not None and batch.get("agreement") is not None:
            agree[name] = batch["agreement"]
        elif any(r.get("model") in ("ours", "ours" + BATCH_SUFFIX) for r in st.get("results", [])):
            no_agree.append(name)  # ours was tried here, so the check was due: not measured is a miss
        b_arf = ratio(batch, arf, batch_arf, no_batch_arf, name, "{:.1f}x")
        p_arf = ratio(ours, arf, per_arf, no_per_arf, name, "{:.2f}x")
        p_lr = ratio(ours, lr, per_lr, no_per_lr, name, "{:.3f}x")
        gap = "n/a" if ours is None or best is None else f"{100 * (ours['accuracy'] - best['accuracy']):+.2f}"
        lines.append(
            f"| {name} | {acc(ours)} | {acc(lr)} | {acc(arf)} | "
            f"{'n/a' if best is None else best['model'] + ' ' + acc(best)} | {gap} | "
            f"{eps(batch)} | {eps(ours)} | {eps(arf)} | {eps(lr)} | {b_arf} | {p_arf} | {p_lr} |")
    if report["streams"]:
        lines += ["", "; ".join([
            _criterion("Per event vs River ARF:", per_arf, no_per_arf, TARGET_PER_EVENT_VS_ARF, True, "{:.2f}x"),
            _criterion("median per event vs River LR", per_lr, no_per_lr, TARGET_PER_EVENT_VS_LR_MEDIAN,
                       False, "{:.3f}x"),
            _criterion("batch vs River ARF", batch_arf, no_batch_arf, TARGET_BATCH_VS_ARF, True, "{:.1f}x"),
        ]) + "."]
        if agree or no_agree:
            lines += ["", agreement_line(agree, no_agree)]
    return "\n".join(lines) + "\n"


def agreement_line(agree: dict, missing: list) -> str:
    """The agreement check over the streams: ``agree`` the fraction per stream measured,
    ``missing`` the streams where our learner ran but the two paths were not both measured
    (a miss, named, as in ``_criterion``: never "every stream 100%" over the streams that ran).

    >>> agreement_line({"SEA": 1.0}, ["Agrawal"])
    'Per-event and batched predictions agree on 100.000% of events at the lowest (SEA; MISSES 100%: not measured on Agrawal).'
    """
    if not agree:
        return f"Per-event and batched predictions: MISSES 100%: not measured on {', '.join(missing)}."
    low = min(agree, key=agree.get)
    if missing:
        verdict = f"MISSES 100%: not measured on {', '.join(missing)}"
    else:
        verdict = "every stream 100%" if agree[low] >= MIN_AGREEMENT else "MISSES 100%"
    return f"Per-event and batched predictions agree on {100 * agree[low]:.3f}% of events at the lowest ({low}; {verdict})."


def main(argv: Sequence[str] | None = None, out=None) -> dict:
    """Run the benchmark; returns the report (also written with ``--json``)."""
    args = parse_args(argv)
    with thread_limit(args.threads):
        return _main(args, argv, out)


def _main(args: argparse.Namespace, argv, out) -> dict:
    out = out or sys.stdout
    stream_names = resolve_names(args.streams, list(STREAMS), "stream")
    model_names = resolve_names(args.models, list(MODELS), "model")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    capymoa_missing = None
    if any(MODELS[m].kind == "capymoa" for m in model_names):
        capymoa_missing = capymoa_unavailable()
        if capymoa_missing:
            log(f"note: CapyMOA models skipped: {capymoa_missing}")

    report = {
        "meta": {
            "argv": list(sys.argv[1:] if argv is None else argv),
            "n": args.n, "seed": args.seed, "batch": BATCH, "quick": args.quick, "threads": args.threads,
            "loop": args.loop,
            "load_average_at_start": _loadavg(),
            "streams": stream_names, "models": model_names,
            "versions": _versions(), "source": _source_state(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "models_described": {m: MODELS[m].description for m in model_names},
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "streams": {},
        "failed_checks": [],
    }
    sections = []
    t_start = time.perf_counter()
    for sname in stream_names:
        log(f"[{sname}] materialising (n={args.n}, seed={args.seed}) ...")
        try:
            stream = materialise(sname, args.n, args.seed)
        except Exception as e:  # noqa: BLE001
            log(f"[{sname}] FAILED to materialise: {_error(e)}")
            report["streams"][sname] = {"error": _error(e)}
            report["failed_checks"].append(f"{sname}: stream failed to materialise: {_error(e)}")
            continue
        log(f"[{sname}] {stream.n_events} events, {stream.n_features} features, "
            f"{stream.n_classes} classes ({stream.materialise_s:.2f}s)")
        results: list[ModelResult] = []
        for mname in model_names:
            try:
                results.extend(run_model(MODELS[mname], stream, args.seed, capymoa_missing, log, args.loop))
            except RuntimeError as e:  # the events were mutated: this stream's later results are void
                log(f"[{sname}] ABORTED: {e}")
                report["failed_checks"].append(f"{sname}: {e}")
                break
        summary = stream_summary(stream, results)
        for r in results:
            if r.agreement is not None and r.agreement < MIN_AGREEMENT:
                report["failed_checks"].append(
                    f"{sname}: {r.model} agrees with the per-event loop on only "
                    f"{100 * r.agreement:.3f}% (< {100 * MIN_AGREEMENT:g}%: {_disagreements(r)} events differ)")
            if r.error:
                report["failed_checks"].append(f"{sname}: {r.model} failed: {r.error}")
        report["streams"][sname] = {**stream.summary(), "results": [r.to_dict() for r in results],
                                    "summary": summary}
        section = markdown_for_stream(stream, results, summary)
        sections.append(section)
        print(section, file=out, flush=True)
        del stream
        gc.collect()
    report["meta"]["total_s"] = time.perf_counter() - t_start
    report["meta"]["load_average_at_end"] = _loadavg()

    if report["failed_checks"]:
        text = "**Failed checks**\n\n" + "\n".join(f"- {c}" for c in report["failed_checks"]) + "\n"
        sections.append(text)
        print(text, file=out, flush=True)
    overview = summary_table(report)
    print(overview, file=out, flush=True)
    if args.markdown:
        header = (f"# stream-cl vs River / CapyMOA (n={args.n}, seed={args.seed})\n\n"
                  f"Command: `python benchmarks/vs_river.py {' '.join(report['meta']['argv'])}`\n\n"
                  f"Versions: {report['meta']['versions']}; {os.cpu_count()} CPUs; "
                  f"threads={args.threads}; per-event loop {args.loop}; load average at start {report['meta']['load_average_at_start']}\n\n")
        with open(args.markdown, "w") as f:
            f.write(header + overview + "\n" + "\n".join(sections))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
    return report


def cli(argv: Sequence[str] | None = None) -> int:
    report = main(argv)
    return 1 if report["failed_checks"] else 0


if __name__ == "__main__":
    sys.exit(cli())
