"""Whether a path can be written as a file: the check the file run makes for its outputs
(``run.predictions``, ``run.dead_letters``, ``run.report``) and the daemon for
``kafka.status_file``, before either starts; and what to say of an output whose write failed
(:func:`cannot_write`).

A bad path found at start is a config error (exit 2) naming the key; found at the first
write it would stop a file run after its work, or make the daemon warn about it once a
second for ever.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> unwritable(folder)
'it is a directory'
>>> unwritable(os.path.join(folder, "new", "deeper", "out.json")) is None  # folders are created as needed
True
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["cannot_write", "unwritable"]


def unwritable(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be written as a file (creating its folders as the writers do), or None.

    The reason reads as the parenthesis of an error message ("it is a directory", "no
    permission to write it", ...). Only what can be told without writing is checked: a
    full disk shows up at the write itself.
    """
    if str(path).endswith(("/", os.sep)) and not Path(path).is_dir():  # pathlib drops the slash: "out/" was a file "out"
        return "the path ends in '/', which names a folder; give a file path, such as out/report.json"
    path = Path(path)
    if path.is_dir():
        return "it is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else "no permission to write it"
    folder = path.parent.resolve()
    while not folder.exists():  # the nearest folder that exists: the writer creates the rest there
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a directory"
    return None if os.access(folder, os.W_OK | os.X_OK) else f"no permission to create files in {folder}"


def cannot_write(key: str, path: str, error: OSError) -> str:
    """The message for an output that could not be written: the key, the file, why, and the fix."""
    fix = "free space there" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "check that file system"
    return f"cannot write {key} {path!r} ({error.strerror or error}); {fix} or choose another path"
