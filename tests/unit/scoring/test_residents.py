"""What a resident is shown: their level at a moment from their latest change, and why in words."""

from __future__ import annotations

from pathlib import Path

from scoring.residents import standing
from scoring.rules import load_rule_set
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


def test_a_resident_who_never_changed_level_is_green_under_the_current_rule_set() -> None:
    now = standing("p1", None, {RULES.ref: RULES}, RULES.ref, AT)
    assert (now.level, now.rule_set, now.reasons, now.at) == ("green", RULES.ref, (), AT)


def test_reasons_lapse_at_their_until_and_the_level_is_the_highest_left() -> None:
    record = _record(("close_contact", "red", AT, AT + 14 * DAY), ("fever_clinic", "yellow", AT, AT + 20 * DAY))
    rule_sets = {RULES.ref: RULES}
    assert standing("p1", record, rule_sets, RULES.ref, AT + DAY).level == "red"
    later = standing("p1", record, rule_sets, RULES.ref, AT + 14 * DAY)
    assert later.level == "yellow"
    assert [reason.rule for reason in later.reasons] == ["fever_clinic"]
    assert standing("p1", record, rule_sets, RULES.ref, AT + 20 * DAY).level == "green"
    open_ended = _record(("confirmed_case", "red", AT, None))
    assert standing("p1", open_ended, rule_sets, RULES.ref, AT + 400 * DAY).level == "red"


def test_a_reason_says_what_since_until_and_how_to_clear_it_early_and_nothing_of_the_evidence() -> None:
    record = _record(("companion", "yellow", AT, AT + 7 * DAY))
    (reason,) = standing("p1", record, {RULES.ref: RULES}, RULES.ref, AT).reasons
    shown = reason.to_dict()
    assert shown["what"].startswith("a companion exposure to a case")
    assert (shown["since"], shown["until"]) == (format_rfc3339(AT), format_rfc3339(AT + 7 * DAY))
    assert any("negative PCR" in way for way in shown["clears_early"])
    assert "evidence" not in shown and "0123456789abcdef" not in str(shown)


def test_a_reason_of_a_rule_set_no_longer_held_is_named_by_its_rule() -> None:
    record = {**_record(("old_rule", "yellow", AT, AT + DAY)), "rule_set": "gone@1"}
    (reason,) = standing("p1", record, {RULES.ref: RULES}, RULES.ref, AT).reasons
    assert reason.what == "rule old rule" and reason.clears_early == ()
