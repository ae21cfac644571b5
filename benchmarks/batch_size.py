"""The default learner's batched speed by batch size, and by the ridge heads' chunk length.

    python benchmarks/batch_size.py [--n 20000] [--streams Hyperplane,LEDDrift,ImageSegments]

For each stream, in one process and one BLAS thread: ``prequential_batch`` over the same
events in batches of 256 and of 1,024, the latter with the ridge heads learning it in one
chunk (``NumpyLinalg.max_chunk = 1024``, what the code did before RESULTS.md 9d) and in
chunks of 256 (today's ``CPU_CHUNK``). Each row prints events/s, the largest difference
of its probabilities from the 256-event batches' and how often their argmax agrees.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks.common import STREAMS, materialise, resolve_names, stack_batches
from stream_cl import OnlineContinualLearner, set_threads
from stream_cl.heads.linalg import CPU_CHUNK, NumpyLinalg
from stream_cl.runtime import warm_up

RUNS = ((256, CPU_CHUNK), (1024, 1024), (1024, CPU_CHUNK))  # (batch, chunk); the first is the reference


def run(xs: list, ys: list, batch: int, chunk: int) -> tuple[float, np.ndarray]:
    """events/s and the probabilities (n, classes) of one prequential pass."""
    NumpyLinalg.max_chunk = chunk
    try:
        model, out = OnlineContinualLearner(device="cpu"), []
        t = time.perf_counter()
        for i in range(0, len(xs), batch):
            out.append(model.prequential_batch(xs[i : i + batch], ys[i : i + batch]))
        rate = len(xs) / (time.perf_counter() - t)
    finally:
        NumpyLinalg.max_chunk = CPU_CHUNK
    return rate, stack_batches(out)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--streams", default="Hyperplane,LEDDrift,ImageSegments")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    set_threads(1)
    warm_up()  # numba's loops loaded before the first timed pass, as vs_river.py and the daemon do
    rows = []
    for name in resolve_names(args.streams, list(STREAMS), "stream"):
        events = materialise(name, args.n, args.seed).events
        xs, ys = [x for x, _ in events], [y for _, y in events]
        ref = None
        for batch, chunk in RUNS:
            rate, P = run(xs, ys, batch, chunk)
            ref = P if ref is None else ref
            row = {"stream": name, "batch": batch, "chunk": chunk, "events_per_s": rate,
                   "max_diff": float(np.abs(P - ref).max()), "agreement": float(np.mean(P.argmax(1) == ref.argmax(1)))}
            rows.append(row)
            print(f"{name:14s} batch {batch:5d}, chunks of {chunk:5d}: {rate:8,.0f} events/s, "
                  f"max |p - p(256)| {row['max_diff']:.1e}, argmax agrees {row['agreement']:.3%}", flush=True)
    return rows


if __name__ == "__main__":
    main()
