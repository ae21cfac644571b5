"""Reading a config file: any readable path, a named pipe too (its writer waited for a while), at most
:data:`MAX_CONFIG_BYTES`, as UTF-8 without a byte-order mark, then as TOML. Each failure is a
:class:`~stream_cl.config.ConfigError` naming the path and the fix, not a traceback.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import tomllib
from pathlib import Path

from .building import Config, load_config_dict
from .schema import ConfigError, first_clause


def load_config(path: str | Path) -> Config:
    return load_config_dict(read_toml(path))


def read_toml(path: str | Path) -> dict:
    """A config file's tables as written, not yet validated: which keys it sets (the rest take defaults)."""
    if str(path) == "":  # Path("") is ".", the current directory: name the empty value instead
        raise ConfigError("config path: empty (got ''); pass --config PATH to a TOML file")
    path = Path(path)
    text = _utf8_text(path, _config_bytes(path))
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the syntax at that line") from None
    except ValueError as e:  # an integer of more digits than Python converts (4,300): not a TOMLDecodeError
        raise ConfigError(f"{path}: a number too long to read ({first_clause(e)}); write a smaller "
                          "number") from None
    if not tables:  # an empty mounted file had run the bundled demo and exited 0, a service restarting it for ever (r100)
        raise ConfigError(f"{path}: no settings in it (empty, or comments only); write the config into it, or leave "
                          "--config out for the bundled demo")
    return tables


PIPE_WRITER_WAIT_S = 30  # how long a named pipe given as the config waits for a process to write it
# A config is a few kilobytes: a larger read is a wrong path (a device such as /dev/zero never ends)
MAX_CONFIG_BYTES = 16 * 1024 * 1024


def _config_bytes(path: Path) -> bytes:
    """The file's bytes, or a ConfigError naming the path and the fix. Any readable path is read, not only a
    regular file: a pipe (``--config <(envsubst < tmpl.toml)``, ``--config /dev/stdin``) holds a config as
    well as a file does. An unreadable file was a PermissionError traceback with exit 1, which systemd's
    ``Restart=on-failure`` restarts for ever (exit 2, a config error, it does not). A named pipe is opened
    without waiting for a writer (a blocking open() held the start, SIGTERM kept, until SIGKILL), and a
    writer is waited for :data:`PIPE_WRITER_WAIT_S` at most: one that no process writes by then reads as
    nothing, and nothing is refused as a config."""
    try:
        data, pipe = _read_config(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; pass --config PATH to a TOML file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a directory, not a config file; pass --config PATH to a TOML file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror or e}); fix its permissions or the "
                          "path") from None
    except ValueError as e:  # a NUL in the path (from Python, not the command line): open raises no OSError
        raise ConfigError(f"{str(path)!r}: not a usable path ({e}); pass --config PATH to a TOML file") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: more than {MAX_CONFIG_BYTES:_} bytes, not a config file; pass --config PATH "
                          "to a TOML file")
    if pipe and not data:
        raise ConfigError(f"{path}: a pipe that gave nothing (no process wrote to it); write the config into it, or "
                          "pass --config PATH to a TOML file")
    return data


def _read_config(path: Path) -> tuple[bytes, bool]:
    """At most ``MAX_CONFIG_BYTES + 1`` bytes of ``path``, and whether it is a pipe. Opened non-blocking (a
    FIFO's open() otherwise waits for a writer, for ever), a writer waited for a while, then read blocking:
    a pipe's writer may be slow."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if stat.S_ISFIFO(mode):  # a named pipe whose writer opens it later (r32 F7): it was refused at once
            waiting = select.poll()
            waiting.register(fd, select.POLLIN)
            waiting.poll(PIPE_WRITER_WAIT_S * 1000)  # data, or a writer gone (HUP); none yet: no event
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(MAX_CONFIG_BYTES + 1), stat.S_ISFIFO(mode)
    finally:
        os.close(fd)


# byte-order marks a Windows editor writes: TOML is UTF-8 without one (tomllib reads a UTF-8 BOM as a
# stray character at line 1, column 1, where the line looks right)
_BOMS = {b"\xef\xbb\xbf": "UTF-8", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def _utf8_text(path: Path, data: bytes) -> str:
    """The file's text (``data``, its bytes), read as UTF-8 whatever the locale; a ConfigError naming the
    file otherwise."""
    why = next((f"it begins with a {name} byte-order mark" for bom, name in _BOMS.items() if data.startswith(bom)),
               None)
    if why is None:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            why = f"byte {e.start}: {e.reason}"
    raise ConfigError(f"{path}: not UTF-8 text without a byte-order mark ({why}); save the file as UTF-8 "
                      "(without a byte-order mark)")
