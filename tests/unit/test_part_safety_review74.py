"""Review r74: a changelog part is bytes another member wrote, under a SHA-256 anyone can compute. One whose
fields were not a learner's stopped the daemon with a KeyError or TypeError at every start (a refused part
is taken as missing), or changed the learner before it was refused; one with finite but huge statistics was
merged and made every prediction NaN. A checkpoint's void-dtype scalar allocated 2 GB from 200 bytes; a
secret in a nested log field or a traceback was written unmasked."""

from __future__ import annotations

import copy
import json
import logging

import numpy as np
import pytest

from connectors.logs import JsonFormatter, Redact
from stream_cl import AnalyticClassifier
from stream_cl.checkpoint_format import CheckpointError, decode_state, encode_state
from stream_cl.contribution import Contribution, ContributionError


def _learned(partition: int) -> AnalyticClassifier:
    rng = np.random.default_rng(partition)
    model = AnalyticClassifier()
    for _ in range(60):
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        model.learn_one(x, "p" if x["a"] + x["b"] > 0 else "n", partition=partition)
    return model


def _spoilt(change) -> bytes:
    c = copy.deepcopy(_learned(1).contribution(1))
    change(c)
    return c.to_bytes()  # its digest holds


def _set_head(key, value):
    return lambda c: c.heads[0].__setitem__(key, value(c.heads[0][key]) if callable(value) else value)


CASES = {
    "counts missing": lambda c: c.heads[0].pop("counts"),
    "n_rows a string": _set_head("n_rows", "x"),
    "anchor a string": _set_head("anchor", "ab"),
    "classes unhashable": lambda c: (c.heads[0].__setitem__("classes", [["p"], ["n"]]),
                                     c.inputs.__setitem__("names", list(c.inputs["names"]) + ["injected"]),
                                     c.inputs.__setitem__("kinds", np.append(c.inputs["kinds"], np.int8(0)))),
    "names missing": lambda c: c.inputs.pop("names"),
    "B past 1e300": _set_head("B", lambda B: np.full_like(B, 1.7e308)),
    "A past 1e300": _set_head("A_upper", lambda A: np.full_like(A, 1e301)),
    "negative counts": _set_head("counts", lambda n: -np.abs(n) - 1),
    "negative n_rows": _set_head("n_rows", -5),
    "events not a count": lambda c: setattr(c, "events", -1),
    # the anchor's range (review r102: a mutant that dropped its check survived every test)
    "anchor decay 0": _set_head("anchor", [0.0, 3]),
    "anchor decay past 1": _set_head("anchor", [1.5, 3]),
    "anchor rows negative": _set_head("anchor", [0.5, -1]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_part_is_refused_and_changes_nothing(case):
    model = _learned(0)
    before = (list(model.index_.names), model.predict_proba_one({"a": 1.0, "b": 0.5}))
    raw = _spoilt(CASES[case])
    with pytest.raises(ContributionError):
        model.merge(1, raw)
    assert (list(model.index_.names), model.predict_proba_one({"a": 1.0, "b": 0.5})) == before


def test_a_part_with_pending_not_a_mapping_is_refused_when_read():
    with pytest.raises(ContributionError, match="malformed field pending"):
        Contribution.from_bytes(_spoilt(lambda c: setattr(c, "pending", [1])))


def test_a_checkpoint_scalar_of_a_void_dtype_is_refused_before_any_allocation():
    raw = encode_state({"a": np.float64(1.5)}, digest=False)
    # the same length (the header's size is written before it): dtype void, a value of 900
    spoilt = raw.replace(b'\\"<f8\\",\\"value\\":1.5', b'\\"|V1\\",\\"value\\":900')
    assert spoilt != raw
    with pytest.raises(CheckpointError, match="dtype"):
        decode_state(spoilt, "ckpt")


def test_a_secret_in_a_nested_field_or_a_traceback_is_masked():
    secret = "s3cr3t-pass"
    redact = Redact([secret])
    try:
        raise RuntimeError(f"login failed for {secret}")
    except RuntimeError:
        record = logging.LogRecord("stream_cl.daemon", logging.ERROR, __file__, 1, "failed", None, __import__("sys").exc_info())
    record.stream_cl_fields = {"servers": [secret], "opts": {"password": secret, "n": 3}}
    assert redact.filter(record)
    line = JsonFormatter().format(record)
    assert secret not in line and "login failed for <redacted>" in line
    assert json.loads(line)["opts"] == {"password": "<redacted>", "n": 3}
