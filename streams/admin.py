"""Creating the topics on any Kafka-protocol broker (embedded Tansu or Apache Kafka)."""

from __future__ import annotations

from dataclasses import dataclass

from streams.topics import SPECS, Topics, partitions_of


@dataclass(frozen=True)
class TopicOutcome:
    """What `create_topics` did for one topic."""

    name: str
    partitions: int
    created: bool


def create_topics(bootstrap: str, topics: Topics, partitions: int, replication: int = 1) -> list[TopicOutcome]:
    """Create every topic that does not exist yet; existing ones are left as they are."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="healthcode-admin")
    try:
        existing = set(admin.list_topics())
        outcomes = []
        for spec in SPECS:
            name = topics.name(spec.role)
            count = partitions_of(spec, partitions)
            if name in existing:
                outcomes.append(TopicOutcome(name, count, created=False))
                continue
            configs = {"cleanup.policy": "compact"} if spec.compacted else {}
            try:
                admin.create_topics([NewTopic(name, count, replication, topic_configs=configs)])
                outcomes.append(TopicOutcome(name, count, created=True))
            except TopicAlreadyExistsError:
                outcomes.append(TopicOutcome(name, count, created=False))
        return outcomes
    finally:
        admin.close()
