"""Review r148: README.md, docs/daemon.md, docs/observability.md and docs/partitions.md followed literally.

Findings (each test below failed before its doc fix):

1. docs/daemon.md's table of kafka-python's private attributes said a record kafka-python cannot parse is
   stepped over as an ``unreadable`` dead letter; it is a ``malformed`` one (connectors/unreadable_record.py),
   and no reason code ``unreadable`` exists, so an alert or a filter on it never matched (low).
2. docs/daemon.md named ``run_daemon(config, on_ready=...)`` right after ``connectors.daemon.DaemonMetrics``:
   since the split of connectors/daemon.py (5f0c959) it lives in ``connectors.daemon_run``, and
   ``from connectors.daemon import run_daemon`` is an ImportError (low).
3. The README said that a Python program given an unknown ``STREAM_CL_BLAS_KERNELS`` gets a
   ``RuntimeWarning`` and ``auto``, two paragraphs after telling it to call
   ``stream_cl.blas_kernels.prefer_avx512_kernels()``, which raises the ValueError instead (the learners
   warn; the explicit call refuses) (low).

Guards for drift no test held (they pass before and after): the metrics table of docs/observability.md
is connectors/metric_names.py's list (names, order, types, labels) and states every histogram's buckets,
not only the commit histogram's; and every dotted ``stream_cl.``/``connectors.`` name the four docs put
in backticks resolves to a module or an attribute.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from connectors.metric_names import EXPORTED_METRICS, METRIC_LABELS
from stream_cl.events import REASONS

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "daemon.md", ROOT / "docs" / "observability.md",
        ROOT / "docs" / "partitions.md"]
# backticked dotted names that are not Python objects: a logger's name (docs/observability.md, changelog_created)
NOT_OBJECTS = {"stream_cl.changelog"}


def _text(path: Path) -> str:
    return " ".join(path.read_text(encoding="utf-8").split())  # a phrase may wrap across lines


# -- 1: the reason code of a record kafka-python cannot parse --------------------------------------------------
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_reason_code_the_docs_give_a_dead_letter_is_one_the_code_writes(doc):
    said = re.findall(r"`(\w+)` dead[- ]letters?\b", _text(doc))
    assert not [code for code in said if code not in REASONS], f"{doc.name}: not a reason code: {said}"


def test_the_unparseable_record_is_a_malformed_dead_letter_in_the_code_too():
    """What finding 1's doc fix states, read from the code that makes the dead letter."""
    from kafka import TopicPartition

    from connectors.unreadable_record import unreadable_letters

    letters = unreadable_letters(TopicPartition("events", 3), 17, 19, ValueError("bad header name"))
    assert {d.reason for d in letters} == {"malformed"}


# -- 2: run_daemon's module ---------------------------------------------------------------------------------------
def test_the_docs_name_run_daemon_where_it_can_be_imported():
    text = _text(ROOT / "docs" / "daemon.md")
    uses = [m.start() for m in re.finditer(r"run_daemon\(", text)]
    assert uses, "docs/daemon.md no longer shows run_daemon: drop this test"
    for at in uses:
        assert text[:at].endswith("connectors.daemon_run."), text[at - 80 : at + 40]
    from connectors.daemon_run import run_daemon  # what the doc now names

    assert "on_ready" in run_daemon.__code__.co_varnames


# -- 3: an unknown STREAM_CL_BLAS_KERNELS in a Python program ---------------------------------------------------
def test_the_readme_says_what_prefer_avx512_kernels_does_with_an_unknown_setting():
    from stream_cl.blas_kernels import prefer_avx512_kernels

    with pytest.raises(ValueError, match="STREAM_CL_BLAS_KERNELS='openblas' is not one of auto, default, mkl"):
        prefer_avx512_kernels(environ={"STREAM_CL_BLAS_KERNELS": "openblas"}, flags=set(), numpy_loaded=False)
    readme = _text(ROOT / "README.md")
    assert "a call of `prefer_avx512_kernels()` refuses it with a `ValueError`" in readme


# -- guards -------------------------------------------------------------------------------------------------------
def _metric_rows() -> list[tuple[str, str, tuple[str, ...], str]]:
    text = (ROOT / "docs" / "observability.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(stream_cl_\w+)` \| (\w+) \|([^|]*)\| (.*) \|$", text, re.M)
    return [(name, kind, tuple(re.findall(r"`(\w+)`", labels)), meaning) for name, kind, labels, meaning in rows]


def test_the_metrics_table_is_the_one_list_with_its_types_and_labels():
    rows = _metric_rows()
    assert [r[0] for r in rows] == list(EXPORTED_METRICS)
    assert {name: (kind, labels) for name, kind, labels, _ in rows} == {
        name: (EXPORTED_METRICS[name], METRIC_LABELS[name]) for name in EXPORTED_METRICS}


def test_the_metrics_table_lists_each_histograms_buckets():
    from connectors.status import DaemonMetrics

    m = DaemonMetrics()
    buckets = {"stream_cl_model_step_seconds": m.step_seconds.buckets,
               "stream_cl_event_latency_seconds": m.event_latency.buckets,
               "stream_cl_checkpoint_duration_seconds": m.checkpoint_duration.buckets,
               "stream_cl_commit_duration_seconds": m.commit_duration.buckets}
    assert set(buckets) == {n for n, kind in EXPORTED_METRICS.items() if kind == "histogram"}
    for name, _, _, meaning in _metric_rows():
        if name in buckets:
            listed = meaning.split("Buckets: ", 1)[1].split(" (")[0].rstrip(". |").split(", ")
            seconds = [float(b[:-3]) / 1000 if b.endswith(" ms") else float(b[:-2]) for b in listed]
            assert seconds == pytest.approx(list(buckets[name])), name


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_dotted_name_the_docs_give_resolves(doc):
    missing = []
    for name in sorted(set(re.findall(r"`((?:stream_cl|connectors)\.[\w.]+?)(?:\(|`)", _text(doc))) - NOT_OBJECTS):
        parts = name.split(".")
        for i in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                missing.append(name)
            break
        else:
            missing.append(name)
    assert not missing, f"{doc.name} names what cannot be imported: {missing}"
