"""The decoder's speed on the Kafka benchmark's events: orjson's fast path against the standard library's.

    python benchmarks/decode_speed.py [--events 20000] [--features 10] [--repeat 5]

One process, the two ways alternating: ``EventDecoder.decode_json`` as the daemon calls it
(with each record's origin), then the same inside ``decode.standard_library_only()`` (the fast
path refused: every record takes ``json``, as before orjson; refusing costs each record one
raised exception), ``--repeat`` times each. Prints µs per event of each round, the median
ratio, and whether both ways gave the same records.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.kafka_throughput import event_json
from stream_cl import decode
from stream_cl.config import MappingConfig


def _decode_all(decoder, values) -> tuple[list, float]:
    t = time.perf_counter()
    out = [decoder.decode_json(v, "bench/0@" + str(i)) for i, v in enumerate(values)]
    return out, (time.perf_counter() - t) / len(values) * 1e6


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=20000)
    p.add_argument("--features", type=int, default=10)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    rng = random.Random(0)
    values = [event_json(i, rng, args.features) for i in range(args.events)]
    decoder = decode.EventDecoder(MappingConfig())
    fast, slow, same = [], [], True
    for _ in range(args.repeat):
        a, us = _decode_all(decoder, values)
        fast.append(us)
        with decode.standard_library_only():
            b, us = _decode_all(decoder, values)
        slow.append(us)
        same = same and a == b
    size = sum(map(len, values)) / len(values)
    print(f"{args.events:,} events of {size:.0f} bytes, {args.features} features")
    print("orjson first, µs/event:   " + " ".join(f"{v:.2f}" for v in fast))
    print("json only, µs/event:      " + " ".join(f"{v:.2f}" for v in slow))
    print(f"median speed-up: {statistics.median(s / f for s, f in zip(slow, fast)):.2f}x; same records: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
