"""Building the Kafka daemon from a config: the checkpoint claimed, the learner, the label stores,
the publisher, the model changelog and the source, in the order a refused start needs.

The order is the point: everything that can refuse a start with exit 2 (a config error, a checkpoint
this config cannot resume, a second daemon on the same checkpoint directory) is checked before any
Kafka client exists, so a broker that cannot be reached never hides it, and a refused second daemon
never makes a producer that would fence the first. What is made is released again if a later part
cannot be made. The first client waits for a broker while it watches the stop flag
(:class:`BrokerContact`): a SIGTERM while the broker is down stops the start at once.

:meth:`connectors.daemon.Daemon.from_config` calls :func:`build_daemon`; :class:`RunChangelog` is
the run's changelog that :func:`connectors.daemon_run.run_daemon` keeps across the daemons it rebuilds.
"""

from __future__ import annotations

import logging
import threading

from stream_cl.checkpoint import CheckpointStore
from stream_cl.config import Config, ConfigError
from stream_cl.pending_stores import PendingStores

from .logs import log_event
from .partitions import PartitionStates
from .state import CheckpointState, check_settings
from .status import DaemonMetrics

__all__ = ["BrokerContact", "RunChangelog", "build_daemon", "changelog_table", "topic_max_message_bytes"]

log = logging.getLogger("stream_cl.daemon")


def build_daemon(cls, config: Config, stop_event: threading.Event | None = None,
                 metrics: DaemonMetrics | None = None, changelog: "RunChangelog | None" = None, checks=None,
                 contact: "BrokerContact | None" = None):
    """The daemon (of class ``cls``) that ``config`` describes. ``changelog``: the run's changelog
    (:func:`~connectors.daemon_run.run_daemon` hands the same one to every daemon it builds after a reset,
    and closes it when the run ends); without one the daemon makes its own and closes it when it ends.
    ``checks``: the run's :class:`~stream_cl.mapping_check.MappingChecks`, handed on the same way (None:
    the source's own). ``contact``: the run's :class:`BrokerContact`, which remembers whether any build
    of the run reached a broker (None: a contact of this build's own)."""
    from stream_cl.factory import build_learner

    from .changelog import PRODUCER_REQUEST_ROOM
    from .kafka import KafkaSource
    from .kafka_python_install import install_warnings
    from .kafka_settings import check_kafka_config, producer_options, transactional_id
    from .publisher import InlinePublisher, ProcessPublisher

    kcfg = config.kafka
    check_kafka_config(kcfg)  # before any client: a broker that cannot be reached must not hide a config error
    for warning in install_warnings():
        log.warning("%s", warning)
    # the checkpoint directory first: a second daemon on it stops here, before its producer
    # (whose transactional id may be the first one's) could fence the first
    store = CheckpointStore(config.checkpoint.dir, config.checkpoint.keep).claim()
    # read and compared before any client: a checkpoint this config cannot resume (corrupt, or written
    # with other settings) stops the start with exit 2, not behind a broker that cannot be reached
    loaded = store.load_latest()
    if loaded is not None:
        check_settings(config, loaded[0], loaded[1].path)
    learner = build_learner(config)  # [model] and the continual-learning sections
    pending = PendingStores(config.labels.max_pending, config.labels.max_age_s, max_early=config.labels.max_early)
    own = changelog is None
    if own:
        changelog = RunChangelog()
    contact = contact.again() if contact is not None else BrokerContact(kcfg, stop_event)
    table = changelog.table_for(config, learner, contact)  # None: no changelog (off, or a learner without partition parts)
    make = ProcessPublisher if kcfg.publisher == "process" else InlinePublisher
    max_request = max(kcfg.max_message_bytes, config.changelog.max_message_bytes + PRODUCER_REQUEST_ROOM if table else 0)
    try:  # nothing is left running if a part cannot be made
        contact()  # a broker first (where the changelog made no client yet)
        dead_letter_topic_bytes = topic_max_message_bytes(kcfg, kcfg.dead_letter_topic)
        options = producer_options(kcfg, transactional_id(config), max_request)
        if dead_letter_topic_bytes:  # no batch of dead letters over the topic's limit: the broker refuses it
            options["batch_size"] = min(options["batch_size"], dead_letter_topic_bytes)
        publisher = make(options, kcfg.predictions_topic, kcfg.dead_letter_topic,
                         commit_timeout_s=kcfg.commit_timeout_ms / 1000)
    except BaseException:
        if own:
            changelog.close()
        raise
    try:
        label_policy = getattr(config.source, "label_policy", "optional")

        def source_factory(daemon):
            return KafkaSource(kcfg, config.mapping, label_policy, hooks=daemon,
                               changelog_topic=table.topic if table is not None else "",
                               time_features=config.model.time_features, checks=checks)

        def state_factory(*args):
            if table is not None:
                return PartitionStates(*args, table=table, store=store, loaded=loaded)
            return CheckpointState(*args, store=store, loaded=loaded)

        daemon = cls(config, learner, source_factory, publisher, pending, stop_event or threading.Event(),
                     state_factory=state_factory, metrics=metrics, dead_letter_topic_bytes=dead_letter_topic_bytes,
                     own_changelog=changelog if own else None)
    except BaseException:
        publisher.abort()
        if own:
            changelog.close()
        raise
    return daemon


