"""Helpers for unit tests of the file source in tail mode (connectors.files.FileSource)."""

from __future__ import annotations


def poll_until(source, n: int, max_polls: int = 500) -> list:
    """The records of polls of ``source`` until ``n`` came; each poll waits at most its ``eof_wait_s``, so
    no sleeps. An AssertionError, with what came, after ``max_polls``."""
    records = []
    for _ in range(max_polls):
        records += source.poll(100)
        if len(records) >= n:
            return records
    raise AssertionError(f"only {len(records)} of {n} records after {max_polls} polls: {records}")
