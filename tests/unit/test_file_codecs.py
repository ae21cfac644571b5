"""Review r55 F3: a file compressed with another codec than gzip (``.bz2``, ``.xz``, ``.zip``, ...) was sniffed
as a CSV whose header is not UTF-8 ("save the file as UTF-8", sometimes "CR-only line endings"), a fix that
does not apply; it is now a config error naming the codec and the fix. A JSON-lines file with CR-only line
endings read as one malformed (or oversized) line with no word of why; the dead letter now says what the
CSV path says of such a file."""

from __future__ import annotations

import bz2
import json
import lzma
import zipfile

import pytest

from connectors.files import open_source
from stream_cl.config import ConfigError, MappingConfig, SourceConfig

LINES = "".join(json.dumps({"x": {"a": i}, "y": i % 2}) + "\n" for i in range(20)).encode()


def _zip(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("events.jsonl", LINES)


@pytest.mark.parametrize("name, write, codec", [
    ("events.jsonl.bz2", lambda p: p.write_bytes(bz2.compress(LINES)), "bzip2"),
    ("events.jsonl.xz", lambda p: p.write_bytes(lzma.compress(LINES)), "xz"),
    ("events.jsonl.zip", _zip, "zip"),
    ("events.jsonl.zst", lambda p: p.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 20), "zstd"),
    ("events.lz4", lambda p: p.write_bytes(b"\x04\x22\x4d\x18" + b"\0" * 20), "lz4"),
])
def test_a_file_compressed_with_another_codec_than_gzip_is_a_config_error_naming_it(tmp_path, name, write, codec):
    path = tmp_path / name
    write(path)
    with pytest.raises(ConfigError, match=f"^source.path: .* is {codec}-compressed, and only gzip is read; decompress it"):
        open_source(SourceConfig(kind="file", path=str(path)), MappingConfig())


@pytest.mark.parametrize("max_event_bytes", [1_048_576, 1_000])  # malformed, then oversized
def test_a_json_lines_file_with_cr_only_line_endings_is_said_as_such(tmp_path, max_event_bytes):
    path = tmp_path / "cr.jsonl"
    path.write_bytes(LINES.replace(b"\n", b"\r"))
    source = open_source(SourceConfig(kind="file", path=str(path)), MappingConfig(max_event_bytes=max_event_bytes))
    [dead] = source.poll(100)
    assert dead.reason == ("malformed" if max_event_bytes > len(LINES) else "oversized")
    assert dead.detail.endswith("if the file has CR-only line endings (classic Mac): it reads as one line; "
                                "convert them to LF or CRLF")


@pytest.mark.parametrize("name", ["events.xlsx", "events.xls"])
def test_a_spreadsheet_is_told_to_be_exported_as_csv_not_unzipped(tmp_path, name):
    """Review r57: an .xlsx (a zip of XML parts) was told to run `unzip`, which gives no events; r60: an old
    .xls (an OLE2 file) was told to save itself as UTF-8."""
    path = tmp_path / name
    if name.endswith(".xlsx"):
        _zip(path)
    else:
        path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 500)
    with pytest.raises(ConfigError, match="is a spreadsheet or document, not events; export it as CSV"):
        open_source(SourceConfig(kind="file", path=str(path)), MappingConfig())
