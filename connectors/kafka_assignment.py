"""A consumer-group source's side of a rebalance: where each partition it is given resumes.

:class:`RebalanceCallbacks` is the part of :class:`~connectors.kafka.KafkaSource` that
kafka-python calls on its IO thread while ``poll()`` blocks (:class:`AssignmentListener`):
revoked or lost partitions are given up through the owner's :class:`RebalanceHooks` (on a worker
thread, so that heartbeats go on meanwhile: :func:`off_the_io_thread`); assigned
ones resume where the owner's state ends (:func:`resume_offset`: never below the partition's
first remaining record), and what the group committed after that is re-learned silently.
The committed offsets are read waiting out a departed member's open transaction.

The source provides ``consumer``, ``cfg``, ``hooks``, ``assigned``, ``positions``,
``replay_until``, ``committed`` and ``rebalances``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from kafka import TopicPartition
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.future import Future

from stream_cl.config import JOIN_POLL_MS, TAKEOVER_SHARE_OF_POLL, TXN_ABORT_MARGIN_MS
from stream_cl.config.kafka_checks import bootstrap_entries

from .logs import log_event

__all__ = ["LOOKUP_TIMEOUT_MS", "AssignmentListener", "CommittedOffsetsUnreadable", "RebalanceCallbacks",
           "RebalanceHooks", "ms_left", "offsets_topic_hash", "offsets_topic_partition", "off_the_io_thread",
           "resume_offset", "tp_key"]

log = logging.getLogger("stream_cl.kafka")

LOOKUP_TIMEOUT_MS = 10_000  # position / end-offset lookups (main thread, blocking), log starts on assign (awaited)
WORK_BEAT_S = 1.0  # how often a rebalance's work beats the daemon's liveness while it lasts (off_the_io_thread)


def ms_left(deadline: float) -> int:
    """The milliseconds to ``time.monotonic()``'s ``deadline``, at least 1: a lookup's ``timeout_ms`` within it."""
    return max(1, int((deadline - time.monotonic()) * 1000))

_EARLIEST = -2  # ListOffsets' timestamp for a partition's first offset (kafka-python's OffsetSpec.EARLIEST)
# The longest try of a wait for committed offsets: /healthz is beaten between tries, and the config takes no
# metrics.stall_timeout_s below the longest idle turn (at least JOIN_POLL_MS) + 2 s, so a wait in tries this
# long is never read as a stall. Tries of a session timeout (45 s by default) were, with a shorter
# stall_timeout_s, and a liveness probe restarted a healthy member (review r80).
WAIT_TRY_MS = JOIN_POLL_MS


def offsets_topic_hash(group_id: str) -> int:
    """The absolute value of ``group_id``'s Java ``hashCode`` (0 for the smallest int), as Kafka's group
    coordinator takes it (``Utils.abs``): modulo ``offsets.topic.num.partitions`` it is the partition of
    ``__consumer_offsets`` that holds the group's offsets.

    >>> offsets_topic_hash("hello")  # "hello".hashCode() = 99162322
    99162322
    """
    code = 0
    data = group_id.encode("utf-16-be")  # Java strings hash their UTF-16 code units
    for i in range(0, len(data), 2):
        code = (31 * code + int.from_bytes(data[i:i + 2], "big")) & 0xFFFF_FFFF
    signed = code - (1 << 32) if code >= 1 << 31 else code
    return 0 if signed == -(1 << 31) else abs(signed)


def offsets_topic_partition(group_id: str, partitions: int = 50) -> int:
    """The partition of ``__consumer_offsets`` that holds ``group_id``'s offsets, where the broker's
    ``offsets.topic.num.partitions`` is ``partitions`` (50 by default): :func:`offsets_topic_hash`
    modulo that number, as Kafka's group coordinator reckons it.

    >>> offsets_topic_partition("hello", 1), offsets_topic_partition("hello")
    (0, 22)
    """
    return offsets_topic_hash(group_id) % partitions


class CommittedOffsetsUnreadable(Exception):
    """The group coordinator gave no committed offsets for partitions this member was assigned, for
    as long as a departed member's open transaction can hold them: the daemon fails (exit 1) with
    this text, which names the remedy, as its ``failed`` line (review r118 F9: it was a traceback)."""

    said_by_the_daemon = True  # kafka-python's own traceback of it is dropped (connectors.logs.ListenerTiming)


def tp_key(tp: TopicPartition) -> str:
    """``"topic/partition"``: how partitions are named in metrics and status files."""
    return f"{tp.topic}/{tp.partition}"


class RebalanceHooks(Protocol):
    """What the owner of a :class:`KafkaSource` does around rebalances: ``on_revoke`` and ``on_assign`` run on
    a worker thread while ``poll()`` blocks (:func:`off_the_io_thread`), ``on_wait`` on the IO thread."""

    def on_revoke(self, partitions: set[TopicPartition], lost: bool) -> None:
        """Commit what was processed (revoked), or give up what was not committed (``lost``)."""

    def on_assign(self, partitions: set[TopicPartition]) -> Mapping[TopicPartition, int] | None:
        """The next offset the owner's state covers for each partition it has state of; ``None``: the
        owner could not take them (it stops), so nothing is looked up, sought or said of them."""

    def on_wait(self) -> None:
        """A rebalance waits for what will come (committed offsets a departed member's open transaction
        holds, up to minutes): the owner is not stalled, though its loop is blocked in poll()."""


def resume_offset(tp: TopicPartition, state: int | None, done: int | None, start: int) -> int:
    """Where a partition with state resumes: its state's offset, or the log start where that is later.

    Records below the log start were deleted (retention, delete-records) while the state was
    older: a restart from an older checkpoint, say after moving a corrupt newest one away. They
    cannot be read, and seeking to them would hand the partition to ``auto_offset_reset`` (with
    ``"latest"``: to the end, skipping records the group never handled). The first remaining
    record is where they start again, and is never past the committed offset ``done`` while
    ``done`` is in range. What was deleted is logged: records the group handled before but the
    model will not learn, and those past ``done`` (or past the state, with no committed offset)
    that were never handled at all.

    ``state`` None: the member has no state of the partition (no checkpoint, no changelog part:
    a lost checkpoint, a part the changelog no longer holds, or one it refused as damaged or
    unreadable, logged before as ``changelog_refused``) while the group committed ``done``.
    It learns the partition from its first record, so whatever was deleted below the log start
    is logged the same way, as a state at offset 0 (``checkpoint_offset`` None).
    """
    offset = 0 if state is None else state
    if offset >= start:
        return offset
    handled = offset if done is None else max(offset, done)  # the group handled everything below this
    learned_gap, never_handled = (offset, min(start, handled)), (handled, start)
    fields = {f: f"{a}..{b - 1}" for f, (a, b) in (("not_learned", learned_gap), ("never_handled", never_handled))
              if b > a}
    lost = f"; {fields['never_handled']} were never predicted either" if "never_handled" in fields else ""
    if state is None:  # nothing here covers them: the member learns the partition from its first record
        before = "this member, which has no state of the partition (no checkpoint, no changelog part), could learn them"
        fix = ("a partition's state outlives its member in the changelog (changelog.enabled, a topic with "
               "cleanup.policy=compact) and in the checkpoint of the member that learned it; a changelog part "
               "this member refused as damaged or unreadable (a changelog_refused error before this) counts as none")
    else:
        before = "this restart read them"
        fix = ("keep records longer than the oldest checkpoint a restart may resume from (the topic's retention.ms), "
               "or checkpoint more often (checkpoint.every_events, every_seconds)")
    log_event(log, "checkpoint_below_log_start", level=logging.WARNING, partition=tp_key(tp), checkpoint_offset=state,
              log_start=start, committed=done, **fields,
              detail=f"records {offset}..{start - 1} of {tp_key(tp)} were deleted (retention or delete-records) before "
                     f"{before}: resuming at {start}, the first remaining record, without learning them{lost}; {fix}")
    return start


class AssignmentListener(AsyncConsumerRebalanceListener):
    """kafka-python's rebalance listener, handing each event to the source's callbacks."""

    def __init__(self, source: "RebalanceCallbacks"):
        self.source = source

    async def on_partitions_revoked(self, revoked):
        """kafka-python's callback: the source gives up ``revoked`` (committing first)."""
        await self.source._on_revoked(set(revoked), lost=False)

    async def on_partitions_assigned(self, assigned):
        """kafka-python's callback: the source takes ``assigned`` up where its state ends."""
        await self.source._on_assigned(set(assigned))

    async def on_partitions_lost(self, lost):
        """kafka-python's callback: the group moved on; the source drops ``lost`` without committing."""
        await self.source._on_revoked(set(lost), lost=True)


