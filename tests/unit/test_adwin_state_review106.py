"""Review r106: River's ADWIN keeps its window in a Rust object, saved as bytes (``__bytes__``). A part
whose digest holds (anyone can compute one) but whose ADWIN bytes are damaged must be refused at the
merge, naming the drift detector, as r105 refuses the other damaged fields:

* bytes cut short made ``__setstate__`` raise pyo3's ``PanicException``, a ``BaseException`` that
  ``merge`` (which turns ``ValueError`` and its kin into a ``ContributionError``) let through: in the
  daemon, a crash at every member restoring that part;
* settings bytes made huge were taken by 745d64e (the detector ran on), but 47c8c09's trial,
  ``copy.deepcopy`` of the restored detector, rebuilt the Rust object with capacity for them: "memory
  allocation of 2558538827184 bytes failed", SIGABRT, the whole process gone, no exception at all.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stream_cl import OnlineContinualLearner
from stream_cl.contribution import ContributionError
from stream_cl.drift import DriftMonitor

ROOT = Path(__file__).resolve().parents[2]


def _make():
    return OnlineContinualLearner(device="cpu", drift=DriftMonitor("adwin", response=("record",)))


@pytest.fixture(scope="module")
def part():
    rng = np.random.default_rng(0)
    src = _make()
    for _ in range(200):
        y = int(rng.integers(2))
        src.learn_one({"a": float(y + rng.normal())}, y, partition=0)
    return src.contribution(0)


def test_adwin_bytes_cut_short_are_refused_at_the_merge(part):
    corrupt = copy.deepcopy(part)
    helper = corrupt.local["continual"]["drift"]["detector"]["_helper"]
    helper["__bytes__"] = np.asarray(helper["__bytes__"])[:20].copy()
    learner = _make()
    try:
        learner.merge(0, corrupt.to_bytes())
    except ContributionError as e:
        assert "drift" in str(e)
    except BaseException as e:  # noqa: BLE001 -- pyo3's PanicException
        pytest.fail(f"merge let {type(e).__name__} through: {e}")
    else:
        pytest.fail("a part with damaged ADWIN bytes was merged")
    assert learner.partitions_ == []


_DAMAGED_SETTINGS = r"""
import copy, numpy as np
from stream_cl import OnlineContinualLearner
from stream_cl.contribution import ContributionError
from stream_cl.drift import DriftMonitor
make = lambda: OnlineContinualLearner(device="cpu", drift=DriftMonitor("adwin", response=("record",)))
rng = np.random.default_rng(0)
src = make()
for _ in range(200):
    y = int(rng.integers(2)); src.learn_one({"a": float(y + rng.normal())}, y, partition=0)
corrupt = copy.deepcopy(src.contribution(0))
helper = corrupt.local["continual"]["drift"]["detector"]["_helper"]
b = np.asarray(helper["__bytes__"]).copy()
delta = np.frombuffer(np.float64(0.002).tobytes(), dtype=np.uint8)
at = max(i for i in range(b.size - 8) if (b[i:i + 8] == delta).all())  # the window's settings: delta, clock, ...
b[at + 9:at + 17] = [234, 201, 155, 181, 136, 153, 118, 74]
helper["__bytes__"] = b
try:
    make().merge(0, corrupt.to_bytes())
    print("merged")
except ContributionError as e:
    print("refused")
"""


def test_adwin_settings_made_huge_do_not_abort_the_process():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "RUST_BACKTRACE": "0"}
    done = subprocess.run([sys.executable, "-c", _DAMAGED_SETTINGS], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"the process died (exit {done.returncode}): {done.stderr[-300:]}"
    assert done.stdout.strip() in ("refused", "merged")
