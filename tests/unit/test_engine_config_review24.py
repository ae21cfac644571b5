"""Review 24 (r15): config keys the engine refused late, by the wrong name, or at a cost.

* F3: ``model.hash_width`` over ``max_columns`` built a label per design column before the
  error (2**24: 12.6 GB and 45 s; 2**28 killed for memory): the width is counted, not listed.
* F7: ``model.device`` took any string torch parses ("mps", "meta" crashed inside the learner)
  and its error read ``model:`` or ``model.device:`` by kind.
* F8: kind "trainable" with a drift detector at its default response named "trainable", not
  ``drift.response``, and did not say what to write.
* F9: a daemon-only section written at its default values got no warning in a file run.
* F10: ``stream-cl report --out`` naming a file (or an unwritable place) was a traceback, exit 1.
"""

from __future__ import annotations

import json
import tracemalloc

import pytest
import torch

from connectors.cli import main
from stream_cl import OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.backbones import resolve_device
from stream_cl.config import ConfigError, load_config_dict
from stream_cl.encoding import CATEGORY, NUMERIC, SHARED
from stream_cl.factory import build_learner
from stream_cl.features import LATE

KINDS = ("online", "analytic", "trainable")


def _peak_bytes(fn) -> int:
    """The most Python-allocated memory while ``fn()`` runs (its exception, if any, swallowed)."""
    tracemalloc.start()
    try:
        fn()
    except (ValueError, ConfigError):
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


# -- F3: the hash_width check counts columns ------------------------------------------------------
def test_a_hash_width_over_max_columns_is_refused_without_a_label_per_column():
    hw = 2**18  # 2,359,553 columns: a label each took ~150 MB here, and gigabytes at 2**22
    with pytest.raises(ValueError, match=r"^hash_width=262144 gives the 'all' head 2,359,553 design columns, "
                                         r"over max_columns \(8,192\)"):
        OnlineContinualLearner(device="cpu", hash_width=hw)
    assert _peak_bytes(lambda: OnlineContinualLearner(device="cpu", hash_width=hw)) < 16 * 2**20


def test_the_library_refuses_a_huge_hash_width_before_the_index_allocates_its_slots():
    # the feature index keeps a slot per hashed column: it was made before the check (2.7 GB at 2**28)
    hw = 2**24
    with pytest.raises(ValueError, match=r"^hash_width=16777216 gives the 'all' head"):
        OnlineContinualLearner(device="cpu", hash_width=hw)
    assert _peak_bytes(lambda: OnlineContinualLearner(device="cpu", hash_width=hw)) < 16 * 2**20


@pytest.mark.parametrize("key_units", [0, 3])
@pytest.mark.parametrize("hash_width", [None, 5])
def test_the_counted_width_is_the_layouts_length(key_units, hash_width):
    # the count must agree with the labels the part exchange lines columns up by, for every kind of input
    learner = OnlineContinualLearner(backbone=RandomFeatures(width=7), key_units=key_units, hash_width=hash_width,
                                     heads=((1.0, "all"), (0.99, "inputs")), device="cpu")
    names = ["a", "b=x", "b=<missing>", "c", "b=late"]
    kinds = [NUMERIC, CATEGORY, SHARED, NUMERIC, LATE]
    # an index's own names and kinds: every prefix without hashing; hashed, a kind per slot (or none given)
    cases = [(names[:n], kinds[:n]) for n in range(len(names) + 1)] if hash_width is None else \
        [(list(learner.index_.names), list(learner.index_.kinds)), ([], [])]
    for view in ("all", "inputs"):
        for ns, ks in cases:
            assert learner._view_width(view, ns, ks) == len(learner._view_layout(view, ns, ks))


@pytest.mark.parametrize("kind", ["online", "analytic"])
def test_a_config_hash_width_over_max_columns_is_a_quick_model_hash_width_error(kind):
    cfg = load_config_dict({"model": {"kind": kind, "hash_width": 2**19}})
    head = "the head" if kind == "analytic" else "every head at least"  # the online 'all' head is wider still
    with pytest.raises(ConfigError, match=rf"^model\.hash_width: hash_width=524288 gives {head} "
                                          r"524,289 design columns, over max_columns \(8,192\).*a smaller hash_width"):
        build_learner(cfg)
    # refused before the learner's feature index is made: memory does not grow with the value refused
    assert _peak_bytes(lambda: build_learner(cfg)) < 2 * 2**20


def test_a_hash_width_within_the_quick_bound_still_gets_the_learners_exact_check():
    # 1 + 1000 fits 8,192, but the online 'all' head is 1 + 256 + 9 x 1000 = 9,257 columns
    with pytest.raises(ConfigError, match=r"^model\.hash_width: hash_width=1000 gives the 'all' head 9,257 design columns"):
        build_learner(load_config_dict({"model": {"hash_width": 1000}}))
    assert build_learner(load_config_dict({"model": {"kind": "analytic", "hash_width": 1000}})).hash_width == 1000


