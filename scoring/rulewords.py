"""Rule sets in an epidemiologist's words: what each rule does, and what changed between two sets."""

from __future__ import annotations

from typing import Any, Callable

from scoring.exposure import AREA
from scoring.rules import CASE, FEVER_CLINIC, CaseDefinition, ContactDefinition, PointsRule, Rule, RuleSet
from scoring.timeutil import format_duration, format_rfc3339


def _kind_words(kind: str) -> str:
    return kind.replace("_", " ")


def _tests_words(tests: list[str]) -> str:
    return " or ".join("PCR" if test == "pcr" else test for test in tests)


def signal_words(rule: Rule, rules: RuleSet) -> str:
    """What triggers a rule, e.g. `a fever clinic visit`."""
    if rule.signal == CASE:
        case = rules.case
        text = f"a positive {_tests_words(case.positive_tests)} test"
        return text + (" or a diagnosis" if case.diagnosis else "")
    if rule.signal == FEVER_CLINIC:
        return "a fever clinic visit"
    if rule.signal == AREA:
        levels = " or ".join(rule.area_levels) if rule.area_levels else "any"
        return f"presence in a {levels}-risk area while it was designated"
    threshold = f" for {rule.minutes.describe()} in total" if rule.minutes is not None else ""
    return f"a {_kind_words(rule.signal)} exposure to a case{threshold}"


def clearance_words(rule: Rule) -> list[str]:
    """Each way the rule clears early, one line per alternative."""
    anchor = RuleSet.anchor_words(rule.signal)
    return [alternative.describe(anchor) for alternative in rule.clears]


def lapse_words(rule: Rule) -> str:
    """How long the rule lasts when nothing clears it."""
    return f"{format_duration(rule.window)} after {RuleSet.anchor_words(rule.signal)}"


def rule_words(rule: Rule, rules: RuleSet) -> str:
    """One sentence: `red on <signal>; clears on <a> or <b>; lasts at most <window>`."""
    ways = clearance_words(rule)
    clears = f"clears {'; or '.join(ways)}; lasts at most " if ways else "lasts "
    return f"{rule.level} on {signal_words(rule, rules)}; {clears}{lapse_words(rule)}"


def _days(span: tuple[int, int]) -> str:
    return f"day {span[0]}" if span[0] == span[1] else f"days {span[0]}..{span[1]}"


def points_words(rule: PointsRule) -> str:
    """The score, its weights and thresholds in one sentence."""
    weights = ", ".join(f"{_kind_words(kind)} x{weight:g}" for kind, weight in rule.kind_weights.items())
    days = ", ".join(f"{_days(span.days)} x{span.weight:g}" for span in rule.infectiousness)
    days = f"{days}, other days x{rule.other_days_weight:g}" if days else f"every day x{rule.other_days_weight:g}"
    limits = []
    if rule.thresholds.yellow is not None:
        limits.append(f"yellow from {rule.thresholds.yellow:g}")
    if rule.thresholds.red is not None:
        limits.append(f"red from {rule.thresholds.red:g}")
    return (
        f"{' and '.join(limits)} weighted minutes of co-presence with cases "
        f"(contact weights: {weights}; infectiousness by days since onset: {days}); "
        f"each exposure counts until {format_duration(rule.window)} after its last contact"
    )


def case_words(case: CaseDefinition) -> str:
    """Who is a case and when they are infectious."""
    signals = f"a positive {_tests_words(case.positive_tests)} test" + (" or a diagnosis" if case.diagnosis else "")
    until = "confirmation" if not case.isolation_after else f"{format_duration(case.isolation_after)} after confirmation"
    correction = (
        "; a later negative PCR on the same sample withdraws a positive result"
        if case.corrected_by_negative_pcr_on_same_sample
        else ""
    )
    return (
        f"{signals}; infectious from {format_duration(case.infectious_before)} before the sample "
        f"(or diagnosis) until {until}{correction}"
    )


def contact_words(kind: str, contact: ContactDefinition) -> str:
    """How presence detection finds this kind of contact."""
    neighbours = " or a neighbouring one" if contact.include_neighbours else ""
    return (
        f"{_kind_words(kind)}: the same H3 resolution-{contact.resolution} cell{neighbours}; a ping counts "
        f"for at most {format_duration(contact.max_gap)}; looked for over the last {format_duration(contact.lookback)}"
    )


def _changed(label: str, old: Any, new: Any, show: Callable[[Any], str] = str) -> list[str]:
    return [] if old == new else [f"{label}: {show(old)} -> {show(new)}"]


