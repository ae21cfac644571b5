"""Review r35: ``runtime.warm_up`` leaves no numba loop to load or compile in a process's first batch."""

import subprocess
import sys

# In a fresh process (nothing compiled yet): warm_up, then a hook on numba's dispatcher that names
# every function it is asked to load or compile for new argument types, then one batched learn and
# one event. numba calls _compile_for_args exactly when a call finds no loaded machine code.
_PROBE = """
import numba.core.dispatcher as nd
from stream_cl import runtime, OnlineContinualLearner
runtime.warm_up()
seen = []
original = nd._DispatcherBase._compile_for_args
def named(self, *args, **kws):
    seen.append(self.py_func.__name__)
    return original(self, *args, **kws)
nd._DispatcherBase._compile_for_args = named
m = OnlineContinualLearner()
m.prequential_batch([{'a': float(i % 3), 'b': 1.0} for i in range(300)], [i % 2 for i in range(300)])
m.predict_proba_one({'a': 0.5, 'b': 1.0}); m.learn_one({'a': 0.5, 'b': 1.0}, 1)
print("loaded after warm_up:", sorted(set(seen)))
"""


def test_first_batch_after_warm_up_loads_no_compiled_loop():
    # the pivot check of the ridge heads' Cholesky factor (conditioning's _pivots_lost) was compiled at
    # the first prequential_batch: ~150 ms inside the first timed batch on a cold cache
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "loaded after warm_up: []", out.stdout
