"""Creating the topics on any Kafka-protocol broker (embedded Tansu or Apache Kafka)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streams.reading import TopicUnavailable
from scoring.timeutil import parse_duration
from streams.topics import SPECS, TopicSpec, Topics, partitions_of

if TYPE_CHECKING:
    from kafka import KafkaAdminClient

# How long to wait for an answer from the broker before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class TopicOutcome:
    """What `create_topics` did for one topic, and the partitions it really has."""

    name: str
    partitions: int
    created: bool
    expected: int
    """The partitions `create_topics` makes it with; an older topic (auto-created by a
    client before `topics create`, or made with other settings) may have others."""


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
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    admin = _admin(bootstrap)
    try:
        existing = set(admin.list_topics())
        created = set()
        for spec in SPECS:
            name = topics.name(spec.role)
            if name in existing:
                continue
            configs = topic_configs(spec, presence_retention_s, dead_letter_retention_s or presence_retention_s)
            try:
                admin.create_topics([NewTopic(name, partitions_of(spec, partitions), replication, topic_configs=configs)])
                created.add(name)
            except TopicAlreadyExistsError:
                pass
        layout = _layout(admin, [topics.name(spec.role) for spec in SPECS])
    except KafkaError as error:
        raise TopicUnavailable(f"the broker at {bootstrap} failed: {error}") from None
    finally:
        admin.close()
    return [
        TopicOutcome(name, layout.get(name, 0), name in created, partitions_of(spec, partitions))
        for spec, name in ((spec, topics.name(spec.role)) for spec in SPECS)
    ]


def _admin(bootstrap: str) -> KafkaAdminClient:
    """An admin client, or `TopicUnavailable` within `CONNECT_TIMEOUT_S` when the broker does not answer."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    timeout_ms = int(CONNECT_TIMEOUT_S * 1000)
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="healthcode-admin", bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=max(timeout_ms, 10_000),
        )
    except KafkaError as error:
        raise TopicUnavailable(f"cannot reach the broker at {bootstrap} ({error})") from None


def _layout(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    existing = set(admin.list_topics())
    wanted = [name for name in names if name in existing]
    return {found["name"]: len(found["partitions"]) for found in admin.describe_topics(wanted)} if wanted else {}


def describe_layout(bootstrap: str, topics: Topics) -> dict[str, int]:
    """The partition count of each of our topics that exists on the broker (a missing one is absent)."""
    from kafka.errors import KafkaError

    admin = _admin(bootstrap)
    try:
        return _layout(admin, [topics.name(spec.role) for spec in SPECS])
    except KafkaError as error:
        raise TopicUnavailable(f"cannot describe the topics on {bootstrap}: {error}") from None
    finally:
        admin.close()


def layout_problems(layout: Mapping[str, int], topics: Topics, partitions: int | None) -> list[str]:
    """Why workers configured for `partitions` cannot use topics laid out as `layout`
    (with `partitions` None, only which topics are missing).

    Workers address partitions by number: a person is owned through
    `partition_of(person, partitions)` on pings, visits and codes, and areas, rules and
    cases are read at partition 0 only. Any other count loses or misroutes messages, so
    those topics must have exactly what `topics create` gives them. The dead-letter
    topic is only written to, by key: any count serves.
    """
    problems = []
    for spec in SPECS:
        name = topics.name(spec.role)
        if name not in layout:
            problems.append(f"no topic {name}")
        elif partitions is not None and spec.role != "dead-letter" and layout[name] != partitions_of(spec, partitions):
            problems.append(f"{name} has {layout[name]} partitions, workers need {partitions_of(spec, partitions)}")
    return problems
