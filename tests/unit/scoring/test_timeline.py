"""The published timeline, version 3: records supersede from their moment on, a line per change of level or of
reasons (`scoring.timeline`)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from scoring.assess import Reason
from scoring.events import Visit
from scoring.people import PersonChange
from scoring.rules import load_rule_set
from scoring.state import new_state
from scoring.timeline import TIMELINE_VERSION, Line, change_key, corrections, early_escalations, fold, level_at

P = "p-1"
RULES = "default@1.0.0"
RULES_FILE = Path(__file__).resolve().parents[3] / "rules" / "default.yaml"


def _change(at: int, level: str) -> PersonChange:
    return PersonChange(P, at, level, (), RULES)


def _line(at: int, level: str) -> Line:
    change = _change(at, level)
    return Line(change_key(change), change)


def _folded(*changes: tuple[int, str]) -> list[Line]:
    lines: list[Line] = []
    for at, level in changes:
        fold(lines, _line(at, level))
    return lines


def _said(lines: list[Line]) -> list[tuple[int, str]]:
    return [(line.at, line.level) for line in lines]


def test_a_record_supersedes_every_line_from_its_moment_and_a_restatement_adds_none() -> None:
    lines = _folded((10, "yellow"), (20, "red"), (30, "green"))
    assert _said(lines) == [(10, "yellow"), (20, "red"), (30, "green")]
    fold(lines, _line(15, "yellow"))  # restates the level in force at 15: the lines after it are gone
    assert _said(lines) == [(10, "yellow")]
    fold(lines, _line(5, "green"))
    assert _said(lines) == []
    assert level_at(_folded((10, "yellow"), (20, "red")), 19) == "yellow"


def test_settled_lines_replace_what_was_shown_from_the_first_difference_and_early_ones_after_are_kept() -> None:
    shown = _folded((20, "red"))  # an early red at 20; a contact found later made them yellow at 10
    settled = _folded((10, "yellow"), (20, "red"), (30, "yellow"))
    shown_later = shown + [_line(60, "red")]
    differ, publish = corrections(P, shown_later, settled, through=40, start=-(1 << 62))
    assert differ == 10
    assert [(c.at, c.level) for c in publish] == [(10, "yellow"), (20, "red"), (30, "yellow"), (60, "red")]


def test_an_early_line_the_settled_timeline_does_not_have_is_restated_away() -> None:
    settled = _folded((10, "yellow"))
    shown = _folded((10, "yellow"), (20, "red"))  # red at 20 was early; the inputs settled say yellow on
    differ, publish = corrections(P, shown, settled, through=25, start=-(1 << 62))
    assert differ == 20
    assert [(c.at, c.level) for c in publish] == [(20, "yellow")]
    for change in publish:
        fold(shown, Line(change_key(change), change))
    assert _said(shown) == _said(settled)


def test_agreement_publishes_nothing() -> None:
    lines = _folded((10, "yellow"), (20, "red"))
    assert corrections(P, lines, lines, through=30, start=-(1 << 62)) == (None, [])


def test_an_escalation_is_published_only_above_what_is_shown_and_later_higher_lines_are_stated_again() -> None:
    rules = load_rule_set(RULES_FILE)
    visit = Visit(event_id="v-1", ts=datetime.fromtimestamp(10, timezone.utc), person=P, facility="h",
                  kind="fever_clinic")
    shown = _folded((30, "red"))  # an early red at 30 (say a close contact)
    raised = early_escalations(shown, new_state(P), [visit], lambda at: rules, since=0)
    assert [(c.at, c.level, c.reasons[0].rule) for c in raised[:1]] == [(10, "yellow", "fever_clinic")]
    assert [(c.at, c.level) for c in raised] == [(10, "yellow"), (30, "red")]
    assert early_escalations(_folded((5, "yellow")), new_state(P), [visit], lambda at: rules, since=0) == []
    assert early_escalations([], new_state(P), [visit], lambda at: rules, since=11) == [], "before `since`"


def _with(at: int, level: str, *rules: tuple[str, int]) -> Line:
    """A line at `at` whose reasons are the rules given, each with its `until`."""
    reasons = tuple(Reason(rule, level, 0, until, ()) for rule, until in rules)
    change = PersonChange(P, at, level, reasons, RULES)
    return Line(change_key(change), change)


def test_a_record_naming_another_set_of_rules_at_the_same_level_is_a_line_and_a_later_until_is_none() -> None:
    lines: list[Line] = []
    fold(lines, _with(10, "yellow", ("fever_clinic", 100)))
    fold(lines, _with(20, "yellow", ("fever_clinic", 200)))  # the visit's reason goes on longer: a restatement
    assert [line.at for line in lines] == [10]
    fold(lines, _with(30, "yellow", ("companion", 80), ("fever_clinic", 100)))  # a second reason starts
    fold(lines, _with(80, "yellow", ("fever_clinic", 100)))  # and lapses, the level staying
    assert [(line.at, line.status) for line in lines] == [
        (10, ("yellow", ("fever_clinic",))),
        (30, ("yellow", ("companion", "fever_clinic"))),
        (80, ("yellow", ("fever_clinic",))),
    ]
    assert TIMELINE_VERSION == 3
