"""connectors/__init__.py's code map names every module of the package, once, and nothing else: a
module added or split (kafka.py and daemon.py became twelve modules in one session) is placed in it, so
a newcomer's map of the edges stays true."""

from __future__ import annotations

import re
from pathlib import Path

import connectors

PACKAGE = Path(connectors.__file__).parent


def _mapped() -> list[str]:
    doc = connectors.__doc__
    section = doc[doc.index("Where things are"):]
    text = re.sub(r"\([^()]*\)", "", section)  # notes in parentheses name commands, classes and files, not modules
    return re.findall(r"``([a-z_]+)``", text)


def test_the_code_map_names_each_module_once():
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    mapped = _mapped()
    repeated = sorted({m for m in mapped if mapped.count(m) > 1})
    assert repeated == [], f"named twice in the code map: {repeated}"
    assert sorted(set(mapped) - set(modules)) == [], "the code map names modules that do not exist"
    assert sorted(set(modules) - set(mapped)) == [], "modules missing from connectors/__init__.py's code map"
