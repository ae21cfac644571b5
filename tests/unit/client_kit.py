"""``no_clients``: a fixture that makes every Kafka client the daemon could build fail the test,
for checks that must come before any client connects (a broker that cannot be reached must not
hide a config or checkpoint error). It yields the list of the clients' options (empty: none made)."""

import pytest


@pytest.fixture
def no_clients(monkeypatch):
    import kafka.admin

    from connectors import changelog as changelog_module
    from connectors import kafka as kafka_module
    from connectors import publisher as publisher_module

    made = []

    def refuse(*args, **options):  # a client made means the check came too late
        made.append(options)
        raise AssertionError("a Kafka client was made before the start's checks")

    for module, name in ((kafka_module, "KafkaConsumer"), (kafka.admin, "KafkaAdminClient"),
                         (changelog_module, "ChangelogTable"), (publisher_module, "ProcessPublisher"),
                         (publisher_module, "InlinePublisher")):
        monkeypatch.setattr(module, name, refuse)
    return made
