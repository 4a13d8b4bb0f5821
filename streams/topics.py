"""Every topic the system uses: its name, its key and how many partitions it gets.

Names are a prefix (`hc.` by default, `HEALTHCODE_TOPIC_PREFIX`) plus a role, so
tests can run side by side on one broker under unique prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "hc."


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, what its messages are keyed by, and how it is laid out."""

    role: str
    key: str
    purpose: str
    partitioned: bool = True
    """Keyed topics get the configured partition count; broadcast ones have one partition."""
    compacted: bool = False
    presence: bool = False
    """Holds presence data: kept only as long as the rules' longest window needs it. Every
    other topic keeps its messages (workers rebuild and de-duplicate from the start)."""


SPECS: tuple[TopicSpec, ...] = (
    TopicSpec("pings", "person", "location pings from telecoms and apps", presence=True),
    TopicSpec("visits", "person", "hospital visits and test results"),
    TopicSpec("areas", "area id", "area risk designations", partitioned=False),
    TopicSpec("rules", "rule set id", "published rule sets", partitioned=False, compacted=True),
    TopicSpec("cases", "origin partition", "case notices and case progress, read by every worker", partitioned=False),
    TopicSpec("codes", "person", "signed health codes, one per change of level or reasons, correction or re-issue"),
    TopicSpec("dead-letter", "source topic", "rejected messages with their reason", partitioned=False),
    # Presence split by region (`streams.stages`, `HEALTHCODE_STAGES`): created always, so workers
    # may switch to the stages without a new `topics create`.
    TopicSpec("stays", "region partition (explicit)", "stay changes from the stays stage to the presence stage",
              presence=True),
    TopicSpec("exposures", "person partition (explicit)", "partial exposures from the presence stage to scoring",
              presence=True),
)

_EVENT_ROLE = {"ping": "pings", "visit": "visits", "test_result": "visits", "area_risk": "areas"}
_ROLES = frozenset(spec.role for spec in SPECS)


@dataclass(frozen=True)
class Topics:
    """The topic names under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def name(self, role: str) -> str:
        """The full name of the topic with this role (`pings`, `codes`, ...)."""
        if role not in _ROLES:
            raise ValueError(f"unknown topic role {role!r}")
        return self.prefix + role

    @property
    def pings(self) -> str:
        return self.name("pings")

    @property
    def visits(self) -> str:
        return self.name("visits")

    @property
    def areas(self) -> str:
        return self.name("areas")

    @property
    def rules(self) -> str:
        return self.name("rules")

    @property
    def cases(self) -> str:
        return self.name("cases")

    @property
    def codes(self) -> str:
        return self.name("codes")

    @property
    def dead_letter(self) -> str:
        return self.name("dead-letter")

    @property
    def stays(self) -> str:
        return self.name("stays")

    @property
    def exposures(self) -> str:
        return self.name("exposures")

    def for_event(self, event_type: str) -> str:
        """The input topic an event of this contract-v1 type is published to."""
        try:
            return self.name(_EVENT_ROLE[event_type])
        except KeyError:
            raise ValueError(f"unknown event type {event_type!r}") from None

    def inputs(self) -> tuple[str, ...]:
        """The topics data sources publish events to."""
        return (self.pings, self.visits, self.areas)


def partitions_of(spec: TopicSpec, partitions: int) -> int:
    """How many partitions `spec` gets when keyed topics get `partitions`."""
    return partitions if spec.partitioned else 1
