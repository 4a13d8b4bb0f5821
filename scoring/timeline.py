"""Published timelines (contract version 3): bad news at once, good news when certain, the past corrected.

A person's records are read in the order they were published; each states the level
and its reasons from its moment `at` on and supersedes whatever an earlier record said
from that moment on. Folding them so gives the person's timeline; a record restating the
level and the set of active reasons already in force adds no line (`fold`; the set is the
ids of the rules giving a level, `scoring.assess.ReasonSet`: a record whose reasons differ
only in `since`, `until` or evidence is a restatement). Replay's timeline, a line per
change of level or of reason set, is the definition of the right answer: once the inputs
are complete, the fold of everything published equals it.

Two kinds of knowledge make the records (`Ledger` keeps both per person):
- the *settled* timeline: every change up to a moment before which no input can still
  arrive (the watermark; what replay computes). It may lower a level and it may differ
  from what was shown (a late input changed the past): then a superseding record states
  the settled level from the first moment the two differ (`corrections`).
- *early escalations*: a level that the facts already held raise at some moment after the
  settled one (`early_escalations`). More facts can only add to it, so
  it is shown at once; it is never lowered before the settled timeline reaches it. A reason
  starting or lapsing at the same level is not bad news: it follows the settled timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from scoring.assess import Status, assess, fact_times
from scoring.events import TestResult, Visit
from scoring.people import PersonChange
from scoring.rules import LEVEL_CODE, LEVELS, RuleSet
from scoring.exposure import Exposure
from scoring.state import PersonState, apply, apply_exposure
from scoring.timeutil import format_rfc3339, parse_rfc3339, to_epoch

TIMELINE_VERSION = 3
"""1: a record per level change, in time order. 2: records supersede from their moment on
(early escalations, corrections of the past); the fold of a person's records is the timeline.
3: also a record where the set of active reasons changes at the same level."""

GREEN = "green"
TOP = LEVELS[-1]

EntryKey = tuple[int, str, tuple[tuple[str, str, str | None], ...], str]
"""What a timeline line says: (at, level, reasons as (rule, since, until), rule set)."""


def change_key(change: PersonChange) -> EntryKey:
    """The line a change stands for."""
    reasons = tuple(
        (r.rule, format_rfc3339(r.since), None if r.until is None else format_rfc3339(r.until)) for r in change.reasons
    )
    return (change.at, change.level, reasons, change.rule_set)


def record_key(record: dict[str, Any]) -> EntryKey:
    """The line a published code record stands for (`streams.issuing.code_record`)."""
    reasons = tuple((r["rule"], r["since"], r["until"]) for r in record["reasons"])
    return (parse_rfc3339(record["assessed_at"]), record["level"], reasons, record["rule_set"])


@dataclass(frozen=True)
class Line:
    """One line of a timeline: what it says, and what it came from (a change, or a record read back)."""

    key: EntryKey
    source: Any

    @property
    def at(self) -> int:
        return self.key[0]

    @property
    def level(self) -> str:
        return self.key[1]

    @property
    def status(self) -> Status:
        """The level and the ids of the rules giving it: what a restatement leaves as it is."""
        return (self.key[1], tuple(reason[0] for reason in self.key[2]))


def fold(lines: list[Line], line: Line) -> None:
    """Apply one record to a person's timeline in place: it supersedes everything from its moment on."""
    while lines and lines[-1].at >= line.at:
        lines.pop()
    if lines and lines[-1].status == line.status:
        return  # a restatement: the level and reasons in force go on
    if not lines and line.level == GREEN:
        return  # nothing shown is green
    lines.append(line)


def level_at(lines: Sequence[Line], moment: int) -> str:
    """The level a timeline shows at `moment`."""
    level = GREEN
    for line in lines:
        if line.at > moment:
            break
        level = line.level
    return level


