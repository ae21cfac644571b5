"""Backbone + analytic head events/s on CUDA against CPU, at several widths, beside the
arithmetic floor (the time the flops would take at the device's measured float64 GEMM rate).

    python benchmarks/gpu.py [--widths 256,1024,4096] [--batch 1024] [--batches 6] [--json out.json]

Runs on CPU anywhere; on a machine with CUDA it measures both. Per width it reports:

* ``compute``: a batch of standardised inputs (64 features, 10 classes) already on the
  device, through ``RandomFeatures(width)`` and one exact ridge head (predict-then-learn,
  ``RidgeClassHead.prequential``): events/s, and the floor events/s;
* ``learner``: the whole ``OnlineContinualLearner`` on dict events (feature indexing,
  standardisation, threshold units, 3 heads, mixing): end-to-end events/s.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from stream_cl import OnlineContinualLearner, set_threads
from stream_cl.backbones import RandomFeatures
from stream_cl.heads.class_head import RidgeClassHead
from stream_cl.heads.ridge import update_flops

N_IN, N_CLASSES = 64, 10


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def gemm_rate(device: str, d: int, b: int) -> float:
    """float64 GFLOP/s of (d x d) @ (d x b) on the device: the reference for the floor."""
    a = torch.randn(d, d, dtype=torch.float64, device=device)
    x = torch.randn(d, b, dtype=torch.float64, device=device)
    a @ x
    sync(device)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        a @ x
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2.0 * d * d * b / best / 1e9


def data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(N_CLASSES, N_IN)) * 1.5
    y = rng.integers(0, N_CLASSES, size=n)
    X = centres[y] + rng.normal(size=(n, N_IN))
    return X, y.tolist()


def compute_path(device: str, width: int, batch: int, batches: int) -> dict:
    X, y = data(batch * batches)
    head_device = "cpu" if device == "cpu" else device  # numpy heads on the CPU
    backbone = RandomFeatures(width=width, seed=0).to(device)
    head = RidgeClassHead(gamma=1.0, forgetting=1.0, device=head_device)
    keys = list(range(N_IN))
    Zs = [torch.as_tensor(X[i * batch:(i + 1) * batch], device=device) for i in range(batches)]
    ones = torch.ones(batch, 1, dtype=torch.float64, device=device)

    def step(i):
        H = backbone.forward(Zs[i], keys)  # (batch, width)
        D = torch.cat([ones, H], dim=1)  # (batch, 1 + width)
        head.prequential(D.numpy() if device == "cpu" else D, y[i * batch:(i + 1) * batch])

    step(0)  # warm-up: kernels, allocations, the first classes
    sync(device)
    t = time.perf_counter()
    for i in range(1, batches):
        step(i)
    sync(device)
    per_batch = (time.perf_counter() - t) / (batches - 1)
    d = width + 1
    # the head learns a batch in chunks of its backend's length (256 rows on a CPU, 1,024 on CUDA):
    # each chunk's update is counted, the way the head takes it
    chunk = head.ridge.la.max_chunk
    sizes = [chunk] * (batch // chunk) + ([batch % chunk] if batch % chunk else [])
    flops = (2.0 * batch * N_IN * width + sum(update_flops(n, d, N_CLASSES) for n in sizes)
             + 2.0 * d * d * N_CLASSES)
    peak = gemm_rate(device, d, batch)
    return {"events_per_s": batch / per_batch, "gflop_per_s": flops / per_batch / 1e9,
            "floor_events_per_s": batch / (flops / (peak * 1e9)), "gemm_gflop_per_s": peak}


def learner_path(device: str, width: int, batch: int, batches: int) -> float:
    X, y = data(batch * batches, seed=1)
    xs = [{f"f{j}": float(v) for j, v in enumerate(row)} for row in X]
    model = OnlineContinualLearner(backbone=RandomFeatures(width=width), device=device)
    model.prequential_batch(xs[:batch], y[:batch])
    sync(device)
    t = time.perf_counter()
    for i in range(1, batches):
        model.prequential_batch(xs[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
    sync(device)
    return batch * (batches - 1) / (time.perf_counter() - t)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", default="256,1024,2048")
    p.add_argument("--cuda-widths", default="256,1024,4096,8192")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write the numbers here")
    args = p.parse_args(argv)
    set_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if len(devices) == 1:
        print("no CUDA device visible: CPU only")
    else:
        print(f"CUDA: {torch.cuda.get_device_name(0)}")
    results = []
    print(f"{'device':6} {'width':>6} {'compute ev/s':>13} {'floor ev/s':>11} {'of floor':>8} {'GFLOP/s':>8} {'GEMM GF/s':>9} {'learner ev/s':>12}")
    for device in devices:
        widths = args.cuda_widths if device == "cuda" else args.widths
        for width in map(int, widths.split(",")):
            r = compute_path(device, width, args.batch, args.batches)
            r.update(device=device, width=width, batch=args.batch,
                     learner_events_per_s=learner_path(device, width, args.batch, max(3, args.batches // 2)))
            results.append(r)
            print(f"{device:6} {width:6d} {r['events_per_s']:13,.0f} {r['floor_events_per_s']:11,.0f} "
                  f"{r['events_per_s'] / r['floor_events_per_s']:8.0%} {r['gflop_per_s']:8.1f} {r['gemm_gflop_per_s']:9.1f} "
                  f"{r['learner_events_per_s']:12,.0f}", flush=True)
    for width in sorted({r["width"] for r in results if r["device"] == "cuda"} & {r["width"] for r in results if r["device"] == "cpu"}):
        cpu = next(r for r in results if r["device"] == "cpu" and r["width"] == width)
        gpu = next(r for r in results if r["device"] == "cuda" and r["width"] == width)
        print(f"width {width}: CUDA / CPU = {gpu['events_per_s'] / cpu['events_per_s']:.1f}x (compute), "
              f"{gpu['learner_events_per_s'] / cpu['learner_events_per_s']:.1f}x (learner)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return {"results": results}


if __name__ == "__main__":
    main()
