"""Rule sets: versioned, validated data that say which signals give which level and how it clears.

A rule set is a YAML file (`rules/*.yaml`). Its structure is checked by pydantic, its
meaning by `_check` (unknown signals, a window shorter than its clearance, conditions
that can never be met). Every problem names the file, the path inside it and what is
wrong, for example ``rules/x.yaml: rules[1].clears[0].after: 21d is longer than the
rule's window 14d ...``.

The engine knows these signals, and nothing about any particular policy:

- ``case``: a positive test (of the types `case.positive_tests`) or a diagnosis visit;
- ``fever_clinic``: a fever clinic visit;
- ``area``: an area exposure (presence in a designated area while it held);
- every contact kind defined under ``contacts`` (e.g. ``close_contact``,
  ``companion``): an exposure of that kind reported by presence detection.

Each trigger has a *clock start* (a positive test: its sample time; a visit: its time;
an exposure: its last contact) from which `window` and `after` are measured, and a
*since* (when the system learns of it: the result time, the visit, the first contact).
Clearance conditions are ``after`` (elapsed since the clock start), ``negative_tests``
(N negative results sampled at or after the clock start, at least H apart) and
``recovery`` (a recovery visit at or after the clock start); the conditions of one
alternative must all hold, any alternative clears.

`RuleSet.valid_from` is integer epoch seconds (UTC).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from scoring.exposure import AREA, ContactSpec
from scoring.timeutil import format_duration, parse_duration, parse_rfc3339, to_epoch

if TYPE_CHECKING:
    from scoring.exposure import CaseWindow
    from scoring.state import PersonState

LEVELS: tuple[str, ...] = ("green", "yellow", "red")
"""Levels in increasing order of restriction; a level's code is its index."""
LEVEL_CODE: dict[str, int] = {name: code for code, name in enumerate(LEVELS)}

CASE = "case"
FEVER_CLINIC = "fever_clinic"
BUILTIN_SIGNALS: tuple[str, ...] = (CASE, FEVER_CLINIC, AREA)

_ID = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def _duration(value: Any) -> Any:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return parse_duration(value)
    return value


