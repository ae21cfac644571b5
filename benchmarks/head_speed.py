"""Speed of the analytic head against the machine's own float64 matrix-multiply rate.

    python benchmarks/head_speed.py [--threads 1] [--repeat 5]

Prints, in one process:
1. the machine's float64 GEMM rate (numpy/OpenBLAS, the library the head's products use, and,
   where the wide heads take their solves and factors from torch's MKL
   (:mod:`stream_cl.heads.mkl_solves`), torch/MKL's too), at the shapes the update uses and at a
   large square size; the best of them all is the reference;
2. the rank-256 ridge update at 512 features, 10 classes (``RecursiveRidge.update``),
   its flop count (``update_flops``) and the rate it reaches, as a fraction of the reference;
3. ``AnalyticClassifier.learn_many`` + ``predict_many`` on pandas frames of 256 rows x 512
   features, 10 classes (the River mini-batch API), events/s and rate on the same count;
4. ``learn_one`` + ``predict_one`` at 64 features, 10 classes, events/s;
5. the default ``OnlineContinualLearner()``'s ``prequential_batch`` of 256 events on a numeric
   stream (10 features, 5 classes): its arithmetic counted per batch (:func:`learner_flops`:
   the backbone and key units, every ridge head's update at its own width, the SGD head),
   the rate it reaches as a fraction of the reference, and the time the floor would take;
   then its events/s in batches of 1,024 (learned by the ridge heads in chunks of 256 on a CPU);
6. the five BLAS/LAPACK calls one wide head's chunk of 256 rows makes (``NumpyLinalg``, at that
   head's width in 5.), each call's rate, and all five together: the rate the learner's
   arithmetic could reach if nothing but those calls ran, the ceiling for 5. with this BLAS;
   where MKL takes the solves and factors, the same five calls with OpenBLAS alone beside them.

In 2. and 3. each run first builds the model and learns (and predicts) one batch untimed:
the construction, the growth to 512 inputs and the first factorisation (which the first
batch makes twice, in its update and in its prediction) are left out, and the timed
batches are steady ones, as the per-batch flop count assumes. (Until the commit that added
this warm batch they were timed; RESULTS.md section 2 says by how much.) In 5. each run's
learner is built from the warm state outside the timing too (until review r146 its construction
and ``load_state_dict``, ~2-3 ms, ~3% of the 8 batches, were timed with them); the flop counts of
2. and 3. include the update's half solve ``L^-1 B`` (d^2 c, ~1%; left out until review r146).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from stream_cl import AnalyticClassifier, OnlineContinualLearner, set_threads
from stream_cl.heads import mkl_solves
from stream_cl.heads.linalg import NumpyLinalg
from stream_cl.heads.ridge import RecursiveRidge, factor_is_cheaper, rows_are_cheaper, update_flops


def best_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def best_steady_time(warm, fn, repeat: int) -> float:
    """Best of ``repeat`` runs of ``fn(state)``, each on a fresh ``state = warm()`` made outside the timing."""
    fn(warm())
    times = []
    for _ in range(repeat):
        state = warm()
        t = time.perf_counter()
        fn(state)
        times.append(time.perf_counter() - t)
    return min(times)


def gemm_rate(repeat: int, torch_too: bool = False) -> dict:
    """GFLOP/s of numpy's float64 GEMM at four shapes, and with ``torch_too`` of torch's (MKL on x86)."""
    rng = np.random.default_rng(0)
    rates = {}
    for m, k, n in [(513, 513, 256), (256, 513, 513), (1024, 1024, 1024), (2048, 2048, 2048)]:
        a, b = rng.normal(size=(m, k)), rng.normal(size=(k, n))
        rates[f"{m}x{k}x{n}"] = 2.0 * m * k * n / best_time(lambda: a @ b, repeat) / 1e9
        if torch_too:
            import torch

            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            rates[f"torch {m}x{k}x{n}"] = 2.0 * m * k * n / best_time(lambda: ta @ tb, repeat) / 1e9
    return rates


def ridge_update(repeat: int, d=513, c=10, b=256, batches=8) -> tuple[float, float]:
    """Rate and rows/s of ``batches`` steady batches (after an untimed first one)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=((batches + 1) * b, d))
    Y = np.eye(c)[rng.integers(0, c, size=(batches + 1) * b)]

    def warm():  # construction, growth and the first batch's factorisations: not timed
        ridge = RecursiveRidge(gamma=1.0)
        ridge.grow(d, c)
        ridge.update(X[:b], Y[:b])
        ridge.predict(X[:b])
        return ridge

    def run(ridge):
        for i in range(1, batches + 1):
            ridge.update(X[i * b : (i + 1) * b], Y[i * b : (i + 1) * b])
            ridge.predict(X[i * b : (i + 1) * b])

    t = best_steady_time(warm, run, repeat) / batches
    # + the update's half solve L^-1 B (d^2 c: update_flops leaves the chunk-start weights to the caller,
    # as learner_flops adds them), W = R B by two solves and the predictions
    flops = update_flops(b, d, c) + d * d * c + 2.0 * d * d * c + 2.0 * b * d * c
    return flops / t / 1e9, b / t


