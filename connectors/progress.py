"""A live progress line for long runs: records read, rate, recent accuracy, dead letters, and ETA when the total is known.

>>> import io
>>> out = io.StringIO()
>>> Progress(total=None, stream=out).update(1200, 0.9125, 3, force=True)
>>> out.getvalue().split(" | ")[0::2]
['1,200 records', 'recent accuracy 0.912']
"""

from __future__ import annotations

import sys
import time


class Progress:
    """Redraws one line on a TTY (``\\r``); elsewhere prints a line every ``every_s`` seconds."""

    def __init__(self, total: int | None = None, stream=None, every_s: float = 0.5, enabled: bool = True):
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every_s = every_s if self.tty else max(every_s, 10.0)
        self.enabled = enabled
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, done: int, accuracy: float, dead: int, force: bool = False) -> None:
        """``done`` records read (events and dead letters), the recent windowed accuracy, dead letters so far."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        parts = [f"{done:,} records", f"{rate:,.0f}/s",
                 f"recent accuracy {accuracy:.3f}" if accuracy == accuracy else "recent accuracy -"]
        if dead:
            parts.append(f"{dead:,} dead letters")
        if self.total:
            frac = min(done / self.total, 1.0)
            eta = (self.total - done) / rate if rate > 0 else float("inf")
            bar = "#" * int(24 * frac)
            parts.insert(0, f"[{bar:<24}] {100 * frac:5.1f}%")
            parts.append(f"ETA {eta:,.0f}s" if eta != float("inf") else "ETA -")
        line = " | ".join(parts)
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the progress line (on a terminal)."""
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
