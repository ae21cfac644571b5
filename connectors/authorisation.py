"""Authorisation errors, said as what an operator grants: the resource the broker refused the
daemon's principal, the key that names it, and the ``kafka-acls.sh`` command.

kafka-python raises them in this process, or the publisher process reports them as text;
either way the class name is in the text of the error or one of its causes:

>>> from stream_cl.config import Config, KafkaConfig
>>> config = Config(kafka=KafkaConfig(topics=["events"]))
>>> print(not_authorised(RuntimeError("TopicAuthorizationFailedError: {'events'}"), config))
not authorised: the broker refused Read on topic 'events' (kafka.topics) to the daemon's principal (TopicAuthorizationFailedError); grant Read there (kafka-acls.sh --add --allow-principal <principal> --operation Read --topic events), or change kafka.topics
>>> not_authorised(RuntimeError("boom"), config) is None
True
"""

from __future__ import annotations

import re

from stream_cl.config import Config

__all__ = ["not_authorised"]


# kafka-python's authorisation errors, by class name: the publisher process reports its errors as text
_ACL_DENIALS = ("TopicAuthorizationFailedError", "GroupAuthorizationFailedError",
                "TransactionalIdAuthorizationFailedError", "ClusterAuthorizationFailedError")


def not_authorised(error: BaseException, config: Config) -> str | None:
    """The ``failed`` line's detail for an authorisation error in ``error`` or its causes (None for any other):
    what the broker refused the daemon's principal, the key that names it, and the ACL to grant. Until an
    ACL changes, every start over would meet it again (a new publisher process, a rejoin, a re-learn each)."""
    text = " ".join(f"{type(e).__name__}: {e}" for e in _causes(error))
    denied = next((name for name in _ACL_DENIALS if name in text), None)
    if denied is None:
        return None
    kcfg = config.kafka
    if denied.startswith("Topic"):
        what, key, ops, acl = _denied_topic(text, config)
    elif denied.startswith("Group"):
        what, key, ops, acl = f"group {kcfg.group_id!r}", "kafka.group_id", ["Read"], f"--group {kcfg.group_id}"
    elif denied.startswith("Transactional"):
        from .kafka_settings import transactional_id

        tid = transactional_id(config)
        key, ops, acl = "kafka.transactional_id", ["Write", "Describe"], f"--transactional-id {tid}"
        what = f"transactional id {tid!r}" + ("" if kcfg.transactional_id else ", derived from kafka.group_id,")
    else:
        what, key, ops, acl = "the cluster", "", ["IdempotentWrite"], "--cluster"
    # (the user name itself is kept out of logs, as the other SASL settings are)
    principal = "User:<kafka.sasl_plain_username>" if kcfg.security_protocol.startswith("SASL_") else "<principal>"
    grant = (f"grant {' and '.join(ops)} there (kafka-acls.sh --add --allow-principal {principal} "
             f"{' '.join('--operation ' + op for op in ops)} {acl})")
    return (f"not authorised: the broker refused {' and '.join(ops)} on {what}" + (f" ({key})" if key else "")
            + f" to the daemon's principal ({denied}); {grant}" + (f", or change {key}" if key else ""))


def _denied_topic(text: str, config: Config) -> tuple[str, str, list[str], str]:
    """The topic an authorisation error names (kafka-python quotes it: ``{'events'}``): ``(what, key,
    operations, kafka-acls.sh resource)``, the operations those the daemon needs on it."""
    kcfg, changelog = config.kafka, config.changelog
    topics = [*((t, "kafka.topics", ["Read"]) for t in kcfg.topics),
              (kcfg.labels_topic, "kafka.labels_topic", ["Read"]),
              (kcfg.predictions_topic, "kafka.predictions_topic", ["Write"]),
              (kcfg.dead_letter_topic, "kafka.dead_letter_topic", ["Write"]),
              (config.changelog_topic if changelog.enabled else "", "changelog.topic",
               ["Read", "Write", "Create", "DescribeConfigs", "AlterConfigs"])]
    for topic, key, ops in topics:
        if topic and f"'{topic}'" in text:
            return f"topic {topic!r}", key, ops, f"--topic {topic}"
    named = re.search(r"\{'([^']+)'", text)  # a topic of kafka.topic_pattern's, say
    topic = named.group(1) if named else "<topic>"
    key = "kafka.topic_pattern" if kcfg.topic_pattern else "kafka.topics"
    return f"topic {topic!r}" if named else "a topic", key, ["Read"], f"--topic {topic}"


def _causes(error: BaseException, limit: int = 8) -> list[BaseException]:
    """``error`` and the errors it was raised from or during (at most ``limit``)."""
    out: list[BaseException] = []
    while error is not None and len(out) < limit and error not in out:
        out.append(error)
        error = error.__cause__ or error.__context__
    return out
