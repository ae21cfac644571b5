"""Where one event's time goes: the default learner's ``predict_proba_one`` + ``learn_one``, by part.

Runs the per-event loop on a materialised stream (the same streams as ``vs_river.py``) with a
timer around each named part of the per-event path, and prints microseconds per event for
each, beside the loop's own total. The timers are wrappers around the methods, so each part
includes the Python call that reaches it and every timed call adds ~0.2-0.3 µs; the totals
with and without the timers are both printed. The ridge heads' compiled updates are split
by width (the two ~340-wide heads of the ``"all"`` view against the narrow ``"inputs"`` ones).

Parts nest: ``heads: learn_one`` holds the compiled updates, the Gram matrix's rows deferred
and added 512 at a time (``A: ...``) and the rebuilds of the inverse at re-anchors (``R: ...``;
every ~460 events for the 0.995 head, which also adds ``A``'s deferred rows first: not in ``A: ...``).

Usage::

    python benchmarks/one_event_breakdown.py --stream Hyperplane --n 12000
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import STREAMS, materialise, timed_methods
from benchmarks.vs_river import thread_limit


def _loop(model, events) -> float:
    clock = time.perf_counter
    t = clock()
    for x, y in events:
        model.predict_proba_one(x)
        model.learn_one(x, y)
    return clock() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stream", default="Hyperplane", choices=sorted(STREAMS))
    ap.add_argument("--n", type=int, default=12_000, help="events (the first --warm are not timed)")
    ap.add_argument("--warm", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    # the figures are per timed event: --n must leave some after the untimed warm-up
    if args.warm < 0:
        ap.error(f"--warm must be >= 0 (got {args.warm})")
    if args.n <= args.warm:
        ap.error(f"--n ({args.n:,}) must be greater than --warm ({args.warm:,}): the first --warm events are not "
                 "timed, so none would be; raise --n or lower --warm")
    with thread_limit(1):  # as vs_river.py runs its models (the learners confine BLAS themselves too)
        return _run(args)


def _run(args) -> int:
    from stream_cl import OnlineContinualLearner
    from stream_cl.runtime import one_blas_thread, warm_up

    warm_up()
    stream = materialise(args.stream, args.n, args.seed)
    warm, timed = stream.events[: args.warm], stream.events[args.warm :]
    n = len(timed)
    if not n:  # a bundled data set ends before --n (ImageSegments: 2,310 rows)
        raise SystemExit(f"one_event_breakdown: error: {args.stream} has {len(stream.events):,} events, none after "
                         f"--warm ({args.warm:,}) to time; use a smaller --warm")

    plain = OnlineContinualLearner()
    _loop(plain, warm)
    untimed = _loop(plain, timed)

    totals: dict = {}
    with timed_methods(_parts(), totals):
        model = OnlineContinualLearner()
        _loop(model, warm)
        totals.clear()
        total = _loop(model, timed)

    confined = one_blas_thread(lambda self: None)  # the wrapper every per-event method runs in
    t = time.perf_counter()
    for _ in range(n):
        confined(None)
    confine = (time.perf_counter() - t) * 2  # two confined calls per event

    us = 1e6 / n
    print(f"{args.stream}: {n:,} events after {len(warm):,}, {len(stream.feature_names)} features, "
          f"{len(stream.classes)} classes")
    print(f"loop without timers   {untimed * us:7.1f} µs/event  ({n / untimed:,.0f} events/s)")
    print(f"loop with timers      {total * us:7.1f} µs/event")
    for key, v in sorted(totals.items(), key=lambda kv: (kv[0].startswith("  "), -kv[1])):
        print(f"  {key:34s} {v * us:6.1f}")
    print(f"  {'BLAS thread confinement (x2, alone)':34s} {confine * us:6.1f}")
    top = sum(v for k, v in totals.items() if not k.startswith("  ")) + confine
    print(f"  {'named parts (top level) + confinement':34s} {top * us:6.1f}  "
          f"(the rest, {max(total - top, 0.0) * us:.1f}, is the methods' own Python)")
    return 0


def _parts() -> list:
    """``(owner, name, label)`` of each timed part of the per-event path (module docstring)."""
    from stream_cl import OnlineContinualLearner, one_event
    from stream_cl.backbones import OnlineStandardizer
    from stream_cl.features import FeatureIndex
    from stream_cl.heads import class_head, ridge_one, sgd
    from stream_cl.heads.linalg import NumpyLinalg, ScaledTriangle
    from stream_cl.mixing import AccuracyMixer

    return [
        (FeatureIndex, "vectorize_row", "features: vectorize_row"),
        (OnlineStandardizer, "transform_row", "standardiser: transform_row"),
        (OnlineStandardizer, "learn_row", "standardiser: learn_row"),
        (OnlineContinualLearner, "_design_row", "designs: design row"),
        (OnlineContinualLearner, "_mixture_row", "mixture: scores + mix_row"),
        (class_head.RidgeClassHead, "learn_row", "heads: learn_row (all four)"),
        (ridge_one, "update_one", lambda a: f"  compiled update, {'wide' if a[4].shape[0] > 64 else 'narrow'} heads"),
        (ScaledTriangle, "defer_outer", "  A: defer a row (+ dsyrk of 512)"),
        (NumpyLinalg, "spd_inverse", "  R: rebuilt at re-anchors"),
        (one_event, "row_hit", "hits: row_hit"),
        (sgd.SGDSoftmaxHead, "learn_row", "SGD head: learn_row"),
        (AccuracyMixer, "absorb", "mixer: absorb"),
    ]


if __name__ == "__main__":
    sys.exit(main())
