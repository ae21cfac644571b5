"""The trainable learner (``TrainableLearner()``, a 256-unit float64 MLP) on the CPU and on
CUDA when visible: one event at a time and in batches of 256, on Hyperplane and LEDDrift.

    python benchmarks/gpu_trainable.py

One event at a time: 20 events of warm-up, then ``predict_proba_one`` + ``learn_one`` for up
to 600 events or 4 s. Batched: one warm-up batch of 256, then ten timed batches. RESULTS.md
section 3c records its output on an H200 (``results/gpu-h200-trainable.txt``): the rule
``device="auto"`` applies to this learner's widest layer because of it.
"""

from __future__ import annotations

import os
import sys
import time

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

from benchmarks.common import materialise
from stream_cl import set_threads
from stream_cl.trainable import TrainableLearner


def main() -> None:
    set_threads(1)
    for name in ("Hyperplane", "LEDDrift"):
        events = materialise(name, 3000, 42).events
        xs, ys = [x for x, _ in events], [y for _, y in events]
        for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
            model = TrainableLearner(device=dev)
            for x, y in zip(xs[:20], ys[:20]):
                model.predict_proba_one(x)
                model.learn_one(x, y)
            t, n = time.perf_counter(), 0
            while n < 600 and time.perf_counter() - t < 4:
                model.predict_proba_one(xs[20 + n])
                model.learn_one(xs[20 + n], ys[20 + n])
                n += 1
            one = n / (time.perf_counter() - t)
            model = TrainableLearner(device=dev)
            model.prequential_batch(xs[:256], ys[:256])
            t = time.perf_counter()
            for i in range(256, 2816, 256):
                model.prequential_batch(xs[i:i + 256], ys[i:i + 256])
            batch = 2560 / (time.perf_counter() - t)
            print(f"trainable {name:11} {dev:5} one {one:8,.0f} ev/s  batch256 {batch:9,.0f} ev/s", flush=True)


if __name__ == "__main__":
    main()
