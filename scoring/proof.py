"""Proofs that a person's status holds over a span, cheaper than settling it moment by moment.

A person in contact with cases gets a new exposure record every tick; mostly their level
and reasons stay as they are. `prove_status` shows that exactly (no test or visit becomes
known in the span, and every rule is settled on its own), and its `Proof` carries what it
found to the next span, so that a chain of records costs a comparison each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from scoring.assess import (
    MILLI,
    Status,
    Trigger,
    ends_after,
    exposure_counts,
    exposure_points,
    points_activations,
    trigger_end,
    triggers,
)
from scoring.exposure import Exposure
from scoring.rules import CASE, FEVER_CLINIC, LEVEL_CODE, PointsRule, Rule, RuleSet
from scoring.state import PersonState


def status_holds(
    state: PersonState, rules: RuleSet, status: Status, start: int, end: int, likely: str | None = None
) -> bool:
    """True when the level and the reason set are provably `status` at every moment of (start, end] (facts as in `state`).

    Exact, not a heuristic. With no test or visit becoming known in the span (only they
    can end an activation early: clearances, corrections), each rule is settled on its own:
    a rule among `status`'s reasons needs an activation at `start + 1` that lasts past
    `end`, any other no trigger known by `end` active at any moment of the span; a points
    rule may not reach another threshold either (its score adding every exposure live in
    the span, weights being never negative). A settle over such a span finds nothing to
    report. `likely` is the id of an exposure to try first as the trigger holding a reason
    up (the answer is the same).
    """
    return prove_status(state, rules, status, start, end, likely) is not None


@dataclass(slots=True)
class Proof:
    """What `prove_status` found over a span, kept so that the span after it is proved without a scan.

    A person in contact with cases gets a record per contact every tick, each proved over
    the span since the last; rescanning every exposure for every rule each time made the
    proofs cost exposures x records. Facts only grow between such spans (no test or visit
    in any of them), and an activation's end only comes earlier as more facts are known,
    so what was proved stays true as long as the exposure records it rests on are the
    ones held and every record taken since is told (`took`)."""

    status: Status
    through: int
    """The end of the span proved: the next span must start here."""
    lasting: dict[str, tuple[Trigger, int]]
    """Held rules: the trigger whose activation holds the rule up, and when that activation ends."""
    quiet: dict[str, int]
    """Rules not held: before this moment none of their triggers is active (the first moment an
    exposure trigger not known by `through` becomes known; a test or a visit ends the chain)."""
    next_fact: int = 0
    """The first moment after the span proved at which a test or a visit becomes known (a person
    event drops the proof, so later spans of the chain have the same one)."""
    horizon: int = 0
    """Spans ending before this are proved without looking at any rule or fact (`reckon`): every
    rule is answered by `lasting` or `quiet`, no points rule needs a scan, no test or visit comes."""

    def answers(self, state: PersonState, status: Status, start: int, end: int) -> bool:
        """True when the span (start, end] that follows this proof is proved by it without a scan
        (`prove_status` with it as `last` would share what it holds): the status is the same, the
        span ends before the horizon, and the records holding rules up are still the ones held."""
        return self.through == start < end < self.horizon and self.status == status and _all_held(state, self.lasting)

    @property
    def review(self) -> int | None:
        """A moment to look at the person again (None: none): nothing can change before the horizon,
        so it stands for a standing's review, early at worst (settling there may find no change)."""
        return None if self.horizon >= _NEVER else self.horizon

    def reckon(self, rules: RuleSet) -> "Proof":
        """Work out `horizon` from what is held (after a proof is made or told of a record)."""
        if rules.points_rules or len(self.lasting) + len(self.quiet) != len(rules.rules):
            self.horizon = self.through  # some rule must be looked at again: no span is answered
        else:
            self.horizon = min(self.next_fact, _NEVER, *[end for _, end in self.lasting.values()], *self.quiet.values())
        return self

    def took(self, rules: RuleSet, state: PersonState, exposure: Exposure) -> None:
        """`state` took `exposure` (a new record, or one superseding another) after this proof.

        The horizon is the least of the moments held: a moment that only comes earlier, or one
        replaced that was not the least, moves it without a recount (`reckon`), the common case
        (the contact holding a rule up grew by a tick)."""
        recount = False
        effective_from = exposure.effective_from
        for rule in rules.rules_of(exposure.kind):
            counts = exposure_counts(rule, exposure)
            if rule.id in self.quiet and counts:
                if effective_from > self.through:
                    self.quiet[rule.id] = min(self.quiet[rule.id], effective_from)
                    self.horizon = min(self.horizon, effective_from)
                else:  # known inside the span already proved: it must be looked at
                    del self.quiet[rule.id]
                    recount = True
            kept = self.lasting.get(rule.id)
            if kept is None or not isinstance(kept[0], Exposure) or kept[0].exposure_id != exposure.exposure_id:
                continue
            # The record holding the rule up was superseded, mostly by the next tick's of the same
            # contact: that one holds it up from the next span's start on when it counts and is known.
            at = self.through + 1
            if counts and effective_from <= at:
                end = trigger_end(rule, exposure.last_at, state, at)
                self.lasting[rule.id] = (exposure, end)
                if kept[1] > self.horizon:
                    self.horizon = min(self.horizon, end)
                else:
                    recount = True
            else:
                del self.lasting[rule.id]
                recount = True
        if recount:
            self.reckon(rules)


_NEVER = 2**62
"""A `Proof.quiet` moment that never comes: no trigger of the rule is waiting to become known."""


