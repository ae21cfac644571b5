"""Structured logs: JSON lines off a terminal, text on one, lifecycle events with fields."""

import io
import json
import logging
import math

import numpy as np
import pytest

from connectors.logs import log_event, setup_logging, teardown_logging


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    saved_level, saved_kafka = root.level, logging.getLogger("kafka").level
    yield
    teardown_logging()
    root.setLevel(saved_level)
    logging.getLogger("kafka").setLevel(saved_kafka)


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def lines(buf):
    return [json.loads(x) for x in buf.getvalue().splitlines()]


def test_auto_is_json_off_a_terminal_with_the_documented_keys():
    buf = io.StringIO()
    setup_logging("INFO", stream=buf)
    log = logging.getLogger("stream_cl.daemon")
    log_event(log, "start", group="g", topics=["a", "b"], partitions=3)
    log_event(log, "checkpoint", seq=7, seconds=0.125, bytes=np.int64(4096), accuracy=float("nan"),
              path=__import__("pathlib").Path("/var/lib/x"))
    log.info("plain message %d", 5)
    start, ckpt, plain = lines(buf)
    assert list(start)[:4] == ["ts", "level", "logger", "event"]
    assert start["ts"].endswith("Z") and "T" in start["ts"]
    assert (start["level"], start["logger"], start["event"]) == ("INFO", "stream_cl.daemon", "start")
    assert start["topics"] == ["a", "b"] and start["partitions"] == 3 and start["group"] == "g"
    assert ckpt["seq"] == 7 and ckpt["bytes"] == 4096 and ckpt["accuracy"] is None and ckpt["path"] == "/var/lib/x"
    assert plain["event"] == "plain message 5" and set(plain) == {"ts", "level", "logger", "event"}


def test_auto_is_text_on_a_terminal():
    tty = FakeTTY()
    setup_logging("INFO", fmt="auto", stream=tty)
    log_event("stream_cl.daemon", "drift_alarm", detector="adwin", response="forget", t=5321, note="two words")
    line = tty.getvalue().strip()
    assert not line.startswith("{")
    assert "INFO stream_cl.daemon: drift_alarm detector=adwin response=forget t=5321" in line
    assert 'note="two words"' in line


def test_forced_formats_and_levels():
    buf = FakeTTY()
    setup_logging("WARNING", fmt="json", stream=buf)
    log_event("x", "checkpoint", seq=1)  # below WARNING: dropped
    log_event("x", "shutdown_timeout", level=logging.ERROR, timeout_s=30.0)
    (line,) = lines(buf)
    assert line["level"] == "ERROR" and line["event"] == "shutdown_timeout" and line["timeout_s"] == 30.0
    buf = io.StringIO()
    setup_logging(logging.DEBUG, fmt="text", stream=buf)
    logging.getLogger("y").debug("hello")
    assert buf.getvalue().rstrip().endswith("DEBUG y: hello")


def test_exceptions_are_one_json_line_with_the_traceback():
    buf = io.StringIO()
    setup_logging(stream=buf, fmt="json")
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("stream_cl.daemon").exception("daemon failed")
    (line,) = lines(buf)
    assert line["level"] == "ERROR" and line["event"] == "daemon failed"
    assert "ZeroDivisionError" in line["exc"]
    assert len(buf.getvalue().splitlines()) == 1


def test_setup_is_idempotent_and_leaves_other_handlers_alone():
    other = logging.StreamHandler(io.StringIO())
    root = logging.getLogger()
    root.addHandler(other)
    try:
        first, second = io.StringIO(), io.StringIO()
        setup_logging(stream=first, fmt="json")
        setup_logging(stream=second, fmt="json")
        log_event("z", "start")
        assert first.getvalue() == "" and len(lines(second)) == 1
        assert other in root.handlers
    finally:
        root.removeHandler(other)


def test_chatty_client_loggers_are_quieted_unless_debug():
    setup_logging("INFO", stream=io.StringIO())
    assert logging.getLogger("kafka").getEffectiveLevel() == logging.WARNING
    setup_logging("DEBUG", stream=io.StringIO())
    assert logging.getLogger("kafka").getEffectiveLevel() == logging.DEBUG


def test_reserved_field_names_and_bad_arguments_are_refused():
    setup_logging(stream=io.StringIO())
    with pytest.raises(ValueError, match="reserved"):
        log_event("z", "start", ts=1)
    with pytest.raises(ValueError, match="log format"):
        setup_logging(fmt="yaml")
    with pytest.raises(ValueError, match="log level"):
        setup_logging("LOUD")


def test_values_json_cannot_hold_still_make_valid_json():
    buf = io.StringIO()
    setup_logging(stream=buf, fmt="json")
    log_event("z", "ready", inf=math.inf, nested={"a": [1.0, float("-inf")], 2: {3}}, obj=object())
    (line,) = lines(buf)
    assert line["inf"] is None and line["nested"] == {"a": [1.0, None], "2": [3]}
    assert line["obj"].startswith("<object object")


def test_teardown_restores_the_levels_it_changed():
    root, kafka = logging.getLogger(), logging.getLogger("kafka")
    root.setLevel(logging.WARNING)
    kafka.setLevel(logging.NOTSET)
    setup_logging("DEBUG", stream=io.StringIO())
    setup_logging("INFO", stream=io.StringIO())  # a second call starts from the restored levels
    assert root.level == logging.INFO and kafka.level == logging.WARNING
    teardown_logging()
    assert root.level == logging.WARNING and kafka.level == logging.NOTSET
    assert not [h for h in root.handlers if isinstance(h, logging.StreamHandler) and getattr(h, "_stream_cl_handler", None)]
