"""How far the streamed ridge heads are from the closed form of their own statistics.

    python benchmarks/exactness.py [--n 5000] [--every 100] [--streams Agrawal,Shuttle,SEA,LEDDrift]

One event at a time, the ridge heads keep ``R = (A + gamma * decay * I)^-1`` up to date by
rank-1 updates, while ``A`` and ``B`` are the exact sums; rounding makes the updated ``R``
drift from the inverse of those sums between re-anchors. In batches, the default learner's
heads work from the Cholesky factor of ``A + gamma * decay * I`` itself at every chunk
(``stream_cl/heads/ridge.py``), so only that chunk's own rounding separates them from the
closed form. For each stream this
runs ``OnlineContinualLearner()`` one event at a time (``predict_proba_one`` +
``learn_one``, River's loop) and in batches of 256 (``prequential_batch``), and every
``--every`` events (per event) or at every batch boundary (batched) compares the model's
probabilities for the next event with those of a copy whose heads use the closed form
``R = inv(A + gamma * decay * I)``: the largest absolute difference so far is printed.

This is the yardstick for exactness claims on the per-event path: two updates that round
differently (a full-matrix ``dger`` and a one-triangle ``dsyr``, say) can only be asked to
agree to about what either is from the closed form.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import materialise  # noqa: E402
from stream_cl import OnlineContinualLearner, set_threads  # noqa: E402


def closed_form_copy(model: OnlineContinualLearner) -> OnlineContinualLearner:
    """A copy of ``model`` whose ridge heads hold ``R = inv(A + gamma decay I)`` (no re-anchor:
    the decayed ridge term is kept, so it is the same model up to rounding)."""
    twin = pickle.loads(pickle.dumps(model))
    for head in twin.heads_:
        ridge = head.ridge
        A = ridge.A  # (d, d)
        ridge.R = np.linalg.inv(A + ridge.gamma * ridge.decay * np.eye(A.shape[0]))  # W follows R
    return twin


def largest_gap(p: dict, q: dict) -> float:
    return max((abs(p[k] - q[k]) for k in p), default=0.0)


def per_event(events: list, every: int) -> list[tuple[int, float]]:
    model, worst, out = OnlineContinualLearner(device="cpu"), 0.0, []
    for i, (x, y) in enumerate(events):
        p = model.predict_proba_one(x)
        if i % every == every - 1:
            worst = max(worst, largest_gap(p, closed_form_copy(model).predict_proba_one(x)))
            out.append((i + 1, worst))
        model.learn_one(x, y)
    return out


def batched(events: list, b: int = 256) -> list[tuple[int, float]]:
    model, worst, out = OnlineContinualLearner(device="cpu"), 0.0, []
    for start in range(0, len(events) - b, b):
        chunk = events[start : start + b]
        model.prequential_batch([x for x, _ in chunk], [y for _, y in chunk])
        x = events[start + b][0]
        p = model.predict_proba_one(x)
        worst = max(worst, largest_gap(p, closed_form_copy(model).predict_proba_one(x)))
        out.append((start + b, worst))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--streams", default="Agrawal,Shuttle,SEA,LEDDrift")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    set_threads(1)
    marks = sorted(m for m in {1000, 2000, 5000, 10000, 20000, args.n} if m <= args.n)
    print("largest |p - p_closed_form| so far, after events: ...")
    for name in args.streams.split(","):
        events = materialise(name, args.n, args.seed).events[: args.n]
        for label, rows in (("per event", per_event(events, args.every)), ("batch 256", batched(events))):
            shown = {}  # the first check at or after each mark (the last one for marks past the end)
            for m in marks if rows else ():
                n, w = next(((n, w) for n, w in rows if n >= m), rows[-1])
                shown[n] = w
            print(f"{name:15s} {label:10s} " + ", ".join(f"{n}: {w:.1e}" for n, w in shown.items()))


if __name__ == "__main__":
    main()
