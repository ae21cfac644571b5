"""Today's code against an earlier commit, in one run: the same benchmark, alternating trees.

    python benchmarks/against.py --rev 87dd8ad --runs 2 vs_river -- --n 20000 --models ours,river_arf,river_lr
    python benchmarks/against.py --rev 87dd8ad --runs 3 kafka_throughput -- --events 100000 --models default --live-rate 0

A speed ratio between two versions means something only when both ran on the same
machine in the same state: this VM's speed moves by 2x between days (River's ARF ran at
283-755 events/s on one day and 773-2,451 on another). So the earlier commit's tree is
extracted (``git archive``) into a temporary folder and the two trees take turns, earlier
first, ``--runs`` times each; each run is the benchmark script of its own tree importing
its own ``stream_cl`` and ``connectors`` (``PYTHONPATH``), with the arguments after ``--``
and a ``--json`` file. The table then gives each run's figures and the ratio of today's
mean to the earlier mean.

Before the timed runs, each tree (earlier first) runs the same command once at a small size
(``--n 600`` / ``--events 2000``, replacing the given size), untimed and left out of the table
(its JSON and log are kept under ``<out>/prime/``): it loads or compiles numba's loops into that tree's
own cache. The earlier tree is extracted afresh, its cache empty, and a revision whose
``runtime.warm_up`` does not load every loop would otherwise compile one inside its first
timed run: ~150 ms in the first stream's timed batches (review r35; RESULTS.md 9zc).

Supported benchmarks: ``vs_river`` (ours per event and in batches of 256, per stream) and
``kafka_throughput`` (the daemon's drain events/s per model, its model alone, client CPU
per event). The earlier tree must accept the same arguments. Outputs go to ``--out``
(default ``benchmarks/results/against-<rev>``; a relative ``--out`` is taken from the current
folder, not from either tree).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = ("vs_river", "kafka_throughput")
# each script's size option, and the size of the untimed run that fills a tree's numba cache (module docstring)
PRIME_SIZE = {"vs_river": ("--n", "600"), "kafka_throughput": ("--events", "2000")}


def extract(rev: str, into: Path) -> str:
    """The tree of ``rev`` under ``into``; returns the commit's short hash."""
    short = subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO, check=True, capture_output=True,
                           text=True).stdout.strip()
    archive = subprocess.run(["git", "archive", "--format=tar", short], cwd=REPO, check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        try:
            tar.extractall(into / "tree", filter="data")
        except TypeError:  # a Python 3.11 before 3.11.4 has no extraction filters (a tree of our own repo)
            tar.extractall(into / "tree")
    return short


def run_once(root: Path, script: str, args: list[str], out_json: Path, log: Path) -> dict:
    """One run of ``root``'s ``benchmarks/<script>.py``; returns its JSON."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(root), os.environ.get("PYTHONPATH"))))}
    with open(log, "wb") as out:
        rc = subprocess.call([sys.executable, f"benchmarks/{script}.py", *args, "--json", str(out_json)],
                             cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    if rc != 0:
        raise SystemExit(f"{script} in {root} exited {rc}; see {log}")
    return json.loads(out_json.read_text())


def prime_args(script: str, args: list[str]) -> list[str]:
    """``args`` with the script's size option set to the priming run's (added where not given).

    >>> prime_args("vs_river", ["--n", "20000", "--models", "ours", "--n=5"])
    ['--models', 'ours', '--n', '600']
    """
    flag, size = PRIME_SIZE[script]
    out, skip = [], False
    for arg in args:
        if skip or arg == flag or arg.startswith(flag + "="):
            skip = arg == flag  # "--n 20000": its value is the next argument
            continue
        out.append(arg)
    return [*out, flag, size]


def prime(trees: list[tuple[str, Path]], script: str, args: list[str], out: Path) -> None:
    """One untimed run of each tree at the priming size (module docstring): no tree then loads or
    compiles numba's loops inside a timed run. Its results are not compared."""
    small = prime_args(script, args)
    (out / "prime").mkdir(exist_ok=True)  # apart from the timed runs' files
    for label, root in trees:
        print(f"priming {label} (untimed): {script} {' '.join(small)}", flush=True)
        run_once(root, script, small, out / "prime" / f"{script}-{label}.json", out / "prime" / f"{script}-{label}.log")


def figures(script: str, result: dict) -> dict[str, float]:
    """The figures compared, by name: higher is better for every one except CPU per event."""
    out: dict[str, float] = {}
    if script == "vs_river":
        for name, stream in result["streams"].items():
            for r in stream["results"]:
                if r["model"] == "ours" and r.get("events_per_s"):
                    out[f"{name}: per event, events/s"] = r["events_per_s"]
                elif r["model"] == "ours [batch 256]" and r.get("events_per_s"):
                    out[f"{name}: batch 256, events/s"] = r["events_per_s"]
    else:
        for model, d in result.get("drain", {}).items():
            out[f"daemon {model}: drain, events/s"] = d["events_per_s"]
            if d.get("model_events_per_s"):
                out[f"daemon {model}: model alone, events/s"] = d["model_events_per_s"]
        for run, c in result.get("cpu", {}).items():
            if run.startswith("daemon"):
                out[f"{run}: client CPU, us/event"] = c["client_us"]
    return out


def table(rev: str, runs: list[tuple[str, dict[str, float]]]) -> str:
    """Markdown: one row per figure, one column per run in order, then today / earlier."""
    names = list(dict.fromkeys(n for _, f in runs for n in f))
    head = "| figure | " + " | ".join(label for label, _ in runs) + f" | today / {rev} |"
    lines = [head, "|:---|" + "---:|" * (len(runs) + 1)]
    for n in names:
        old = [f[n] for label, f in runs if label.startswith(rev) and n in f]
        new = [f[n] for label, f in runs if label.startswith("today") and n in f]
        ratio = (sum(new) / len(new)) / (sum(old) / len(old)) if old and new else float("nan")
        cells = [f"{f[n]:,.0f}" if n in f and f[n] >= 100 else (f"{f[n]:.1f}" if n in f else "") for _, f in runs]
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {ratio:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", required=True, help="the earlier commit (any git revision)")
    p.add_argument("--runs", type=int, default=2,
                   help="timed runs of each tree, alternating (earlier first), after one untimed run of each at "
                        "a small size that fills its numba cache")
    p.add_argument("--out", default=None, help="folder for each run's JSON and log")
    p.add_argument("--markdown", default=None, metavar="PATH", help="also write the table here")
    p.add_argument("script", choices=SCRIPTS)
    a = p.parse_args(argv)
    if a.runs < 1:
        p.error("--runs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="against-") as tmp:
        rev = extract(a.rev, Path(tmp))
        # absolute: each run works in its own tree (cwd), and a relative --out is meant from here
        out = Path(a.out).resolve() if a.out else REPO / "benchmarks" / "results" / f"against-{rev}"
        out.mkdir(parents=True, exist_ok=True)
        trees = [(rev, Path(tmp) / "tree"), ("today", REPO)]
        prime(trees, a.script, extra, out)
        runs: list[tuple[str, dict[str, float]]] = []
        for i in range(1, a.runs + 1):
            for label, root in ((f"{name} #{i}", root) for name, root in trees):
                tag = label.replace(" #", "-")
                print(f"run {label}: {a.script} {' '.join(extra)}", flush=True)
                result = run_once(root, a.script, extra, out / f"{a.script}-{tag}.json", out / f"{a.script}-{tag}.log")
                runs.append((label, figures(a.script, result)))
    text = (f"**{a.script}: today's tree against {rev}, {a.runs} alternating run(s) each, after one untimed "
            f"priming run each**\n\n"
            f"Command: `python benchmarks/against.py {' '.join(argv)} -- {' '.join(extra)}`\n\n" + table(rev, runs))
    print(text)
    if a.markdown:
        Path(a.markdown).write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
