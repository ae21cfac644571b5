"""The trainable learner (``TrainableLearner()``, a 256-unit float64 MLP) on the CPU and on
CUDA when visible: one event at a time and in batches of 256, on Hyperplane and LEDDrift.

    python benchmarks/gpu_trainable.py

One event at a time: 20 events of warm-up, then ``predict_proba_one`` + ``learn_one`` for up
to 600 events or 4 s. Batched: one warm-up batch of 256, then ten timed batches. RESULTS.md
section 3c records its output on an H200 (``results/gpu-h200-trainable.txt``): the rule
``device="auto"`` applies to this learner's widest layer because of it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

from benchmarks.common import materialise
from benchmarks.gpu import one_and_batched_rates
from stream_cl import set_threads
from stream_cl.trainable import TrainableLearner


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "),
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)  # --help; no options
    set_threads(1)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    # say so, as gpu.py does: two CPU lines alone do not say why the CUDA rows (and the ratio) are missing
    print("no CUDA device visible: CPU rows only" if len(devices) == 1 else f"CUDA: {torch.cuda.get_device_name(0)}",
          flush=True)
    for name in ("Hyperplane", "LEDDrift"):
        events = materialise(name, 3000, 42).events
        xs, ys = [x for x, _ in events], [y for _, y in events]
        for dev in devices:
            # ten timed batches whatever they take (batch_seconds=inf), as the H200 run did
            r = one_and_batched_rates(lambda: TrainableLearner(device=dev), xs, ys, one_max=600, batch_max=2560,
                                      seconds=4.0, batch_seconds=math.inf)
            print(f"trainable {name:11} {dev:5} one {r['per_event_events_per_s']:8,.0f} ev/s  "
                  f"batch256 {r['batched_events_per_s']:9,.0f} ev/s", flush=True)


if __name__ == "__main__":
    main()