def learn_predict_many(repeat: int, n_features=512, c=10, b=256, batches=8) -> tuple[float, float]:
    """Rate and events/s of ``batches`` steady batches (after an untimed first one)."""
    rng = np.random.default_rng(2)
    frames = [pd.DataFrame(rng.normal(size=(b, n_features)), columns=[f"f{j}" for j in range(n_features)])
              for _ in range(batches + 1)]
    labels = [pd.Series(rng.integers(0, c, size=b)) for _ in range(batches + 1)]

    def warm():  # construction, growth to 512 inputs and the first factorisations: not timed
        model = AnalyticClassifier()
        model.predict_many(frames[0])
        model.learn_many(frames[0], labels[0])
        return model

    def run(model):
        for X, y in zip(frames[1:], labels[1:]):
            model.predict_many(X)
            model.learn_many(X, y)

    t = best_steady_time(warm, run, repeat) / batches
    d = n_features + 1
    flops = update_flops(b, d, c) + d * d * c + 2.0 * d * d * c + 2.0 * b * d * c  # as ridge_update counts them
    return flops / t / 1e9, b / t


def learn_predict_one(repeat: int, n_features=64, c=10, n=20_000) -> float:
    rng = np.random.default_rng(3)
    xs = [{f"f{j}": float(v) for j, v in enumerate(row)} for row in rng.normal(size=(n, n_features))]
    ys = rng.integers(0, c, size=n).tolist()

    def run():
        model = AnalyticClassifier()
        for x, y in zip(xs, ys):
            model.predict_one(x)
            model.learn_one(x, y)

    return n / best_time(run, repeat)


def learner_flops(model, b: int) -> float:
    """Floating-point operations of one ``prequential_batch`` of ``b`` events of a plain
    ``OnlineContinualLearner`` (no continual parts), from its heads' current widths.

    The backbone's product (2 b d_in width) and key units (3 b d_in m), each ridge head's
    rank-b update (:func:`update_flops`, counted the way the head takes it: from the factor of
    ``A`` for the wide heads, row by row for the narrow ones) with what its chunk-start weights
    take (a wide head: the half solve ``L^-1 B``, d^2 c; a narrow one: ``W0 = (LL')^-1 B``, 2 d^2 c),
    the SGD head's scores and updates row by row (4 b d c). Not counted: the softmaxes, the mixer
    and the bookkeeping, and the forgetting head's chunks split at a re-anchor (about one batch in
    two: a second factor of ``A``, ~7 MFLOP a batch on average here, ~3%), so the floor is a
    little below the work done and achieved/floor errs low.
    """
    d_in = model.index_.width
    c = len(model.classes_)
    flops = 2.0 * b * d_in * model.backbone_.out_features + 3.0 * b * d_in * model.key_units
    for head in model.heads_:
        d = head.ridge.n_features
        way = "rows" if rows_are_cheaper(b, d, c) else "factor" if factor_is_cheaper(b, d) else "inverse"
        flops += update_flops(b, d, c, way) + (1.0 if way == "factor" else 2.0) * d * d * c
    if model.sgd_ is not None:
        flops += 4.0 * b * (1 + d_in) * c
    return flops


def learner_batches(repeat: int, n_features=10, c=5, b=256, batches=8) -> tuple[float, float, float]:
    """The default learner's ``prequential_batch`` on a numeric stream: GFLOP/s, events/s and
    the flops of one batch."""
    rng = np.random.default_rng(4)
    W = rng.normal(size=(n_features, c))
    rows = rng.normal(size=((batches + 4) * b, n_features))
    xs = [{f"f{j}": float(v) for j, v in enumerate(r)} for r in rows]
    ys = (rows @ W).argmax(axis=1).tolist()
    warm = OnlineContinualLearner(device="cpu")
    for i in range(4):  # every class and input seen: the heads have their steady widths
        warm.prequential_batch(xs[i * b : (i + 1) * b], ys[i * b : (i + 1) * b])
    flops = learner_flops(warm, b)
    state = warm.state_dict()

    def fresh():  # a learner at the warm state, built outside the timing (~2-3 ms: ~3% of 8 batches)
        return OnlineContinualLearner(device="cpu").load_state_dict(state)

    def run(model):
        for i in range(4, 4 + batches):
            model.prequential_batch(xs[i * b : (i + 1) * b], ys[i * b : (i + 1) * b])

    t = best_steady_time(fresh, run, repeat) / batches
    return flops / t / 1e9, b / t, flops, max(h.ridge.n_features for h in warm.heads_)


