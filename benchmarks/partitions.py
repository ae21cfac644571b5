"""What partition-mergeable learners cost (stream_cl.parts; docs/partitions.md).

On one pre-materialised stream, the default ``OnlineContinualLearner()`` learns batches of
``--batch`` events (what the daemon runs):

* as one partition (the library's path) and as ``--partitions`` partitions, batch ``i``
  belonging to partition ``i % partitions`` (a daemon reading several partitions): events/s
  of both, and their ratio, in the same run;
* the cost of one re-sum (the forgetting heads set to the exact sum of the parts: the sums
  installed and the heads re-anchored; the inverse ``R`` is not rebuilt there but when next
  read), alone and with that next read of each forgetting head's inverse (one d^3 inverse
  per head, what the per-event loop's next ``learn_one`` pays; a batch factors ``A``
  instead), and of one merge of a contribution;
* the forgetting heads' error just before a re-sum: the served weights (decayed on the
  merged clock since the last re-sum) against the exact sum of the parts, relative
  Frobenius norm, and how often their predictions differ;
* the size of one partition's contribution in bytes;
* one event at a time (``predict_proba_one`` + ``learn_one``, River's loop) on the first
  ``--per-event`` events: as one partition, and as ``--partitions`` partitions taking turns
  every event and in runs of 16 events.

    python benchmarks/partitions.py --n 12000 --partitions 6
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np


def stream(n: int, seed: int):
    from river.datasets import synth

    data = synth.RandomRBFDrift(seed_model=seed, seed_sample=seed, n_classes=4, n_features=10, n_centroids=20,
                                change_speed=0.0001, n_drift_centroids=10)
    return [(dict(x), y) for x, y in itertools.islice(data, n)]


def learn(events, n_parts: int, batch: int):
    from stream_cl import OnlineContinualLearner

    model = OnlineContinualLearner(device="cpu")
    t0 = time.perf_counter()
    for i in range(0, len(events), batch):
        chunk = events[i : i + batch]
        part = (i // batch) % n_parts if n_parts > 1 else None
        model.prequential_batch([x for x, _ in chunk], [y for _, y in chunk], partition=part)
    return model, time.perf_counter() - t0


def learn_per_event(events, n_parts: int, run: int) -> float:
    """Seconds to predict and learn ``events`` one by one; partition ``(i // run) % n_parts``."""
    from stream_cl import OnlineContinualLearner

    model = OnlineContinualLearner(device="cpu")
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(events):
        part = (i // run) % n_parts if n_parts > 1 else None
        model.predict_proba_one(x, partition=part)
        model.learn_one(x, y, partition=part)
    return time.perf_counter() - t0


def forgetting_error(model, probe) -> tuple[float, float]:
    """Served forgetting heads against the exact sum of the parts: weight error and prediction disagreement."""
    served = [h.ridge.weights().copy() for h in model.heads_]
    before = [model.predict_one(x) for x, _ in probe]
    sums = model.served_statistics()
    errors = []
    for h, W, st in zip(model.heads_, served, sums):
        if h.ridge.forgetting >= 1.0:
            continue
        d = st.A.shape[0]
        exact = np.linalg.solve(st.A + h.ridge.gamma * np.eye(d), st.B)
        errors.append(np.linalg.norm(W[:d, : exact.shape[1]] - exact) / np.linalg.norm(exact))
    model.resum()
    after = [model.predict_one(x) for x, _ in probe]
    return max(errors), float(np.mean([a != b for a, b in zip(before, after)]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=12000)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--per-event", type=int, default=3000, help="events learned one at a time (0: skip)")
    a = p.parse_args(argv)
    from stream_cl import set_threads

    set_threads(1)  # as the other benchmarks: one BLAS/torch thread
    events = stream(a.n, a.seed)
    learn(events[:2000], 1, a.batch)  # warm-up: torch and BLAS initialise outside the timings
    one, t1 = learn(events, 1, a.batch)
    many, tp = learn(events, a.partitions, a.batch)
    print(f"stream: RandomRBFDrift, {a.n:,} events, 10 features, 4 classes; batches of {a.batch}")
    print(f"one partition:  {a.n / t1:,.0f} events/s")
    print(f"{a.partitions} partitions:   {a.n / tp:,.0f} events/s  ({tp / t1:.2f}x the time of one partition)")
    width = [h.ridge.n_features for h in many.heads_]
    forgetting = [h.ridge for h in many.heads_ if h.ridge.forgetting < 1.0]
    t0 = time.perf_counter()
    for _ in range(10):
        many.resum(forgetting_only=True)
    resum = (time.perf_counter() - t0) / 10
    t0 = time.perf_counter()
    for _ in range(10):
        many.resum(forgetting_only=True)
        for ridge in forgetting:  # the next read of R (the per-event loop's learn_one): rebuilt from the sums
            ridge.inverse()
    read = (time.perf_counter() - t0) / 10
    many.resum(forgetting_only=True)  # as the re-sum leaves them (R not kept) for what follows
    print(f"re-sum of the forgetting heads (design widths {width}): {resum * 1e3:.1f} ms "
          f"(sums only; R rebuilt when next read); with the next read of their inverses: {read * 1e3:.1f} ms")
    raw = many.contribution(0).to_bytes()
    other = type(many)(device="cpu")
    t0 = time.perf_counter()
    for q in many.partitions_:
        other.merge(q, many.contribution(q).to_bytes())
    merge = (time.perf_counter() - t0) / len(many.partitions_)
    print(f"contribution of one partition: {len(raw):,} bytes; merge of one: {merge * 1e3:.1f} ms")
    # error of the forgetting heads just before a re-sum: learn SUM_EVERY_ROWS - 1 rows of one partition
    from stream_cl.parts import SUM_EVERY_ROWS

    more = stream(a.n + SUM_EVERY_ROWS, a.seed)[a.n : a.n + SUM_EVERY_ROWS - 1]
    many.resum(forgetting_only=True)  # SUM_EVERY_ROWS - 1 rows from here on: just short of the next re-sum
    many.prequential_batch([x for x, _ in more], [y for _, y in more], partition=0)
    probe = events[-2000:]
    err, flips = forgetting_error(many, probe)
    print(f"forgetting heads {SUM_EVERY_ROWS - 1} rows after a re-sum: weight error {err:.2e} (relative Frobenius), "
          f"predictions changed by the re-sum {flips:.2%} of {len(probe):,} events")
    if a.per_event:
        first = events[: a.per_event]
        single = learn_per_event(first, 1, 1)
        print(f"per event, one partition: {len(first) / single:,.0f} events/s")
        for run in (1, 16):
            t = learn_per_event(first, a.partitions, run)
            print(f"per event, {a.partitions} partitions in turns of {run}: {len(first) / t:,.0f} events/s  "
                  f"({t / single:.2f}x the time of one partition)")


if __name__ == "__main__":
    main()
