"""Builders of person events, exposures and whole populations of states, for tests and benchmarks.

Deterministic: everything is derived from explicit times and a seed.
"""

from __future__ import annotations

import random

from scoring.events import Ping, TestResult, Visit
from scoring.exposure import AREA, Exposure
from scoring.state import PersonState, ResultFact, VisitFact, sealed
from scoring.timeutil import from_epoch

DAY = 86400
HOUR = 3600


def result(
    person: str, sampled_at: int, known_at: int, *, positive: bool, test: str = "pcr", event_id: str | None = None
) -> TestResult:
    """A contract-v1 test result event."""
    return TestResult(
        event_id=event_id or f"t-{person}-{sampled_at}-{known_at}-{test}-{int(positive)}",
        ts=from_epoch(known_at),
        person=person,
        sampled_at=from_epoch(sampled_at),
        test=test,
        result="positive" if positive else "negative",
    )


def visit(person: str, at: int, kind: str, *, event_id: str | None = None) -> Visit:
    """A contract-v1 visit event (`fever_clinic`, `diagnosis` or `recovery`)."""
    return Visit(event_id=event_id or f"v-{person}-{at}-{kind}", ts=from_epoch(at), person=person, facility="Clinic", kind=kind)


def ping(person: str, at: int, *, event_id: str | None = None) -> Ping:
    """A contract-v1 ping (the place is irrelevant to scoring)."""
    return Ping(event_id=event_id or f"p-{person}-{at}", ts=from_epoch(at), person=person, lat=30.0, lon=104.0, source="gps")


def exposure(
    person: str,
    kind: str,
    source: str,
    first_at: int,
    last_at: int,
    minutes: float,
    *,
    minutes_by_day: tuple[tuple[int, float], ...] = (),
    level: str | None = None,
    retracted: bool = False,
) -> Exposure:
    """An exposure record with its deterministic id."""
    return Exposure(
        exposure_id=Exposure.make_id(person, kind, source),
        person=person,
        kind=kind,
        source=source,
        first_at=first_at,
        last_at=last_at,
        minutes=minutes,
        minutes_by_day=minutes_by_day,
        level=level,
        retracted=retracted,
    )


def _contact(rng: random.Random, person: str, kind: str, at: int) -> Exposure:
    first = at - rng.randrange(0, 16 * DAY)
    minutes = float(rng.randrange(1, 90))
    day = rng.randrange(0, 8)
    by_day = ((day, minutes),) if rng.random() < 0.8 else ()
    return exposure(person, kind, f"case-{rng.randrange(10**6)}", first, first + int(minutes * 60), minutes, minutes_by_day=by_day)


def _tests(rng: random.Random, state: PersonState, at: int, positive: bool) -> None:
    sampled = at - rng.randrange(0, 30 * DAY)
    state.tests[f"t{len(state.tests)}"] = ResultFact(sampled, sampled + rng.randrange(HOUR, 2 * DAY), rng.choice(("pcr", "antigen")), positive)
    for _ in range(rng.randrange(0, 4)):
        later = sampled + rng.randrange(0, 20 * DAY)
        state.tests[f"t{len(state.tests)}"] = ResultFact(later, later + rng.randrange(HOUR, DAY), "pcr", False)


def synthetic_state(rng: random.Random, person: str, at: int) -> PersonState:
    """One person's state with a realistic mix of facts around event time `at`, sealed as `apply` leaves it.

    Most persons have none; the rest have cases, tests, clinic visits, contacts, companions
    and area exposures in proportions resembling an outbreak city.
    """
    state = PersonState(person=person, last_seen=at - rng.randrange(0, DAY), latest_event_at=at)
    draw = rng.random()
    if draw < 0.6:
        return sealed(state)
    if draw < 0.64:
        _tests(rng, state, at, positive=True)
        if rng.random() < 0.3:
            recovered = at - rng.randrange(0, 10 * DAY)
            state.visits["r"] = VisitFact(recovered, "recovery")
    if 0.64 <= draw < 0.70:
        clinic = at - rng.randrange(0, 15 * DAY)
        state.visits["f"] = VisitFact(clinic, "fever_clinic" if rng.random() < 0.8 else "diagnosis")
        if rng.random() < 0.5:
            _tests(rng, state, at, positive=False)
    if 0.70 <= draw < 0.95:
        for _ in range(rng.randrange(1, 4)):
            item = _contact(rng, person, rng.choice(("close_contact", "companion")), at)
            state.exposures[item.exposure_id] = item
        if rng.random() < 0.3:
            _tests(rng, state, at, positive=False)
    if draw >= 0.95:
        first = at - rng.randrange(0, 10 * DAY)
        area = exposure(person, AREA, f"area-{rng.randrange(50)}", first, first + 3 * HOUR, 180.0, level=rng.choice(("medium", "high")))
        state.exposures[area.exposure_id] = area
    return sealed(state)


def synthetic_states(count: int, at: int, seed: int = 7) -> list[PersonState]:
    """`count` persons' states around event time `at` (see `synthetic_state`)."""
    rng = random.Random(seed)
    return [synthetic_state(rng, f"p{index}", at) for index in range(count)]
