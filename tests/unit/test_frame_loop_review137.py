"""Review r137 (low, README): the README's idiom for looping over a frame's rows one event at a time.

The README said that, since a frame's ``NaN`` cell is missing to ``learn_many`` while a dict's ``NaN``
is refused, a loop over ``river.stream.iter_frame`` should drop those values first, with
``{k: v for k, v in x.items() if v == v}``. Two ways that loop did not learn what ``learn_many`` learns:

* with ``missing_indicators=True`` a dropped key is an *absent* key, which sets no ``k=<missing>``
  input, while the frame's missing cell is a null, which does: the two models had different inputs
  and different probabilities, silently;
* an ``Int64`` (or ``boolean``) column's missing cell is ``pd.NA``, whose ``v == v`` has no truth value:
  the idiom raised ``TypeError`` on the first such row.

The README now gives an idiom that makes them ``None``; these tests run whatever idiom it gives.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from river import stream

from stream_cl import AnalyticClassifier, OnlineContinualLearner
from stream_cl.backbones import RandomFeatures
from stream_cl.trainable import TrainableLearner

README = Path(__file__).resolve().parents[2] / "README.md"
iter_frame = getattr(stream, "iter_frame", None) or stream.iter_pandas  # iter_pandas before River 0.26


def readme_row_idiom():
    """The README's expression for one row ``x`` of ``iter_frame``, as a function."""
    text = README.read_text()
    m = re.search(r"iter_frame`.*?first:\s*`(\{k:[^`]*\})`", text, re.S)
    assert m, "README: the idiom for a loop over a frame's rows is not where it was"
    return eval(f"lambda x: {m.group(1)}", {"pd": pd, "np": np})


def frame(n: int = 30) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "s": ["u", None, "v"] * (n // 3)})
    X.loc[::4, "a"] = np.nan
    return X, pd.Series(rng.choice(["p", "n"], size=n))


LEARNERS = {
    "online": lambda: OnlineContinualLearner(backbone=RandomFeatures(width=16), device="cpu", missing_indicators=True),
    "analytic": lambda: AnalyticClassifier(missing_indicators=True),
    "trainable": lambda: TrainableLearner(hidden=(8,), micro_batch=4, device="cpu", missing_indicators=True),
}


@pytest.mark.parametrize("kind", list(LEARNERS))
def test_readme_row_loop_learns_what_learn_many_learns_with_missing_indicators(kind):
    X, y = frame()
    row = readme_row_idiom()
    batched, looped = LEARNERS[kind](), LEARNERS[kind]()
    batched.learn_many(X, y)
    for x, label in iter_frame(X, y):
        looped.learn_one(row(x), label)
    assert looped.feature_names_in_ == batched.feature_names_in_  # 'a=<missing>', 's=<missing>' in both
    P = batched.predict_proba_many(X)
    for (x, _), expected in zip(iter_frame(X), P.to_dict("records")):
        got = looped.predict_proba_one(row(x))
        assert got == pytest.approx(expected, abs=1e-9)


def test_readme_row_idiom_reads_a_nullable_integer_column():
    X, y = frame()
    X["i"] = pd.array([1, None, 3] * (len(X) // 3), dtype="Int64")  # missing cells are pd.NA
    row = readme_row_idiom()
    batched, looped = AnalyticClassifier(), AnalyticClassifier()
    batched.learn_many(X, y)
    for x, label in iter_frame(X, y):
        looped.learn_one(row(x), label)  # raised TypeError: boolean value of NA is ambiguous
    assert np.allclose(looped.coef_, batched.coef_, atol=1e-12)