def chunk_calls(repeat: int, d: int, b: int = 256) -> dict:
    """GFLOP/s of each call a wide head's chunk of ``b`` rows makes from the factor of ``A``
    (``RecursiveRidge._chunk_from_factor`` and ``_learn_statistics``), at width ``d``, through the
    same ``NumpyLinalg`` methods, on the same kind of arguments (C-ordered ``A``, rows ``X`` (b, d));
    ``"all five"``: their flops over their summed times. Flops as :func:`update_flops` counts them."""
    la = NumpyLinalg()
    rng = np.random.default_rng(5)
    X = rng.normal(size=(b, d))  # (b, d) C-ordered rows, as the design matrix is
    G = rng.normal(size=(4 * d, d))
    A = G.T @ G  # (d, d) positive definite
    F = la.spd_factor(A, 1.0, 1.0)
    V = la.whiten(F, X.T)  # (d, b)
    S = la.gram_plus_diag(V, np.ones(b))
    M = A.copy()
    calls = {  # name: (call, flops)
        "dpotrf of A (d^3/3)": (lambda: la.spd_factor(A, 1.0, 1.0), d**3 / 3),
        "dtrsm L^-1 X' (d^2 b)": (lambda: la.whiten(F, X.T), d * d * b),
        "dsyrk V'V (b^2 d)": (lambda: la.gram_plus_diag(V, np.ones(b)), b * b * d),
        "dpotrf of V'V (b^3/3)": (lambda: la.cholesky_lower(S), b**3 / 3),
        "dsyrk A += X'X (d^2 b)": (lambda: la.syrk_(M, X.T, 1.0, 1.0, mirror=False), d * d * b),
    }
    times = {k: best_time(fn, repeat) for k, (fn, _) in calls.items()}
    rates = {k: calls[k][1] / times[k] / 1e9 for k in calls}
    rates["all five"] = sum(f for _, f in calls.values()) / sum(times.values()) / 1e9
    return rates


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    set_threads(args.threads)
    mkl = mkl_solves.enabled()
    rates = gemm_rate(args.repeat, torch_too=mkl)
    ref = max(rates.values())
    print(f"threads: {args.threads}; the wide heads' solves and factors from "
          + ("torch's MKL (stream_cl.heads.mkl_solves)" if mkl else "OpenBLAS"))
    print("float64 GEMM (numpy/OpenBLAS" + (", and torch/MKL" if mkl else "") + "): "
          + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in rates.items()))
    print(f"reference rate (best of the above): {ref:.1f} GFLOP/s; target: half = {ref / 2:.1f}")
    rate, eps = ridge_update(args.repeat)
    print(f"RecursiveRidge.update, b=256, d=513 (512 + bias), c=10: {rate:.1f} GFLOP/s = {rate / ref:.0%} of reference, {eps:,.0f} rows/s")
    rate, eps = learn_predict_many(args.repeat)
    print(f"AnalyticClassifier learn_many + predict_many (pandas, 256 x 512, 10 classes): {rate:.1f} GFLOP/s = {rate / ref:.0%} of reference, {eps:,.0f} events/s")
    eps = learn_predict_one(args.repeat)
    print(f"AnalyticClassifier learn_one + predict_one (64 features, 10 classes): {eps:,.0f} events/s (target 20,000)")
    rate, eps, flops, width = learner_batches(args.repeat)
    print(f"OnlineContinualLearner() prequential_batch (256 events, 10 features, 5 classes): {flops / 256 / 1e6:.2f} "
          f"MFLOP/event, {rate:.1f} GFLOP/s = {rate / ref:.0%} of reference (floor {flops / ref / 1e3 / 256:.1f} µs/event, "
          f"achieved {1e6 / eps:.1f}), {eps:,.0f} events/s")
    _, eps_long, _, _ = learner_batches(args.repeat, b=1024, batches=2)  # the ridge heads learn it in chunks
    print(f"OnlineContinualLearner() prequential_batch (1024 events, same stream): {eps_long:,.0f} events/s "
          f"= {eps_long / eps:.2f}x the 256-event batch's rate")
    calls = chunk_calls(args.repeat, width)
    print(f"A wide head's chunk (d={width}, b=256), each call through NumpyLinalg: "
          + ", ".join(f"{k} {v:.1f} GFLOP/s = {v / ref:.0%}" for k, v in calls.items() if k != "all five"))
    print(f"all five together: {calls['all five']:.1f} GFLOP/s = {calls['all five'] / ref:.0%} of reference "
          f"(the ceiling for the learner with this BLAS; the learner reached {rate / calls['all five']:.0%} of it)")
    if mkl:  # the same calls with OpenBLAS alone, for comparison in the same run
        mkl_solves.choose(False)
        try:
            alone = chunk_calls(args.repeat, width)
        finally:
            mkl_solves.choose(None)
        print("The same calls with OpenBLAS alone: "
              + ", ".join(f"{k} {v:.1f} GFLOP/s = {v / ref:.0%}" for k, v in alone.items()))


if __name__ == "__main__":
    main()