class BrokerContact:
    """The build's first contact with Kafka: called before each client is made, the first call waits
    for a broker (:func:`connectors.kafka_bootstrap.admin_once_reached`) and the others return at once.

    kafka-python's clients each wait up to ``kafka.bootstrap_timeout_ms`` (30 s) for a broker and
    cannot be stopped meanwhile: a SIGTERM or Ctrl-C while the broker was down did not stop the
    start, which failed 30 s later with exit 1. This wait ends within 0.2 s of ``stop`` being set,
    with :class:`connectors.kafka_bootstrap.BootstrapStopped` (:func:`connectors.daemon_run.run_daemon` exits 0);
    the clients made after it find the broker at once. Without ``stop`` there is nothing to watch,
    and no wait.

    One contact serves a run's builds (:meth:`again` before each): ``ever_reached`` says whether
    one of them reached a broker, so that a start that fails once it did is taken for an outage,
    not for settings to check (review r118 F5).
    """

    def __init__(self, kcfg, stop: threading.Event | None):
        self.kcfg, self.stop = kcfg, stop
        self.reached = stop is None
        self.ever_reached = False

    def again(self) -> "BrokerContact":
        """For the next build: its first client waits for a broker again; ``ever_reached`` stays."""
        self.reached = self.stop is None
        return self

    def __call__(self) -> None:
        if self.reached:
            return
        from .kafka_bootstrap import admin_once_reached

        admin_once_reached(self.kcfg, self.stop).close()  # (its only use: the wait)
        self.reached = self.ever_reached = True


class RunChangelog:
    """The model changelog of one run: made by the first daemon built, handed to every daemon rebuilt
    after a reset, and closed once when the run ends.

    A table made anew at each reset leaked its consumer (an IO thread and its sockets) and read the
    whole changelog again, inside the assignment callback of a member just rejoined: a read longer than
    the session timeout expelled it during its own assignment, and it reset, read it all again, and so
    on. Kept, the table holds the latest committed record per key it has read and its position, so a
    rebuilt member reads only what came since. The rebuilt state folds every key it holds once
    (:meth:`PartitionStates.fold`): the learner that folded them before was dropped with the reset.
    """

    def __init__(self):
        self.table = None
        self._made = False

    def table_for(self, config: Config, learner, contact: BrokerContact | None = None):
        """The run's table, made (and the topic created if missing) at the first call; None: no changelog.
        ``contact``: called before its first client is made (:class:`BrokerContact`)."""
        if not self._made:
            self.table = changelog_table(config, learner, contact)
            self._made = True
        return self.table

    def close(self) -> None:
        """Close the table, if one was made; an error closing it is dropped (the run is over)."""
        table, self.table = self.table, None
        if table is not None:
            try:
                table.close()
            except Exception:  # noqa: BLE001 -- best effort: the run is over, its exit code stands
                pass


def changelog_table(config: Config, learner, contact: BrokerContact | None = None):
    """The model changelog's table (the topic created if missing), or None when there is none to keep.
    ``contact``: called after the checks that need no broker, before the first client is made."""
    if not config.changelog.enabled:
        return None
    if not hasattr(learner, "contribution"):  # nothing to merge: each member's model is its own
        log_event(log, "config_warning", level=logging.WARNING,
                  detail=f"model.kind = {config.model.kind!r} is not partition-mergeable (its learner keeps no part "
                         "per source partition), so the daemon writes no model changelog: each member of group "
                         f"{config.kafka.group_id!r} serves a model of only the partitions it consumes. Run one "
                         'member (and set changelog.enabled = false), or use model.kind = "online" or "analytic" '
                         "for one model across the group")
        return None
    from kafka.admin import KafkaAdminClient

    from .changelog import ChangelogTable, ensure_changelog_topic
    from .kafka_settings import client_options
    from .kafka_topics import refuse_own_outputs

    kcfg, cl = config.kafka, config.changelog
    if kcfg.labels_topic and (kcfg.topic_pattern or len(kcfg.topics) != 1):
        raise ConfigError("kafka.labels_topic: with a labels topic the daemon reads exactly one events topic (a label "
                          "joins the events partition of its number); list one topic in kafka.topics, or run one "
                          "group per events topic")
    topic = config.changelog_topic
    refuse_own_outputs(kcfg, topic)  # before the topic is made: a refused start leaves none behind
    if contact is not None:
        contact()
    admin = KafkaAdminClient(**client_options(kcfg))
    try:
        ensure_changelog_topic(admin, topic, cl.partitions, cl.replication_factor, cl.max_message_bytes)
    finally:
        admin.close()
    return ChangelogTable(client_options(kcfg), topic, cl.max_message_bytes)


def topic_max_message_bytes(kcfg, topic: str) -> int | None:
    """``topic``'s ``max.message.bytes`` as the broker describes it (its own, or the broker's default behind
    it); None without a topic, or where the broker describes none (a topic not made yet, which auto-creation
    gives the broker's default; a principal without DescribeConfigs on it). The dead letters are cut to fit it
    (:class:`Router`); where it is not known, a refusal stops the daemon naming both limits
    (:class:`~connectors.transaction.DeadLetterRefused`), as a record re-read at every start over would."""
    if not topic:
        return None
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    from .changelog import read_topic_configs
    from .kafka_settings import client_options

    admin = KafkaAdminClient(**client_options(kcfg))
    try:
        value = read_topic_configs(admin, topic).get("max.message.bytes", (None, ""))[0]
    except KafkaError as e:  # a limit not known is the one case above; the daemon can run without it
        log.debug("max.message.bytes of %r not read: %s: %s", topic, type(e).__name__, e)
        return None
    finally:
        admin.close()
    return int(value) if value and str(value).isdigit() else None
