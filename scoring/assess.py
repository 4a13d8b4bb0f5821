"""Pure assessment: a person's state, a rule set and an event time give a level and its reasons.

Only facts known at the event time `at` count (a result known later, a contact that
begins later, are ignored), so asking about any moment of the past or the present
gives the answer the system would have had then with everything that had arrived.

Every rule yields *activations*: intervals [since, end) during which a trigger gives
the rule's level. `end` is the earliest of the rule's window and its clearance
alternatives, computed from facts known at `at`; when it lies in the future it is the
`until` of the reason. The level is the highest active level; `next_review_at` is the
first `end` at which that level changes, so time-driven changes are exact to the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from scoring.cases import CaseSignal, case_signals
from scoring.exposure import AREA, Exposure
from scoring.rules import CASE, FEVER_CLINIC, LEVEL_CODE, LEVELS, Clearance, PointsRule, Rule, RuleSet
from scoring.state import PersonState, VisitFact
from scoring.timeutil import format_rfc3339

Trigger = CaseSignal | VisitFact | Exposure
"""A fact that triggers a rule: a case signal, a fever clinic visit, or an exposure."""

MILLI = 1000
"""Points scores are summed in integer thousandths so every evaluation order agrees exactly."""


@dataclass(frozen=True, slots=True)
class Reason:
    """One active rule: which, from when, until when (if nothing new happens), and why."""

    rule: str
    level: str
    since: int
    until: int | None
    evidence: tuple[dict, ...]

    def to_dict(self) -> dict:
        """JSON-ready, times as RFC 3339 UTC text."""
        return {
            "rule": self.rule,
            "level": self.level,
            "since": format_rfc3339(self.since),
            "until": None if self.until is None else format_rfc3339(self.until),
            "evidence": [_evidence_json(item) for item in self.evidence],
        }


@dataclass(frozen=True, slots=True)
class Assessment:
    """A person's level at event time `at`, every reason for it, and when to look again."""

    at: int
    level: str
    reasons: tuple[Reason, ...]
    next_review_at: int | None
    """The earliest event time at which the level changes if no new event arrives."""

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(reason.rule for reason in self.reasons)

    def to_dict(self) -> dict:
        """JSON-ready, times as RFC 3339 UTC text."""
        return {
            "at": format_rfc3339(self.at),
            "level": self.level,
            "reasons": [reason.to_dict() for reason in self.reasons],
            "next_review_at": None if self.next_review_at is None else format_rfc3339(self.next_review_at),
        }


@dataclass(frozen=True, slots=True)
class LevelChange:
    """The level became `level` at event time `at`."""

    at: int
    level: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class Activation:
    """A rule giving `level` (a code, see `LEVELS`) during [since, end)."""

    rule: str
    level: int
    since: int
    end: int
    evidence: dict


_TIME_KEYS = ("at", "sampled_at", "known_at", "first_at", "last_at")


def _evidence_json(item: dict) -> dict:
    return {key: format_rfc3339(value) if key in _TIME_KEYS else value for key, value in item.items()}


def earliest_negatives(negatives: Iterable[tuple[int, int]], count: int, apart: int) -> int | None:
    """The earliest time at which `count` negative samples, pairwise `apart` or more, are known.

    `negatives` are (sampled_at, known_at) pairs already filtered to the tests and the
    period that count. Results are taken in the order they become known; after each,
    a greedy pass over the sample times known so far finds the longest chain spaced
    `apart` apart (greedy is optimal on sorted times).
    """
    known_so_far: list[int] = []
    for sampled, known in sorted(negatives, key=lambda pair: (pair[1], pair[0])):
        known_so_far.append(sampled)
        chain, last = 0, None
        for sample in sorted(known_so_far):
            if last is None or sample - last >= apart:
                chain, last = chain + 1, sample
        if chain >= count:
            return known
    return None


def clearance_time(alternative: Clearance, clock: int, state: PersonState, at: int) -> int | None:
    """When this alternative clears a trigger whose clock started at `clock`, from facts known at `at`."""
    times = []
    if alternative.after is not None:
        times.append(clock + alternative.after)
    if alternative.recovery:
        recoveries = [v.at for v in state.visits.values() if v.kind == "recovery" and clock <= v.at <= at]
        if not recoveries:
            return None
        times.append(min(recoveries))
    wanted = alternative.negative_tests
    if wanted is not None:
        negatives = [
            (fact.sampled_at, fact.known_at)
            for fact in state.tests.values()
            if not fact.positive and fact.test in wanted.tests and fact.sampled_at >= clock and fact.known_at <= at
        ]
        done = earliest_negatives(negatives, wanted.count, wanted.apart)
        if done is None:
            return None
        times.append(done)
    return max(times)


