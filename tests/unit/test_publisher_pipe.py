"""The publisher's pipe writer: the loop queues, a thread of its own sends, in order."""

from multiprocessing.connection import Pipe

from connectors.publisher import QUEUED_MESSAGES, PipeWriter

BIG = b"x" * (1 << 20)  # far more than a socket's buffer: a send waits until the other side reads


def test_messages_wait_in_the_queue_not_in_the_loop_while_nobody_reads_and_arrive_in_order():
    ours, theirs = Pipe(duplex=True)
    writer = PipeWriter(ours)
    for i in range(QUEUED_MESSAGES + 1):  # one in the thread's blocked send, the rest queued: no put waits
        writer.put((i, BIG))
    got = [theirs.recv()[0] for _ in range(QUEUED_MESSAGES + 1)]
    writer.put((99, b""))
    writer.stop()  # sends what is queued, then ends
    assert got == list(range(QUEUED_MESSAGES + 1)) and theirs.recv() == (99, b"") and writer.error is None


def test_a_send_that_fails_is_kept_and_nothing_is_sent_or_waited_for_after_it():
    ours, theirs = Pipe(duplex=True)
    writer = PipeWriter(ours)
    theirs.close()  # the child is gone
    for i in range(3 * QUEUED_MESSAGES):  # none of these blocks: the thread keeps emptying the queue
        writer.put((i, BIG))
    writer.stop()
    assert isinstance(writer.error, OSError)
    writer.put(("after", b""))  # a stopped writer takes nothing, and never blocks
    assert isinstance(writer.error, OSError)


def test_a_stopped_writer_reports_it_instead_of_filling_a_queue_nobody_empties():
    ours, theirs = Pipe(duplex=True)
    writer = PipeWriter(ours)
    writer.stop()
    for i in range(QUEUED_MESSAGES + 2):
        writer.put((i, b""))
    assert isinstance(writer.error, BrokenPipeError) and not theirs.poll(0)
