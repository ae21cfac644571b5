"""Review r110: the rebalance hooks' work runs on a worker thread, awaited on kafka-python's IO thread, which
stays free to send heartbeats (tests/integration/test_slow_revocation_review110.py shows the member kept
through a revocation longer than its session timeout). Here, with kafka-python's own event loop and no
broker: the value and the exception come back where the listener awaits, and the loop turns meanwhile."""

from __future__ import annotations

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