def corrections(
    person: str, shown: Sequence[Line], settled: Sequence[Line], through: int, start: int
) -> tuple[int | None, list[Any]]:
    """What to publish so that `shown` says what `settled` says up to `through`, from `start` on.

    Returns the first moment they differ (None: they agree) and what to publish, in order
    (`PersonChange`s, or records read back, see `Line.source`): the settled lines from
    that moment to `through` (the first a restatement of the settled level when settled
    has no line there), then every shown line after `through` that still raises the
    level (early escalations, kept).
    """
    mine = [line for line in shown if start <= line.at <= through]
    truth = [line for line in settled if start <= line.at <= through]
    index = 0
    while index < len(mine) and index < len(truth) and mine[index].key == truth[index].key:
        index += 1
    if index == len(mine) and index == len(truth):
        return None, []
    differ = min(lines[index].at for lines in (mine, truth) if index < len(lines))
    out: list[Any] = [line.source for line in truth if line.at >= differ]
    level = truth[-1].level if out else level_at(settled, differ)
    if not out or out[0].at != differ:
        before = [line.source for line in settled if line.at < differ]
        rule_set = (before or [line.source for line in truth] or [None])[-1]
        out.insert(0, replace(before[-1], at=differ) if before else PersonChange(
            person, differ, GREEN, (), rule_set.rule_set if rule_set is not None else _rule_set(shown)))
    for line in shown:
        if line.at > through and LEVEL_CODE[line.level] > LEVEL_CODE[level]:
            out.append(line.source)
            level = line.level
    return differ, out


def _rule_set(lines: Sequence[Line]) -> str:
    return lines[-1].key[3] if lines else ""


def early_escalations(
    shown: Sequence[Line], state: PersonState, pending: Iterable[Visit | TestResult],
    rules_at: Callable[[int], RuleSet], since: int, exposures: Iterable[Exposure] = (),
) -> list[PersonChange]:
    """The changes to publish now: the person's level, with the events not yet scored and the
    `exposures` a case not yet scored has already caused (`CityScorer.probe_case`) applied to
    their state, wherever from `since` on it is above what `shown` shows.

    A level rises only where a fact becomes known, so those moments are assessed, in time
    order (none where the top level is already shown). An escalation is followed by the
    shown lines after it that are higher still, stated again: a record supersedes
    everything from its moment on.
    """
    speculative = state
    for event in pending:
        speculative = apply(speculative, event, rules_at(to_epoch(event.ts)))
    for exposure in exposures:
        speculative = apply_exposure(speculative, exposure)
    lines = list(shown)
    out: list[PersonChange] = []
    for moment in fact_times(speculative):
        if moment < since or level_at(lines, moment) == TOP:
            continue
        rules = rules_at(moment)
        assessment = assess(speculative, rules, moment)
        if LEVEL_CODE[assessment.level] <= LEVEL_CODE[level_at(lines, moment)]:
            continue
        change = PersonChange(speculative.person, moment, assessment.level, assessment.reasons, rules.ref)
        after = [line for line in lines if line.at > moment]
        out.append(change)
        fold(lines, Line(change_key(change), change))
        for line in after:
            if LEVEL_CODE[line.level] > LEVEL_CODE[lines[-1].level]:
                out.append(line.source)
                fold(lines, line)
    return out


@dataclass
class Ledger:
    """Per person: what the published records show, and the settled timeline."""

    shown: dict[str, list[Line]] = field(default_factory=dict)
    settled: dict[str, list[Line]] = field(default_factory=dict)
    open_from: dict[str, int] = field(default_factory=dict)
    """Persons shown a line after their settled timeline: the earliest such moment."""

    def showing(self, person: str) -> list[Line]:
        return self.shown.get(person, [])

    def published(self, person: str, line: Line, settled_through: int) -> None:
        """A record was published."""
        fold(self.shown.setdefault(person, []), line)
        if line.at > settled_through:
            self.open_from[person] = min(self.open_from.get(person, line.at), line.at)

    def settle(self, change: PersonChange) -> None:
        """A change of the settled timeline."""
        fold(self.settled.setdefault(change.person, []), Line(change_key(change), change))

    def due(self, through: int) -> list[str]:
        """Persons shown a line after their settled timeline that it has now reached (see `reconciled`)."""
        reached = [person for person, moment in self.open_from.items() if moment <= through]
        for person in reached:
            del self.open_from[person]
        return reached

    def reconciled(self, person: str, through: int) -> None:
        """The person's shown timeline agrees with the settled one up to `through`: open from the
        first line shown after it, if any (a later early escalation is checked once reached too)."""
        later = [line.at for line in self.showing(person) if line.at > through]
        if later:
            self.open_from[person] = min(self.open_from.get(person, later[0]), later[0])
