"""Review r146: what the benchmark scripts print against what they measured.

F1: head_speed.py's whole-learner line (part 5) timed each run's construction and
``load_state_dict`` with its batches, while its flop count is of steady batches alone.
F2: head_speed.py's ridge-update and frame lines (parts 2 and 3) left the update's half
solve ``L^-1 B`` (d^2 c) out of their flop count: counted here independently, call by call.
F3: gpu.py's default-learner table said every stream ran ``--stream-n`` events; a bundled
data set (ImageSegments, 2,310 rows) runs whole, and now says so.
"""

import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import gpu, head_speed  # noqa: E402
from stream_cl import OnlineContinualLearner  # noqa: E402
from stream_cl.heads.linalg import NumpyLinalg  # noqa: E402
from stream_cl.heads.ridge import RecursiveRidge  # noqa: E402


def test_the_learners_line_times_its_batches_not_the_learners_construction(monkeypatch):
    # a clock that moves only when told: building a learner from the warm state "takes" 1 s,
    # each timed batch 1 ms; the line must report 256 events per ms
    clock = SimpleNamespace(t=0.0)

    class Clocked(OnlineContinualLearner):
        def load_state_dict(self, state):
            clock.t += 1.0
            return super().load_state_dict(state)

        def prequential_batch(self, *args, **kwargs):
            clock.t += 0.001
            return super().prequential_batch(*args, **kwargs)

    monkeypatch.setattr(head_speed, "OnlineContinualLearner", Clocked)
    monkeypatch.setattr(head_speed, "time", SimpleNamespace(perf_counter=lambda: clock.t))
    _, events_per_s, _, _ = head_speed.learner_batches(repeat=1, batches=2)
    assert events_per_s == pytest.approx(256 / 0.001)


def _counted_calls(monkeypatch) -> Counter:
    """Flops of each BLAS/LAPACK call the ridge heads make through NumpyLinalg, from the call's shapes
    (a product 2 m n k, a triangular solve n^2 k, a rank-k update n^2 k, a Cholesky factor n^3 / 3)."""
    flops = Counter()
    counts = {
        "spd_factor": lambda M, *rest: M.shape[0] ** 3 / 3,
        "whiten": lambda U, Xt: Xt.shape[0] ** 2 * Xt.shape[1],
        "unwhiten": lambda U, Z: Z.shape[0] ** 2 * Z.shape[1],
        "factor_solve": lambda U, B: 2 * B.shape[0] ** 2 * B.shape[1],
        "gram_plus_diag": lambda V, v: V.shape[1] ** 2 * V.shape[0],
        "cholesky_lower": lambda S: S.shape[0] ** 3 / 3,
        "solve_lower": lambda C, M: C.shape[0] ** 2 * M.shape[1],
        "syrk_": lambda M, V, *rest: M.shape[0] ** 2 * V.shape[1],
        "spd_inverse": lambda M: M.shape[0] ** 3,
    }
    for name, count in counts.items():
        inner = getattr(NumpyLinalg, name)

        def wrapper(self, *args, _inner=inner, _name=name, _count=count, **kwargs):
            flops[_name] += _count(*args)
            return _inner(self, *args, **kwargs)

        monkeypatch.setattr(NumpyLinalg, name, wrapper)
    return flops


def test_the_ridge_update_line_counts_the_flops_a_steady_batch_does(monkeypatch):
    d, c, b = 33, 3, 16
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(2 * b, d)), np.eye(c)[rng.integers(0, c, size=2 * b)]
    ridge = RecursiveRidge(gamma=1.0)
    ridge.grow(d, c)
    ridge.update(X[:b], Y[:b])
    ridge.predict(X[:b])  # the script's untimed first batch
    flops = _counted_calls(monkeypatch)
    ridge.update(X[b:], Y[b:])
    ridge.predict(X[b:])
    assert flops["spd_factor"] and flops["whiten"]  # the factor way, as the script's 513-wide head takes it
    # the products outside NumpyLinalg: X R X' residuals V'Z, B += X'Y, the predictions X W (2 b d c each)
    done = sum(flops.values()) + 3 * 2.0 * b * d * c
    monkeypatch.setattr(head_speed, "best_steady_time", lambda warm, fn, repeat: 2.0)  # 1 s a batch
    rate, _ = head_speed.ridge_update(1, d=d, c=c, b=b, batches=2)
    assert rate * 1e9 == pytest.approx(done, rel=1e-12)


def test_a_bundled_data_set_shorter_than_stream_n_is_named_with_its_length(monkeypatch, capsys):
    monkeypatch.setattr(gpu, "warm_up", lambda: None)
    seen = []

    def fake(device, events, batch, per_event_n):
        seen.append(len(events))
        return {"batched_events_per_s": 1.0, "per_event_events_per_s": 1.0, "accuracy": 0.5,
                "predicted": [None], "per_event": [None], "P": np.zeros((1, 1))}

    monkeypatch.setattr(gpu, "default_learner", fake)
    gpu.default_learner_rows(["cpu"], "ImageSegments", 5000, 1000)
    assert seen == [2310]
    assert "ImageSegments: 2,310 events (the whole bundled data set), not 5,000" in capsys.readouterr().out
