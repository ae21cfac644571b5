"""JSONL sinks for a file run: predictions and dead letters, one JSON object a line.

They are also exported by :mod:`connectors.files`, where the file source is.

>>> import tempfile, os
>>> from stream_cl.events import DeadLetter
>>> path = os.path.join(tempfile.mkdtemp(), "dead.jsonl")
>>> with JsonlDeadLetterSink(path) as sink:
...     sink.write([DeadLetter(b"\\xff{", "malformed", "invalid UTF-8", "events.jsonl:3")])
>>> open(path).read()
'{"reason": "malformed", "detail": "invalid UTF-8", "origin": "events.jsonl:3", "raw": "/3s=", "raw_encoding": "base64"}\\n'
"""

from __future__ import annotations

import base64
import json
import math
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from stream_cl.events import DeadLetter, Prediction

__all__ = ["JsonlDeadLetterSink", "JsonlPredictionSink"]


class _JsonlSink:
    """Writes JSON lines to a file, anew or (``append``) after what it holds; ``flush`` makes them durable (fsync).

    The path may also be a pipe, FIFO or terminal (``--predictions /dev/stdout | jq``): there
    ``flush`` hands the lines on without fsync, which such files refuse (EINVAL) and which
    would have nothing to make durable.
    """

    def __init__(self, path: str | os.PathLike, append: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab" if append else "wb")
        # decided once: an open file's type cannot change
        self._fsync = stat.S_ISREG(os.fstat(self._file.fileno()).st_mode)

    def _write_dicts(self, dicts) -> None:
        if self._file is None:
            raise ValueError(f"{type(self).__name__}({str(self.path)!r}) is closed")
        # ASCII JSON: any string (even one with lone surrogates) makes a valid line
        self._file.write("".join(json.dumps(d, default=_jsonable) + "\n" for d in dicts).encode("ascii"))

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class JsonlDeadLetterSink(_JsonlSink):
    """One ``{"reason", "detail", "origin", "raw"}`` object per dead letter.

    ``raw`` is the record's text when it is valid UTF-8; otherwise its base64, flagged
    by ``"raw_encoding": "base64"``.
    """

    def write(self, letters: Sequence[DeadLetter]) -> None:
        self._write_dicts(_letter_dict(d) for d in letters)


class JsonlPredictionSink(_JsonlSink):
    """One ``{"id", "y_pred", "proba", "y_true", "task", "ts", "origin"}`` object per prediction
    (and ``"extra"`` when a prediction carries any)."""

    def write(self, predictions: Sequence[Prediction]) -> None:
        self._write_dicts(_prediction_dict(p) for p in predictions)


def _letter_dict(letter: DeadLetter) -> dict:
    d = {"reason": letter.reason, "detail": letter.detail, "origin": letter.origin}
    raw = letter.raw
    if isinstance(raw, str):
        d["raw"] = raw
    else:
        try:
            d["raw"] = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            d["raw"] = base64.b64encode(raw).decode("ascii")
            d["raw_encoding"] = "base64"
    return d


def _prediction_dict(p: Prediction) -> dict:
    d = {
        "id": p.id,
        "y_pred": p.y_pred,
        "proba": _finite_or_none(p.proba),
        "y_true": p.y_true,
        "task": p.task,
        "ts": _finite_or_none(p.ts),
        "origin": p.origin,
    }
    if p.extra:
        d["extra"] = p.extra
    return d


def _finite_or_none(v):
    # JSON has no NaN: write null rather than an unparseable line
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _jsonable(obj):
    """numpy scalars and other stray types: their Python value, else their text."""
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)