def trigger_end(rule: Rule, clock: int, state: PersonState, at: int) -> int:
    """When a trigger of `rule` whose clock started at `clock` stops giving its level."""
    end = clock + rule.window
    for alternative in rule.clears:
        cleared = clearance_time(alternative, clock, state, at)
        if cleared is not None:
            end = min(end, cleared)
    return end


def exposure_counts(rule: Rule, exposure: Exposure) -> bool:
    """True when an exposure is a trigger of `rule` (kind, designation level, minutes)."""
    if exposure.retracted or exposure.kind != rule.signal:
        return False
    if rule.area_levels is not None and exposure.level not in rule.area_levels:
        return False
    return rule.minutes is None or rule.minutes.met_by(exposure.minutes)


def _triggers(rule: Rule, state: PersonState, rules: RuleSet, at: int) -> Iterator[tuple[int, int, Trigger]]:
    """(since, clock, fact) of every trigger of `rule` known at `at` (evidence is built only for active ones).

    Lazily: the proofs of `level_holds` stop at the first trigger that settles them, and a
    person in an outbreak holds dozens of exposures, met once per exposure record.
    """
    if rule.signal == CASE:
        return (
            (signal.known_at, signal.clock, signal)
            for signal in case_signals(state, rules, at)
            if signal.corrected_at is None
        )
    if rule.signal == FEVER_CLINIC:
        return (
            (visit.at, visit.at, visit)
            for visit in state.visits.values()
            if visit.kind == "fever_clinic" and visit.at <= at
        )
    # The kind test comes first: it rejects most exposures, before `effective_from` is computed.
    return (
        (exposure.effective_from, exposure.last_at, exposure)
        for exposure in state.exposures.values()
        if exposure_counts(rule, exposure) and exposure.effective_from <= at
    )


def _evidence(trigger: Trigger) -> dict:
    if isinstance(trigger, CaseSignal):
        return trigger.evidence()
    if isinstance(trigger, VisitFact):
        return {"signal": FEVER_CLINIC, "at": trigger.at}
    evidence = {
        "signal": trigger.kind,
        "source": trigger.source,
        "minutes": trigger.minutes,
        "first_at": trigger.first_at,
        "last_at": trigger.last_at,
    }
    if trigger.kind == AREA and trigger.level is not None:
        evidence["area_level"] = trigger.level
    return evidence


def rule_activations(rule: Rule, state: PersonState, rules: RuleSet, at: int) -> list[Activation]:
    """The activations of `rule` that hold at `at`."""
    level = LEVEL_CODE[rule.level]
    active = []
    for since, clock, trigger in _triggers(rule, state, rules, at):
        end = trigger_end(rule, clock, state, at)
        if since <= at < end:
            active.append(Activation(rule.id, level, since, end, _evidence(trigger)))
    return active


def exposure_points(rule: PointsRule, exposure: Exposure, infectious_before_days: int) -> int:
    """An exposure's weighted minutes in thousandths (each day's term rounded half to even)."""
    kind_weight = rule.kind_weights.get(exposure.kind, 0.0)
    if not exposure.minutes_by_day:
        return int(round(exposure.minutes * kind_weight * rule.unknown_day_weight * MILLI))
    total = 0
    for day, minutes in exposure.minutes_by_day:
        weight = rule.day_weight(day - infectious_before_days)
        total += int(round(minutes * kind_weight * weight * MILLI))
    return total


def points_live(rule: PointsRule, exposure: Exposure, at: int) -> bool:
    """True when an exposure counts towards the score at `at`."""
    return (
        not exposure.retracted
        and exposure.kind in rule.kind_weights
        and exposure.effective_from <= at < exposure.last_at + rule.window
    )


