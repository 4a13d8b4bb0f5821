"""What a resident is shown about themselves: their level at a moment, and why, in words (pure).

A resident's level now is the higher of two answers, so that it is never lower than what
`hc.codes` says of them and never lags bad news:
- what the published records say (the latest one states the level from its moment on,
  timeline contract 3): a level falls there only once no input still in flight could keep
  it up, so a resident is not shown green before a lapse is certain;
- the core's assessment of the facts the worker holds, at that moment: it names every
  reason active now, with its `until` as the facts give it now (records are published when
  the level or the set of active rules changes; a second fever-clinic visit extends a
  yellow without a new record, and the latest record's `until` has passed).
A resident who never changed level and of whom the core holds no fact is green.
What the resident sees of each reason is words (what, since, until, how to clear it
early), never the evidence behind it: evidence names cases (references) and contact times
that would let someone link a contact to a case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scoring.assess import Assessment
from scoring.rules import LEVEL_CODE, PointsRule, Rule, RuleSet
from scoring.rulewords import clearance_words, lapse_words, signal_words

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


def standing(person: str, latest: Mapping[str, Any] | None, held: Assessment | None, held_rules: RuleSet,
             rule_sets: Mapping[str, RuleSet], at: int) -> Standing:
    """`person`'s level at `at`: the higher of their latest published record (`latest`; None: none
    published) and `held`, the core's assessment at `at` of the facts it holds under `held_rules`
    (None: no facts). `rule_sets` by ref give the words of a published record's reasons."""
    published = GREEN if latest is None else latest["level"]
    if held is not None and LEVEL_CODE[held.level] >= LEVEL_CODE[published]:
        return Standing(person, held.level, held_rules.ref, at,
                        tuple(reason_words(reason.to_dict(), held_rules) for reason in held.reasons))
    if latest is None:
        return Standing(person, GREEN, held_rules.ref, at, ())
    # The facts held no longer give this level, but the published level still holds: a lapse is
    # published (and shown) once it is certain. Until then its reasons are the record's.
    rules = rule_sets.get(latest["rule_set"])
    return Standing(person, published, latest["rule_set"], at,
                    tuple(reason_words(reason, rules) for reason in latest["reasons"]))


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