async def off_the_io_thread(consumer, call: Callable, *args, beat: Callable[[], None] | None = None,
                            beat_for_s: float = 0.0):
    """``call(*args)`` on a worker thread, awaited on kafka-python's IO thread, which meanwhile goes on
    sending the group's heartbeats (kafka-python 3 keeps them on while a rebalance listener runs, as long
    as the listener gives its loop back). ``beat``: called every :data:`WORK_BEAT_S` while the work lasts, for
    ``beat_for_s`` at most (the time the group waits for it), so that ``/healthz`` does not read the work as a
    stalled loop while the group still counts on it, and does once the group no longer does.

    A revocation's commit (every changed part encoded, a transaction, a checkpoint) ran on the IO thread
    itself, where no heartbeat goes out: review r110 measured 15 s for 24 parts of a 150-input model and a
    50 s revocation for a commit the config allows 60 s, and past ``kafka.session_timeout_ms`` the broker
    dropped the member, fenced its commit, and the group reshuffled for as long as traffic went on. A
    listener's time is now bounded by the rebalance timeout (``kafka.max_poll_interval_ms``) instead. The
    main thread is blocked in ``poll()`` until the listener returns, so the worker has the owner's state to
    itself, as the IO thread had. A consumer without kafka-python's event loop (a test's fake) calls inline,
    and so does a process that cannot start one more thread (with a warning).
    """
    # kafka-python private (no public way to wait on other work from a listener): listed in docs/daemon.md,
    # "kafka-python's private attributes", and checked by tests/unit/test_public_names_review44.py
    net = getattr(consumer, "_net", None)
    loop, later = getattr(net, "call_soon_threadsafe", None), getattr(net, "call_later", None)
    if loop is None:
        return call(*args)
    done = Future()

    def settle(outcome: Callable) -> None:  # on the IO thread: the task awaiting `done` is resumed there
        try:
            loop(lambda: outcome() and None)
        except Exception as e:  # noqa: BLE001 -- the IO loop closed or failed meanwhile: nobody awaits the outcome
            log.warning("rebalance work ended after the consumer's event loop stopped (%s); its outcome is dropped", e)

    def work() -> None:
        try:
            value = call(*args)
        except BaseException as e:  # noqa: BLE001 -- raised where the listener awaits, as it was raised inline
            error = e  # (the name `e` is gone once this block ends, before the IO thread settles)
            settle(lambda: done.failure(error))
        else:
            settle(lambda: done.success(value))

    try:
        threading.Thread(target=work, name="stream-cl-rebalance", daemon=True).start()
    except RuntimeError as e:  # "can't start new thread" (a process or memory limit): the work as it ran before
        log.warning("rebalance work runs on the consumer's IO thread, no heartbeat going out meanwhile: no worker "
                    "thread could be started (%s)", e)
        return call(*args)
    if beat is not None and later is not None:
        until = time.monotonic() + beat_for_s

        def tick() -> None:  # on the IO thread, while the work lasts and the group waits for it
            if not done.is_done and time.monotonic() < until:
                beat()
                later(WORK_BEAT_S, tick)

        later(WORK_BEAT_S, tick)
    return await done


