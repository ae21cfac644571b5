"""Backbone + analytic head events/s on CUDA against CPU, at several widths, beside the
arithmetic floor (the time the flops would take at the device's measured float64 GEMM rate).

    python benchmarks/gpu.py [--widths 256,1024,4096] [--batch 1024] [--batches 6] [--json out.json]

Runs on CPU anywhere; on a machine with CUDA it measures both. Per width it reports:

* ``compute``: a batch of standardised inputs (64 features, 10 classes) already on the
  device, through ``RandomFeatures(width)`` and one exact ridge head (predict-then-learn,
  ``RidgeClassHead.prequential``): events/s, and the floor events/s;
* ``learner``: the whole ``OnlineContinualLearner`` on dict events (feature indexing,
  standardisation, threshold units, 3 heads, mixing): end-to-end events/s.

Then the default learner, ``OnlineContinualLearner(device=...)``, on ``--streams`` of
``vs_river.py``, per device: batches of 256 (``prequential_batch``) and one event at a time
(``predict_proba_one`` then ``learn_one``), with each device's accuracy and how often its
predictions agree with the CPU's (``device="auto"`` picks CUDA where one is visible and the
model has 2,048 random features or more, RESULTS.md section 3c: the default learner's rows here
show why it stays on the CPU below that).

Last, ``--crossover-widths``: the learner with ``RandomFeatures(width)`` on Hyperplane, one
event at a time and in batches of 256, per device, to find the width from which CUDA is the
faster device one event at a time (what ``device="auto"`` decides by).
"""

from __future__ import annotations

import argparse
import json
import time

import os
import sys

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import torch

from benchmarks.common import STREAMS, materialise, resolve_names, stack_batches
from stream_cl import OnlineContinualLearner, set_threads
from stream_cl.runtime import warm_up
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


def default_learner(device: str, events: list, batch: int, per_event_n: int) -> dict:
    """The default learner on one stream: batched, then (a fresh one) one event at a time."""
    xs, ys = [x for x, _ in events], [y for _, y in events]
    model, probs = OnlineContinualLearner(device=device), []
    t = time.perf_counter()
    for i in range(0, len(xs), batch):
        probs.append(model.prequential_batch(xs[i:i + batch], ys[i:i + batch]))  # (batch, classes so far)
    batched_s = time.perf_counter() - t
    classes = list(model.classes_)
    P = stack_batches(probs)  # (n, classes)
    # a row of zeros (no class seen yet) is no prediction, and counts as wrong (as in vs_river.py)
    predicted = [classes[k] if has else None for k, has in zip(P.argmax(1).tolist(), (P.max(1) > 0).tolist())]
    model, per_event = OnlineContinualLearner(device=device), []
    t = time.perf_counter()
    for x, y in zip(xs[:per_event_n], ys[:per_event_n]):
        p = model.predict_proba_one(x)
        per_event.append(max(p, key=p.get) if p else None)
        model.learn_one(x, y)
    one_s = time.perf_counter() - t
    return {"batched_events_per_s": len(xs) / batched_s, "per_event_events_per_s": len(per_event) / one_s,
            "accuracy": float(np.mean([p is not None and p == y for p, y in zip(predicted, ys)])),
            "predicted": predicted,
            "per_event": per_event, "P": P}


def default_learner_rows(devices: list[str], streams: str, n: int, per_event_n: int, batch: int = 256) -> list[dict]:
    print(f"\ndefault learner (batch {batch} over {n:,} events; one at a time over the first {per_event_n:,})")
    print(f"{'stream':14} {'device':9} {'batch ev/s':>10} {'one ev/s':>9} {'accuracy':>8} {'agree w/ cpu':>12} {'max |dp|':>9}")
    warm_up()  # numba's loops loaded before the first timed pass
    rows = []
    for name in resolve_names(streams, list(STREAMS), "stream"):
        events = materialise(name, n, 42).events
        if len(events) != n:  # a bundled data set ends early or is not capped (ImageSegments: its 2,310 rows)
            print(f"{name}: {len(events):,} events (the whole bundled data set), not {n:,}; one at a time over "
                  f"the first {min(per_event_n, len(events)):,}", flush=True)
        ref = None
        for device in devices:
            r = default_learner(device, events, batch, per_event_n)
            ref = r if ref is None else ref
            agree = np.mean([a == b for a, b in zip(r["predicted"] + r["per_event"], ref["predicted"] + ref["per_event"])])
            row = {"stream": name, "device": device, "n": len(events), "per_event_n": len(r["per_event"]),
                   "batched_events_per_s": r["batched_events_per_s"], "per_event_events_per_s": r["per_event_events_per_s"],
                   "accuracy": r["accuracy"], "agreement_with_cpu": float(agree),
                   "max_prob_diff": float(np.abs(r["P"] - ref["P"]).max())}
            rows.append(row)
            print(f"{name:14} {device:9} {row['batched_events_per_s']:10,.0f} {row['per_event_events_per_s']:9,.0f} "
                  f"{row['accuracy']:8.4f} {row['agreement_with_cpu']:12.4%} {row['max_prob_diff']:9.1e}", flush=True)
    return rows


