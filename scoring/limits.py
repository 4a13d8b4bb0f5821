"""What one event may ask of the pipeline: event times in a sane range, areas of bounded size.

A valid event can still be a poison pill: a time in year 9999 drags every watermark
there (everything after it is late), one in year 1 or a vast or finely drawn area
costs a fill of millions of cells. Intake dead-letters such events with the reason
(`streams.intake.triage`), and replay skips them as malformed (`scoring.replay`),
so the two see the same events.

Times: every event time (`ts`, a test's `sampled_at`) must be no earlier than
`earliest`, and no later than `ahead_s` past the clock of whoever judges (the
intake's clock; a reader of a file given `now`), nor than `LATEST` in any case. An area's `valid_until` is an end, not an
event: it may lie far ahead (it is after `ts`, so never before `earliest`).
Areas at a risk level: at most `area_max_vertices` positions, `area_max_km2` and
`area_max_perimeter_km` of edges (see `scoring.areas.outline` for how they are
measured before any cell is filled: the cells are those inside and those on the edges).
Filling costs about cells x vertices: the defaults keep one designation to a few
seconds at the default rules' resolution (10, about 0.015 km2 a cell) at worst.
"""

from __future__ import annotations

from dataclasses import dataclass

from scoring.areas import RISK_LEVELS, outline, vertex_count
from scoring.events import AreaRisk, Ping, TestResult, Visit
from scoring.timeutil import format_duration, from_epoch, to_epoch

EARLIEST = 946_684_800
"""2000-01-01T00:00:00Z."""
LATEST = 221_845_392_000
"""9000-01-01T00:00:00Z: later than this no event may be, clock or not, so that every moment a
rule derives from one (a window's end) can still be written in RFC 3339 (years up to 9999)."""


@dataclass(frozen=True)
class EventLimits:
    """The bounds one event must keep (settings `HEALTHCODE_EARLIEST_EVENT_TIME`, ...)."""

    earliest: int = EARLIEST
    ahead_s: int = 86_400
    area_max_vertices: int = 1_000
    area_max_km2: float = 3_000.0
    area_max_perimeter_km: float = 1_000.0
    """Cells along the edges count too: a sliver of no area can still cross a continent."""


@dataclass(frozen=True)
class LimitBreach:
    """Why an event is refused: `kind` is the dead-letter metric label, `reason` says precisely why."""

    kind: str
    reason: str


def moment_text(seconds: int) -> str:
    """RFC 3339 UTC text of any representable moment (years before 1000 keep four digits)."""
    return from_epoch(seconds).isoformat().replace("+00:00", "Z")


def latest_accepted(limits: EventLimits, now: int | None) -> int:
    """The latest event time accepted at clock `now` (None: no clock, only `LATEST` bounds it)."""
    return LATEST if now is None else min(LATEST, now + limits.ahead_s)


def time_breach(name: str, seconds: int, limits: EventLimits, now: int | None) -> LimitBreach | None:
    """Why the event time `name` = `seconds` is out of range, judged at clock `now` (None: no clock)."""
    if seconds < limits.earliest:
        return LimitBreach(
            "time_out_of_range", f"{name}: {moment_text(seconds)} is before {moment_text(limits.earliest)}, the earliest accepted"
        )
    if now is not None and seconds > now + limits.ahead_s:
        return LimitBreach(
            "time_out_of_range",
            f"{name}: {moment_text(seconds)} is more than {format_duration(limits.ahead_s)} after the clock "
            f"({moment_text(now)})",
        )
    if seconds > LATEST:
        return LimitBreach(
            "time_out_of_range",
            f"{name}: {moment_text(seconds)} is after {moment_text(LATEST)}, the latest any event may be",
        )
    return None


def limit_breach(event: Ping | Visit | TestResult | AreaRisk, limits: EventLimits, now: int | None) -> LimitBreach | None:
    """The first limit `event` breaks, if any (times, then an area's size); `now` is the judging clock."""
    times = [("ts", to_epoch(event.ts))]
    if isinstance(event, TestResult):
        times.append(("sampled_at", to_epoch(event.sampled_at)))
    for name, seconds in times:
        breach = time_breach(name, seconds, limits, now)
        if breach is not None:
            return breach
    if isinstance(event, AreaRisk) and event.level in RISK_LEVELS:  # `low` fills no cells
        vertices = vertex_count(event.geometry)
        if vertices > limits.area_max_vertices:
            return LimitBreach(
                "area_too_large", f"geometry: {vertices:,} positions, at most {limits.area_max_vertices:,}"
            )
        km2, km = outline(event.geometry)
        if km2 > limits.area_max_km2:
            return LimitBreach(
                "area_too_large", f"geometry: covers up to {km2:,.0f} km2, at most {limits.area_max_km2:,.0f}"
            )
        if km > limits.area_max_perimeter_km:
            return LimitBreach(
                "area_too_large",
                f"geometry: edges {km:,.0f} km long in all, at most {limits.area_max_perimeter_km:,.0f}",
            )
    return None
