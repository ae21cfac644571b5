"""benchmarks/cpu_meter.py: CPU time is attributed to the right process tree, and to nobody else."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.cpu_meter import CpuMeter  # noqa: E402

# A parent that starts a grandchild burning ~0.4 s of CPU; the grandchild reports the CPU
# time it used, then both wait for stdin to close, so the test samples them while alive.
PARENT = textwrap.dedent("""
    import subprocess, sys
    BURN = '''
    import sys, time
    t = time.process_time()
    while time.process_time() - t < 0.4:
        pass
    print(time.process_time() - t, flush=True)
    sys.stdin.read()
    '''
    child = subprocess.Popen([sys.executable, "-c", BURN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    print(child.stdout.readline().strip(), flush=True)
    sys.stdin.read()
    child.stdin.close()
    child.wait()
""")


def test_a_grandchilds_cpu_counts_for_its_tree_and_not_for_an_idle_one():
    idle = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    meter = CpuMeter({"tree": parent.pid, "idle": idle.pid})
    try:
        meter.sample()
        burned = float(parent.stdout.readline())  # the grandchild has burned its CPU and reported it
        meter.sample()
        used = meter.between(meter.samples[0][0], meter.samples[-1][0])
    finally:
        for p in (parent, idle):
            p.stdin.close()
            p.wait(timeout=30)
    assert burned >= 0.4
    # the tree used at least what the grandchild burned (plus the interpreters' start-up)
    assert used["tree"] >= burned - 0.02
    assert used["tree"] < burned + 1.5
    assert used["idle"] < 0.2
    assert used["machine"] >= burned - 0.02


def test_an_exited_root_is_left_out_of_later_samples_and_earlier_windows_still_read():
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    meter = CpuMeter({"p": proc.pid})
    meter.sample()
    meter.sample()
    proc.stdin.close()
    proc.wait(timeout=30)
    meter.sample()
    assert "p" in meter.samples[0][1] and "p" not in meter.samples[-1][1]
    used = meter.between(meter.samples[0][0], meter.samples[1][0])
    assert used["p"] >= 0.0
    # a window past the root's exit reads the last value it had, not a drop to zero
    assert meter.between(meter.samples[0][0], meter.samples[-1][0])["p"] >= 0.0


def test_between_interpolates_the_cumulative_counters():
    meter = CpuMeter({})
    meter.samples = [(10.0, {"machine": 1.0}), (12.0, {"machine": 3.0})]
    assert meter.between(10.5, 11.5) == {"machine": pytest.approx(1.0)}