def points_activations(rule: PointsRule, state: PersonState, rules: RuleSet, at: int) -> list[Activation]:
    """One activation per threshold the score reaches at `at`, ending when expiring exposures drop it below."""
    before_days = rules.case.infectious_before // 86400
    live = [
        (exposure.last_at + rule.window, exposure.effective_from, exposure_points(rule, exposure, before_days))
        for exposure in state.exposures.values()
        if points_live(rule, exposure, at)
    ]
    score = sum(points for _, _, points in live)
    live.sort()
    active = []
    for level, threshold in (("yellow", rule.thresholds.yellow), ("red", rule.thresholds.red)):
        if threshold is None:
            continue
        needed = int(round(threshold * MILLI))
        if score < needed:
            continue
        remaining, end = score, live[-1][0]
        for expires, _, points in live:
            remaining -= points
            if remaining < needed:
                end = expires
                break
        evidence = {
            "signal": "weighted_minutes",
            "score": score / MILLI,
            "threshold": threshold,
            "exposures": len(live),
        }
        active.append(Activation(rule.id, LEVEL_CODE[level], min(first for _, first, _ in live), end, evidence))
    return active


def activations(state: PersonState, rules: RuleSet, at: int) -> list[Activation]:
    """Every activation that holds at `at`, in rule-file order."""
    found: list[Activation] = []
    for rule in rules.rules:
        found += rule_activations(rule, state, rules, at)
    for points in rules.points_rules:
        found += points_activations(points, state, rules, at)
    return found


def _activation_order(activation: Activation) -> tuple:
    # A total order, so the evidence list does not depend on the order facts arrived in.
    return (activation.since, activation.end, sorted((key, str(value)) for key, value in activation.evidence.items()))


def _reasons(active: list[Activation]) -> tuple[Reason, ...]:
    by_rule: dict[str, list[Activation]] = {}
    for activation in active:
        by_rule.setdefault(activation.rule, []).append(activation)
    reasons = []
    for rule_id, items in by_rule.items():
        top = max(item.level for item in items)
        chosen = sorted((item for item in items if item.level == top), key=_activation_order)
        reasons.append(
            Reason(
                rule=rule_id,
                level=LEVELS[top],
                since=min(item.since for item in chosen),
                until=max(item.end for item in chosen),
                evidence=tuple(item.evidence for item in chosen),
            )
        )
    order = {rule_id: index for index, rule_id in enumerate(by_rule)}
    return tuple(sorted(reasons, key=lambda reason: (-LEVEL_CODE[reason.level], order[reason.rule])))


def _next_change(active: list[Activation], level: int) -> int | None:
    for end in sorted({activation.end for activation in active}):
        after = max((a.level for a in active if a.end > end), default=0)
        if after != level:
            return end
    return None


def assess(state: PersonState, rules: RuleSet, at: int) -> Assessment:
    """The person's level at event time `at` under `rules`, with every active reason."""
    active = activations(state, rules, at)
    level = max((activation.level for activation in active), default=0)
    return Assessment(at=at, level=LEVELS[level], reasons=_reasons(active), next_review_at=_next_change(active, level))


def level_holds(state: PersonState, rules: RuleSet, level: str, start: int, end: int, likely: str | None = None) -> bool:
    """True when the level is provably `level` at every moment of (start, end] (facts as in `state`).

    Exact, not a heuristic. With no test or visit becoming known in the span (only they
    can end an activation early: clearances, corrections), an activation at `start + 1`
    that lasts past `end` holds the level up; and no trigger known by `end` (nor a points
    score adding every exposure live in the span, weights being never negative) reaches
    higher. A settle over such a span finds nothing to report. `likely` is the id of an
    exposure to try first as the trigger holding the level up (the answer is the same).
    """
    if any(start < fact.known_at <= end for fact in state.tests.values()):
        return False
    if any(start < visit.at <= end for visit in state.visits.values()):
        return False
    code = LEVEL_CODE[level]
    if code > 0 and not _lasting(state, rules, code, start + 1, end, likely):
        return False
    return code == len(LEVELS) - 1 or highest_reachable(state, rules, start, end) <= code


def _lasting(state: PersonState, rules: RuleSet, code: int, at: int, end: int, likely: str | None = None) -> bool:
    """True when an activation at `at` of level `code` or higher lasts past `end`."""
    for rule in rules.rules:
        if LEVEL_CODE[rule.level] >= code and any(
            since <= at and max(at, end) < trigger_end(rule, clock, state, at)
            for since, clock, _ in _likely_first(rule, state, rules, at, likely)
        ):
            return True
    return any(
        activation.level >= code and activation.end > end
        for points in rules.points_rules
        for activation in points_activations(points, state, rules, at)
    )


