"""Shared helpers for the benchmarks: materialised streams, results, markdown tables.

Every stream is materialised once as a list of ``(dict, label)`` events and the same
list is fed to every model, so the models see byte-for-byte the same data in the
same order. Nothing here is timed.
"""

from __future__ import annotations

import itertools
import math
import pickle
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

__all__ = [
    "STREAMS",
    "ModelResult",
    "StreamData",
    "drift_width",
    "fingerprint",
    "fmt_markdown_table",
    "fmt_num",
    "materialise",
    "resolve_names",
]


# -- streams -----------------------------------------------------------------------------
@dataclass
class StreamData:
    """A materialised stream: the events and what is known about them."""

    name: str
    description: str
    events: list  # [(dict, label)]
    materialise_s: float = 0.0
    classes: list = field(default_factory=list)  # labels in first-seen order
    feature_names: list = field(default_factory=list)  # keys in first-seen order
    drift: bool = False

    def __post_init__(self):
        if not self.classes or not self.feature_names:
            classes, names = {}, {}
            for x, y in self.events:
                classes.setdefault(y, None)
                for k in x:
                    names.setdefault(k, None)
            self.classes, self.feature_names = list(classes), list(names)

    @property
    def n_events(self) -> int:
        return len(self.events)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "n_events": self.n_events,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "classes": [_jsonable(c) for c in self.classes],
            "drift": self.drift,
            "materialise_s": self.materialise_s,
        }


def drift_width(n: int, position: int) -> int:
    """Width of a :class:`river.datasets.synth.ConceptDriftStream` transition for ``n`` events.

    About ``n / 10``, but never so narrow that River's ``math.exp(-4 * (t - position) / width)``
    overflows (exp overflows past ~709.78): the width must exceed ``4 * max_distance / 700``.

    >>> drift_width(20000, 10000)
    2000
    >>> drift_width(200, 100) >= 4 * 100 / 700
    True
    """
    max_distance = max(position, n - position, 1)
    return max(n // 10, math.floor(4 * max_distance / 700) + 1, 1)


def _concept_drift(make_before, make_after, n: int, seed: int):
    from river.datasets import synth

    position = n // 2
    return synth.ConceptDriftStream(
        stream=make_before(seed),
        drift_stream=make_after(seed + 1),
        position=position,
        width=drift_width(n, position),
        seed=seed + 2,
    )


def _rbf(n: int, seed: int):
    from river.datasets import synth

    return synth.RandomRBFDrift(
        seed_model=seed, seed_sample=seed + 1, n_classes=5, n_features=10,
        n_centroids=50, change_speed=0.001, n_drift_centroids=50,
    )


def _agrawal(n: int, seed: int):
    from river.datasets import synth

    return _concept_drift(
        lambda s: synth.Agrawal(classification_function=0, seed=s),
        lambda s: synth.Agrawal(classification_function=4, seed=s),
        n, seed,
    )


def _hyperplane(n: int, seed: int):
    from river.datasets import synth

    return synth.Hyperplane(seed=seed, n_features=10, n_drift_features=5, mag_change=0.001, noise_percentage=0.05)


def _led(n: int, seed: int):
    from river.datasets import synth

    return synth.LEDDrift(seed=seed, noise_percentage=0.1, irrelevant_features=True, n_drift_features=4)


def _sea(n: int, seed: int):
    from river.datasets import synth

    return _concept_drift(
        lambda s: synth.SEA(variant=0, noise=0.1, seed=s),
        lambda s: synth.SEA(variant=2, noise=0.1, seed=s),
        n, seed,
    )


def _shuttle(n: int, seed: int):
    from river import datasets

    return datasets.Shuttle()


def _segments(n: int, seed: int):
    from river import datasets

    return datasets.ImageSegments()


# name -> (factory(n, seed) -> iterable, cap at n?, drift?, description)
STREAMS: dict[str, tuple[Callable, bool, bool, str]] = {
    "RandomRBFDrift": (_rbf, True, True,
                       "RandomRBFDrift(n_classes=5, n_features=10, n_centroids=50, change_speed=0.001, n_drift_centroids=50)"),
    "Agrawal": (_agrawal, True, True,
                "ConceptDriftStream(Agrawal(function 0) -> Agrawal(function 4), position=n/2, width~n/10)"),
    "Hyperplane": (_hyperplane, True, True,
                   "Hyperplane(n_features=10, n_drift_features=5, mag_change=0.001, noise 5%)"),
    "LEDDrift": (_led, True, True,
                 "LEDDrift(noise 10%, irrelevant_features=True, n_drift_features=4)"),
    "SEA": (_sea, True, True,
            "ConceptDriftStream(SEA(variant 0) -> SEA(variant 2), noise 10%, position=n/2, width~n/10)"),
    "Shuttle": (_shuttle, True, False, "river.datasets.Shuttle (bundled), first n rows"),
    "ImageSegments": (_segments, False, False, "river.datasets.ImageSegments (bundled), all 2310 rows"),
}


def materialise(name: str, n: int, seed: int) -> StreamData:
    """Materialise stream ``name`` as a list of ``(dict, label)`` events (plain dicts)."""
    factory, capped, drift, description = STREAMS[name]
    t0 = time.perf_counter()
    source = factory(n, seed)
    it = itertools.islice(source, n) if capped else iter(source)
    events = [(dict(x), y) for x, y in it]
    return StreamData(name, description, events, time.perf_counter() - t0, drift=drift)


def resolve_names(requested: str | None, available: Sequence[str], what: str) -> list[str]:
    """Comma-separated, case-insensitive names -> canonical names (all when ``requested`` is empty)."""
    if not requested:
        return list(available)
    lookup = {a.lower(): a for a in available}
    out = []
    for raw in requested.split(","):
        key = raw.strip().lower()
        if not key:
            continue
        if key not in lookup:
            raise SystemExit(f"unknown {what} {raw.strip()!r}; choose from: {', '.join(available)}")
        if lookup[key] not in out:
            out.append(lookup[key])
    return out


def fingerprint(events: list) -> int:
    """CRC32 of the pickled events: detects a model that mutated the shared input dicts."""
    return zlib.crc32(pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL))


