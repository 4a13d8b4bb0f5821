"""Pure assessment: a person's state, a rule set and an event time give a level and its reasons.

Only facts known at the event time `at` count (a result known later, a contact that
begins later, are ignored), so asking about any moment of the past or the present
gives the answer the system would have had then with everything that had arrived.

Every rule yields *activations*: intervals [since, end) during which a trigger gives
the rule's level. `end` is the earliest of the rule's window and its clearance
alternatives, computed from facts known at `at`; when it lies in the future it is the
`until` of the reason. The level is the highest active level. A timeline has a line
wherever the level or the set of active rules changes (`Status`); `next_review_at` is
the first `until` of a reason, the earliest moment either can change without a new fact,
so time-driven changes are exact to the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple

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


ReasonSet = tuple[str, ...]
"""The active reasons of a level: the ids of every rule that gives the person a level now (the
top level's and lower ones), in the order reasons are listed. Their `since`, `until` and
evidence are not part of it: an ongoing contact's record is re-issued every tick with a later
last contact, moving its reason's `until` each time, and a timeline line per such move would
be a record per contact per tick on `hc.codes`. Nor is the level a points rule gives while
another rule holds the person's level (the reason's own `level` field says it)."""

Status = tuple[str, ReasonSet]
"""What a timeline line states: the level and its reason set. A line is due where either changes."""


@dataclass(frozen=True, slots=True)
class Assessment:
    """A person's level at event time `at`, every reason for it, and when to look again."""

    at: int
    level: str
    reasons: tuple[Reason, ...]
    next_review_at: int | None
    """The earliest event time at which the level or a reason may change if no new event arrives
    (a reason lapses or the level its rule gives falls: the first `until` of a reason)."""

    @property
    def rule_ids(self) -> ReasonSet:
        return tuple(reason.rule for reason in self.reasons)

    @property
    def status(self) -> Status:
        return (self.level, self.rule_ids)

    @property
    def standing(self) -> "Standing":
        return Standing(self.at, self.status, self.next_review_at)

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
    """At event time `at` the level became `level`, or its set of active reasons became `reasons`' rules."""

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


def ends_after(rule: Rule, clock: int, state: PersonState, at: int, moment: int) -> bool:
    """`trigger_end(rule, clock, state, at) > moment`, computing only the clearances that could deny it.

    The proofs of `scoring.proof.status_holds` ask this of every trigger a person holds, once per
    exposure record: an alternative that waits `after` past the clock clears no earlier
    than that, so when that is past `moment` its tests and visits need not be looked at.
    """
    if clock + rule.window <= moment:
        return False
    for alternative in rule.clears:
        if alternative.after is not None and clock + alternative.after > moment:
            continue
        cleared = clearance_time(alternative, clock, state, at)
        if cleared is not None and cleared <= moment:
            return False
    return True


def exposure_counts(rule: Rule, exposure: Exposure) -> bool:
    """True when an exposure is a trigger of `rule` (kind, designation level, minutes)."""
    if exposure.retracted or exposure.kind != rule.signal:
        return False
    if rule.area_levels is not None and exposure.level not in rule.area_levels:
        return False
    return rule.minutes is None or rule.minutes.met_by(exposure.minutes)


def triggers(rule: Rule, state: PersonState, rules: RuleSet, at: int) -> Iterator[tuple[int, int, Trigger]]:
    """(since, clock, fact) of every trigger of `rule` known at `at` (evidence is built only for active ones).

    Lazily: the proofs of `scoring.proof.status_holds` stop at the first trigger that settles them, and a
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
    # The kind test comes first, inline: it rejects most exposures without a call, before
    # `effective_from` is computed.
    signal = rule.signal
    return (
        (exposure.effective_from, exposure.last_at, exposure)
        for exposure in state.exposures.values()
        if exposure.kind == signal and exposure_counts(rule, exposure) and exposure.effective_from <= at
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
    for since, clock, trigger in triggers(rule, state, rules, at):
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


def assess(state: PersonState, rules: RuleSet, at: int) -> Assessment:
    """The person's level at event time `at` under `rules`, with every active reason."""
    active = activations(state, rules, at)
    level = max((activation.level for activation in active), default=0)
    reasons = _reasons(active)
    # A reason's `until` is when the last of its rule's activations at the level it gives ends: until
    # the first of them, no rule lapses nor gives less, so neither the level nor the reason set changes.
    review = min((reason.until for reason in reasons if reason.until is not None), default=None)
    return Assessment(at=at, level=LEVELS[level], reasons=reasons, next_review_at=review)


