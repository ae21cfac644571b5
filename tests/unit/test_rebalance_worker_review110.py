"""Review r110: the rebalance hooks' work runs on a worker thread, awaited on kafka-python's IO thread, which
stays free to send heartbeats (tests/integration/test_slow_revocation_review110.py shows the member kept
through a revocation longer than its session timeout). Here, with kafka-python's own event loop and no
broker: the value and the exception come back where the listener awaits, and the loop turns meanwhile."""

from __future__ import annotations

import functools
import threading
from types import SimpleNamespace

import pytest
from kafka.net.selector import NetworkSelector

from connectors.kafka_assignment import off_the_io_thread


@pytest.fixture
def loop():
    net = NetworkSelector()
    net.start()
    yield net
    net.close()


def test_the_work_runs_off_the_io_thread_and_its_value_comes_back(loop):
    seen = {}
    release = threading.Event()

    def work(a, b):
        seen["thread"] = threading.current_thread()
        # the IO thread is not held: another task on the loop runs while this work waits for it
        loop.call_soon_threadsafe(lambda: seen.setdefault("loop_turned", threading.current_thread()) and None)
        loop.call_soon_threadsafe(lambda: release.set())
        assert release.wait(30), "the IO thread ran nothing while the work ran"
        return a + b

    assert loop.run(off_the_io_thread, SimpleNamespace(_net=loop), work, 2, 3) == 5
    assert seen["thread"] is not loop._io_thread and seen["thread"] is not threading.main_thread()
    assert seen["loop_turned"] is loop._io_thread


def test_the_works_exception_is_raised_where_the_listener_awaits(loop):
    def work():
        raise OSError("disk full at the revocation's checkpoint")

    with pytest.raises(OSError, match="disk full"):
        loop.run(off_the_io_thread, SimpleNamespace(_net=loop), work)


def test_without_kafka_pythons_loop_the_work_runs_inline():
    import asyncio

    here = []
    value = asyncio.run(off_the_io_thread(None, lambda: here.append(threading.current_thread()) or "done"))
    assert value == "done" and here == [threading.current_thread()]


# -- review r112 ----------------------------------------------------------------------------------------------------
def test_the_work_beats_the_owners_liveness_while_it_lasts(loop, monkeypatch):
    """L3: /healthz read a 10 s takeover as a stalled loop (nothing beat while the worker ran)."""
    import connectors.kafka_assignment as ka

    monkeypatch.setattr(ka, "WORK_BEAT_S", 0.01)
    beats, beaten = [], threading.Event()

    def beat():
        beats.append(threading.current_thread())
        if len(beats) >= 3:
            beaten.set()

    def work():  # lasts until the IO thread has beaten three times
        assert beaten.wait(30), "nothing beat while the work ran"
        return "done"

    beating = functools.partial(off_the_io_thread, beat=beat, beat_for_s=300.0)
    assert loop.run(beating, SimpleNamespace(_net=loop), work) == "done"
    assert len(beats) >= 3 and set(beats) == {loop._io_thread}


def test_without_a_thread_to_spare_the_work_runs_as_it_did_before(loop, monkeypatch, caplog):
    """L2: a process at its thread limit: the work runs on the IO thread (no heartbeats), not refused."""
    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    here = []
    value = loop.run(off_the_io_thread, SimpleNamespace(_net=loop), lambda: here.append(threading.current_thread()) or 7)
    assert value == 7 and here == [loop._io_thread]
    assert "no worker thread could be started (can't start new thread)" in caplog.text


def test_kafka_pythons_listener_warning_loses_its_advice_in_the_daemons_log():
    """L1: kafka-python warns of a listener over 1 s that it blocks the heartbeats and should use a worker
    thread, which is what the daemon's listener does. Its own code, run here with a clock that says 9.6 s."""
    import asyncio
    import io
    import logging

    from kafka.coordinator.consumer import ConsumerCoordinator

    from connectors.logs import setup_logging, teardown_logging

    stream = io.StringIO()
    setup_logging("INFO", "text", stream)
    try:
        class Listener:
            async def on_partitions_revoked(self, revoked):
                pass

        coordinator = SimpleNamespace(_subscription=SimpleNamespace(rebalance_listener=Listener()), group_id="g",
                                      _REBALANCE_LISTENER_WARN_SECS=1.0)
        clock = iter([100.0, 109.6])
        real = ConsumerCoordinator._invoke_rebalance_listener_async.__globals__["time"]
        fake = SimpleNamespace(monotonic=lambda: next(clock))
        ConsumerCoordinator._invoke_rebalance_listener_async.__globals__["time"] = fake
        try:
            asyncio.run(ConsumerCoordinator._invoke_rebalance_listener_async(coordinator, "on_partitions_revoked",
                                                                            set()))
        finally:
            ConsumerCoordinator._invoke_rebalance_listener_async.__globals__["time"] = real
        logging.getLogger().handlers[-1].flush()
    finally:
        teardown_logging()
    text = stream.getvalue()
    assert "Rebalance listener Listener.on_partitions_revoked for group g took 9.600s" in text, text
    assert "heartbeats went on" in text and "Sync listeners block" not in text, text
