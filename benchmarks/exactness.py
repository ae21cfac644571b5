"""How far the streamed ridge heads are from the closed form of their own statistics.

    python benchmarks/exactness.py [--n 5000] [--every 100] [--streams Agrawal,Shuttle,SEA,LEDDrift]

One event at a time, the ridge heads keep ``R = (A + gamma * decay * I)^-1`` up to date by
rank-1 updates, while ``A`` and ``B`` are the exact sums; rounding makes the updated ``R``
drift from the inverse of those sums between re-anchors. In batches, the default learner's
heads work from the Cholesky factor of ``A + gamma * decay * I`` itself at every chunk
(``stream_cl/heads/ridge.py``), so only that chunk's own rounding separates them from the
closed form. For each stream this
runs ``OnlineContinualLearner()`` one event at a time (``predict_proba_one`` +
``learn_one``, River's loop) and in batches of 256 (``prequential_batch``), and prints, as
the largest absolute difference so far:

* ``per event``: every ``--every`` events, the model's probabilities for the next event
  against those of a copy whose heads use the closed form ``R = inv(A + gamma * decay * I)``;
* ``batch rows``: every row ``prequential_batch`` returned (the probabilities it gave each
  event inside its chunk, before learning it) against the per-event loop's
  ``predict_proba_one`` for the same event; this is the batched path's exactness, and it
  includes the per-event path's own distance from the closed form. Both sides here are
  learners that are never copied: the reference is a second per-event learner run beside
  the one the ``per event`` line copies, and the rows come from a second batched learner
  beside the one the ``batch next`` line copies. (Copying a model pickles it, and its
  ``state_dict()`` folds the ridge heads' scalars into ``A``/``R`` and drops the cached
  ``W``: that moves the copied learner's later probabilities by rounding, ~5e-12 on SEA,
  which would otherwise be counted here as the batched path's error);
* ``batch next``: at every batch boundary, ``predict_proba_one`` for the next event against
  the closed-form copy. For the wide heads both sides are solved from the factor of the
  current ``A`` (closed form vs closed form), so this shows only conditioning and never
  looks at the probabilities ``prequential_batch`` returned inside the chunk (until the
  ``batch rows`` line was added it was the only batched line, printed as ``batch 256``).

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
    the decayed ridge term is kept, so it is the same model up to rounding).

    Pickling goes through the heads' ``state_dict()``, which folds their scalars and drops
    the cached ``W`` in ``model`` itself: ``model`` carries on by a different rounding path,
    so a learner copied here is never the reference for another line."""
    twin = pickle.loads(pickle.dumps(model))
    for head in twin.heads_:
        ridge = head.ridge
        A = ridge.A  # (d, d)
        ridge.R = np.linalg.inv(A + ridge.gamma * ridge.decay * np.eye(A.shape[0]))  # W follows R
    return twin


def largest_gap(p: dict, q: dict) -> float:
    return max((abs(p[k] - q[k]) for k in p), default=0.0)


def per_event(events: list, every: int) -> tuple[list[tuple[int, float]], list[dict]]:
    """Distances to the closed form every ``every`` events (of a learner copied at each check),
    and every event's probabilities from a second learner on the same events, never copied."""
    model, reference = OnlineContinualLearner(device="cpu"), OnlineContinualLearner(device="cpu")
    worst, out, probs = 0.0, [], []
    for i, (x, y) in enumerate(events):
        p = model.predict_proba_one(x)
        probs.append(reference.predict_proba_one(x))
        if i % every == every - 1:
            worst = max(worst, largest_gap(p, closed_form_copy(model).predict_proba_one(x)))
            out.append((i + 1, worst))
        model.learn_one(x, y)
        reference.learn_one(x, y)
    return out, probs


def row_gap(row: np.ndarray, classes: list, p: dict) -> float:
    """Largest |difference| between a ``prequential_batch`` row (``classes`` order; a class the
    per-event loop had not seen yet: 0 there too) and ``predict_proba_one``'s dict."""
    q = dict(zip(classes, row.tolist()))
    return max((abs(q.get(k, 0.0) - p.get(k, 0.0)) for k in set(q) | set(p)), default=0.0)


def batched(events: list, per_event_probs: list[dict], b: int = 256
            ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """At each batch boundary: the largest gap so far of the rows ``prequential_batch``
    returned against the per-event loop's probabilities for the same events ("batch rows"),
    and of ``predict_proba_one`` for the next event against the closed form ("batch next").
    The rows come from a learner that is never copied; the closed form is taken from a
    second one on the same batches (copying it moves its later rounding)."""
    model, rows_model = OnlineContinualLearner(device="cpu"), OnlineContinualLearner(device="cpu")
    worst_rows, worst_next, rows, nxt = 0.0, 0.0, [], []
    for start in range(0, len(events) - b, b):
        chunk = events[start : start + b]
        xs, ys = [x for x, _ in chunk], [y for _, y in chunk]
        model.prequential_batch(xs, ys)
        P = rows_model.prequential_batch(xs, ys)
        classes = list(rows_model.classes_)
        for i, row in enumerate(P):
            worst_rows = max(worst_rows, row_gap(row, classes, per_event_probs[start + i]))
        rows.append((start + b, worst_rows))
        x = events[start + b][0]
        rows_model.predict_proba_one(x)  # the same calls as ``model``, all but the copy
        p = model.predict_proba_one(x)
        worst_next = max(worst_next, largest_gap(p, closed_form_copy(model).predict_proba_one(x)))
        nxt.append((start + b, worst_next))
    return rows, nxt


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--streams", default="Agrawal,Shuttle,SEA,LEDDrift")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    set_threads(1)
    marks = sorted(m for m in {1000, 2000, 5000, 10000, 20000, args.n} if m <= args.n)
    print("largest |difference| so far, after events: ...\n"
          "  per event:  predict_proba_one vs the closed form of its own statistics\n"
          "  batch rows: prequential_batch's returned rows (batches of 256) vs the per-event "
          "loop's predict_proba_one, same events\n"
          "  batch next: after each batch, predict_proba_one for the next event vs the closed "
          "form (wide heads: closed form vs closed form, conditioning only)")
    for name in args.streams.split(","):
        events = materialise(name, args.n, args.seed).events[: args.n]
        pe, probs = per_event(events, args.every)
        rows_vs_pe, next_vs_cf = batched(events, probs)
        for label, rows in (("per event", pe), ("batch rows", rows_vs_pe), ("batch next", next_vs_cf)):
            shown = {}  # the first check at or after each mark (the last one for marks past the end)
            for m in marks if rows else ():
                n, w = next(((n, w) for n, w in rows if n >= m), rows[-1])
                shown[n] = w
            print(f"{name:15s} {label:10s} " + ", ".join(f"{n}: {w:.1e}" for n, w in shown.items()))


if __name__ == "__main__":
    main()