class Standing(NamedTuple):
    """What an assessment states, without its reasons' evidence: what a settle compares and keeps.

    `assess` builds every active trigger's evidence and orders it; a settle compares only
    statuses, moment after moment, and looks at the reasons only where the status changed."""

    at: int
    status: Status
    next_review_at: int | None


def standing(state: PersonState, rules: RuleSet, at: int) -> Standing:
    """`assess(state, rules, at)`'s status and review, found without building its reasons."""
    held: list[tuple[int, int, str, int]] = []  # (-level, position, rule id, until), sorted as `_reasons` lists them
    for position, rule in enumerate(rules.rules):
        # A reason lasts until the last of its triggers ends. A trigger never ends earlier for a later
        # clock: its window starts later, and each clearance counts only what follows the clock (a
        # subset, so it completes no sooner). So the trigger of the latest clock ends last, and only its
        # clearances (a scan of the person's tests, once for each of a contact's dozens of records
        # before) are worked out: the other triggers are active until they end, it is active longest.
        clock = max((clock for since, clock, _ in triggers(rule, state, rules, at) if since <= at), default=None)
        if clock is not None and clock + rule.window > at:
            until = trigger_end(rule, clock, state, at)
            if at < until:
                held.append((-LEVEL_CODE[rule.level], position, rule.id, until))
    for position, points in enumerate(rules.points_rules, start=len(rules.rules)):
        active = points_activations(points, state, rules, at)
        if active:
            top = max(activation.level for activation in active)
            held.append((-top, position, points.id, max(a.end for a in active if a.level == top)))
    held.sort()
    level = -held[0][0] if held else 0
    review = min((until for *_, until in held), default=None)
    return Standing(at, (LEVELS[level], tuple(rule_id for _, _, rule_id, _ in held)), review)


def fact_times(state: PersonState) -> list[int]:
    """The event times at which the state's facts become known (sorted, distinct)."""
    times = {fact.known_at for fact in state.tests.values()}
    times |= {visit.at for visit in state.visits.values()}
    times |= {exposure.effective_from for exposure in state.exposures.values()}
    return sorted(times)


def timeline(
    state: PersonState, rules: RuleSet, start: int, end: int, before: Status | None = None
) -> list[LevelChange]:
    """The changes of level or of reason set in (start, end], in time order, from the facts in `state`.

    Changes come from facts becoming known (their event times) and from reasons lapsing
    (`next_review_at`), so each is exact to the second. With `before`, a change at `start`
    itself is reported too when the status there differs from it.
    """
    return timeline_to(state, rules, start, end, before)[0]


def timeline_to(
    state: PersonState,
    rules: RuleSet,
    start: int,
    end: int,
    before: Status | None = None,
    at_start: Status | None = None,
) -> tuple[list[LevelChange], Standing]:
    """`timeline`, and the standing in force at `end` (its `next_review_at` says when to look again).

    `at_start` continues from a status already established at `start` (reported
    before): nothing is reported at `start`, and later moments are compared with it.
    """
    current = standing(state, rules, start)
    changes = []
    if before is not None and current.status != before:
        changes.append(level_change(state, rules, start))
    status = current.status if at_start is None else at_start
    following, in_force = continue_timeline(state, rules, current, status, start, end)
    return changes + following, in_force


def continue_timeline(
    state: PersonState, rules: RuleSet, current: Standing, status: Status, start: int, end: int
) -> tuple[list[LevelChange], Standing]:
    """The changes in (start, end] of a person whose status at `start` is `status`.

    `current` is the standing in force at `start`: one found there, or an earlier one
    kept by an owner that knows no fact became known in between (so it need not assess
    `start` again). Returns the changes and the standing in force at `end`. Only the
    moments whose status changed are assessed in full (for their reasons).
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
        current = standing(state, rules, moment)
        if current.status != status:
            changes.append(level_change(state, rules, moment))
            status = current.status


def level_change(state: PersonState, rules: RuleSet, at: int) -> LevelChange:
    """The line for a moment whose status changed: its level and reasons, in full."""
    full = assess(state, rules, at)
    return LevelChange(at, full.level, full.reasons)
