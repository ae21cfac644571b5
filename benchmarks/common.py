"""Shared helpers for the benchmarks: materialised streams, results, markdown tables.

Every stream is materialised once as a list of ``(dict, label)`` events and the same
list is fed to every model, so the models see byte-for-byte the same data in the
same order. Nothing here is timed.
"""

from __future__ import annotations

import contextlib
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
    "stack_batches",
    "timed_methods",
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


class _NominalAgrawal:
    """River's Agrawal with its nominal attributes as strings: ``elevel`` 3 -> ``"e3"``,
    ``car`` 12 -> ``"car12"``, ``zipcode`` 5 -> ``"z5"`` (numbers elsewhere)."""

    PREFIX = {"elevel": "e", "car": "car", "zipcode": "z"}

    def __init__(self, stream):
        self.stream = stream

    def __iter__(self):
        for x, y in self.stream:
            yield {k: f"{self.PREFIX[k]}{v}" if k in self.PREFIX else v for k, v in x.items()}, y


def _agrawal_nominal(n: int, seed: int):
    from river.datasets import synth

    # functions 2 and 3 are the ones that read the education level (with age, then salary too)
    return _NominalAgrawal(_concept_drift(
        lambda s: synth.Agrawal(classification_function=2, seed=s),
        lambda s: synth.Agrawal(classification_function=3, seed=s),
        n, seed,
    ))


def payments(n: int, seed: int = 0):
    """A payments-like stream: ``(event, "fraud" | "ok")`` pairs, flat as the decoder makes them.

    Each event: ``merchant`` (one of 5,000 ids, Zipf-popular: a few hundred carry most
    events, thousands are rare), ``country`` and ``card.country`` (30 codes, the card
    usually from the merchant's country), ``card.type``, ``channel``, ``device.os``
    (null for 15% of events), ``amount`` (log-normal, null for 5%) and ``hour``. Fraud
    is drawn from a logistic score: the merchant's risk (3% of merchants are risky), a
    foreign card, the amount, a prepaid card, a missing device, night hours. Halfway
    the rule drifts: the fraud ring moves to other merchants, a missing device
    becomes the strong sign and prepaid cards stop mattering.

    >>> events = list(payments(3, seed=1))
    >>> sorted(events[0][0])
    ['amount', 'card.country', 'card.type', 'channel', 'country', 'device.os', 'hour', 'merchant']
    >>> [y for _, y in events]
    ['ok', 'ok', 'fraud']
    """
    import numpy as np

    rng = np.random.default_rng([seed, 20240513])
    n_merchants, n_countries = 5000, 30
    home = rng.integers(n_countries, size=n_merchants)
    popularity = 1.0 / np.arange(1, n_merchants + 1) ** 1.1
    popularity /= popularity.sum()
    order = rng.permutation(n_merchants)  # which ids are popular
    risk = [np.where(rng.random(n_merchants) < 0.03, 3.0, 0.0) for _ in range(2)]  # before, after the drift
    oses, types, channels = ["ios", "android", "web", "pos"], ["credit", "debit", "prepaid"], ["online", "in_store"]
    for i in range(n):
        after = i >= n // 2
        m = int(order[rng.choice(n_merchants, p=popularity)])
        card_country = int(home[m]) if rng.random() < 0.85 else int(rng.integers(n_countries))
        amount = float(rng.lognormal(3.5, 1.0))
        os_ = None if rng.random() < 0.15 else oses[int(rng.integers(4))]
        card_type = types[int(rng.choice(3, p=[0.5, 0.4, 0.1]))]
        hour = int(rng.integers(24))
        score = (-1.6 + risk[after][m] + 1.2 * (card_country != home[m]) + 0.7 * (math.log(amount) - 3.5)
                 + (0.0 if after else 1.0) * (card_type == "prepaid") + (2.0 if after else 0.5) * (os_ is None)
                 + 0.8 * (hour < 6))
        fraud = rng.random() < 1.0 / (1.0 + math.exp(-2.0 * score))
        x = {"merchant": f"m{m}", "country": f"C{home[m]:02d}", "card.country": f"C{card_country:02d}",
             "card.type": card_type, "channel": channels[int(rng.random() < 0.3)], "device.os": os_,
             "amount": None if rng.random() < 0.05 else round(amount, 2), "hour": hour}
        yield x, "fraud" if fraud else "ok"


def _payments(n: int, seed: int):
    return payments(n, seed)


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
    "AgrawalNominal": (_agrawal_nominal, True, True,
                       "ConceptDriftStream(Agrawal(function 2) -> Agrawal(function 3), position=n/2, width~n/10), "
                       "elevel/car/zipcode as strings 'e3', 'car12', 'z5'"),
    "Payments": (_payments, True, True,
                 "benchmarks.common.payments: 5,000 Zipf-popular merchant ids, 30 countries, nulls (device 15%, "
                 "amount 5%), a drift of the fraud rule at n/2"),
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


# -- timers around methods -----------------------------------------------------------------
_INHERITED = object()  # the attribute came from a base class: undone by deleting the wrapper


@contextlib.contextmanager
def timed_methods(patches: Sequence[tuple], totals: dict):
    """Within the block, each ``owner.name`` of ``patches`` (``(owner, name, label)``) adds its wall
    time to ``totals[label]`` (``label`` may be a function of the call's arguments, giving the
    key); every attribute is as it was afterwards. Each timed call adds ~0.2-1 µs."""
    undo = []
    clock = time.perf_counter
    try:
        for owner, name, label in patches:
            inner = getattr(owner, name)
            undo.append((owner, name, vars(owner).get(name, _INHERITED)))

            def wrapper(*args, _inner=inner, _label=label, **kwargs):
                t = clock()
                try:
                    return _inner(*args, **kwargs)
                finally:
                    key = _label(args) if callable(_label) else _label
                    totals[key] = totals.get(key, 0.0) + clock() - t

            setattr(owner, name, wrapper)
        yield totals
    finally:
        for owner, name, original in reversed(undo):
            if original is _INHERITED:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


# -- prequential batches ---------------------------------------------------------------------
def stack_batches(probs: Sequence):
    """The probabilities of consecutive ``prequential_batch`` calls, (b_i, classes so far) each,
    as one (n, classes) array: a class first seen in a later batch is 0 in the earlier ones."""
    import numpy as np

    width = max(p.shape[1] for p in probs)  # classes seen late widen later batches
    return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in probs])
