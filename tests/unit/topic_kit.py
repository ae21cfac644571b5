"""A stand-in for a consumer's partition metadata, for the start's topic checks
(``connectors.kafka_topics.check_subscribed_topics``) without a broker."""


class Metadata:
    """A consumer's partition metadata: topic -> partition count (absent: no such topic)."""

    def __init__(self, counts: dict[str, int]):
        self.counts = counts

    def partitions_for_topic(self, topic: str):
        n = self.counts.get(topic)
        return set(range(n)) if n else None
