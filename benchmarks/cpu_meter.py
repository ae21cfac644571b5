"""CPU time spent by chosen process trees, and by the whole machine, over a wall-clock window.

The Kafka benchmark uses it to say where the machine's cores go per event: the broker, the
client or daemon process (with its publisher child), and everything together. Linux only:
it reads ``/proc``. A thread samples every ``interval`` seconds; :meth:`CpuMeter.between`
interpolates the cumulative counters at two wall-clock times (``time.time()``), so a window
can be chosen after the fact (e.g. from the first to the last prediction's broker timestamp).

A process tree is a root pid and its live descendants; a descendant's time counts while it
is alive (its exit would move its time into the parent's ``cutime``, which is not read, so
nothing counts twice).

>>> import os, time
>>> meter = CpuMeter({"me": os.getpid()}, interval=0.01).start()
>>> t0 = time.time(); _ = sum(i * i for i in range(3_000_000)); t1 = time.time()
>>> meter.stop()
>>> used = meter.between(t0, t1)  # ~0.2 s of work, counted in ticks of 1/SC_CLK_TCK s
>>> 0.0 < used["me"] <= (t1 - t0) * 1.5 + 3 / TICK and used["machine"] >= 0.0
True
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

__all__ = ["CpuMeter", "available", "find_broker_pid"]

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def available() -> bool:
    """True where ``/proc`` gives per-process CPU times (Linux)."""
    return os.path.exists("/proc/self/stat") and os.path.exists("/proc/stat")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    # the command name (field 2) may hold spaces: split after its closing parenthesis
    return raw[raw.rindex(")") + 2:].split()  # fields 3.. of proc(5)


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, user + system CPU seconds) for every readable process."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            f = _stat_fields(int(name))
            if f is not None:
                out[int(name)] = (int(f[1]), (int(f[11]) + int(f[12])) / TICK)  # ppid, utime + stime
    return out


def _tree_cpu(procs: dict[int, tuple[int, float]], root: int) -> float:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            total += procs[pid][1]
            todo.extend(children.get(pid, ()))
    return total


def find_broker_pid(bootstrap: str | None = None) -> int | None:
    """The pid of a Kafka broker on this machine (``java ... kafka.Kafka <server.properties>``), if one runs.

    With ``bootstrap`` (``host:port``), the one whose properties file lists that address among
    its ``listeners`` (several dev brokers may run side by side on other ports).
    """
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if b"kafka.Kafka" not in args:
                continue
            if bootstrap is None:
                return int(name)
            try:
                config = args[args.index(b"kafka.Kafka") + 1].decode()
                with open(config if config.startswith("/") else f"/proc/{name}/cwd/{config}") as f:
                    listeners = next((line for line in f if line.startswith("listeners=")), "")
            except (OSError, IndexError, UnicodeDecodeError):
                continue
            if f"//{bootstrap}" in listeners:
                return int(name)
    return None


def _machine_busy() -> float:
    """CPU seconds the machine has spent busy (user, nice, system, irq, softirq), all cores."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / TICK


class CpuMeter:
    """Samples the CPU seconds of named process trees (``{"broker": pid, ...}``) and the machine."""

    def __init__(self, roots: dict[str, int], interval: float = 0.1):
        self.roots = dict(roots)
        self.interval = interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)

    def watch(self, name: str, pid: int) -> None:
        """Add a process tree from the next sample on (e.g. a daemon started after the meter)."""
        self.roots = {**self.roots, name: pid}

    def sample(self) -> None:
        procs = _processes()
        # a tree whose root has exited is left out of the sample, not counted as zero
        row = {name: _tree_cpu(procs, pid) for name, pid in self.roots.items() if pid in procs}
        row["machine"] = _machine_busy()
        self.samples.append((time.time(), row))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self) -> CpuMeter:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def between(self, t0: float, t1: float) -> dict[str, float]:
        """CPU seconds each tree (and ``machine``: all cores) used from ``t0`` to ``t1``.

        A tree sampled only for part of the window counts from its first sample on.
        """
        out = {}
        for name in {k for _, row in self.samples for k in row}:
            pts = [(t, row[name]) for t, row in self.samples if name in row]
            if len(pts) < 2:
                continue
            ts, vs = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
            out[name] = float(np.interp(t1, ts, vs) - np.interp(t0, ts, vs))
        return out