def prove_status(
    state: PersonState,
    rules: RuleSet,
    status: Status,
    start: int,
    end: int,
    likely: str | None = None,
    last: Proof | None = None,
) -> Proof | None:
    """`status_holds`, with what it proved (None: not proved); `last`, a proof of the same person
    under `rules` told of every record taken since, spares the exposure scans it still answers
    (within its `horizon`, every scan: the proof returned then shares what `last` held).

    It answers only for a span starting where it ended, with the same status: a held rule
    whose activation is the same trigger (the same exposure record) and still lasts past
    `end`, a rule not held none of whose triggers can be active before `end`. Tests and
    visits, the facts of the other triggers and of every clearance, are the same all
    along such a chain of spans: none becomes known in any of them (else it is not proved).
    """
    if last is not None and last.answers(state, status, start, end):
        # Every rule is answered as it was for the span before (a contact's record every tick, mostly):
        # the proof goes on with what `last` held (its owner drops `last`, see `People._prove`).
        return Proof(status, end, last.lasting, last.quiet, last.next_fact, last.horizon)
    if last is not None and (last.through != start or last.status != status or end < start + 1):
        last = None
    next_fact = min(
        (moment for moment in (*(f.known_at for f in state.tests.values()), *(v.at for v in state.visits.values()))
         if moment > start),
        default=_NEVER,
    )
    if next_fact <= end:
        return None
    level, reasons = status
    held, at, found = set(reasons), start + 1, 0
    lasting: dict[str, tuple[Trigger, int]] = {}
    quiet: dict[str, int] = {}
    for rule in rules.rules:
        if rule.id not in held:
            if last is not None and last.quiet.get(rule.id, end) > end:
                quiet[rule.id] = last.quiet[rule.id]
            elif _reachable(rule, state, rules, start, end):
                return None
            else:
                quiet[rule.id] = _NEVER if rule.signal in (CASE, FEVER_CLINIC) else _next_known(rule, state, end)
            continue
        kept = last.lasting.get(rule.id) if last is not None else None
        if kept is not None and kept[1] > end and _still_held(state, kept[0]):
            lasting[rule.id] = kept
        else:
            witness = _lasting(rule, state, rules, at, end, likely)
            if witness is None:
                return None
            _, clock, trigger = witness
            lasting[rule.id] = (trigger, trigger_end(rule, clock, state, at))
        found = max(found, LEVEL_CODE[rule.level])
    for points in rules.points_rules:
        high = _points_reachable(points, state, start, end, rules.case.infectious_before // 86400)
        if points.id not in held:
            if high > 0:
                return None
        elif not any(a.level == high and a.end > end for a in points_activations(points, state, rules, at)):
            return None  # it may lapse, or give another level, within the span
        else:
            found = max(found, high)
    if not (held <= rules.rule_ids and found == LEVEL_CODE[level]):
        return None
    return Proof(status, end, lasting, quiet, next_fact).reckon(rules)


def _lasting(
    rule: Rule, state: PersonState, rules: RuleSet, at: int, end: int, likely: str | None
) -> tuple[int, int, Trigger] | None:
    """A trigger of `rule` (since, clock, fact) whose activation at `at` lasts past `end` (None: there is none)."""
    last = max(at, end)
    return next(
        (
            trigger
            for trigger in _likely_first(rule, state, rules, at, likely)
            if trigger[0] <= at and ends_after(rule, trigger[1], state, at, last)
        ),
        None,
    )


def _all_held(state: PersonState, lasting: dict[str, tuple[Trigger, int]]) -> bool:
    """`_still_held` of every trigger holding a rule up (a loop: asked once per exposure record)."""
    for trigger, _ in lasting.values():
        if isinstance(trigger, Exposure) and state.exposures.get(trigger.exposure_id) is not trigger:
            return False
    return True


def _still_held(state: PersonState, trigger: Trigger) -> bool:
    """True when `trigger` is still among the state's facts (an exposure record may have been superseded)."""
    return not isinstance(trigger, Exposure) or state.exposures.get(trigger.exposure_id) is trigger


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
    yield from triggers(rule, state, rules, at)


def _reachable(rule: Rule, state: PersonState, rules: RuleSet, start: int, end: int) -> bool:
    """True when some trigger of `rule` may be active in (start, end] (no test or visit becoming known in it)."""
    return any(
        ends_after(rule, clock, state, end, max(since, start + 1)) for since, clock, _ in triggers(rule, state, rules, end)
    )


def _next_known(rule: Rule, state: PersonState, end: int) -> int:
    """The first moment after `end` at which an exposure trigger of `rule` becomes known (`_NEVER`: none)."""
    return min(
        (
            exposure.effective_from
            for exposure in state.exposures.values()
            if exposure.kind == rule.signal and exposure.effective_from > end and exposure_counts(rule, exposure)
        ),
        default=_NEVER,
    )


def _points_reachable(points: PointsRule, state: PersonState, start: int, end: int, before_days: int) -> int:
    """An upper bound of the level code `points` gives in (start, end]: every exposure live in it, summed."""
    total = sum(
        exposure_points(points, exposure, before_days)
        for exposure in state.exposures.values()
        if not exposure.retracted
        and exposure.kind in points.kind_weights
        and exposure.effective_from <= end
        and exposure.last_at + points.window > start + 1
    )
    high = 0
    for name, threshold in (("yellow", points.thresholds.yellow), ("red", points.thresholds.red)):
        if threshold is not None and total >= int(round(threshold * MILLI)):
            high = max(high, LEVEL_CODE[name])
    return high
