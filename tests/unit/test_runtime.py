"""The learners' batched methods run with one BLAS thread unless the process chose its threads."""

import json
import os
import random
import subprocess
import sys

import pytest
import threadpoolctl

from stream_cl import AnalyticClassifier, OnlineContinualLearner, runtime
from stream_cl.trainable import TrainableLearner

CONTROLLER = threadpoolctl.ThreadpoolController()


def blas_threads() -> list[int]:
    return [lib.num_threads for lib in CONTROLLER.select(user_api="blas").lib_controllers]


@pytest.fixture
def two_blas_threads(monkeypatch):
    """Every BLAS at 2 threads, and no set_threads call on record (the CLI tests make one)."""
    monkeypatch.setattr(runtime, "_managed", False)
    with CONTROLLER.limit(limits=2, user_api="blas"):
        assert set(blas_threads()) == {2}
        yield


def spy_threads(monkeypatch, owner, name: str) -> list:
    """Record every BLAS library's thread count each time ``owner.name`` is called."""
    seen = []
    original = getattr(owner, name)

    def spy(*args, **kwargs):
        seen.append(blas_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return seen


def _events(n: int) -> tuple[list, list]:
    rng = random.Random(3)
    xs = [{"a": rng.gauss(0, 1), "b": rng.gauss(0, 1)} for _ in range(n)]
    return xs, ["yes" if x["a"] > x["b"] else "no" for x in xs]


@pytest.mark.parametrize("make, inner", [
    (OnlineContinualLearner, "_prequential"),
    (AnalyticClassifier, "_design"),
    (lambda: TrainableLearner(micro_batch=8), "_train"),
])
def test_a_batch_learns_with_one_blas_thread_and_gives_the_threads_back(two_blas_threads, monkeypatch, make, inner):
    model = make()
    seen = spy_threads(monkeypatch, model, inner)
    xs, ys = _events(32)
    model.prequential_batch(xs, ys)
    assert seen and all(set(threads) == {1} for threads in seen), seen
    assert set(blas_threads()) == {2}


def test_predictions_and_river_batches_are_confined_too(two_blas_threads, monkeypatch):
    import pandas as pd

    from stream_cl.heads.class_head import RidgeClassHead

    xs, ys = _events(64)
    models = (OnlineContinualLearner(), AnalyticClassifier())
    for model in models:
        model.prequential_batch(xs, ys)
    seen = spy_threads(monkeypatch, RidgeClassHead, "scores")
    for model in models:
        model.predict_proba_batch(xs)
        model.predict_many(pd.DataFrame(xs))
    assert len(seen) >= 4 and all(set(t) == {1} for t in seen), seen
    assert set(blas_threads()) == {2}


def test_a_process_that_set_its_threads_is_left_alone(two_blas_threads, monkeypatch):
    seen = []

    @runtime.one_blas_thread
    def method(self, rows):
        seen.append(blas_threads())

    monkeypatch.setattr(runtime, "_managed", True)  # what set_threads records
    method(None, [{"a": 1.0}] * 8)
    monkeypatch.setattr(runtime, "_managed", False)
    method(None, [{"a": 1.0}])  # one event through a batched method: replay may make it many rows
    assert [set(t) for t in seen] == [{2}, {1}]


def test_the_numpy_path_of_one_event_is_confined_too(two_blas_threads, monkeypatch):
    """Two pools spun against each other one event at a time as well (RESULTS.md 9e)."""
    from stream_cl.heads.scaled_triangle import ScaledTriangle

    seen = spy_threads(monkeypatch, ScaledTriangle, "with_pending")  # each ridge head's row, compiled
    model = OnlineContinualLearner(device="cpu")
    for x, y in zip(*_events(20)):
        model.predict_proba_one(x)
        model.learn_one(x, y)
    assert seen and all(set(t) == {1} for t in seen), seen
    assert set(blas_threads()) == {2}


def test_set_threads_zero_stops_managing_and_negative_counts_are_refused(monkeypatch):
    monkeypatch.setattr(runtime, "_managed", False)
    runtime.set_threads(0)
    assert runtime._managed
    with pytest.raises(ValueError, match="must be an int >= 0"):
        runtime.set_threads(-1)


@pytest.mark.parametrize("n", [1.5, "2", True, None, -1])
def test_a_refused_thread_count_changes_nothing(monkeypatch, n):
    # a failed call used to record _managed = True first, turning off the learners' one-BLAS-thread default
    import torch

    monkeypatch.setattr(runtime, "_managed", False)
    torch_threads, blas = torch.get_num_threads(), blas_threads()
    with pytest.raises(ValueError, match=r"set_threads\(n\): n must be an int >= 0") as err:
        runtime.set_threads(n)
    assert repr(n) in str(err.value) and "use" in str(err.value)
    assert not runtime._managed
    assert torch.get_num_threads() == torch_threads and blas_threads() == blas


def test_set_threads_before_the_learners_are_imported_limits_scipys_blas_too():
    # the learners load lazily (PEP 562): scipy's OpenBLAS, which the ridge heads use, may not
    # be loaded yet when a script calls set_threads first; it must be limited all the same
    code = (
        "import threadpoolctl\n"
        "from stream_cl import set_threads\n"
        "set_threads(1)\n"
        "from stream_cl import OnlineContinualLearner\n"
        "libs = threadpoolctl.ThreadpoolController().select(user_api='blas').lib_controllers\n"
        "print(json.dumps([[os.path.basename(lib.filepath), lib.num_threads] for lib in libs]))\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", "import json, os\n" + code], capture_output=True, text=True,
                         env=env, check=True).stdout
    libs = json.loads(out)
    assert any(name.startswith("libscipy_openblas-") for name, _ in libs), libs  # scipy's own OpenBLAS is seen
    assert {n for _, n in libs} == {1}, libs