def _epoch(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_epoch(value)
    if isinstance(value, str):
        return parse_rfc3339(value)
    return value


Duration = Annotated[int, BeforeValidator(_duration), Field(ge=0)]
"""A duration such as `15m`, `24h`, `14d`, held as seconds."""
EpochTime = Annotated[int, BeforeValidator(_epoch)]
Identifier = Annotated[str, Field(pattern=_ID.pattern)]
TestKind = Literal["pcr", "antigen"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Model):
    """A public source a rule or the rule set follows."""

    title: str
    url: str | None = None


class CaseDefinition(_Model):
    """Who counts as a case, and when their presence is infectious."""

    description: str = ""
    positive_tests: list[TestKind] = Field(default_factory=lambda: ["pcr", "antigen"], min_length=1)
    diagnosis: bool = True
    """A `diagnosis` visit (clinically confirmed case) makes a case too."""
    infectious_before: Duration = 2 * 86400
    """The infectious window opens this long before the sample (or the diagnosis)."""
    isolation_after: Duration = 0
    """The window closes this long after the case is confirmed (result known, diagnosis)."""
    corrected_by_negative_pcr_on_same_sample: bool = True
    """A later negative PCR result on the same sample withdraws a positive result."""


class ContactDefinition(_Model):
    """How presence detection finds one kind of contact (see `scoring.exposure.ContactSpec`)."""

    description: str = ""
    resolution: int = Field(ge=0, le=15)
    max_gap: Duration
    include_neighbours: bool = False
    lookback: Duration


class Minutes(_Model):
    """A co-presence threshold: `at_least` (>=) or `more_than` (>) minutes in total."""

    at_least: float | None = Field(default=None, ge=0)
    more_than: float | None = Field(default=None, ge=0)

    def met_by(self, minutes: float) -> bool:
        """True when `minutes` of co-presence reach this threshold."""
        if self.at_least is not None:
            return minutes >= self.at_least
        return self.more_than is None or minutes > self.more_than

    def describe(self) -> str:
        """The threshold in words, e.g. `at least 15 min`."""
        if self.at_least is not None:
            return f"at least {self.at_least:g} min"
        return f"more than {self.more_than:g} min" if self.more_than is not None else "any time"


def _spacing_words(seconds: int) -> str:
    # Test spacing reads naturally in hours ("24h"), long spans in days.
    if seconds % 3600 == 0 and seconds < 3 * 86400:
        return f"{seconds // 3600}h"
    return format_duration(seconds)


class NegativeTests(_Model):
    """`count` negative results of `tests`, sampled at least `apart` from one another."""

    count: int = Field(default=1, ge=1, le=16)
    apart: Duration = 0
    tests: list[TestKind] = Field(default_factory=lambda: ["pcr"], min_length=1)

    def describe(self) -> str:
        """The condition in words."""
        kinds = " or ".join(t.upper() if t == "pcr" else t for t in self.tests)
        if self.count == 1:
            return f"a negative {kinds} test"
        noun = "tests"
        spacing = f" at least {_spacing_words(self.apart)} apart" if self.apart and self.count > 1 else ""
        return f"{self.count} negative {kinds} {noun}{spacing}"


class Clearance(_Model):
    """One way a rule clears: every condition given here must hold."""

    after: Duration | None = None
    negative_tests: NegativeTests | None = None
    recovery: bool = False

    def describe(self, anchor: str) -> str:
        """The alternative in words, to follow "clears", e.g. `7d after the last contact`."""
        parts = []
        if self.after is not None:
            parts.append(f"{format_duration(self.after)} after {anchor}")
        if self.negative_tests is not None:
            parts.append(f"with {self.negative_tests.describe()} taken after {anchor}")
        if self.recovery:
            parts.append("on a recovery visit")
        return ", ".join(parts)


class Rule(_Model):
    """A signal seen within `window` gives `level` until it clears."""

    id: Identifier
    description: str = ""
    signal: str
    level: Literal["yellow", "red"]
    window: Duration
    """The longest a trigger lasts, from its clock start; also how long it is remembered."""
    minutes: Minutes | None = None
    """For contact kinds: the co-presence needed (exposures below it are recorded, not acted on)."""
    area_levels: list[Literal["medium", "high"]] | None = None
    """For `area`: the designation levels that count (all when omitted)."""
    clears: list[Clearance] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)


class DayRange(_Model):
    """Days since onset (or sampling), inclusive range, and their infectiousness weight."""

    days: tuple[int, int]
    weight: float = Field(ge=0)


class Thresholds(_Model):
    """Weighted-minute scores at which a points rule gives yellow and red."""

    yellow: float | None = Field(default=None, gt=0)
    red: float | None = Field(default=None, gt=0)


class PointsRule(_Model):
    """Exposure-notification style risk score: weighted co-presence minutes against thresholds.

    score = sum over live exposures and days of minutes x kind weight x infectiousness weight
    of that day since the case's onset. An exposure is live from its first contact until
    `window` after its last contact. Days since onset are the exposure's day offsets
    (from the case's `infectious_from`) minus the whole days of `case.infectious_before`.
    """

    id: Identifier
    description: str = ""
    window: Duration
    kind_weights: dict[str, float]
    infectiousness: list[DayRange] = Field(default_factory=list)
    other_days_weight: float = Field(default=0.0, ge=0)
    """The weight of days since onset not listed in `infectiousness`."""
    unknown_day_weight: float = Field(default=1.0, ge=0)
    """The weight of minutes an exposure reports without a per-day breakdown."""
    thresholds: Thresholds
    sources: list[Source] = Field(default_factory=list)

    def day_weight(self, days_since_onset: int) -> float:
        """The infectiousness weight of a day relative to onset."""
        for span in self.infectiousness:
            if span.days[0] <= days_since_onset <= span.days[1]:
                return span.weight
        return self.other_days_weight