# -- F7: model.device -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("device", ["mps", "meta", "gpu", "xla", "cpu:0", "CUDA", "cuda:-1", "cuda:x"])
def test_model_device_takes_only_the_devices_a_learner_runs_on(kind, device):
    with pytest.raises(ConfigError) as err:
        build_learner(load_config_dict({"model": {"kind": kind, "device": device}}))
    assert str(err.value) == (f"model.device: device {device!r} is not one a learner runs on; "
                              "use 'auto', 'cpu', 'cuda' or 'cuda:N'")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_is_named_as_model_device_for_every_kind(monkeypatch, kind, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without CUDA
    with pytest.raises(ConfigError) as err:
        build_learner(load_config_dict({"model": {"kind": kind, "device": device}}))
    assert str(err.value) == f"model.device: device {device!r} asked for, but no CUDA GPU is visible; use 'auto' or 'cpu'"


@pytest.mark.parametrize("kind", KINDS)
def test_cuda_n_past_the_visible_gpus_is_refused(monkeypatch, kind):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a machine with two GPUs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError) as err:
        build_learner(load_config_dict({"model": {"kind": kind, "device": "cuda:2"}}))
    assert str(err.value) == ("model.device: device 'cuda:2' asked for, but 2 CUDA GPUs are visible (cuda:0 to "
                              "cuda:1); use one of those, 'cuda' or 'auto'")
    from stream_cl.backbones.device import check_device

    for device in ("cuda", "cuda:0", "cuda:1"):
        check_device(device)
        assert resolve_device(device) == device


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("device", ["auto", "cpu", "torch:cpu"])
def test_the_documented_devices_still_build(kind, device):
    learner = build_learner(load_config_dict({"model": {"kind": kind, "device": device}}))
    assert learner.device_ == ("cpu" if device == "auto" else device)


# -- F8: the trainable kind's drift responses -------------------------------------------------------
def test_trainable_with_the_default_drift_response_names_drift_response_and_the_fix():
    with pytest.raises(ConfigError) as err:
        build_learner(load_config_dict({"model": {"kind": "trainable"}, "drift": {"detector": "adwin"}}))
    assert str(err.value) == ('drift.response: model.kind = "trainable" takes only "record" and "need", not '
                              '["restart"] (the default); set response = ["record"], or ["need"] with '
                              "homeostasis.enabled = true")
    with pytest.raises(ConfigError, match=r'^drift\.response: .* not \["forget", "remix"\]; set response = \["record"\]'):
        build_learner(load_config_dict({"model": {"kind": "trainable"},
                                        "drift": {"detector": "adwin", "response": ["record", "forget", "remix"]}}))
    # what the message says to write builds
    learner = build_learner(load_config_dict({"model": {"kind": "trainable"},
                                              "drift": {"detector": "adwin", "response": ["record"]}}))
    assert learner.drift.response == ("record",)


# -- F9: daemon-only sections in a file run --------------------------------------------------------
def test_a_daemon_only_section_written_at_its_default_values_is_warned_of(tmp_path, capsys):
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps({"x": {"a": i % 3}, "y": i % 2}) + "\n" for i in range(40)))
    cfg = tmp_path / "cfg.toml"
    # docs/daemon.md's [checkpoint] example: every value its default
    cfg.write_text(f'[source]\nkind = "file"\npath = "{events}"\n'
                   '[checkpoint]\ndir = "checkpoints"\nevery_events = 10000\nevery_seconds = 30.0\n'
                   f'[metrics]\n[run]\nreport = "{tmp_path / "r.json"}"\ndead_letters = ""\n')
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: checkpoint: a file run keeps no state between runs" in err
    assert "warning: metrics: a file run serves no /metrics" in err  # an empty table is written too
    assert [w.split(":")[0] for w in json.loads((tmp_path / "r.json").read_text())["warnings"]] == ["checkpoint", "metrics"]


def test_a_config_made_in_code_is_warned_of_only_where_it_differs_from_the_defaults():
    from connectors.run import run_file

    notes = []
    config = load_config_dict({"checkpoint": {"dir": "ckpt"}, "run": {"max_events": 10, "dead_letters": ""}})
    run_file(config, warn=notes.append)  # no tables as written: the defaults are all it can go by
    assert [n.split(":")[0] for n in notes] == ["checkpoint"]


# -- F10: report --out -----------------------------------------------------------------------------
@pytest.fixture
def report_json(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"events": 100, "accuracy": 0.5,
                                "windowed_accuracy": [{"events": 50, "accuracy": 0.5, "t": 1.0}]}))
    return path


def test_report_out_that_is_a_file_is_a_report_error(tmp_path, capsys, report_json):
    (tmp_path / "plots").write_text("")
    assert main(["report", str(report_json), "--out", str(tmp_path / "plots")]) == 2
    assert capsys.readouterr().err == (f"report error: --out {tmp_path / 'plots'}: is a file, not a folder; "
                                       "choose a folder (it is made if missing) with --out DIR\n")


def test_report_out_that_cannot_be_written_is_a_report_error(tmp_path, capsys, report_json):
    (tmp_path / "plots").write_text("")
    assert main(["report", str(report_json), "--out", str(tmp_path / "plots" / "sub")]) == 2  # under a file
    err = capsys.readouterr().err
    assert err.startswith(f"report error: --out {tmp_path / 'plots' / 'sub'}: cannot write the plots there (")
    assert err.endswith("); choose a writable folder with --out DIR\n")
    (tmp_path / "out" / "accuracy.png").mkdir(parents=True)  # the PNG's own path is taken by a folder
    assert main(["report", str(report_json), "--out", str(tmp_path / "out")]) == 2
    assert "report error: --out" in capsys.readouterr().err