def _case_changes(old: CaseDefinition, new: CaseDefinition) -> list[str]:
    if case_words(old) != case_words(new):
        return [f"case definition: was {case_words(old)}; now {case_words(new)}"]
    return ["case description reworded"] if old.description != new.description else []


def _contact_changes(old: RuleSet, new: RuleSet) -> list[str]:
    before, after = old.model.contacts, new.model.contacts
    changes = [f"new contact kind {contact_words(kind, after[kind])}" for kind in after if kind not in before]
    changes += [f"contact kind {_kind_words(kind)} removed" for kind in before if kind not in after]
    for kind in [kind for kind in before if kind in after]:
        was, now = before[kind], after[kind]
        label = _kind_words(kind)
        changes += _changed(f"{label} cell resolution", was.resolution, now.resolution)
        changes += _changed(f"{label} longest gap a ping covers", was.max_gap, now.max_gap, format_duration)
        changes += _changed(f"{label} lookback", was.lookback, now.lookback, format_duration)
        changes += _changed(
            f"{label} counts neighbouring cells", was.include_neighbours, now.include_neighbours, _yes_no
        )
    return changes


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _rule_changes(old: RuleSet, new: RuleSet) -> list[str]:
    before = {rule.id: rule for rule in old.rules}
    after = {rule.id: rule for rule in new.rules}
    changes = [f"new rule {rule_id}: {rule_words(after[rule_id], new)}" for rule_id in after if rule_id not in before]
    changes += [f"rule {rule_id} removed (was: {rule_words(before[rule_id], old)})" for rule_id in before if rule_id not in after]
    for rule_id in [rule.id for rule in old.rules if rule.id in after]:
        was, now = before[rule_id], after[rule_id]
        changes += _changed(f"{rule_id} level", was.level, now.level)
        if signal_words(was, old) != signal_words(now, new):
            changes.append(f"{rule_id} trigger: {signal_words(was, old)} -> {signal_words(now, new)}")
        changes += _changed(f"{rule_id} lasts at most", was.window, now.window, format_duration)
        old_ways, new_ways = clearance_words(was), clearance_words(now)
        changes += [f"{rule_id} no longer clears {way}" for way in old_ways if way not in new_ways]
        changes += [f"{rule_id} now also clears {way}" for way in new_ways if way not in old_ways]
    return changes


def _points_changes(old: RuleSet, new: RuleSet) -> list[str]:
    before = {rule.id: rule for rule in old.points_rules}
    after = {rule.id: rule for rule in new.points_rules}
    changes = [f"new points rule {rule_id}: {points_words(after[rule_id])}" for rule_id in after if rule_id not in before]
    changes += [f"points rule {rule_id} removed" for rule_id in before if rule_id not in after]
    for rule_id in [rule.id for rule in old.points_rules if rule.id in after]:
        was, now = before[rule_id], after[rule_id]
        changes += _changed(f"{rule_id} yellow threshold", was.thresholds.yellow, now.thresholds.yellow, _number)
        changes += _changed(f"{rule_id} red threshold", was.thresholds.red, now.thresholds.red, _number)
        changes += _changed(f"{rule_id} exposure counts for", was.window, now.window, format_duration)
        for kind in sorted(was.kind_weights.keys() | now.kind_weights.keys()):
            changes += _changed(
                f"{rule_id} weight of {_kind_words(kind)}", was.kind_weights.get(kind), now.kind_weights.get(kind), _number
            )
        if (was.infectiousness, was.other_days_weight) != (now.infectiousness, now.other_days_weight):
            changes.append(f"{rule_id} infectiousness weights: {points_words(was)} -> {points_words(now)}")
        changes += _changed(
            f"{rule_id} weight of minutes with no day", was.unknown_day_weight, now.unknown_day_weight, _number
        )
    return changes


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def diff_rule_sets(old: RuleSet, new: RuleSet) -> list[str]:
    """What changed from `old` to `new`, one sentence per change (empty when the meaning is equal)."""
    changes = _changed("identity", old.ref, new.ref)
    changes += _changed("valid from", old.valid_from, new.valid_from, format_rfc3339)
    for level in ("green", "yellow", "red"):
        changes += _changed(f"meaning of {level}", old.model.levels.get(level), new.model.levels.get(level), repr)
    changes += _case_changes(old.case, new.case)
    changes += _contact_changes(old, new)
    changes += _rule_changes(old, new)
    changes += _points_changes(old, new)
    if old.model.description != new.model.description:
        changes.append("description reworded")
    if old.model.sources != new.model.sources:
        changes.append("sources changed")
    return changes
