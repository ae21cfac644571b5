"""Every event the code logs (``log_event(logger, "<event>", ...)``) is named in docs/observability.md,
where operators look up what a line means and which fields it has; the documented list is the one list
of events (it replaces ``LIFECYCLE_EVENTS``, a second list in connectors/logs.py that nothing read)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_LOGGED = re.compile(r'log_event\(\s*[\w.]+,\s*"([a-z_]+)"')


def _logged() -> set[str]:
    found = set()
    for package in ("stream_cl", "connectors"):
        for path in (ROOT / package).rglob("*.py"):
            found |= set(_LOGGED.findall(path.read_text(encoding="utf-8")))
    return found


def test_the_events_are_found():
    assert {"start", "failed", "broker_unreachable", "committed_offsets_unreadable"} <= _logged()


def test_every_logged_event_is_documented():
    docs = (ROOT / "docs" / "observability.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z_]+)`(?: \([a-z]+\))? \|", docs, re.M))  # the events' table: "| `e` (warning) |"
    missing = sorted(_logged() - rows)
    assert not missing, f"logged but not in docs/observability.md: {missing}"
