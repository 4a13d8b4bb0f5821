"""Every topic the system uses: its name, its key and how many partitions it gets."""

from __future__ import annotations

from dataclasses import dataclass

PINGS = "hc.pings"
VISITS = "hc.visits"
AREAS = "hc.areas"
RULES = "hc.rules"
EXPOSURES = "hc.exposures"
CODES = "hc.codes"
DEAD_LETTER = "hc.dead-letter"


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, what its messages are keyed by, and how it is laid out."""

    name: str
    key: str
    purpose: str
    partitioned: bool = True
    """Keyed topics get the configured partition count; broadcast ones have one partition."""
    compacted: bool = False


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(PINGS, "person", "location pings from telecoms and apps"),
    TopicSpec(VISITS, "person", "hospital visits and test results"),
    TopicSpec(AREAS, "area id", "area risk designations", partitioned=False),
    TopicSpec(RULES, "rule set id", "published rule sets", partitioned=False, compacted=True),
    TopicSpec(EXPOSURES, "person", "co-presence and area exposures found by the presence index"),
    TopicSpec(CODES, "person", "signed health codes, one per level change or re-issue"),
    TopicSpec(DEAD_LETTER, "source topic", "rejected messages with their reason", partitioned=False),
)

_EVENT_TOPIC = {"ping": PINGS, "visit": VISITS, "test_result": VISITS, "area_risk": AREAS}


def topic_for_event(event_type: str) -> str:
    """The input topic an event of this contract-v1 type is published to."""
    try:
        return _EVENT_TOPIC[event_type]
    except KeyError:
        raise ValueError(f"unknown event type {event_type!r}") from None


def renamed(spec: TopicSpec, prefix: str) -> TopicSpec:
    """The same topic under another prefix (tests use unique prefixes to stay apart)."""
    return TopicSpec(
        prefix + spec.name.removeprefix("hc."), spec.key, spec.purpose, spec.partitioned, spec.compacted
    )


def partitions_of(spec: TopicSpec, partitions: int) -> int:
    """How many partitions `spec` gets when keyed topics get `partitions`."""
    return partitions if spec.partitioned else 1
