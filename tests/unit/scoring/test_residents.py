"""What a resident is shown: their level at a moment (never below their published records), and why in words."""

from __future__ import annotations

from pathlib import Path

from scoring.assess import Assessment, Reason
from scoring.residents import standing
from scoring.rules import LEVELS, load_rule_set
from scoring.timeutil import format_rfc3339

RULES = load_rule_set(Path(__file__).resolve().parents[3] / "rules" / "default.yaml")
AT = 1_650_000_000
DAY = 86_400


def _record(*reasons: tuple[str, str, int, int | None]) -> dict:
    levels = [level for _, level, _, _ in reasons]
    return {
        "person": "p1", "rule_set": RULES.ref, "level": "red" if "red" in levels else "yellow",
        "reasons": [
            {"rule": rule, "level": level, "since": format_rfc3339(since),
             "until": None if until is None else format_rfc3339(until),
             "evidence": [{"signal": "close_contact", "source": "0123456789abcdef", "minutes": 20.0}]}
            for rule, level, since, until in reasons
        ],
    }


def test_a_resident_who_never_changed_level_and_holds_no_fact_is_green_under_the_current_rule_set() -> None:
    now = standing("p1", None, None, RULES, {RULES.ref: RULES}, AT)
    assert (now.level, now.rule_set, now.reasons, now.at) == ("green", RULES.ref, (), AT)


def _held(*reasons: tuple[str, str, int, int | None]) -> Assessment:
    active = tuple(Reason(rule, level, since, until, ()) for rule, level, since, until in reasons)
    level = max((r.level for r in active), key=LEVELS.index, default="green")
    return Assessment(at=AT, level=level, reasons=active, next_review_at=None)


def test_the_level_is_the_higher_of_the_published_record_and_the_facts_held() -> None:
    rule_sets = {RULES.ref: RULES}
    record = _record(("close_contact", "red", AT, AT + 14 * DAY))
    # The facts no longer give red (its until passed) but no record has lowered it: red, as on hc.codes.
    lapsed = standing("p1", record, _held(("fever_clinic", "yellow", AT, AT + 20 * DAY)), RULES, rule_sets, AT + 15 * DAY)
    assert (lapsed.level, [r.rule for r in lapsed.reasons]) == ("red", ["close_contact"])
    # A second reason at the published level: the facts name it, with its own until.
    later = _held(("fever_clinic", "yellow", AT + 10 * DAY, AT + 24 * DAY))
    extended = standing("p1", _record(("fever_clinic", "yellow", AT, AT + 14 * DAY)), later, RULES, rule_sets, AT + 15 * DAY)
    assert (extended.level, [(r.since, r.until) for r in extended.reasons]) == (
        "yellow", [(format_rfc3339(AT + 10 * DAY), format_rfc3339(AT + 24 * DAY))])
    # Bad news the worker holds before a record says it: shown at once.
    raised = standing("p1", None, _held(("confirmed_case", "red", AT, None)), RULES, rule_sets, AT)
    assert (raised.level, raised.rule_set) == ("red", RULES.ref)


def test_a_reason_says_what_since_until_and_how_to_clear_it_early_and_nothing_of_the_evidence() -> None:
    record = _record(("companion", "yellow", AT, AT + 7 * DAY))
    (reason,) = standing("p1", record, None, RULES, {RULES.ref: RULES}, AT).reasons
    shown = reason.to_dict()
    assert shown["what"].startswith("a companion exposure to a case")
    assert (shown["since"], shown["until"]) == (format_rfc3339(AT), format_rfc3339(AT + 7 * DAY))
    assert any("negative PCR" in way for way in shown["clears_early"])
    assert "evidence" not in shown and "0123456789abcdef" not in str(shown)


def test_a_reason_of_a_rule_set_no_longer_held_is_named_by_its_rule() -> None:
    record = {**_record(("old_rule", "yellow", AT, AT + DAY)), "rule_set": "gone@1"}
    (reason,) = standing("p1", record, None, RULES, {RULES.ref: RULES}, AT).reasons
    assert reason.what == "rule old rule" and reason.clears_early == ()
