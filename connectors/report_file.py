"""A file run's JSON report on disk: gone while the run is under way, whole once it is written.

A killed run (SIGKILL, an OOM kill, a power loss) leaves what it wrote so far. Its predictions and dead
letters are cut short, so the report an earlier run left beside them must not say ``"complete": true``:
:func:`clear_report` removes it when the run starts, and a reader finds no report until the run has
written its own. :func:`write_report` writes that one atomically (a temporary file in the same folder,
fsynced, renamed over the name, then the folder fsynced, as checkpoints are written): a reader sees the
whole report or none, never a file cut inside its JSON.

A report path that is not a plain file (``/dev/stdout``, a pipe) or that is a symbolic link is written
in place, as before: a rename would replace the link or the device's name. So is a plain file whose
folder takes no new file (a writable report in a read-only folder, which the config check allows).

>>> import json, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "report.json"
>>> _ = path.write_text('{"complete": true}')     # an earlier run's
>>> mode = clear_report(str(path)); path.exists()   # (mode: the old file's permission bits)
False
>>> write_report(str(path), {"complete": True, "events": 3})
>>> json.loads(path.read_text())["events"], sorted(p.name for p in path.parent.iterdir())
(3, ['report.json'])
"""

from __future__ import annotations

import glob
import json
import os
import re
import stat
from pathlib import Path

from stream_cl.checkpoint import write_atomically

from .writable import cannot_write

__all__ = ["clear_report", "write_report"]


def clear_report(path: str) -> int | None:
    """Remove the report an earlier run left at ``path`` (module docstring), and the temporary files of
    a report write to ``path`` that was killed (``.NAME.<pid>.tmp``; not ``run.json``'s for ``run``, which another
    run may be writing); return the old report's permission bits, which :func:`write_report`
    gives the new one (a report made private stays so), or None. A link to a file, or a file that cannot
    be removed, is emptied instead; anything else (a device, a pipe) is left."""
    if not path:
        return None
    own = re.compile(re.escape(_tmp_prefix(path)) + r"[0-9]+\.tmp")
    for stale in Path(path).parent.glob(f"{glob.escape(_tmp_prefix(path))}*.tmp"):
        if not own.fullmatch(stale.name):  # another report's write, under way in another run (review r150)
            continue
        try:
            stale.unlink()
        except OSError:
            pass
    try:
        st = os.stat(path)
    except OSError:  # nothing there (or nothing this run could read: its own write says why)
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    mode = stat.S_IMODE(st.st_mode)
    if not os.path.islink(path):  # (a link is the user's: its file is emptied below)
        try:
            os.unlink(path)
            return mode
        except OSError:
            pass
    try:
        with open(path, "w"):
            pass
    except OSError:  # left as it is: the config check found it writable, so the report's own write says why
        pass
    return mode


def write_report(path: str, report: dict, mode: int | None = None) -> None:
    """Write ``report`` as JSON to ``path`` (if set), atomically where it is a plain file (module
    docstring), with permission bits ``mode`` where it makes a new file (:func:`clear_report`'s). A write
    that fails (a full disk) is added to the report's ``output_errors`` instead of raised: the CLI still
    prints the summary, then the error, and exits 1 (a traceback here lost a whole run's result after
    all its work). A pipe whose reader left raises BrokenPipeError, as the run's other outputs do."""
    if not path:
        return
    text = json.dumps(report, indent=2, default=str)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if not _replaceable(path) or not _replace(path, text, mode):
            Path(path).write_text(text)
    except BrokenPipeError:  # `--report /dev/stdout | ...` whose reader left: no disk's error; the CLI exits 141
        raise
    except OSError as e:
        report.setdefault("output_errors", {})["run.report"] = cannot_write("run.report", path, e)


def _replaceable(path: str) -> bool:
    """Whether a rename may put a new file at ``path``: nothing there yet, or a plain file (no link)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return True


def _tmp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}."


def _replace(path: str, text: str, mode: int | None) -> bool:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``; False (nothing
    written) where the folder takes no new file. Any other failure raises, the temporary file removed."""
    target = Path(os.path.abspath(path))
    try:
        write_atomically(target, text.encode(), target.parent / f"{_tmp_prefix(path)}{os.getpid()}.tmp", mode)
    except PermissionError:  # a read-only folder (the file in it writable: the config check allows it)
        return False
    return True
