"""A module split into modules with one job each keeps what it exported: every name its ``__all__``
listed before the split is still importable from it, in its ``__all__``, and is the same object as in
the module that holds it now (review r128: ``from stream_cl.checkpoint import sufficient_statistics``,
which docs/daemon.md taught, had become an ImportError). The engine is a library; the connectors are
the daemon's wiring, whose modules are not an API."""

from __future__ import annotations

import importlib

import pytest

# module split -> {its home now: the names it exported before the split}
MOVED = {
    "stream_cl.checkpoint": {  # split in 92cb89c
        "stream_cl.checkpoint_format": ["FORMAT", "FORMAT_VERSION", "READ_VERSIONS"],
        "stream_cl.model_state": ["load_all_or_nothing", "sufficient_statistics"],
    },
    "stream_cl.decode": {  # split in 22cf09c
        "stream_cl.field_values": ["MAX_TEXT_CHARS", "ascii_float", "blank_text", "id_value", "label_value",
                                   "long_name", "text_problem"],
        "stream_cl.json_checks": ["LONE_SURROGATE", "UNNAMED_KEY", "lone_surrogate", "repeated_key"],
    },
    "stream_cl.features": {  # split in eff4bbd; KEYED_CATEGORIES was not in its __all__, but imported from it
        "stream_cl.feature_batch": ["KEYED_CATEGORIES"],
    },
    "stream_cl.drift": {  # split in 2328705
        "stream_cl.detectors": ["DETECTORS", "PARAM_RULES", "WATCH_CORRECT", "check_detector_params",
                                "detector_state", "load_detector_state", "make_detector"],
    },
}


@pytest.mark.parametrize("split", sorted(MOVED))
def test_a_split_module_still_exports_what_it_did(split):
    module = importlib.import_module(split)
    for home_name, names in MOVED[split].items():
        home = importlib.import_module(home_name)
        for name in names:
            assert name in home.__all__, f"{home_name} does not export {name}"
            assert name in module.__all__, f"{split}.__all__ lost {name}"
            assert getattr(module, name) is getattr(home, name), f"{split}.{name} is not {home_name}.{name}"


def test_the_documented_import_of_the_sufficient_statistics_works():
    from stream_cl.checkpoint import sufficient_statistics

    assert sufficient_statistics({}) == []
