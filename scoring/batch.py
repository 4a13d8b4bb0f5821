"""Vectorised rescoring: many persons' levels at once, equal to `scoring.assess.assess` person by person.

When a new rule set is published every person is rescored. `pack_states` turns the
states' fact records (`scoring.records`) into flat column arrays once (a person index
per fact, rule-set independent);
`rescore_packed` evaluates any rule set over them with numpy, following exactly the
semantics documented in `scoring.assess`: the same triggers, clock starts, windows,
clearance alternatives and integer points arithmetic. Only levels come out; persons
restricted before or after get their reasons from `assess` (`restricted_assessments`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from scoring.assess import MILLI, Assessment, assess
from scoring.exposure import AREA
from scoring.records import (
    AREA_LEVEL_CODE,
    DAY,
    EXPOSURE,
    FACT_DTYPE,
    TEST,
    TEST_CODE,
    VISIT,
    VISIT_CODE,
    kind_hash,
)
from scoring.rules import CASE, FEVER_CLINIC, LEVEL_CODE, Clearance, PointsRule, Rule, RuleSet
from scoring.state import PersonState

NEVER = np.iinfo(np.int64).max
_KEY_SPAN = 2**32


class SpanTooWide(ValueError):
    """Facts too far apart in time for `pack_states` to pack their times into one int64 key."""


@dataclass(frozen=True)
class PackedStates:
    """Facts of many persons as columns; `*_person` is the index of the person in the batch."""

    size: int
    test_person: np.ndarray
    test_sampled: np.ndarray
    test_known: np.ndarray
    test_kind: np.ndarray
    test_positive: np.ndarray
    visit_person: np.ndarray
    visit_at: np.ndarray
    visit_kind: np.ndarray
    exposure_person: np.ndarray
    exposure_kind: np.ndarray
    """`scoring.records.kind_hash` of the exposure kind."""
    exposure_known: np.ndarray
    exposure_last: np.ndarray
    exposure_minutes: np.ndarray
    exposure_area_level: np.ndarray
    exposure_retracted: np.ndarray
    exposure_has_days: np.ndarray
    day_exposure: np.ndarray
    day_offset: np.ndarray
    day_minutes: np.ndarray
    base: int
    """All times are stored minus `base`, so (person, time) pairs pack into one int64 key."""


def pack_states(states: Sequence[PersonState]) -> PackedStates:
    """Column arrays of every fact of `states`, read from their `scoring.records` bytes."""
    blobs = [state.fact_records() for state in states]
    counts = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs)) // FACT_DTYPE.itemsize
    facts = np.frombuffer(b"".join(blobs), dtype=FACT_DTYPE)
    owner = np.repeat(np.arange(len(states), dtype=np.int64), counts)
    what = facts["what"]
    tests, visits, exposures, days = (what == TEST), (what == VISIT), (what == EXPOSURE), (what == DAY)
    times = np.concatenate([facts["t1"][~days], facts["t2"][~days]])
    base = int(times.min()) - 1 if times.size else 0
    if times.size and int(times.max()) - base >= _KEY_SPAN:
        raise SpanTooWide("the facts of this batch span more than 136 years: cannot pack their times")
    exposure_index = np.cumsum(exposures) - 1
    return PackedStates(
        size=len(states),
        test_person=owner[tests],
        test_sampled=facts["t1"][tests] - base,
        test_known=facts["t2"][tests] - base,
        test_kind=facts["code"][tests].astype(np.int8),
        test_positive=facts["flag"][tests].astype(bool),
        visit_person=owner[visits],
        visit_at=facts["t1"][visits] - base,
        visit_kind=facts["code"][visits].astype(np.int8),
        exposure_person=owner[exposures],
        exposure_kind=facts["kind"][exposures],
        exposure_known=facts["t1"][exposures] - base,
        exposure_last=facts["t2"][exposures] - base,
        exposure_minutes=facts["minutes"][exposures],
        exposure_area_level=facts["area"][exposures],
        exposure_retracted=facts["flag"][exposures].astype(bool),
        exposure_has_days=facts["code"][exposures] > 0,
        day_exposure=exposure_index[days],
        day_offset=facts["t1"][days],
        day_minutes=facts["minutes"][days],
        base=base,
    )


def _key(person: np.ndarray, time: np.ndarray) -> np.ndarray:
    return person * _KEY_SPAN + time


class _Evaluation:
    """One rule set over one packed batch at one event time (times relative to `base`)."""

    def __init__(self, packed: PackedStates, rules: RuleSet, at: int) -> None:
        self.packed = packed
        self.rules = rules
        self.at = at - packed.base
        self.levels = np.zeros(packed.size, dtype=np.int8)
        visits_known = packed.visit_at <= self.at
        recovery = visits_known & (packed.visit_kind == VISIT_CODE["recovery"])
        order = np.argsort(_key(packed.visit_person[recovery], packed.visit_at[recovery]), kind="stable")
        self.recovery_person = packed.visit_person[recovery][order]
        self.recovery_at = packed.visit_at[recovery][order]
        self.recovery_key = _key(self.recovery_person, self.recovery_at)
        self.negative = (~packed.test_positive) & (packed.test_known <= self.at)

    def raise_level(self, person: np.ndarray, code: int) -> None:
        """Persons in `person` get at least level `code`."""
        self.levels[person] = np.maximum(self.levels[person], code)

    def first_recovery(self, person: np.ndarray, clock: np.ndarray) -> np.ndarray:
        """Per trigger: the first known recovery visit at or after `clock`, else NEVER."""
        found = np.full(person.size, NEVER, dtype=np.int64)
        if self.recovery_key.size == 0:
            return found
        index = np.searchsorted(self.recovery_key, _key(person, clock), side="left")
        inside = index < self.recovery_key.size
        index = np.where(inside, index, 0)
        hit = inside & (self.recovery_person[index] == person)
        found[hit] = self.recovery_at[index[hit]]
        return found

    def negatives_done(self, person: np.ndarray, clock: np.ndarray, count: int, apart: int, tests: list[str]) -> np.ndarray:
        """Per trigger: when `count` negatives sampled at/after `clock`, `apart` apart, were known; else NEVER."""
        packed = self.packed
        kinds = np.isin(packed.test_kind, [TEST_CODE[test] for test in tests])
        chosen = np.flatnonzero(self.negative & kinds)
        order = np.lexsort((packed.test_sampled[chosen], packed.test_known[chosen], packed.test_person[chosen]))
        chosen = chosen[order]
        owner = packed.test_person[chosen]
        sampled, known = packed.test_sampled[chosen], packed.test_known[chosen]
        start = np.searchsorted(owner, person, side="left")
        length = np.searchsorted(owner, person, side="right") - start
        done = np.full(person.size, NEVER, dtype=np.int64)
        for width in np.unique(length[length >= count]):
            rows = np.flatnonzero(length == width)
            cells = start[rows, None] + np.arange(width)
            samples = np.where(sampled[cells] >= clock[rows, None], sampled[cells], NEVER)
            done[rows] = _earliest_chain(samples, known[cells], count, apart)
        return done

    def clearance(self, alternative: Clearance, person: np.ndarray, clock: np.ndarray) -> np.ndarray:
        """Per trigger: when this alternative clears it, else NEVER."""
        cleared = np.full(person.size, -NEVER, dtype=np.int64)
        if alternative.after is not None:
            cleared = np.maximum(cleared, clock + alternative.after)
        if alternative.recovery:
            cleared = np.maximum(cleared, self.first_recovery(person, clock))
        wanted = alternative.negative_tests
        if wanted is not None:
            cleared = np.maximum(cleared, self.negatives_done(person, clock, wanted.count, wanted.apart, wanted.tests))
        return cleared

    def apply_rule(self, rule: Rule) -> None:
        """Raise the level of every person with an active trigger of `rule`."""
        person, since, clock = self.triggers(rule)
        end = clock + rule.window
        for alternative in rule.clears:
            end = np.minimum(end, self.clearance(alternative, person, clock))
        active = (since <= self.at) & (self.at < end)
        self.raise_level(person[active], LEVEL_CODE[rule.level])

    def triggers(self, rule: Rule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(person, since, clock) of every trigger of `rule` known at the evaluation time."""
        packed = self.packed
        if rule.signal == CASE:
            return self.case_triggers()
        if rule.signal == FEVER_CLINIC:
            rows = (packed.visit_kind == VISIT_CODE["fever_clinic"]) & (packed.visit_at <= self.at)
            return packed.visit_person[rows], packed.visit_at[rows], packed.visit_at[rows]
        rows = (
            (packed.exposure_kind == kind_hash(rule.signal))
            & ~packed.exposure_retracted
            & (packed.exposure_known <= self.at)
        )
        if rule.signal == AREA and rule.area_levels is not None:
            rows &= np.isin(packed.exposure_area_level, [AREA_LEVEL_CODE[level] for level in rule.area_levels])
        if rule.minutes is not None and rule.minutes.at_least is not None:
            rows &= packed.exposure_minutes >= rule.minutes.at_least
        elif rule.minutes is not None and rule.minutes.more_than is not None:
            rows &= packed.exposure_minutes > rule.minutes.more_than
        return packed.exposure_person[rows], packed.exposure_known[rows], packed.exposure_last[rows]

    def case_triggers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Uncorrected positive tests and diagnoses known at the evaluation time."""
        packed, case = self.packed, self.rules.case
        positive = (
            packed.test_positive
            & np.isin(packed.test_kind, [TEST_CODE[test] for test in case.positive_tests])
            & (packed.test_known <= self.at)
        )
        rows = np.flatnonzero(positive)
        if case.corrected_by_negative_pcr_on_same_sample:
            rows = rows[~self.corrected(rows)]
        persons = [packed.test_person[rows]]
        since = [packed.test_known[rows]]
        clock = [packed.test_sampled[rows]]
        if case.diagnosis:
            diagnosed = (packed.visit_kind == VISIT_CODE["diagnosis"]) & (packed.visit_at <= self.at)
            persons.append(packed.visit_person[diagnosed])
            since.append(packed.visit_at[diagnosed])
            clock.append(packed.visit_at[diagnosed])
        return np.concatenate(persons), np.concatenate(since), np.concatenate(clock)

    def corrected(self, rows: np.ndarray) -> np.ndarray:
        """Per positive test row: a later negative PCR on the same sample is known."""
        packed = self.packed
        negative = np.flatnonzero(self.negative & (packed.test_kind == TEST_CODE["pcr"]))
        keys = _key(packed.test_person[negative], packed.test_sampled[negative])
        order = np.lexsort((packed.test_known[negative], keys))
        keys, latest = keys[order], packed.test_known[negative][order]
        wanted = _key(packed.test_person[rows], packed.test_sampled[rows])
        high = np.searchsorted(keys, wanted, side="right")
        low = np.searchsorted(keys, wanted, side="left")
        last = latest[np.maximum(high - 1, 0)] if latest.size else np.zeros(rows.size, dtype=np.int64)
        return (high > low) & (last > packed.test_known[rows])

    def apply_points(self, rule: PointsRule) -> None:
        """Raise the level of every person whose weighted minutes reach a threshold."""
        packed = self.packed
        kind_weight = np.zeros(packed.exposure_kind.size, dtype=np.float64)
        known_kind = np.zeros(packed.exposure_kind.size, dtype=bool)
        for kind, weight in rule.kind_weights.items():
            rows = packed.exposure_kind == kind_hash(kind)
            kind_weight[rows] = weight
            known_kind |= rows
        live = (
            known_kind
            & ~packed.exposure_retracted
            & (packed.exposure_known <= self.at)
            & (self.at < packed.exposure_last + rule.window)
        )
        points = np.where(
            packed.exposure_has_days,
            0,
            np.rint(packed.exposure_minutes * kind_weight * rule.unknown_day_weight * MILLI).astype(np.int64),
        )
        onset_day = packed.day_offset - self.rules.case.infectious_before // 86400
        day_weight = np.full(onset_day.size, rule.other_days_weight, dtype=np.float64)
        for span in rule.infectiousness:
            day_weight[(onset_day >= span.days[0]) & (onset_day <= span.days[1])] = span.weight
        terms = np.rint(packed.day_minutes * kind_weight[packed.day_exposure] * day_weight * MILLI).astype(np.int64)
        points = points + np.bincount(packed.day_exposure, weights=terms, minlength=points.size).astype(np.int64)
        score = np.bincount(
            packed.exposure_person[live], weights=points[live], minlength=packed.size
        ).astype(np.int64)
        for level, threshold in (("yellow", rule.thresholds.yellow), ("red", rule.thresholds.red)):
            if threshold is not None:
                self.raise_level(np.flatnonzero(score >= int(round(threshold * MILLI))), LEVEL_CODE[level])


def _earliest_chain(samples: np.ndarray, known: np.ndarray, count: int, apart: int) -> np.ndarray:
    """Per row: known time of the first prefix (in known order) holding `count` samples `apart` apart.

    `samples` holds NEVER where a result does not qualify. Mirrors
    `scoring.assess.earliest_negatives` row by row.
    """
    rows, width = samples.shape
    done = np.full(rows, NEVER, dtype=np.int64)
    for prefix in range(width):
        if count == 1:
            hit = samples[:, prefix] != NEVER
        else:
            ordered = np.sort(samples[:, : prefix + 1], axis=1)
            chain = np.zeros(rows, dtype=np.int64)
            last = np.zeros(rows, dtype=np.int64)
            for column in range(prefix + 1):
                value = ordered[:, column]
                take = (value != NEVER) & ((chain == 0) | (value - last >= apart))
                chain += take
                last = np.where(take, value, last)
            hit = chain >= count
        fresh = hit & (done == NEVER)
        done[fresh] = known[fresh, prefix]
    return done


def rescore_packed(packed: PackedStates, rules: RuleSet, at: int) -> np.ndarray:
    """Level codes (0 green, 1 yellow, 2 red; see `scoring.rules.LEVELS`) at event time `at`."""
    evaluation = _Evaluation(packed, rules, at)
    for rule in rules.rules:
        evaluation.apply_rule(rule)
    for points in rules.points_rules:
        evaluation.apply_points(points)
    return evaluation.levels


def rescore(states: Sequence[PersonState], rules: RuleSet, at: int) -> np.ndarray:
    """Level codes of every state at event time `at`, equal to `assess(state, rules, at).level`.

    Facts spanning more than packing holds (only with event-time limits switched off,
    see `scoring.limits`) are assessed person by person: slower, never wrong.
    """
    try:
        packed = pack_states(states)
    except SpanTooWide:
        return np.array([LEVEL_CODE[assess(state, rules, at).level] for state in states], dtype=np.int8)
    return rescore_packed(packed, rules, at)


def restricted_assessments(
    states: Sequence[PersonState], rules: RuleSet, at: int, levels: np.ndarray, previous: np.ndarray
) -> dict[int, Assessment]:
    """Full assessments (with reasons) of the persons not green at `levels` or at `previous`.

    The others are green under both with no reason; these may keep their level and still
    change their reasons (rules of another id), which only an assessment tells."""
    return {int(index): assess(states[index], rules, at) for index in np.flatnonzero((levels > 0) | (previous > 0))}
