"""The README's Python examples run as written, and print what the README says they print.

A ``python`` block is run as a script (nothing defined elsewhere). Comment lines at the
end of a block, after its last ``print``, are the expected output: each ``# text``
line is one printed line (``text`` up to three spaces; what follows is commentary).
"""

from __future__ import annotations

import contextlib
import json
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS_WITH_EXAMPLES = [README, ROOT / "docs" / "partitions.md"]


def python_blocks(path: Path = README) -> list[tuple[int, str]]:
    text = path.read_text()
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


def expected_output(code: str) -> list[str]:
    lines = code.rstrip().splitlines()
    tail: list[str] = []
    while lines and lines[-1].startswith("# "):
        tail.insert(0, lines.pop()[2:].split("   ")[0].rstrip())
    return tail if any("print(" in line for line in lines) else []


BLOCKS = python_blocks()
EXAMPLES = [(f"{path.relative_to(ROOT)}:{line}", code) for path in DOCS_WITH_EXAMPLES for line, code in python_blocks(path)]


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("where, code", EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_readme_example_runs_and_prints_what_it_says(where, code):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, where, "exec"), {"__name__": "__readme__"})
    expected = expected_output(code)
    assert expected, f"{where}: a Python example should print something and show it as '# ...' lines"
    assert out.getvalue().splitlines()[-len(expected):] == expected


def _png_text(path: Path) -> dict:
    """The tEXt chunks of a PNG (keyword -> text)."""
    import struct

    data, pos, out = path.read_bytes(), 8, {}
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"tEXt":
            key, _, text = data[pos + 8 : pos + 8 + length].partition(b"\0")
            out[key.decode("latin-1")] = text.decode("latin-1")
        pos += 12 + length
    return out


def test_the_readme_demo_output_and_picture_are_what_the_demo_gives(tmp_path, capsys):
    from connectors.cli import main

    assert main(["run", "--report", str(tmp_path / "run.json"), "--dead-letters", ""]) == 0
    got = capsys.readouterr().out.splitlines()
    text = README.read_text()
    shown = re.search(r"```\n(events: 12,000.*?)```", text, re.S).group(1).splitlines()
    # every line but the machine-dependent throughput
    assert [g for g in got if not g.startswith("throughput")] == [s for s in shown if not s.startswith("throughput")]
    accuracy = json.loads((tmp_path / "run.json").read_text())["accuracy"]
    picture = _png_text(README.parent / "docs" / "img" / "accuracy.png")
    assert picture.get("Description") == f"events 12000; overall accuracy {accuracy:.4f}"


def test_the_readme_says_what_a_new_user_must_know_first():
    text = " ".join(README.read_text().split())
    assert "about 6 GB" in text and "runs on the CPU" in text  # the install's size, and no GPU needed
    assert "auto.create.topics.enable" in text and "kafka-topics.sh" in text  # topics: dev broker vs production
