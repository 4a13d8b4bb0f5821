"""What a resident is shown about themselves: their level at a moment, and why, in words (pure).

A worker publishes a record for every level change (`streams.issuing`); a resident who
never changed level has none and is green. `standing` gives the level a resident holds at
an event time from their latest change record: reasons whose `until` has passed by then
have lapsed (the core's own review would publish that lapse later, once it settles the
moment; the level is the highest left). What the resident sees of each reason is words
(what, since, until, how to clear it early), never the evidence behind it: evidence
names cases (references) and contact times that would let someone link a contact to a case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scoring.rules import LEVEL_CODE, LEVELS, PointsRule, Rule, RuleSet
from scoring.rulewords import clearance_words, lapse_words, signal_words
from scoring.timeutil import parse_rfc3339

GREEN = "green"


@dataclass(frozen=True)
class ReasonWords:
    """One reason as a resident reads it; times as RFC 3339 UTC (the page shows them in the resident's zone)."""

    rule: str
    level: str
    what: str
    since: str
    until: str | None
    """When it lapses if nothing else happens (None: not before something clears it)."""
    clears_early: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "level": self.level, "what": self.what, "since": self.since,
                "until": self.until, "clears_early": list(self.clears_early)}


@dataclass(frozen=True)
class Standing:
    """A resident's level at event time `at`, the rule set that gave it, and the reasons in words."""

    person: str
    level: str
    rule_set: str
    at: int
    reasons: tuple[ReasonWords, ...]


def standing(person: str, latest: Mapping[str, Any] | None, rule_sets: Mapping[str, RuleSet],
             current_rule_set: str, at: int) -> Standing:
    """`person`'s level at `at` from their latest change record (`latest`; None: never changed,
    so green under `current_rule_set`). `rule_sets` by ref give the words of each reason."""
    if latest is None:
        return Standing(person, GREEN, current_rule_set, at, ())
    rules = rule_sets.get(latest["rule_set"])
    kept = [reason for reason in latest["reasons"] if reason["until"] is None or parse_rfc3339(reason["until"]) > at]
    level = LEVELS[max((LEVEL_CODE[reason["level"]] for reason in kept), default=LEVEL_CODE[GREEN])]
    return Standing(person, level, latest["rule_set"], at, tuple(reason_words(reason, rules) for reason in kept))


def reason_words(reason: Mapping[str, Any], rules: RuleSet | None) -> ReasonWords:
    """One reason of a change record (`scoring.assess.Reason.to_dict`) in words, from the rule set that gave it."""
    rule = _rule(rules, reason["rule"])
    if isinstance(rule, Rule) and rules is not None:
        what = f"{signal_words(rule, rules)} (this lasts at most {lapse_words(rule)})"
        clears = tuple(clearance_words(rule))
    elif isinstance(rule, PointsRule):
        what = "time spent near cases that added up past the rule's threshold"
        clears = ()
    else:
        # A rule set this worker does not hold (it was replaced): the rule's name is all there is.
        what = f"rule {reason['rule'].replace('_', ' ')}"
        clears = ()
    return ReasonWords(reason["rule"], reason["level"], what, reason["since"], reason["until"], clears)


def _rule(rules: RuleSet | None, rule_id: str) -> Rule | PointsRule | None:
    if rules is None:
        return None
    for rule in [*rules.rules, *rules.points_rules]:
        if rule.id == rule_id:
            return rule
    return None
