"""Review r56's observation: a dead letter carried only the ``stream-cl.*`` headers, not the input record's own
(trace ids, schema ids) that a team follows a record by. They now come first, within a quarter of the record."""

from __future__ import annotations

from connectors.sinks import dead_letter_record
from stream_cl.events import DeadLetter

LETTER = DeadLetter(b"v" * 30_000, "malformed", "invalid JSON", "events/0@5")


def _size(key, value, headers) -> int:
    return len(key or b"") + len(value or b"") + sum(len(k.encode()) + len(v) + 10 for k, v in headers)


def test_the_records_own_headers_come_first_and_ours_explain_it():
    own = [("traceparent", b"00-abc-01"), ("stream-cl.offset", b"99"), ("schema-id", b"3")]
    key, value, headers = dead_letter_record(LETTER, b"k", headers=own)
    assert headers[:2] == [own[0], own[2]] and dict(headers)["stream-cl.offset"] == b"5"
    assert value == LETTER.raw and "stream-cl.headers-dropped" not in dict(headers)


def test_headers_past_a_quarter_of_the_record_are_counted_not_sent_and_the_record_still_fits():
    own = [(f"h{i}", b"x" * 1000) for i in range(20)]  # 20 kB of headers for a 20 kB record
    key, value, headers = dead_letter_record(LETTER, b"k" * 100, max_message_bytes=20_000, headers=own)
    kept = [h for h in headers if not h[0].startswith("stream-cl.")]
    assert kept == own[: len(kept)] and 0 < len(kept) < 20
    assert dict(headers)["stream-cl.headers-dropped"] == str(20 - len(kept)).encode()
    assert dict(headers)["stream-cl.truncated-from"] == b"30000"  # the value gives way to the headers kept
    assert _size(key, value, headers) <= 20_000


def test_a_null_header_value_is_sent_empty():
    headers = dead_letter_record(LETTER, headers=[("nothing", None)])[2]
    assert headers[0] == ("nothing", b"")
