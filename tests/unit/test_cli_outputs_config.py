"""Outputs a file run must not write (review r142's left-out items).

* ``--report cfg.toml`` with ``--config cfg.toml`` replaced the user's config with the run's report;
  only the source was protected. An output that is the ``--config`` file is now refused (exit 2), as
  one that is the source is.
* ``--predictions -`` (or ``--report -``, ``--dead-letters -``) wrote a file named ``-`` in the working
  directory where a user may expect standard output; it is refused, naming ``/dev/stdout``.
"""

from __future__ import annotations

import json

import pytest

from connectors.cli import main


def _events(path, n: int = 20):
    path.write_text("".join(json.dumps({"x": [i % 3, 1.0], "y": str(i % 2)}) + "\n" for i in range(n)))
    return path


@pytest.mark.parametrize("flag", ["--report", "--predictions", "--dead-letters"])
def test_an_output_that_is_the_config_file_is_refused_and_the_config_kept(tmp_path, capsys, flag):
    src = _events(tmp_path / "e.jsonl")
    cfg = tmp_path / "cfg.toml"
    text = "[run]\nwindow = 5\n"
    cfg.write_text(text)
    assert main(["run", "--config", str(cfg), "--source", str(src), "--quiet", flag, str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"run.{flag[2:].replace('-', '_')}" in err and "is the config file (--config)" in err
    assert cfg.read_text() == text


@pytest.mark.parametrize("flag", ["--report", "--predictions", "--dead-letters"])
def test_a_dash_output_is_refused_naming_dev_stdout(tmp_path, capsys, monkeypatch, flag):
    src = _events(tmp_path / "e.jsonl")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--source", str(src), "--quiet", flag, "-"]) == 2
    assert "/dev/stdout" in capsys.readouterr().err
    assert not (tmp_path / "-").exists()
