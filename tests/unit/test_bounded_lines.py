"""BoundedLines, the file source's line reader on its own: numbering, oversized lines discarded a
bounded amount per call, a held last line, and what a restart gives back."""

import io

from connectors.bounded_lines import SKIP_CHUNK, SKIPPING, BoundedLines


class _File:
    def __init__(self, data: bytes):
        self.file = io.BytesIO(data)
        self.taken = 0

    def took(self, chunk: bytes) -> None:
        self.taken += len(chunk)


def test_lines_are_numbered_and_an_oversized_one_keeps_its_head_and_size():
    f = _File(b"a\r\n" + b"y" * 9 + b"\r\nb\n")
    lines = BoundedLines(f, max_bytes=4)
    assert lines.read(False, 1 << 20) == (1, b"a\r\n", None)
    assert lines.read(False, 1 << 20) == (2, b"yyyy", 9)  # its own bytes: the \r\n not counted
    assert lines.read(False, 1 << 20) == (3, b"b\n", None)
    assert lines.read(False, 1 << 20) is None
    assert f.taken == len(f.file.getvalue())  # every byte read was reported


def test_discarding_stops_at_the_limit_and_goes_on_at_the_next_call():
    size = 3 * SKIP_CHUNK + 10
    lines = BoundedLines(_File(b"z" * size + b"\nnext\n"), max_bytes=8)
    got = [lines.read(False, SKIP_CHUNK) for _ in range(6)]
    assert SKIPPING in got  # a call never discards much more than its limit
    assert (1, b"z" * 8, size) in got
    assert [g for g in got if g not in (SKIPPING, None)][-1] == (2, b"next\n", None)


def test_a_last_line_waits_for_its_newline_unless_the_file_is_final():
    lines = BoundedLines(_File(b"part"), max_bytes=16)
    assert lines.read(False, 1 << 20) is None  # tail mode: held
    assert lines.lineno == 0
    assert lines.read(True, 1 << 20) == (1, b"part", None)


def test_restart_gives_back_what_is_no_line_yet_and_numbers_from_one():
    lines = BoundedLines(_File(b"one\ntw"), max_bytes=16)
    assert lines.read(False, 1 << 20) == (1, b"one\n", None)
    assert lines.read(False, 1 << 20) is None
    assert lines.restart() == (None, (2, b"tw"))
    assert lines.lineno == 0
    assert lines.restart() == (None, None)

    skipping = BoundedLines(_File(b"x" * (3 * SKIP_CHUNK)), max_bytes=4)
    assert skipping.read(False, SKIP_CHUNK) is SKIPPING
    skipped, unfinished = skipping.restart()
    assert skipped[:2] == (1, b"xxxx") and skipped[2] > SKIP_CHUNK and unfinished is None