def test_warm_up_loads_the_compiled_loops_before_any_batch():
    """The daemon calls warm_up at start: numba and the machine code of the SGD loop, the
    narrow ridge heads' loop and one event's design row must then be loaded for the very
    argument types the learner passes (numba compiles per set of types), so the first batch
    and the first event compile nothing."""
    code = ("import sys; import stream_cl.runtime as r; from stream_cl.heads import sgd_rows, ridge_rows; "
            "from stream_cl.backbones import design_row; "
            "before = 'numba' in sys.modules; r.warm_up(); "
            "count = lambda: [len(f.signatures) for f in (sgd_rows._impl, ridge_rows._loop.get(), design_row._loop.get())]; "
            "warmed = count(); "
            "from stream_cl import OnlineContinualLearner; m = OnlineContinualLearner(); "
            "m.prequential_batch([{'a': float(i % 3), 'b': 1.0} for i in range(40)], [i % 2 for i in range(40)]); "
            "m.predict_proba_one({'a': 0.5, 'b': 1.0}); m.learn_one({'a': 0.5, 'b': 1.0}, 1); "
            "print(before, *warmed, *count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"] + ["1"] * 6  # loaded at warm-up; the batch added no compilation


def test_set_threads_zero_after_one_gives_the_libraries_their_own_counts_back():
    # set_threads(0) after set_threads(1) had left every BLAS and torch at one thread; and each
    # call stacked its limits on the last one's, so a later restore went back to that call's count
    probe = (
        "import json, threadpoolctl, torch\n"
        "import scipy.linalg\n"
        "from stream_cl import runtime\n"
        "torch.set_num_threads(3)\n"
        "def now():\n"
        "    blas = {c['num_threads'] for c in threadpoolctl.threadpool_info() if c['user_api'] == 'blas'}\n"
        "    return sorted(blas), torch.get_num_threads()\n"
        "seen = [now()]\n"
        "for n in (1, 0, 2, 0):\n"
        "    runtime.set_threads(n)\n"
        "    seen.append(now())\n"
        "print(json.dumps(seen))\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env).stdout
    assert json.loads(out) == [[[2], 3], [[1], 1], [[2], 3], [[2], 2], [[2], 3]]