def _likely_first(
    rule: Rule, state: PersonState, rules: RuleSet, at: int, likely: str | None
) -> Iterator[tuple[int, int, Trigger]]:
    """`_triggers`, the exposure `likely` first when it is one of them.

    A person in contact with a case all day is mostly held up by that very contact, whose
    record is being superseded: trying it first ends the proof without scanning the rest.
    """
    first = state.exposures.get(likely) if likely is not None else None
    if first is not None and exposure_counts(rule, first) and first.effective_from <= at:
        yield (first.effective_from, first.last_at, first)
    yield from _triggers(rule, state, rules, at)


def highest_reachable(state: PersonState, rules: RuleSet, start: int, end: int) -> int:
    """An upper bound of the level code in (start, end], when no test or visit becomes known in it."""
    high = 0
    for rule in rules.rules:
        code = LEVEL_CODE[rule.level]
        if code > high and any(
            max(since, start + 1) < trigger_end(rule, clock, state, end)
            for since, clock, _ in _triggers(rule, state, rules, end)
        ):
            high = code
    before_days = rules.case.infectious_before // 86400
    for points in rules.points_rules:
        total = sum(
            exposure_points(points, exposure, before_days)
            for exposure in state.exposures.values()
            if not exposure.retracted
            and exposure.kind in points.kind_weights
            and exposure.effective_from <= end
            and exposure.last_at + points.window > start + 1
        )
        for name, threshold in (("yellow", points.thresholds.yellow), ("red", points.thresholds.red)):
            if threshold is not None and total >= int(round(threshold * MILLI)):
                high = max(high, LEVEL_CODE[name])
    return high


def fact_times(state: PersonState) -> list[int]:
    """The event times at which the state's facts become known (sorted, distinct)."""
    times = {fact.known_at for fact in state.tests.values()}
    times |= {visit.at for visit in state.visits.values()}
    times |= {exposure.effective_from for exposure in state.exposures.values()}
    return sorted(times)


def timeline(
    state: PersonState, rules: RuleSet, start: int, end: int, level_before: str | None = None
) -> list[LevelChange]:
    """The level changes in (start, end], in time order, from the facts in `state`.

    Changes come from facts becoming known (their event times) and from decay
    (`next_review_at`), so each is exact to the second. With `level_before`, a change
    at `start` itself is reported too when the level there differs from it.
    """
    return timeline_to(state, rules, start, end, level_before)[0]


def timeline_to(
    state: PersonState,
    rules: RuleSet,
    start: int,
    end: int,
    level_before: str | None = None,
    level_at_start: str | None = None,
) -> tuple[list[LevelChange], Assessment]:
    """`timeline`, and the assessment in force at `end` (its `next_review_at` says when to look again).

    `level_at_start` continues from a level already established at `start` (reported
    before): nothing is reported at `start`, and later moments are compared with it.
    """
    current = assess(state, rules, start)
    changes = []
    if level_before is not None and current.level != level_before:
        changes.append(LevelChange(start, current.level, current.reasons))
    level = current.level if level_at_start is None else level_at_start
    following, in_force = continue_timeline(state, rules, current, level, start, end)
    return changes + following, in_force


def continue_timeline(
    state: PersonState, rules: RuleSet, current: Assessment, level: str, start: int, end: int
) -> tuple[list[LevelChange], Assessment]:
    """The level changes in (start, end] of a person at `level` at `start`.

    `current` is the assessment in force at `start`: one made there, or an earlier one
    kept by an owner that knows no fact became known in between (so it need not assess
    `start` again). Returns the changes and the assessment in force at `end`.
    """
    changes = []
    pending = [t for t in fact_times(state) if start < t <= end]
    index = 0
    while True:
        candidates = [current.next_review_at] if current.next_review_at is not None else []
        if index < len(pending):
            candidates.append(pending[index])
        moment = min(candidates, default=None)
        if moment is None or moment > end:
            return changes, current
        while index < len(pending) and pending[index] <= moment:
            index += 1
        following = assess(state, rules, moment)
        if following.level != level:
            changes.append(LevelChange(moment, following.level, following.reasons))
            level = following.level
        current = following
