"""Compact per-person state: the facts a rule set can still use, keyed for idempotence.

Tests and visits are kept by event id, exposures by exposure id, so applying an event
or an exposure twice changes nothing, and the state after a set of events is the same
whatever their arrival order. Pings only move `last_seen` (a maximum, so idempotent
without remembering their ids).

Forgetting is bounded and order independent too: `horizon` is the latest event time
seen minus the rule set's `retention_s`; facts whose clock start (sample time, visit,
last contact) is older are dropped and never re-admitted. Assessments at or after the
latest event time seen are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

from scoring.events import Ping, TestResult, Visit
from scoring.exposure import Exposure
from scoring.records import encode_facts
from scoring.rules import RuleSet
from scoring.timeutil import to_epoch

_NO_TIME = -(2**62)


class ResultFact(NamedTuple):
    """A test result: sampled at `sampled_at`, known at `known_at`."""

    sampled_at: int
    known_at: int
    test: str
    positive: bool


class VisitFact(NamedTuple):
    """A hospital visit of a `kind` (`fever_clinic`, `diagnosis`, `recovery`) at `at`."""

    at: int
    kind: str


def _exposure_rank(exposure: Exposure) -> tuple:
    # Retraction is final; otherwise the most advanced record wins (minutes only grow). The
    # remaining fields break ties so that the choice never depends on arrival order.
    return (
        exposure.retracted,
        exposure.last_at,
        exposure.minutes,
        exposure.minutes_by_day,
        -exposure.first_at,
        exposure.level or "",
        -exposure.effective_from,
    )


@dataclass(slots=True)
class PersonState:
    """What scoring remembers about one person; treat as immutable (`apply` returns a new one)."""

    person: str
    tests: dict[str, ResultFact] = field(default_factory=dict)
    visits: dict[str, VisitFact] = field(default_factory=dict)
    exposures: dict[str, Exposure] = field(default_factory=dict)
    last_seen: int | None = None
    latest_event_at: int | None = None
    """The largest event time applied (pings, tests, visits); drives `horizon`."""
    horizon: int = _NO_TIME
    """Facts whose clock start is before this are forgotten and not re-admitted."""
    level: str = "green"
    """The level last published for this person (kept by the stream; `assess` ignores it)."""
    reasons: tuple[str, ...] = ()
    """The ids of the rules giving that level and any lower one (`scoring.assess.ReasonSet`)."""
    level_at: int | None = None
    settled_at: int | None = None
    """The event time up to which this person's level changes have been worked out."""
    records: bytes | None = field(default=None, compare=False, repr=False)
    """The facts as `scoring.records` bytes for batch rescoring; None until computed.

    Computed on demand, not on every change: a person in contact with a case gets a new
    exposure record every few minutes, and only a switch of rules reads the records."""

    def fact_records(self) -> bytes:
        """The facts as fixed-size records (computed when first asked after a change, then kept)."""
        if self.records is None:
            self.records = encode_facts(self.tests.values(), self.visits.values(), self.exposures.values())
        return self.records

    @property
    def applied_event_ids(self) -> frozenset[str]:
        """Ids of the tests and visits held (pings are idempotent without ids)."""
        return frozenset(self.tests) | frozenset(self.visits)

    def has_facts(self) -> bool:
        """True when any test, visit or exposure could give a level."""
        return bool(self.tests or self.visits or self.exposures)


def new_state(person: str) -> PersonState:
    """The state of a person nothing is known about."""
    return PersonState(person=person)


def _prune(state: PersonState, retention_s: int) -> None:
    if state.latest_event_at is None:
        return
    horizon = state.latest_event_at - retention_s
    if horizon <= state.horizon:
        return
    state.horizon = horizon
    held = len(state.tests) + len(state.visits) + len(state.exposures)
    state.tests = {key: fact for key, fact in state.tests.items() if fact.sampled_at >= horizon}
    state.visits = {key: fact for key, fact in state.visits.items() if fact.at >= horizon}
    state.exposures = {key: item for key, item in state.exposures.items() if item.last_at >= horizon}
    if len(state.tests) + len(state.visits) + len(state.exposures) != held:
        state.records = None


def _copy(state: PersonState) -> PersonState:
    return replace(state, tests=dict(state.tests), visits=dict(state.visits), exposures=dict(state.exposures), records=None)


def apply(state: PersonState, event: Ping | Visit | TestResult, rules: RuleSet) -> PersonState:
    """The state after one contract-v1 person event; idempotent and order independent.

    Raises `ValueError` for an event of another person.
    """
    if event.person != state.person:
        raise ValueError(f"event {event.event_id} is for another person")
    ts = to_epoch(event.ts)
    updated = _copy(state)
    if isinstance(event, Ping):
        updated.last_seen = ts if state.last_seen is None else max(state.last_seen, ts)
    elif isinstance(event, TestResult):
        sampled = to_epoch(event.sampled_at)
        if sampled >= state.horizon and event.event_id not in state.tests:
            updated.tests[event.event_id] = ResultFact(sampled, ts, event.test, event.result == "positive")
    elif isinstance(event, Visit):
        if ts >= state.horizon and event.event_id not in state.visits:
            updated.visits[event.event_id] = VisitFact(ts, event.kind)
    else:
        raise TypeError(f"not a person event: {type(event).__name__}")
    if len(updated.tests) == len(state.tests) and len(updated.visits) == len(state.visits):
        updated.records = state.records
    updated.latest_event_at = ts if state.latest_event_at is None else max(state.latest_event_at, ts)
    _prune(updated, rules.retention_s)
    return updated


def apply_exposure(state: PersonState, exposure: Exposure) -> PersonState:
    """The state after an exposure record: superseding by `exposure_id`, retraction final.

    Idempotent and order independent: of all records with one id the state keeps the
    retracted one if any, else the most advanced (latest last contact, most minutes).
    """
    if not supersedes(state, exposure):
        return state
    updated = _copy(state)
    updated.exposures[exposure.exposure_id] = exposure
    return updated


def supersedes(state: PersonState, exposure: Exposure) -> bool:
    """True when `apply_exposure` would keep `exposure` (raises `ValueError` for another person's)."""
    if exposure.person != state.person:
        raise ValueError(f"exposure {exposure.exposure_id} is for another person")
    if exposure.last_at < state.horizon:
        return False
    held = state.exposures.get(exposure.exposure_id)
    if held is None:
        return True
    if not (held.retracted or exposure.retracted) and held.last_at != exposure.last_at:
        # The rank's first two fields decide (a contact's next record, every tick): no tuples built.
        return exposure.last_at > held.last_at
    return _exposure_rank(held) < _exposure_rank(exposure)


def absorb_exposure(state: PersonState, exposure: Exposure, supersedes_held: bool | None = None) -> bool:
    """`apply_exposure` in place, for an owner that keeps no other reference to `state`; True when kept.

    `supersedes_held`: `supersedes(state, exposure)` when the caller has just worked it out."""
    if not (supersedes(state, exposure) if supersedes_held is None else supersedes_held):
        return False
    state.exposures[exposure.exposure_id] = exposure
    state.records = None
    return True


def sealed(state: PersonState) -> PersonState:
    """`state` with its fact records computed (a batch of such states packs without walking facts)."""
    state.fact_records()
    return state
