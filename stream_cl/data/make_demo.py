"""Regenerate ``demo.jsonl.gz``, the drifting stream bundled for ``stream-cl run``.

    python -m stream_cl.data.make_demo

12,000 events in three tasks, as JSON lines ``{"id", "x", "y", "task", "ts"}``:

* task "A" (events 0-3,999): River's RandomRBF, 4 classes, 8 features;
* task "B" (4,000-7,999): an abrupt drift to another RandomRBF concept whose labels are
  shifted by 2, so classes 4 and 5 appear (class-incremental) and 2 and 3 change meaning;
* task "A" again (8,000-11,999): the first concept recurs, so forgetting shows.

Every 25th event has no label (predicted only), and three deliberately bad lines show
the dead-letter path (malformed JSON, a NaN feature, features nested deeper than
``mapping.max_depth``).
"""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

from river.datasets import synth

OUT = Path(__file__).with_name("demo.jsonl.gz")
PER_TASK = 4000


def _concept(seed_model: int, seed_sample: int):
    return synth.RandomRBF(seed_model=seed_model, seed_sample=seed_sample, n_classes=4, n_features=8, n_centroids=20)


def lines():
    phases = [("A", _concept(11, 1), 0), ("B", _concept(23, 2), 2), ("A", _concept(11, 3), 0)]
    i = 0
    for task, stream, shift in phases:
        for x, y in itertools.islice(stream, PER_TASK):
            event = {"id": f"e{i}", "x": {f"f{k}": round(v, 4) for k, v in x.items()}, "task": task, "ts": 1_700_000_000 + i}
            if i % 25 != 24:
                event["y"] = int(y) + shift
            yield json.dumps(event, separators=(",", ":"))
            if i in (1000, 5000, 9000):
                yield {1000: '{"id": "bad1", "x": {"f0": 0.1,', 5000: '{"id":"bad2","x":{"f0":NaN},"y":1}',
                       9000: '{"id":"bad3","x":{"f0":{"a":{"b":{"c":{"d":{"e":1}}}}}},"y":0}'}[i]
            i += 1


def main() -> None:
    with gzip.GzipFile(OUT, "wb", mtime=0) as f:  # mtime 0: byte-identical on every run
        for line in lines():
            f.write(line.encode() + b"\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