async def _owner_work(source, call: Callable, *args):
    """The owner's ``call(*args)`` off the IO thread, beating its liveness (``hooks.on_wait``) for as long as
    the group waits for a member's rebalance, ``kafka.max_poll_interval_ms`` (review r112: /healthz read a 10 s
    takeover as a stalled loop, and a revocation may now wait 2 x ``commit_timeout_ms``)."""
    return await off_the_io_thread(source.consumer, call, *args, beat=source.hooks.on_wait,
                                   beat_for_s=source.cfg.max_poll_interval_ms / 1000)


class RebalanceCallbacks:
    """The rebalance callbacks of :class:`~connectors.kafka.KafkaSource` (module docstring)."""

    async def _on_revoked(self, partitions: set[TopicPartition], lost: bool) -> None:
        mine = partitions & self.assigned
        if self.hooks is not None and mine:
            await _owner_work(self, self.hooks.on_revoke, mine, lost)
        for tp in partitions:
            self.positions.pop(tp, None)
            self.replay_until.pop(tp, None)
            self.committed.pop(tp, None)
            self.assigned.discard(tp)
        if partitions:  # kafka-python revokes the empty set before the first join: nothing to say
            log.info("partitions %s: %s", "lost" if lost else "revoked", sorted(map(tp_key, partitions)))

    async def _on_assigned(self, partitions: set[TopicPartition]) -> None:
        self.rebalances += 1  # assignments received (the first one included)
        # the generation this join gave: a revocation later in the same poll() commits with it (review r108;
        # kafka-python's poll goes on after a join that found no records, and the poll's end had not refreshed it)
        self._group = tuple(self.consumer.group_metadata())[:4]
        committed = await self._committed_async(partitions)
        saved = await _owner_work(self, self.hooks.on_assign, partitions) if self.hooks is not None else {}
        if saved is None:  # the owner stops (a fatal error of its own): no lookups, seeks or warnings
            return
        saved = dict(saved)
        starts = await self._log_starts_async({tp for tp in partitions
                                               if saved.get(tp) is not None or committed.get(tp) is not None})
        for tp in partitions:
            state, done = saved.get(tp), committed.get(tp)
            if state is not None and tp in starts:
                state = resume_offset(tp, state, done, starts[tp])
            # resume where the state ends; what was committed after it is re-learned silently. No state
            # but committed offsets (a new member, a lost checkpoint): re-learn the partition from its start,
            # saying what retention deleted before this member could learn it (a seek to the beginning, not to
            # the start looked up: retention may move it on meanwhile, and a seek below it is out of range)
            if state is not None:
                self.consumer.seek(tp, state)
                self.positions[tp] = state
            elif done is not None:
                if tp in starts:
                    resume_offset(tp, None, done, starts[tp])
                self.consumer.seek_to_beginning(tp)
                self.positions.pop(tp, None)
            else:
                self.positions.pop(tp, None)  # auto_offset_reset decides; read at the next commit
            if done is not None:
                self.committed[tp] = done
                if state is None or done > state:
                    self.replay_until[tp] = done
        self.assigned |= partitions
        log.info("partitions assigned: %s", sorted(
            f"{tp_key(tp)}@{self.positions.get(tp, '?')}" + (f" (re-learning up to {self.replay_until[tp]})"
                                                             if tp in self.replay_until else "") for tp in partitions))

    async def _log_starts_async(self, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        """The first offset each of ``partitions`` still holds (retention or delete-records removes older ones).

        A seek below it is out of range, and the consumer then falls back to ``auto_offset_reset``:
        ``"latest"`` jumped to the end, past records the group never handled. Awaited, as the committed
        offsets are (the IO thread runs this callback). A partition whose start is not known is left out:
        it resumes at its state unchecked, as it did before this lookup.
        """
        if not partitions:
            return {}
        # kafka-python private (no public awaitable lookup): listed in docs/daemon.md, "kafka-python's private
        # attributes", and checked against the installed version by tests/unit/test_public_names_review44.py
        fetch = getattr(getattr(self.consumer, "_fetcher", None), "_fetch_offsets_by_times_async", None)
        if fetch is None:
            log.warning("this kafka-python cannot look up log start offsets in a rebalance callback; "
                        "a checkpoint offset below a partition's first record falls back to auto_offset_reset")
            return {}
        try:
            found = await fetch({tp: _EARLIEST for tp in partitions}, LOOKUP_TIMEOUT_MS)
        except KafkaError as e:  # a busy or leaderless broker: resume unchecked rather than stall the rebalance
            log_event(log, "log_start_unknown", level=logging.WARNING, partitions=sorted(map(tp_key, partitions)),
                      detail=f"the partitions' first offsets were not looked up ({e!r}); a checkpoint offset below "
                             "one falls back to kafka.auto_offset_reset")
            return {}
        return {tp: o.offset for tp, o in (found or {}).items()
                if o is not None and o.offset is not None and o.offset >= 0}

    async def _committed_async(self, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        # kafka-python private (no public awaitable read of committed offsets): as _fetcher above
        fetch = getattr(getattr(self.consumer, "_coordinator", None), "fetch_committed_offsets_async", None)
        if fetch is None:
            log.warning("this kafka-python cannot read committed offsets in a rebalance callback; "
                        "partitions start from the checkpoint or auto_offset_reset")
            return {}
        result = await self._fetch_committed(fetch, partitions)
        return {tp: om.offset for tp, om in (result or {}).items() if om is not None and om.offset >= 0}

    async def _fetch_committed(self, fetch, partitions: set[TopicPartition]):
        """The committed offsets of ``partitions``, waiting out a departed member's open transaction.

        A member that died between sending its offsets to its transaction and committing it (its
        whole process tree: a lost node, a killed pod) leaves that transaction open until the broker
        aborts it, ``transaction_timeout_ms`` later (plus the broker's check for timed-out
        transactions, every 10 s by default). Until then a ``read_committed`` consumer's fetch of
        those partitions' offsets is answered ``UNSTABLE_OFFSET_COMMIT``, which kafka-python retries
        until its timeout. Giving up at the session timeout made the member that took the partitions
        over exit 1, and the next one after it; this waits as long as such a transaction can last.
        """
        cfg = self.cfg
        # within the poll interval: the callback runs inside poll(), and the group drops a member past it
        # (the config holds transaction_timeout_ms + the margin within it: kafka.max_poll_interval_ms's check)
        budget_ms = min(max(cfg.session_timeout_ms, cfg.transaction_timeout_ms + TXN_ABORT_MARGIN_MS),
                        TAKEOVER_SHARE_OF_POLL * cfg.max_poll_interval_ms)
        started, said = time.monotonic(), -1  # -1: the first try that times out is said at once (review r120 F9-2)
        if self.hooks is not None:  # the poll() that runs this callback has spent some of the stall budget already
            self.hooks.on_wait()
        while True:
            left_ms = budget_ms - (time.monotonic() - started) * 1000.0
            try:  # tries of at most WAIT_TRY_MS: between them the wait beats the loop's heartbeat
                return await fetch(partitions, max(1, int(min(WAIT_TRY_MS, left_ms))))
            except KafkaTimeoutError:
                waited = time.monotonic() - started
                where = sorted(map(tp_key, partitions))
                if waited * 1000.0 >= budget_ms:
                    detail = _unreadable_detail(cfg, where, waited)
                    log_event(log, "committed_offsets_unreadable", level=logging.ERROR, partitions=where,
                              waited_s=round(waited, 1), detail=detail)
                    raise CommittedOffsetsUnreadable(detail) from None
                if self.hooks is not None:  # alive: /healthz must not read the wait as a stall
                    self.hooks.on_wait()
                timeouts = int(waited * 1000.0 // cfg.session_timeout_ms)
                if timeouts <= said:  # a line at the first try, then at each session timeout waited
                    continue
                said = timeouts
                log_event(log, "committed_offsets_waiting", level=logging.WARNING, partitions=where,
                          waited_s=round(waited, 1), budget_s=round(budget_ms / 1000.0, 1),
                          detail="committed offsets not readable yet: a departed member's open transaction may hold "
                                 "them until the broker aborts it (kafka.transaction_timeout_ms), or the group "
                                 "coordinator is still loading them (a broker that just restarted)")


def _unreadable_detail(cfg, where: list[str], waited: float) -> str:
    """What :class:`CommittedOffsetsUnreadable` says: the likely causes, and the remedy for the one that
    lasts until an administrator acts (review r118 F9: after broker restarts during a commit, an offsets
    write stayed open on ``__consumer_offsets`` with no producer left to end it)."""
    code, part = offsets_topic_hash(cfg.group_id), offsets_topic_partition(cfg.group_id)  # (part: of 50)
    servers = ",".join(bootstrap_entries(cfg.bootstrap_servers))
    tool = f"kafka-transactions.sh --bootstrap-server {servers}"
    # (review r120 F9-1: the partition was given for 50 partitions only; on a broker with one, the dev broker's,
    # the describe-producers command it printed ran 60 s and failed with a METADATA timeout)
    return (f"the group coordinator gave no committed offsets for {', '.join(where)} in {waited:.0f} s; an open "
            "transaction of a departed member lasts at most kafka.transaction_timeout_ms "
            f"({cfg.transaction_timeout_ms} ms) unless the broker's transaction.max.timeout.ms allows longer: check "
            "the broker and that every member has the same kafka.transaction_timeout_ms. A transaction left open on "
            "__consumer_offsets with no producer to end it (seen after broker restarts during a commit) holds them "
            f"until it is aborted. The group's offsets are in partition {code} modulo offsets.topic.num.partitions of "
            f"__consumer_offsets ({code} is the group id's Java hashCode, made positive): partition {part} with the "
            f"default 50 partitions, 0 with 1 (`kafka-topics.sh --bootstrap-server {servers} --describe --topic "
            "__consumer_offsets` shows the number; on a cluster with TLS or SASL, give each command --command-config "
            f"with the client's settings). With 50: `{tool} describe-producers --topic __consumer_offsets "
            f"--partition {part}` lists it (the row whose CurrentTransactionStartOffset is not None) and "
            f"`{tool} abort --topic __consumer_offsets --partition {part} --start-offset <that "
            "CurrentTransactionStartOffset>` ends it; with another number, put its partition in both")
