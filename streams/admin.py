"""Creating the topics on any Kafka-protocol broker (embedded Tansu or Apache Kafka)."""

from __future__ import annotations

from dataclasses import dataclass

from streams.topics import SPECS, TopicSpec, Topics, partitions_of


@dataclass(frozen=True)
class TopicOutcome:
    """What `create_topics` did for one topic."""

    name: str
    partitions: int
    created: bool


def topic_configs(spec: TopicSpec, presence_retention_s: int | None) -> dict[str, str]:
    """The broker settings a topic is created with.

    Retention is explicit, never the broker's default (7 days on Apache Kafka, shorter
    than the rules' windows): presence topics keep `presence_retention_s` (none given:
    forever), the others keep everything, because a worker rebuilds its state and its
    de-duplication from the start of its inputs and outputs.
    """
    if spec.compacted:
        return {"cleanup.policy": "compact"}
    if spec.presence and presence_retention_s is not None:
        return {"retention.ms": str(presence_retention_s * 1000)}
    return {"retention.ms": "-1"}


def create_topics(
    bootstrap: str, topics: Topics, partitions: int, replication: int = 1, presence_retention_s: int | None = None
) -> list[TopicOutcome]:
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
            configs = topic_configs(spec, presence_retention_s)
            try:
                admin.create_topics([NewTopic(name, count, replication, topic_configs=configs)])
                outcomes.append(TopicOutcome(name, count, created=True))
            except TopicAlreadyExistsError:
                outcomes.append(TopicOutcome(name, count, created=False))
        return outcomes
    finally:
        admin.close()
