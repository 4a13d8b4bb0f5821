"""Creating the topics on any Kafka-protocol broker (embedded Tansu or Apache Kafka)."""

from __future__ import annotations

from dataclasses import dataclass

from scoring.timeutil import parse_duration
from streams.topics import SPECS, TopicSpec, Topics, partitions_of


@dataclass(frozen=True)
class TopicOutcome:
    """What `create_topics` did for one topic."""

    name: str
    partitions: int
    created: bool


DAY_S = 86_400
SEGMENT_S = 3_600
"""A time-bounded topic rolls a log segment at least hourly: Kafka deletes whole segments
once their newest message is past the retention, so nothing outlives it by more than this."""
INPUT_ROLES = Topics(prefix="").inputs()
"""The roles of the topics data sources publish to."""


@dataclass(frozen=True)
class Retention:
    """How long the topics holding raw personal data keep it (seconds)."""

    presence_s: int
    dead_letters_s: int


def retention_plan(window_s: int, lateness_s: int, dead_letters: str | None = None) -> Retention:
    """Pings are kept for the rules' longest window plus the allowed lateness, rounded up
    to days, and a day more (a rebuild then still has every ping a level can depend on);
    dead letters as long, unless `dead_letters` (a duration such as `30d`) says otherwise.
    Raises ValueError for a `dead_letters` that is not a duration."""
    presence_s = (-(-(window_s + lateness_s) // DAY_S) + 1) * DAY_S
    return Retention(presence_s, parse_duration(dead_letters) if dead_letters else presence_s)


def topic_configs(
    spec: TopicSpec, presence_retention_s: int | None, dead_letter_retention_s: int | None = None
) -> dict[str, str]:
    """The broker settings a topic is created with.

    Retention is explicit, never the broker's default (7 days on Apache Kafka, shorter
    than the rules' windows). Raw personal data is time-bounded: presence topics keep
    `presence_retention_s`, the dead-letter topic (original bytes of rejected inputs)
    `dead_letter_retention_s` (none given: forever). The others keep everything,
    because a worker rebuilds its state and its de-duplication from the start of its
    inputs and outputs. Input topics stamp messages with the broker's append time, so
    retention counts from arrival, whatever timestamp a data source sets.
    """
    if spec.compacted:
        return {"cleanup.policy": "compact"}
    configs = {"message.timestamp.type": "LogAppendTime"} if spec.role in INPUT_ROLES else {}
    bounded = presence_retention_s if spec.presence else dead_letter_retention_s if spec.role == "dead-letter" else None
    if bounded is None:
        return {**configs, "retention.ms": "-1"}
    return {**configs, "retention.ms": str(bounded * 1000), "segment.ms": str(min(bounded, SEGMENT_S) * 1000)}


def create_topics(
    bootstrap: str, topics: Topics, partitions: int, replication: int = 1, presence_retention_s: int | None = None,
    dead_letter_retention_s: int | None = None,
) -> list[TopicOutcome]:
    """Create every topic that does not exist yet; existing ones are left as they are.

    Retention: see `topic_configs`; dead letters are kept as long as presence unless
    `dead_letter_retention_s` is given."""
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
            configs = topic_configs(spec, presence_retention_s, dead_letter_retention_s or presence_retention_s)
            try:
                admin.create_topics([NewTopic(name, count, replication, topic_configs=configs)])
                outcomes.append(TopicOutcome(name, count, created=True))
            except TopicAlreadyExistsError:
                outcomes.append(TopicOutcome(name, count, created=False))
        return outcomes
    finally:
        admin.close()
