"""Does a truth belong to the events it is compared with? A backtest against another city's truth is wrong silently.

The simulator names the city of every file it writes (seed, residents, period, SHA-256
of all settings; see `simulators.run.Simulation.identity`). `truth_mismatch` compares
those names when both files carry one, and otherwise checks what the files themselves
show: persons of the events the truth does not list, events outside the truth's period.
A period the truth does not cover would count every later infection as "never
infected", so it is refused too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from scoring.compare_spans import Period
from scoring.timeutil import format_rfc3339, parse_rfc3339


@dataclass(frozen=True, slots=True)
class CityIdentity:
    """The simulated city a file came from."""

    seed: int
    residents: int
    period: Period
    config_sha256: str

    @classmethod
    def from_mapping(cls, document: Mapping[str, object]) -> CityIdentity:
        """From the simulator's `run` document; `ValueError` when a field is missing or of the wrong kind."""
        try:
            seed, residents, digest = document["seed"], document["residents"], document["config_sha256"]
            start, end = document["start"], document["end"]
        except KeyError as missing:
            raise ValueError(f"the run description lacks {missing}") from None
        if not isinstance(seed, int) or not isinstance(residents, int) or not isinstance(digest, str):
            raise ValueError("the run description's seed and residents must be integers, config_sha256 text")
        if not isinstance(start, str) or not isinstance(end, str):
            raise ValueError("the run description's start and end must be RFC 3339 text")
        return cls(seed, residents, Period(parse_rfc3339(start), parse_rfc3339(end)), digest)

    def describe(self) -> str:
        return (
            f"seed {self.seed}, {self.residents:,} residents, {describe_period(self.period)}, "
            f"settings {self.config_sha256[:12]}"
        )


def describe_period(period: Period) -> str:
    return f"{format_rfc3339(period.start)} to {format_rfc3339(period.end)}"


def city_mismatch(events_city: CityIdentity | None, truth_city: CityIdentity | None) -> str | None:
    """Why the files name different cities (one line), or None: what can be told before reading the events."""
    if events_city is not None and truth_city is not None and events_city != truth_city:
        return f"the truth is from another city than the events: events from {events_city.describe()}; truth from {truth_city.describe()}"
    return None


def truth_mismatch(
    events_city: CityIdentity | None,
    truth_city: CityIdentity | None,
    events_persons: Collection[str],
    truth_persons: Collection[str],
    events_span: Period,
    period: Period | None = None,
) -> str | None:
    """Why the truth cannot be used with these events (one line), or None when it can.

    `events_span` is [first event, last event + 1 s); `period` the one asked for, if any.
    The truth's period is its city's when known; without one only the persons are checked.
    """
    named = city_mismatch(events_city, truth_city)
    if named is not None:
        return named
    unlisted = set(events_persons).difference(truth_persons)
    if unlisted:
        return (
            f"the truth does not list {len(unlisted):,} of the {len(set(events_persons)):,} persons in the events "
            f"(e.g. {min(unlisted)}): it is from another city"
        )
    if truth_city is None:
        return None
    covered = truth_city.period
    if not _inside(events_span, covered):
        return (
            f"the truth covers {describe_period(covered)} but the events run from {describe_period(events_span)}: "
            "it would cut the period; use the truth of the whole run"
        )
    if period is not None and not _inside(period, covered):
        return f"the period {describe_period(period)} reaches beyond the truth's {describe_period(covered)}"
    return None


def _inside(inner: Period, outer: Period) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end
