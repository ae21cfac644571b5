"""Writing a config as TOML (:func:`to_toml`), for the tools and tests that make config files."""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping


def to_toml(sections: Mapping) -> str:
    """A TOML document from ``{section: {key: value}}`` (str, int, float, bool, lists of those):
    what :func:`load_config` reads, for tools and tests that write configs.

    >>> print(to_toml({"model": {"kind": "analytic", "forgetting": [1.0, 0.99]}, "run": {"threads": 1}}))
    [model]
    kind = "analytic"
    forgetting = [1.0, 0.99]
    <BLANKLINE>
    [run]
    threads = 1
    <BLANKLINE>
    """

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, numbers.Integral):
            return repr(int(v))  # (numpy's scalars' repr is no TOML: np.float64(0.5); review r100)
        if isinstance(v, numbers.Real):
            return repr(float(v))
        if isinstance(v, str):
            # a JSON string is a valid TOML basic string, but not its \ud83d surrogate escapes: TOML is UTF-8
            return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")  # DEL: escaped in TOML too
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {v!r} as TOML")

    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {value(v)}" for k, v in keys.items())
        lines.append("")
    return "\n".join(lines)
