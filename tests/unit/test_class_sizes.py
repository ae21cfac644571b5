"""The style guide's bound on a class: about 250 lines, so that a newcomer can hold it in mind
(DEVELOPERS.md). ``CsvRecords`` grew to 271 lines with its header warnings before anything said so;
this says so at once."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_CLASS_LINES = 250


def _classes():
    for package in ("stream_cl", "connectors"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    yield f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1


def test_the_classes_are_found():
    names = [name for name, _ in _classes()]
    assert len(names) > 100 and any(name.endswith(" OnlineContinualLearner") for name in names)


def test_every_class_is_at_most_250_lines():
    over = [f"{name}: {lines} lines" for name, lines in _classes() if lines > MAX_CLASS_LINES]
    assert not over, f"split these (one job a class): {over}"
