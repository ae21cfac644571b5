"""Review r81 (42 SIGKILL trials of the Kafka daemon: every id exactly once, every final model the
reference's): a daemon killed while its publisher child committed left the child to fail its reply,
read that as a failed commit, abort and fail a second reply: two chained BrokenPipeError tracebacks in
the supervisor's log and an exit 1 without closing the producer. The child now ends as at the pipe's
end: the commit stands, the writer is closed, exit 0."""

from __future__ import annotations

import connectors.logs as logs_module
import connectors.publisher as publisher


class _Pipe:
    """The daemon's end as the child sees it: ``messages`` to receive; replies fail once it is ``gone``."""

    def __init__(self, messages, gone_after_replies: int):
        self.messages, self.replies, self.gone_after = list(messages), [], gone_after_replies

    def recv(self):
        if not self.messages:
            raise EOFError
        return self.messages.pop(0)

    def send(self, message):
        if len(self.replies) >= self.gone_after:
            raise BrokenPipeError(32, "Broken pipe")
        self.replies.append(message)


class _Writer:
    sent = 0

    def __init__(self):
        self.calls = []

    def write_rows(self, rows):
        self.calls.append("write")

    def commit(self, *args):
        self.calls.append("commit")
        return 3

    def abort(self):
        self.calls.append("abort")

    def close(self, timeout=None):
        self.calls.append("close")


def _serve(monkeypatch, messages, gone_after_replies):
    writer = _Writer()
    monkeypatch.setattr(publisher.signal, "signal", lambda *a: None)  # (the test process keeps its handlers)
    monkeypatch.setattr(publisher, "KafkaProducer", lambda **options: object())
    monkeypatch.setattr(publisher, "TransactionalWriter", lambda producer, predictions, dead: writer)
    for name in ("setup_logging", "hide_secret"):
        monkeypatch.setattr(logs_module, name, lambda *a, **k: None)
    monkeypatch.setattr(logs_module, "startup_done", lambda: None)
    pipe = _Pipe([("start", {}, "predictions", "dead", "json", 30), *messages], gone_after_replies)
    return publisher._serve(pipe), writer, pipe


def test_a_commit_whose_daemon_died_meanwhile_ends_the_child_quietly(monkeypatch):
    code, writer, pipe = _serve(monkeypatch, [("write", [b"row"]), ("commit", {}, {}, "meta", 0.0)],
                                gone_after_replies=1)  # the start's "ok" reaches it; the commit's reply not
    assert code == 0  # (was: BrokenPipeError raised out of _serve, exit 1)
    assert writer.calls == ["write", "commit", "close"]  # the commit stands: nothing aborted


def test_a_live_daemon_still_gets_each_commit_reply(monkeypatch):
    code, writer, pipe = _serve(monkeypatch, [("commit", {}, {}, "meta", 0.0), ("close",)], gone_after_replies=10)
    assert code == 0 and [r[0] for r in pipe.replies] == ["ok", "ok", "ok"]
    assert pipe.replies[1][1][0] == 3 and writer.calls == ["commit", "close"]
