"""The learners' speed under the process's thread settings, as a library user meets them.

    python benchmarks/threads.py [--n 6400] [--runs 2] [--batches 1,16,256] [--streams Agrawal,LEDDrift]

Thread settings are process-wide, so each figure comes from a fresh process that
imports the library and runs ``prequential_batch`` over the same events in batches (a
batch of 1: River's loop, below):

* ``own``: ``set_threads(0)``: every library at its own thread count (numpy's and
  scipy's OpenBLAS and torch's OpenMP each a thread per core) and the learners
  unconfined: what a user got before ``runtime.one_blas_thread``;
* ``default``: no call at all: today the learners run with one BLAS thread;
* ``one``: ``set_threads(1)``, what the CLI and the daemon do.

``ReplayLearner`` is ``OnlineContinualLearner(replay=ReplayBuffer())``; a batch of 1 is
River's loop, ``predict_proba_one`` then ``learn_one``, over the first 1,500 events.

The configurations alternate, ``--runs`` times; the table gives the best events/s of each
and the ratios ``default / own`` and ``default / one``. It compares settings of the same
code in the same run, so it has no River column (``vs_river.py`` has those, at one thread).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIGS = ("own", "default", "one")
MODELS = ("OnlineContinualLearner", "AnalyticClassifier", "ReplayLearner")
PER_EVENT_N = 1500  # events of a batch-1 run: River's loop, predict_proba_one then learn_one


def child(config: str, model: str, stream: str, n: int, batch: int, seed: int) -> dict:
    """One configuration's events/s (run in a fresh process)."""
    from benchmarks.common import materialise
    import stream_cl
    from stream_cl import runtime

    if config == "own":
        stream_cl.set_threads(0)
    elif config == "one":
        stream_cl.set_threads(1)
    events = materialise(stream, n if batch > 1 else min(n, PER_EVENT_N), seed).events
    xs, ys = [x for x, _ in events], [y for _, y in events]
    if model == "ReplayLearner":
        from stream_cl.replay import ReplayBuffer

        learner = stream_cl.OnlineContinualLearner(replay=ReplayBuffer())
    else:
        learner = getattr(stream_cl, model)()
    # numba's compiled loops of both paths (a batch of one does not load the per-event ones), as
    # the other benchmarks and the daemon load them before their clocks start
    runtime.warm_up()
    learner.prequential_batch(xs[:batch], ys[:batch])  # warm-up: first allocations, lazy imports
    t = time.perf_counter()
    if batch == 1:
        for x, y in zip(xs[1:], ys[1:]):
            learner.predict_proba_one(x)
            learner.learn_one(x, y)
    else:
        for i in range(batch, len(xs), batch):
            learner.prequential_batch(xs[i : i + batch], ys[i : i + batch])
    return {"events_per_s": (len(xs) - batch) / (time.perf_counter() - t)}


def measure(config: str, model: str, stream: str, n: int, batch: int, seed: int) -> float:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, os.path.abspath(__file__), "--child", config, "--model", model, "--streams", stream,
           "--n", str(n), "--batches", str(batch), "--seed", str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["events_per_s"]


def main(argv=None, out=sys.stdout) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=6400)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--batches", default="1,16,256")
    p.add_argument("--streams", default="Agrawal,LEDDrift")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    p.add_argument("--model", choices=MODELS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    if args.child:
        print(json.dumps(child(args.child, args.model, args.streams, args.n, batches[0], args.seed)))
        return []
    rows = []
    print(f"cores: {os.cpu_count()}; best of {args.runs} alternating runs, events/s", file=out)
    print("| model | stream | batch | own threads (before) | default (now) | set_threads(1) | default / own | default / one |",
          file=out)
    print("|:---|:---|---:|---:|---:|---:|---:|---:|", file=out)
    for model in args.models.split(","):
        for stream in args.streams.split(","):
            for batch in batches:
                best = dict.fromkeys(CONFIGS, 0.0)
                for _ in range(args.runs):
                    for config in CONFIGS:
                        best[config] = max(best[config], measure(config, model, stream, args.n, batch, args.seed))
                row = {"model": model, "stream": stream, "batch": batch, **best}
                rows.append(row)
                print(f"| {model} | {stream} | {batch} | {best['own']:,.0f} | {best['default']:,.0f} | "
                      f"{best['one']:,.0f} | {best['default'] / best['own']:.2f}x | {best['default'] / best['one']:.2f}x |",
                      file=out, flush=True)
    return rows


if __name__ == "__main__":
    main()
