"""``stream-cl ... | head``: the reader of stdout leaves early. The run ends without a traceback and exits
141 (128 + SIGPIPE, as a shell reports a command whose pipe's reader left); it was a BrokenPipeError
traceback from the summary's print, exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("quiet", [[], ["--quiet"]])
def test_a_reader_that_leaves_early_ends_the_run_without_a_traceback(tmp_path, quiet):
    # 3,000 predictions (~300 kB) outgrow the pipe's buffer: the run is still writing when the reader leaves;
    # with --quiet no summary is printed, and the sink's own write met the closed pipe: exit 1 (r32 F4)
    run = subprocess.Popen([sys.executable, "-m", "connectors.cli", "run", "--max-events", "3000", *quiet,
                            "--predictions", "/dev/stdout"], cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.stdout.readline().startswith(b"{")  # one prediction, as `head -1` reads it
    run.stdout.close()
    err = run.stderr.read().decode()
    assert run.wait(timeout=300) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err
