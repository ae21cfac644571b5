"""Review r84: a file run that appends to an output a killed run left inside a line cut that line with a
warning on the ``stream_cl.files`` logger only: printed without the ``warning:`` of every other file-run
warning, and missing from the report's ``warnings``. The sinks now say it through the run's own warn."""

import json

from stream_cl.config import load_config_dict
from connectors.run import run_file


def test_an_unfinished_output_line_cut_before_appending_is_a_run_warning(tmp_path):
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps({"x": {"a": float(i)}, "y": i % 2}) + "\n" for i in range(10)))
    predictions = tmp_path / "p.jsonl"
    predictions.write_bytes(b'{"id": "0"}\n{"id": "ha')  # a killed run's last, unfinished line
    cfg = load_config_dict({"source": {"kind": "file", "path": str(source)},
                            "run": {"predictions": str(predictions), "dead_letters": "", "append": True,
                                    "progress": False}})
    said: list[str] = []
    report = run_file(cfg, warn=said.append)
    cut = [w for w in said if "ended inside a line" in w]
    assert cut == [f"{predictions} ended inside a line (the run writing it was stopped without finishing it: a kill "
                   "or a crash): its last 10 bytes, that unfinished line, were cut before the lines of this run "
                   "were appended"]
    assert cut[0] in report["warnings"]
    lines = predictions.read_bytes().splitlines()
    assert len(lines) == 11 and all(json.loads(line) for line in lines)
