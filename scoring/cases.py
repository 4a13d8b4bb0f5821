"""Is a person a case, since when, and when were they infectious.

A case signal is a positive test of a type the rule set's `case.positive_tests` names
(clock start: the sample) or a diagnosis visit (clock start: the visit). A positive
result is *corrected* when a later negative PCR result on the same sample arrives and
the rule set says so; from then on it counts for nothing and its case window is
retracted (presence detection withdraws the exposures it caused).
"""

from __future__ import annotations

from dataclasses import dataclass

from scoring.exposure import CaseWindow, opaque_ref
from scoring.rules import RuleSet
from scoring.state import PersonState


@dataclass(frozen=True, slots=True)
class CaseSignal:
    """One positive test or diagnosis, as known at some event time."""

    event_id: str
    signal: str
    """`positive_test` or `diagnosis`."""
    clock: int
    """The sample time (or the diagnosis time): where the infectious window is anchored."""
    known_at: int
    corrected_at: int | None
    test: str | None = None

    def evidence(self) -> dict:
        """What triggered it, with no other person and no place in it."""
        if self.signal == "diagnosis":
            return {"signal": "diagnosis", "at": self.known_at}
        return {"signal": "positive_test", "test": self.test, "sampled_at": self.clock, "known_at": self.known_at}


def correction_time(state: PersonState, sampled_at: int, known_at: int, at: int) -> int | None:
    """When a positive result on the sample taken at `sampled_at` was corrected, if by `at`."""
    times = [
        fact.known_at
        for fact in state.tests.values()
        if not fact.positive
        and fact.test == "pcr"
        and fact.sampled_at == sampled_at
        and known_at < fact.known_at <= at
    ]
    return min(times) if times else None


def case_signals(state: PersonState, rules: RuleSet, at: int) -> list[CaseSignal]:
    """Every case signal known at event time `at`, sorted by clock then event id."""
    definition = rules.case
    signals = []
    for event_id, fact in state.tests.items():
        if fact.positive and fact.test in definition.positive_tests and fact.known_at <= at:
            corrected = (
                correction_time(state, fact.sampled_at, fact.known_at, at)
                if definition.corrected_by_negative_pcr_on_same_sample
                else None
            )
            signals.append(CaseSignal(event_id, "positive_test", fact.sampled_at, fact.known_at, corrected, fact.test))
    if definition.diagnosis:
        for event_id, visit in state.visits.items():
            if visit.kind == "diagnosis" and visit.at <= at:
                signals.append(CaseSignal(event_id, "diagnosis", visit.at, visit.at, None))
    return sorted(signals, key=lambda signal: (signal.clock, signal.event_id))


def case_ref(person: str, signal: CaseSignal) -> str:
    """The opaque reference of the case episode a signal opens."""
    return opaque_ref("case", person, signal.event_id)


def case_windows(state: PersonState, rules: RuleSet, at: int) -> list[CaseWindow]:
    """The person's case windows at event time `at`, for presence detection.

    At most one live window: the earliest uncorrected signal opens it, from
    `case.infectious_before` before its clock start until `case.isolation_after` after
    the first confirmation (isolation). Every corrected signal that would have opened a
    window is reported with `retracted=True`, so the exposures it caused are withdrawn.
    """
    signals = case_signals(state, rules, at)
    windows = []
    live = [signal for signal in signals if signal.corrected_at is None]
    for signal in signals:
        if signal.corrected_at is not None:
            windows.append(_window(state.person, signal, signal.known_at, rules, retracted=True))
    if live:
        confirmed = min(signal.known_at for signal in live)
        windows.append(_window(state.person, live[0], confirmed, rules, retracted=False))
    return windows


def _window(person: str, signal: CaseSignal, confirmed: int, rules: RuleSet, retracted: bool) -> CaseWindow:
    return CaseWindow(
        case_ref=case_ref(person, signal),
        person=person,
        infectious_from=signal.clock - rules.case.infectious_before,
        infectious_until=confirmed + rules.case.isolation_after,
        retracted=retracted,
    )


def is_case(state: PersonState, rules: RuleSet, at: int) -> bool:
    """True when the person has an uncorrected case signal known at `at`."""
    return any(signal.corrected_at is None for signal in case_signals(state, rules, at))


def was_corrected(state: PersonState, rules: RuleSet, at: int) -> bool:
    """True when some positive result of the person was corrected by `at`."""
    return any(signal.corrected_at is not None for signal in case_signals(state, rules, at))
