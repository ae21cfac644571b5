"""What a partition's waiting-label store costs each changelog record and checkpoint, by its size.

    python benchmarks/label_store.py [--sizes 1000,10000,100000] [--features 10] [--repeat 5]

With a labels topic, every changelog record of a partition (every ``changelog.every_events`` of
its events, or ``changelog.every_seconds``) and every checkpoint carries the partition's whole
store of events waiting for their label (docs/daemon.md), encoded again each time on the loop's
thread. For each size this fills a store with events of ``--features`` numeric features and a
published prediction each, then times, best of ``--repeat``: *write*, the store's ``state_dict``
and the record's ``Contribution.to_bytes`` (what ``PartitionStates`` does per record), and *read*,
``Contribution.from_bytes`` (what a member that takes the partition over does). It prints the
microseconds that writing adds to each event at ``changelog.every_events = 5000``.

To compare with an earlier commit, run the same script with that commit's tree first on the path
(``PYTHONPATH=<tree> python benchmarks/label_store.py``), in the same hour.
"""

from __future__ import annotations

import argparse
import sys
import time

EVERY_EVENTS = 5000  # changelog.every_events' default: records per partition's events


def _store(n: int, features: int):
    from stream_cl.events import Event, Prediction
    from stream_cl.pending import PendingLabels

    store = PendingLabels(max_pending=max(n, 1), clock=lambda: 0.0)
    for i in range(n):
        x = {f"f{j}": float(i + j) for j in range(features)}
        store.add(Event(x, id=f"e{i}"), published=Prediction(f"e{i}", "a", 0.9))
    return store


def measure(n: int, features: int, repeat: int) -> tuple[float, float, int]:
    """Best write and read seconds of one record holding a store of ``n`` waiting events, and its bytes."""
    from stream_cl import AnalyticClassifier
    from stream_cl.contribution import Contribution

    model = AnalyticClassifier()
    model.learn_one({f"f{j}": 0.1 * j for j in range(features)}, "a", partition="events/0")
    store = _store(n, features)
    write = read = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        raw = model.contribution("events/0", offset=n, pending={"store": store.state_dict(), "labels": None,
                                                                  "group": "g"}).to_bytes()
        t1 = time.perf_counter()
        back = Contribution.from_bytes(raw)
        t2 = time.perf_counter()
        write, read = min(write, t1 - t0), min(read, t2 - t1)
    assert len(back.pending["store"]["ids"]) == n
    return write, read, len(raw)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000,100000", help="waiting events in the store, comma-separated")
    p.add_argument("--features", type=int, default=10)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    import stream_cl

    print(f"stream_cl from {stream_cl.__file__}")
    for n in (int(s) for s in args.sizes.split(",")):
        write, read, size = measure(n, args.features, args.repeat)
        print(f"waiting {n:>7,}: write {write * 1e3:7.1f} ms, read {read * 1e3:7.1f} ms, record {size / 2**20:5.1f} MiB;"
              f" writing adds {write / EVERY_EVENTS * 1e6:6.1f} µs per event at every_events = {EVERY_EVENTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