class RuleSetModel(_Model):
    """The YAML document as written (durations already in seconds)."""

    id: Identifier
    version: Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$")]
    valid_from: EpochTime
    description: str
    sources: list[Source] = Field(default_factory=list)
    levels: dict[Literal["green", "yellow", "red"], str] = Field(default_factory=dict)
    case: CaseDefinition = Field(default_factory=CaseDefinition)
    contacts: dict[Identifier, ContactDefinition] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    points_rules: list[PointsRule] = Field(default_factory=list)


class Problem(BaseModel):
    """One thing wrong with a rule set file."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class RuleSetError(ValueError):
    """A rule set that cannot be used; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def format_location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _anchor_words(signal: str) -> str:
    if signal == CASE:
        return "the positive sample (or diagnosis)"
    if signal == FEVER_CLINIC:
        return "the visit"
    if signal == AREA:
        return "leaving the area"
    return "the last contact"


class RuleSet:
    """A validated rule set; build it with `load_rule_set` or `RuleSet.from_yaml_text`."""

    def __init__(self, model: RuleSetModel, source_name: str) -> None:
        self.model = model
        self.source_name = source_name

    @classmethod
    def from_yaml_text(cls, text: str, source_name: str = "<rules>") -> "RuleSet":
        """Parse and validate YAML text; raises `RuleSetError` naming `source_name`."""
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise RuleSetError([Problem(file=source_name, path="", message=f"not valid YAML: {error}")]) from None
        return cls.from_mapping(document, source_name)

    @classmethod
    def from_mapping(cls, document: Any, source_name: str = "<rules>") -> "RuleSet":
        """Validate an already parsed document; raises `RuleSetError`."""
        if not isinstance(document, dict):
            raise RuleSetError([Problem(file=source_name, path="", message="a rule set must be a YAML mapping")])
        try:
            model = RuleSetModel.model_validate(document)
        except ValidationError as error:
            problems = [
                Problem(file=source_name, path=format_location(item["loc"]), message=item["msg"])
                for item in error.errors(include_url=False)
            ]
            raise RuleSetError(problems) from None
        problems = [Problem(file=source_name, path=path, message=message) for path, message in _check(model)]
        if problems:
            raise RuleSetError(problems)
        return cls(model, source_name)

    @property
    def id(self) -> str:
        return self.model.id

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def ref(self) -> str:
        """`id@version`, the `rule_set` field of every code."""
        return f"{self.model.id}@{self.model.version}"

    @property
    def valid_from(self) -> int:
        """Event time (epoch seconds, UTC) from which this rule set applies."""
        return self.model.valid_from

    @property
    def rules(self) -> list[Rule]:
        return self.model.rules

    @property
    def points_rules(self) -> list[PointsRule]:
        return self.model.points_rules

    @property
    def case(self) -> CaseDefinition:
        return self.model.case

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of the rule set: equal meaning and wording, equal hash.

        Comments, key order and YAML formatting do not change it.
        """
        canonical = orjson.dumps(self.model.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()

    @cached_property
    def retention_s(self) -> int:
        """The longest time anything is needed: rule windows and contact lookbacks.

        Presence and person facts older than this (measured from their clock start)
        can no longer change any level and are deleted.
        """
        spans = [rule.window for rule in self.rules] + [rule.window for rule in self.points_rules]
        spans += [contact.lookback for contact in self.model.contacts.values()]
        return max(spans)

    @cached_property
    def rule_ids(self) -> frozenset[str]:
        """The ids of every rule and points rule (a person's reasons name only these)."""
        return frozenset(rule.id for rule in self.rules) | frozenset(points.id for points in self.points_rules)

    def rules_of(self, signal: str) -> list[Rule]:
        """The rules triggered by `signal`, in file order (asked once per exposure record)."""
        return self._rules_by_signal.get(signal, [])

    @cached_property
    def _rules_by_signal(self) -> dict[str, list[Rule]]:
        by_signal: dict[str, list[Rule]] = {}
        for rule in self.rules:
            by_signal.setdefault(rule.signal, []).append(rule)
        return by_signal

    @cached_property
    def _exposures_counted(self) -> frozenset[tuple[str, str | None]]:
        # (kind, designation level) pairs some rule can count; None stands for every level.
        counted = {(rule.signal, None) for rule in self.rules if rule.area_levels is None}
        counted |= {(rule.signal, level) for rule in self.rules if rule.area_levels for level in rule.area_levels}
        counted |= {(kind, None) for points in self.points_rules for kind in points.kind_weights}
        return frozenset(counted)

    def counts_exposure(self, kind: str, level: str | None) -> bool:
        """True when some rule could count an exposure of `kind` (of an area designated at `level`).

        Presence finds every kind and level it can; an exposure no rule counts (a medium
        designation under rules that count only high ones) can never change a level.
        """
        return (kind, None) in self._exposures_counted or (kind, level) in self._exposures_counted

    def contact_specs(self) -> list[ContactSpec]:
        """One `ContactSpec` per contact kind this rule set defines, in file order."""
        return [
            ContactSpec(
                kind=kind,
                resolution=spec.resolution,
                max_gap_s=spec.max_gap,
                include_neighbours=spec.include_neighbours,
                lookback_s=spec.lookback,
            )
            for kind, spec in self.model.contacts.items()
        ]

    def case_windows(self, state: "PersonState", at: int) -> "list[CaseWindow]":
        """The person's case windows at event time `at` (see `scoring.cases.case_windows`)."""
        from scoring.cases import case_windows

        return case_windows(state, self, at)

    @staticmethod
    def anchor_words(signal: str) -> str:
        """What a rule's clock starts at, in words."""
        return _anchor_words(signal)

    def __repr__(self) -> str:
        return f"RuleSet({self.ref}, {self.content_hash[:12]})"


def load_rule_set(path: str | Path) -> RuleSet:
    """Read and validate a rule set file; raises `RuleSetError` (or `OSError` if unreadable)."""
    path = Path(path)
    return RuleSet.from_yaml_text(path.read_text(encoding="utf-8"), str(path))


def _check_clearance(rule: Rule, where: str) -> list[tuple[str, str]]:
    problems = []
    window = format_duration(rule.window)
    for index, alternative in enumerate(rule.clears):
        path = f"{where}.clears[{index}]"
        if alternative.after is None and alternative.negative_tests is None and not alternative.recovery:
            problems.append((path, "a clearance needs at least one condition (after, negative_tests, recovery)"))
        if alternative.after is not None and alternative.after > rule.window:
            problems.append(
                (
                    f"{path}.after",
                    f"{format_duration(alternative.after)} is longer than the rule's window {window}: "
                    "the rule would lapse before this clearance could ever apply",
                )
            )
        tests = alternative.negative_tests
        if tests is not None and (tests.count - 1) * tests.apart >= rule.window:
            problems.append(
                (
                    f"{path}.negative_tests",
                    f"{tests.count} tests {format_duration(tests.apart)} apart cannot all be taken within "
                    f"the rule's window {window}: unsatisfiable",
                )
            )
        if alternative.recovery and rule.signal != CASE:
            problems.append((f"{path}.recovery", f"recovery clears only `case` rules, not `{rule.signal}`"))
    return problems


def _check_rule(rule: Rule, where: str, model: RuleSetModel) -> list[tuple[str, str]]:
    known = list(BUILTIN_SIGNALS) + list(model.contacts)
    problems = []
    if rule.signal not in known:
        problems.append((f"{where}.signal", f"unknown signal `{rule.signal}`; known signals: {', '.join(known)}"))
    if rule.window <= 0:
        problems.append((f"{where}.window", "must be longer than zero"))
    contact = model.contacts.get(rule.signal)
    if rule.minutes is not None and rule.signal in known:
        if contact is None and rule.signal != AREA:
            problems.append((f"{where}.minutes", f"a minutes threshold applies to contacts, not `{rule.signal}`"))
        if rule.minutes.at_least is not None and rule.minutes.more_than is not None:
            problems.append((f"{where}.minutes", "give either at_least or more_than, not both"))
        needed = rule.minutes.at_least if rule.minutes.at_least is not None else rule.minutes.more_than
        if contact is not None and needed is not None and needed * 60 >= contact.lookback:
            problems.append(
                (
                    f"{where}.minutes",
                    f"{needed:g} min can never be reached within the contact lookback "
                    f"{format_duration(contact.lookback)}: unsatisfiable",
                )
            )
    if rule.area_levels is not None and rule.signal != AREA:
        problems.append((f"{where}.area_levels", f"area_levels apply to the `area` signal, not `{rule.signal}`"))
    if rule.area_levels is not None and not rule.area_levels:
        problems.append((f"{where}.area_levels", "an empty list matches no designation: unsatisfiable"))
    return problems + _check_clearance(rule, where)


def _check_points(rule: PointsRule, where: str, model: RuleSetModel) -> list[tuple[str, str]]:
    problems = []
    kinds = list(model.contacts) + [AREA]
    for kind, weight in rule.kind_weights.items():
        if kind not in kinds:
            problems.append((f"{where}.kind_weights.{kind}", f"unknown contact kind; known: {', '.join(kinds)}"))
        if weight < 0:
            problems.append((f"{where}.kind_weights.{kind}", "a weight must not be negative"))
    if not any(weight > 0 for weight in rule.kind_weights.values()):
        problems.append((f"{where}.kind_weights", "no positive weight: the score can never rise: unsatisfiable"))
    if rule.window <= 0:
        problems.append((f"{where}.window", "must be longer than zero"))
    spans = sorted(rule.infectiousness, key=lambda span: span.days)
    for index, span in enumerate(rule.infectiousness):
        if span.days[0] > span.days[1]:
            problems.append((f"{where}.infectiousness[{index}].days", "the first day is after the last"))
    for before, after in zip(spans, spans[1:]):
        if after.days[0] <= before.days[1]:
            problems.append((f"{where}.infectiousness", f"day ranges {before.days} and {after.days} overlap"))
    limits = rule.thresholds
    if limits.yellow is None and limits.red is None:
        problems.append((f"{where}.thresholds", "give a yellow or a red threshold (or both)"))
    if limits.yellow is not None and limits.red is not None and limits.yellow >= limits.red:
        problems.append(
            (f"{where}.thresholds", f"yellow ({limits.yellow:g}) must be below red ({limits.red:g}): contradictory")
        )
    return problems


def _check(model: RuleSetModel) -> list[tuple[str, str]]:
    """Every problem of meaning, as (path, message)."""
    problems: list[tuple[str, str]] = []
    if not model.rules and not model.points_rules:
        problems.append(("rules", "a rule set needs at least one rule"))
    for name in model.contacts:
        if name in BUILTIN_SIGNALS:
            problems.append((f"contacts.{name}", f"`{name}` is a built-in signal, not a contact kind"))
    seen: dict[str, str] = {}
    entries = [(f"rules[{i}]", rule.id) for i, rule in enumerate(model.rules)]
    entries += [(f"points_rules[{i}]", rule.id) for i, rule in enumerate(model.points_rules)]
    for where, rule_id in entries:
        if rule_id in seen:
            problems.append((f"{where}.id", f"duplicate rule id `{rule_id}` (also {seen[rule_id]})"))
        seen.setdefault(rule_id, where)
    for index, rule in enumerate(model.rules):
        problems += _check_rule(rule, f"rules[{index}]", model)
    for index, points in enumerate(model.points_rules):
        problems += _check_points(points, f"points_rules[{index}]", model)
    return problems