# -- results -----------------------------------------------------------------------------
@dataclass
class ModelResult:
    """One model on one stream (prequential: predict, then learn, every event)."""

    model: str
    n_events: int = 0
    correct: int = 0
    seconds: float = 0.0  # predict+learn loop only
    setup_s: float | None = None  # building the model, outside `seconds`
    conversion_s: float | None = None  # CapyMOA: events -> instances, outside `seconds`
    agreement: float | None = None  # batch mode: fraction of predictions equal to the per-event loop
    error: str | None = None
    skipped: str | None = None
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None and self.n_events > 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n_events if self.ok else None

    @property
    def events_per_s(self) -> float | None:
        if not self.ok:
            return None
        return self.n_events / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["accuracy"] = self.accuracy
        d["events_per_s"] = self.events_per_s
        d["ok"] = self.ok
        return d


def _jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    try:
        return v.item()  # numpy scalar
    except AttributeError:
        return str(v)


def fmt_num(v, spec: str, na: str = "—") -> str:
    return na if v is None else format(v, spec)


def fmt_markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """``rows`` of already-formatted strings; ``columns`` = [(key, header, "l" or "r")].

    >>> print(fmt_markdown_table([{"m": "a|b", "v": "1"}], [("m", "model", "l"), ("v", "value", "r")]))
    | model | value |
    |:---|---:|
    | a\\|b | 1 |
    """
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    rule = "|" + "|".join(":---" if a == "l" else "---:" for _, _, a in columns) + "|"
    body = ["| " + " | ".join(str(r.get(k, "")).replace("|", "\\|") for k, _, _ in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])
