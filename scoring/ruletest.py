"""Rule tests as data: given these events and exposures, at this time, expect this level.

A rule set `rules/ID.yaml` ships its cases in `rules/tests/ID/*.yaml`::

    cases:
      - name: a positive PCR makes a person red at once
        events:                 # contract v1 objects; `person` and `event_id` may be left out
          - {type: test_result, ts: 2022-04-01T10:00:00Z, sampled_at: 2022-04-01T08:00:00Z,
             test: pcr, result: positive}
        exposures:              # scoring.exposure.Exposure fields; `person`, `exposure_id` optional
          - {kind: close_contact, source: case-a, first_at: ..., last_at: ..., minutes: 20}
        checks:
          - {at: 2022-04-01T10:00:00Z, level: red, reasons: [confirmed_case]}
          - {at: 2022-04-29T08:00:00Z, level: green, reasons: []}

A check may also pin `next_review_at`. Events are applied in the order given (the
engine must not care); reasons are compared as sets of rule ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from scoring.assess import Assessment, assess
from scoring.events import EventError, decode_event
from scoring.exposure import Exposure
from scoring.rules import EpochTime, Problem, RuleSet, RuleSetError, format_location
from scoring.state import PersonState, apply, apply_exposure, new_state
from scoring.timeutil import format_rfc3339

DEFAULT_PERSON = "person-under-test"


def _plain(value: Any) -> Any:
    # YAML turns timestamps into datetimes; the event contract wants RFC 3339 text.
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExposureInput(_Model):
    """An exposure as a test case writes it."""

    kind: str
    source: str
    first_at: EpochTime
    last_at: EpochTime
    minutes: float = Field(ge=0)
    minutes_by_day: list[tuple[int, float]] = Field(default_factory=list)
    level: Literal["medium", "high"] | None = None
    retracted: bool = False
    exposure_id: str | None = None
    known_at: EpochTime | None = None

    def to_exposure(self, person: str) -> Exposure:
        """The `Exposure` record this input stands for."""
        return Exposure(
            exposure_id=self.exposure_id or Exposure.make_id(person, self.kind, self.source),
            person=person,
            kind=self.kind,
            source=self.source,
            first_at=self.first_at,
            last_at=self.last_at,
            minutes=self.minutes,
            minutes_by_day=tuple(self.minutes_by_day),
            level=self.level,
            retracted=self.retracted,
            known_at=self.known_at,
        )


class Check(_Model):
    """What to expect at one event time."""

    at: EpochTime
    level: Literal["green", "yellow", "red"]
    reasons: list[str] = Field(default_factory=list)
    next_review_at: EpochTime | None = None


class Case(_Model):
    """One scenario: a person's events and exposures, and what to expect when."""

    name: str
    person: str = DEFAULT_PERSON
    events: list[Annotated[dict[str, Any], BeforeValidator(_plain)]] = Field(default_factory=list)
    exposures: list[ExposureInput] = Field(default_factory=list)
    checks: list[Check] = Field(min_length=1)


class RuleTestFile(_Model):
    """A file of cases for one rule set."""

    description: str = ""
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check of one case."""

    file: str
    case: str
    at: int
    expected: Check
    actual: Assessment

    @property
    def passed(self) -> bool:
        return not self.differences()

    def differences(self) -> list[str]:
        """What differs from the expectation, in words (empty when the check passed)."""
        found = []
        if self.actual.level != self.expected.level:
            found.append(f"level: expected {self.expected.level}, got {self.actual.level}")
        expected, actual = set(self.expected.reasons), set(self.actual.rule_ids)
        if expected != actual:
            missing, extra = sorted(expected - actual), sorted(actual - expected)
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unexpected {', '.join(extra)}"] if extra else []
            )
            found.append("reasons: " + "; ".join(parts))
        wanted = self.expected.next_review_at
        if wanted is not None and wanted != self.actual.next_review_at:
            got = "none" if self.actual.next_review_at is None else format_rfc3339(self.actual.next_review_at)
            found.append(f"next_review_at: expected {format_rfc3339(wanted)}, got {got}")
        return found


def tests_dir(rules: RuleSet, rules_path: str | Path) -> Path:
    """Where the cases of a rule set file live: `<its directory>/tests/<id>/`."""
    return Path(rules_path).parent / "tests" / rules.id


def load_test_file(path: str | Path) -> RuleTestFile:
    """Read and validate a test file; raises `RuleSetError` naming file, path and problem."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        return RuleTestFile.model_validate(document)
    except yaml.YAMLError as error:
        raise RuleSetError([Problem(file=str(path), path="", message=f"not valid YAML: {error}")]) from None
    except ValidationError as error:
        problems = [
            Problem(file=str(path), path=format_location(item["loc"]), message=item["msg"])
            for item in error.errors(include_url=False)
        ]
        raise RuleSetError(problems) from None


def build_state(case: Case, rules: RuleSet, source: str, where: str) -> PersonState:
    """The person's state after the case's events and exposures."""
    state = new_state(case.person)
    for index, raw in enumerate(case.events):
        body = {"person": case.person, "event_id": f"{case.name[:40]}#{index}", **raw}
        try:
            event = decode_event(orjson.dumps(body))
        except EventError as error:
            raise RuleSetError([Problem(file=source, path=f"{where}.events[{index}]", message=error.reason)]) from None
        if event.type == "area_risk":
            message = "area designations reach a person as `area` exposures; list them under exposures"
            raise RuleSetError([Problem(file=source, path=f"{where}.events[{index}]", message=message)])
        if event.person != case.person:
            message = f"event of `{event.person}` in a case about `{case.person}`"
            raise RuleSetError([Problem(file=source, path=f"{where}.events[{index}]", message=message)])
        state = apply(state, event, rules)
    for item in case.exposures:
        state = apply_exposure(state, item.to_exposure(case.person))
    return state


def run_file(path: str | Path, rules: RuleSet) -> list[CheckResult]:
    """Run every check of every case in one test file."""
    source = str(path)
    results = []
    for case_index, case in enumerate(load_test_file(path).cases):
        state = build_state(case, rules, source, f"cases[{case_index}]")
        for check in case.checks:
            results.append(CheckResult(source, case.name, check.at, check, assess(state, rules, check.at)))
    return results


def run_rule_tests(rules: RuleSet, rules_path: str | Path) -> list[CheckResult]:
    """Run all the cases shipped with a rule set file (none when it ships none)."""
    results = []
    for path in sorted(tests_dir(rules, rules_path).glob("*.yaml")):
        results += run_file(path, rules)
    return results