def one_and_batched_rates(make, xs: list, ys: list, one_max: int, batch_max: int, seconds: float = 4.0,
                          batch_seconds: float | None = None) -> dict:
    """events/s of fresh models from ``make()``: one event at a time (``predict_proba_one`` then
    ``learn_one``; 20 events of warm-up, then up to ``one_max`` events or ``seconds``) and in
    batches of 256 (``prequential_batch``; one warm-up batch, then up to ``batch_max`` events or
    ``batch_seconds``, default ``seconds``). ``xs`` holds at least ``20 + one_max`` and
    ``256 + batch_max`` events."""
    batch_seconds = seconds if batch_seconds is None else batch_seconds
    model = make()
    for x, y in zip(xs[:20], ys[:20]):
        model.predict_proba_one(x)
        model.learn_one(x, y)
    n, t = 0, time.perf_counter()
    while n < one_max and time.perf_counter() - t < seconds:
        model.predict_proba_one(xs[20 + n])
        model.learn_one(xs[20 + n], ys[20 + n])
        n += 1
    one = n / (time.perf_counter() - t)
    model = make()
    model.prequential_batch(xs[:256], ys[:256])
    m, t = 0, time.perf_counter()
    while m < batch_max and time.perf_counter() - t < batch_seconds:
        model.prequential_batch(xs[256 + m:512 + m], ys[256 + m:512 + m])
        m += 256
    batch = m / (time.perf_counter() - t)
    return {"per_event_events_per_s": one, "per_event_n": n, "batched_events_per_s": batch, "batched_n": m}


def crossover_rows(devices: list[str], widths: str, seconds: float = 4.0) -> list[dict]:
    """Per width and device: events/s one at a time (up to 400 events) and in batches of 256
    (up to 2,048 events), each for at most ``seconds`` (:func:`one_and_batched_rates`)."""
    events = materialise("Hyperplane", 2048 + 256 + 420, 42).events
    xs, ys = [x for x, _ in events], [y for _, y in events]
    print("\ncrossover (Hyperplane, RandomFeatures(width)): events/s")
    print(f"{'width':>6} {'device':9} {'one ev/s':>9} {'batch ev/s':>10}")
    rows = []
    for width in map(int, widths.split(",")):
        for device in devices:
            r = one_and_batched_rates(lambda: OnlineContinualLearner(backbone=RandomFeatures(width=width), device=device),
                                      xs, ys, one_max=400, batch_max=2048, seconds=seconds)
            rows.append({"width": width, "device": device, **r})
            print(f"{width:6d} {device:9} {r['per_event_events_per_s']:9,.0f} {r['batched_events_per_s']:10,.0f}", flush=True)
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", default="256,1024,2048")
    p.add_argument("--cuda-widths", default="256,1024,4096,8192")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--streams", default="Agrawal,Hyperplane,LEDDrift,ImageSegments",
                   help="vs_river.py streams for the default learner's rows ('' for none)")
    p.add_argument("--stream-n", type=int, default=5000,
                   help="events per stream (batched); a bundled data set runs whole (ImageSegments: 2,310), and says so")
    p.add_argument("--per-event-n", type=int, default=1000, help="events per stream one at a time")
    p.add_argument("--crossover-widths", default="256,512,1024,2048,4096",
                   help="RandomFeatures widths for the crossover rows ('' for none)")
    p.add_argument("--learner-devices", default=None,
                   help="devices for the default learner's rows (default: cpu, and cuda when visible); "
                        "the first is the one the others' predictions are compared with ('agree w/ cpu')")
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
        for width in map(int, filter(None, widths.split(","))):
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
    learner_devices = args.learner_devices.split(",") if args.learner_devices else devices
    learner_rows = default_learner_rows(learner_devices, args.streams, args.stream_n, args.per_event_n) if args.streams else []
    crossover = crossover_rows(learner_devices, args.crossover_widths) if args.crossover_widths else []
    out = {"results": results, "default_learner": learner_rows, "crossover": crossover}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
