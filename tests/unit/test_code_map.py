"""The code maps in connectors/__init__.py and stream_cl/__init__.py name every module of their package,
once, and nothing else: a module added or split (kafka.py and daemon.py became twelve modules in one
session, checkpoint.py and heads/_linalg.py seven in the next) is placed in its map, so a newcomer's map
of the edges and of the engine stays true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import connectors
import stream_cl


def _mapped(package) -> list[str]:
    doc = package.__doc__
    section = doc[doc.index("Where things are"):]
    text = re.sub(r"\([^()]*\)", "", section)  # notes in parentheses name commands, classes and files, not modules
    return re.findall(r"``([A-Za-z_][A-Za-z0-9_.]*)``", text)


def _modules(package) -> list[str]:
    """The package's modules as the map names them: dotted below the package, no ``__init__``."""
    root = Path(package.__file__).parent
    return sorted(".".join(p.relative_to(root).with_suffix("").parts) for p in root.rglob("*.py")
                  if p.stem != "__init__")


@pytest.mark.parametrize("package", [connectors, stream_cl], ids=lambda p: p.__name__)
def test_the_code_map_names_each_module_once(package):
    modules, mapped = _modules(package), _mapped(package)
    repeated = sorted({m for m in mapped if mapped.count(m) > 1})
    assert repeated == [], f"named twice in the code map: {repeated}"
    assert sorted(set(mapped) - set(modules)) == [], "the code map names modules that do not exist"
    assert sorted(set(modules) - set(mapped)) == [], f"modules missing from {package.__name__}/__init__.py's code map"
